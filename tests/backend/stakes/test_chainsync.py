"""The chain-sync job: no deployment, a node that goes down and comes back, a redeployed
registry, a reorg below the window, and the app that keeps serving through all of it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.main import create_app
from backend.models.stakes import ChainBlock, ChainCheckpoint, StakeSource
from backend.services import stakes
from backend.services.chainsync import ChainSync
from shotbank.chain.contracts import ShotToken, ValidatorRegistry, send_call
from shotbank.chain.deploy import deploy_all
from shotbank.chain.deployments import save_deployment
from tests.backend.conftest import SettingsFactory
from tests.backend.stakes.conftest import PARAMS, SHOT, Chain, catch_up
from tests.sdk.chain.faulty_proxy import FaultyProxy

LOGGER = "backend.services.chainsync"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER and record.levelno >= logging.WARNING
    ]


def wait_for(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.05)


def bonded(engine: Engine, address: str) -> int | None:
    with Session(engine) as session:
        snapshot = stakes.snapshot_of(session, address)
    return None if snapshot is None else snapshot.bonded_wei


def test_without_a_deployment_the_job_warns_once_and_waits(
    make_settings: SettingsFactory, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    sync = ChainSync(engine, make_settings())
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert sync.step() is False
        assert sync.step() is False
    assert len(warnings_of(caplog)) == 1
    assert "no contracts are deployed on chain 31337" in warnings_of(caplog)[0]
    assert sync.indexer is None


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_a_node_outage_is_logged_once_and_indexing_resumes_after_it(
    make_settings: SettingsFactory,
    chain: Chain,
    chain_settings: Settings,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = FaultyProxy(chain.node.url).start()
    try:
        settings = chain_settings.model_copy(update={"chain_rpc_url": proxy.url})
        sync = ChainSync(engine, settings)
        validator = chain.validators[0]
        chain.stake(validator, 100 * SHOT)
        with caplog.at_level(logging.INFO, logger=LOGGER):
            catch_up(sync)
            assert bonded(engine, validator.address) == 100 * SHOT

            proxy.stop()
            chain.stake(validator, 50 * SHOT)
            assert sync.step() is False
            assert sync.step() is False
            assert len(warnings_of(caplog)) == 1
            assert "unreachable" in warnings_of(caplog)[0]
            assert bonded(engine, validator.address) == 100 * SHOT

            proxy.start()
            catch_up(sync)
        assert bonded(engine, validator.address) == 150 * SHOT
        assert "chain sync works again" in caplog.text
    finally:
        proxy.stop()


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_the_app_keeps_serving_while_the_chain_is_down(
    make_settings: SettingsFactory, chain: Chain, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # A deployment exists, but the node the backend is told to use refuses connections.
    settings = make_settings(chain_poll_s=0.05)
    settings.deployments_path.parent.mkdir(parents=True, exist_ok=True)
    save_deployment(settings.deployments_path, chain.deployment)
    app = create_app(settings)
    with caplog.at_level(logging.WARNING, logger=LOGGER), TestClient(app) as client:
        wait_for(lambda: bool(warnings_of(caplog)))
        time.sleep(0.3)  # a few more polls against the dead node
        health = client.get("/api/v1/health")
        version = client.get("/api/v1/version")
        config = client.get("/api/v1/validator/config")
        threads = {thread.name: thread for thread in app.state.background.threads}
        assert threads["shotbank-chain-sync"].is_alive()
    assert health.status_code == 503
    assert health.json()["chain"]["reachable"] is False
    assert version.status_code == 200
    assert version.json()["contracts"]["ValidatorRegistry"] == chain.registry.address
    assert config.status_code == 503
    assert config.json()["error"]["code"] == "dependency_unavailable"
    assert len(warnings_of(caplog)) == 1, "a down node is reported once, not every poll"
    assert "unreachable" in warnings_of(caplog)[0]


def test_the_app_indexes_stakes_in_the_background(
    chain: Chain, chain_settings: Settings, engine: Engine
) -> None:
    validator = chain.validators[1]
    with TestClient(create_app(chain_settings)) as client:
        chain.stake(validator, 120 * SHOT)
        stake_block = chain.w3.eth.block_number
        wait_for(lambda: bonded(engine, validator.address) == 120 * SHOT)
        config = client.get("/api/v1/validator/config").json()
    assert config["snapshot_block"] >= stake_block


def test_a_redeployed_registry_replaces_the_snapshot(
    chain: Chain,
    chain_settings: Settings,
    sync: ChainSync,
    engine: Engine,
    dev_keys: list[Any],
) -> None:
    old_validator, new_validator = chain.validators[:2]
    chain.stake(old_validator, 100 * SHOT)
    catch_up(sync)
    assert bonded(engine, old_validator.address) == 100 * SHOT

    redeployed = deploy_all(
        chain.w3, dev_keys[0], treasury=dev_keys[1].address, guardian=dev_keys[2].address,
        params=PARAMS,
    )  # fmt: skip
    save_deployment(chain_settings.deployments_path, redeployed)
    token = ShotToken.from_deployment(chain.w3, redeployed)
    registry = ValidatorRegistry.from_deployment(chain.w3, redeployed)
    send_call(chain.w3, dev_keys[1], token.transfer(new_validator.address, 300 * SHOT))
    send_call(chain.w3, new_validator, token.approve(registry.address, 300 * SHOT))
    send_call(chain.w3, new_validator, registry.stake(300 * SHOT))
    catch_up(sync)

    assert bonded(engine, old_validator.address) is None
    assert bonded(engine, new_validator.address) == 300 * SHOT
    with Session(engine) as session:
        source = session.get(StakeSource, 1)
        assert source is not None
        assert source.registry_address == registry.address
        assert source.start_block == redeployed.start_block
        names = session.exec(
            select(col(ChainCheckpoint.name)).where(
                col(ChainCheckpoint.name).startswith(stakes.INDEXER_PREFIX)
            )
        ).all()
    assert names == [stakes.indexer_name(31337, registry.address)]


def test_a_reorg_below_the_kept_window_re_indexes_from_the_start_block(
    chain: Chain, sync: ChainSync, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    validator = chain.validators[0]
    chain.stake(validator, 200 * SHOT)
    catch_up(sync)
    # Every hash the indexer remembers stops matching the node: as after a chain reset.
    with Session(engine) as session:
        session.execute(update(ChainBlock).values(block_hash="0x" + "ee" * 32))
        session.execute(update(ChainCheckpoint).values(block_hash="0x" + "ee" * 32))
        session.commit()
    chain.request_unstake(validator, 50 * SHOT)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        catch_up(sync)
    assert "re-indexing it from the start block" in caplog.text
    assert bonded(engine, validator.address) == 150 * SHOT
    with Session(engine) as session:
        assert stakes.snapshot_block(session) == chain.w3.eth.block_number
