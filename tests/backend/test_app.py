"""The application factory and the system routes, on a real SQLite database in a tmp dir."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import backend
from backend.core.config import Settings
from backend.core.migrate import head_revision
from backend.main import create_app
from shotbank.chain.deployments import Deployment, save_deployment
from shotbank.chain.devnode import AnvilNode
from tests.backend.conftest import SettingsFactory

CONTRACTS = {
    "ShotToken": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "ValidatorRegistry": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
}


def test_app_serves_openapi_with_the_v1_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["version"] == backend.__version__
    assert {"/api/v1/health", "/api/v1/version"} <= set(spec["paths"])


def test_api_docs_use_assets_served_by_the_app_not_a_cdn(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "/openapi.json" in html
        assert "cdn." not in html
    assert client.get("/static/docs/swagger-ui-bundle.js").status_code == 200


def test_startup_migrates_the_sqlite_database_to_head(
    client: TestClient, settings: Settings
) -> None:
    database = settings.var_dir / "shotbank.db"
    assert database.is_file()
    with sqlite3.connect(database) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == head_revision() is not None


def test_without_auto_migrate_the_database_is_left_alone(make_settings: SettingsFactory) -> None:
    with TestClient(create_app(make_settings(auto_migrate=False))) as client:
        body = client.get("/api/v1/health").json()
    assert body["db"] == {"reachable": True, "revision": None}


def test_health_reports_database_and_an_unreachable_chain_as_degraded(
    client: TestClient,
) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json() == {
        "status": "degraded",
        "db": {"reachable": True, "revision": head_revision()},
        "chain": {"reachable": False, "chain_id": None, "block": None},
    }


def test_health_reports_an_unreachable_database(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    unopenable = tmp_path / "missing-dir" / "db.sqlite"
    settings = make_settings(database_url=f"sqlite:///{unopenable}", auto_migrate=False)
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["db"] == {"reachable": False, "revision": None}


@pytest.mark.chain
def test_health_is_ok_with_a_live_chain(make_settings: SettingsFactory, anvil: AnvilNode) -> None:
    with TestClient(create_app(make_settings(chain_rpc_url=anvil.url))) as client:
        response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["chain"]["reachable"] is True
    assert body["chain"]["chain_id"] == 31337
    assert isinstance(body["chain"]["block"], int)


@pytest.mark.chain
def test_health_is_degraded_when_the_node_serves_another_chain(
    make_settings: SettingsFactory, anvil: AnvilNode
) -> None:
    settings = make_settings(chain_rpc_url=anvil.url, chain_id=1)
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["chain"]["chain_id"] == 31337


def test_version_without_deployments_reports_no_contracts(client: TestClient) -> None:
    body = client.get("/api/v1/version").json()
    assert body["version"] == backend.__version__
    assert body["chain_id"] == 31337
    assert body["contracts"] == {}
    assert body["start_block"] is None
    assert body["commit"] is None or re.fullmatch(r"[0-9a-f]{40}", body["commit"])


def test_version_reads_the_contracts_of_its_chain_from_the_deployments_file(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    path = tmp_path / "deployments.json"
    save_deployment(path, Deployment(chain_id=31337, start_block=3, contracts=CONTRACTS))
    other = {"ShotToken": "0x0000000000000000000000000000000000000001"}
    save_deployment(path, Deployment(chain_id=1, start_block=9, contracts=other))
    settings = make_settings(deployments_file=path, git_commit="0123456789abcdef")
    with TestClient(create_app(settings)) as client:
        body = client.get("/api/v1/version").json()
    assert body["contracts"] == CONTRACTS
    assert body["start_block"] == 3
    assert body["commit"] == "0123456789abcdef"


def test_version_with_a_corrupt_deployments_file_is_a_configuration_error(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    path = tmp_path / "deployments.json"
    path.write_text("{not json")
    with TestClient(create_app(make_settings(deployments_file=path))) as client:
        response = client.get("/api/v1/version")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "configuration_error"
