"""``GET /api/v1/validator/config``: registry, minimum stake, snapshot block, lease terms."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.core.config import Settings
from backend.main import create_app
from backend.services import stakes
from scoring.report import REPORT_SCHEMA_VERSION
from tests.backend.conftest import SettingsFactory
from tests.backend.stakes.conftest import MIN_STAKE, SHOT, Chain


def test_config_names_the_registry_min_stake_snapshot_and_lease_terms(
    chain: Chain, chain_settings: Settings, engine: Engine
) -> None:
    settings = chain_settings.model_copy(
        update={"consensus_quorum": 2, "lease_ttl_s": 300, "chain_confirmations": 1}
    )
    chain.stake(chain.validators[0], 100 * SHOT)
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 15
        while (body := client.get("/api/v1/validator/config").json())["snapshot_block"] is None:
            assert time.monotonic() < deadline, body
            time.sleep(0.05)
    assert body == {
        "chain_id": 31337,
        "validator_registry": chain.registry.address,
        "min_stake_wei": str(MIN_STAKE),
        "snapshot_block": body["snapshot_block"],
        "confirmations": 1,
        "quorum": 2,
        "lease_ttl_s": 300,
        "max_jobs_per_lease": settings.lease_max_jobs,
        "report_version": REPORT_SCHEMA_VERSION,
    }
    assert 0 <= body["snapshot_block"] <= chain.w3.eth.block_number - 1


def test_before_the_first_snapshot_min_stake_comes_from_the_chain(
    chain: Chain, chain_settings: Settings, engine: Engine
) -> None:
    with Session(engine) as session:
        config = stakes.validator_config(session, settings=chain_settings, w3=chain.w3)
    assert config.min_stake_wei == str(MIN_STAKE) == str(chain.registry.min_stake())
    assert config.snapshot_block is None
    assert config.quorum == 3
    assert config.lease_ttl_s == 600


def test_without_a_deployment_the_config_is_unavailable(make_settings: SettingsFactory) -> None:
    with TestClient(create_app(make_settings())) as client:
        response = client.get("/api/v1/validator/config")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "dependency_unavailable"
    assert "No ValidatorRegistry is deployed on chain 31337" in error["message"]
