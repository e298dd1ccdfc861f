"""The built web app at ``/`` (backend.api.web): files, SPA fallback, cache headers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api.web import ASSET_CACHE_CONTROL, INDEX_CACHE_CONTROL
from backend.main import create_app
from tests.backend.conftest import SettingsFactory

INDEX = "<!doctype html><title>Shotbank</title><div id=root></div>"


@pytest.fixture
def web_dir(tmp_path: Path) -> Path:
    """A small build: index.html, one hashed asset, one unhashed file."""
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-Ab12Cd34.js").write_text("console.log(1)")
    (root / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


@pytest.fixture
def web_client(make_settings: SettingsFactory, web_dir: Path) -> Iterator[TestClient]:
    """A client of the backend serving ``web_dir``."""
    with TestClient(create_app(make_settings(web_dir=web_dir))) as client:
        yield client


def test_root_serves_index_html_revalidated_each_time(web_client: TestClient) -> None:
    response = web_client.get("/")
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == INDEX_CACHE_CONTROL


def test_hashed_assets_are_immutable(web_client: TestClient) -> None:
    response = web_client.get("/assets/index-Ab12Cd34.js")
    assert response.status_code == 200
    assert response.text == "console.log(1)"
    assert response.headers["cache-control"] == ASSET_CACHE_CONTROL


def test_unhashed_files_are_revalidated(web_client: TestClient) -> None:
    response = web_client.get("/favicon.svg")
    assert response.text == "<svg/>"
    assert response.headers["cache-control"] == INDEX_CACHE_CONTROL


@pytest.mark.parametrize("path", ["/datasets", "/clips/abc", "/rewards/", "/assets/missing.js"])
def test_app_routes_fall_back_to_index_html(web_client: TestClient, path: str) -> None:
    response = web_client.get(path)
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["cache-control"] == INDEX_CACHE_CONTROL


def test_paths_escaping_the_build_get_the_app_not_the_file(web_client: TestClient) -> None:
    response = web_client.get("/..%2Fsecret.txt")
    assert "outside the build" not in response.text
    assert response.text == INDEX


def test_api_routes_are_not_shadowed(web_client: TestClient) -> None:
    assert web_client.get("/api/v1/version").json()["chain_id"] == 31337
    assert web_client.get("/openapi.json").json()["info"]["title"] == "Shotbank"
    assert web_client.get("/docs").headers["content-type"].startswith("text/html")
    assert "/{path}" not in web_client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/nope"), ("POST", "/api/v1/nope"), ("GET", "/ipfs/"), ("GET", "/api")],
)
def test_unknown_api_paths_stay_json_404(web_client: TestClient, method: str, path: str) -> None:
    response = web_client.request(method, path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_missing_build_says_how_to_build_it(make_settings: SettingsFactory, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(web_dir=tmp_path / "nothing"))) as client:
        response = client.get("/")
        api = client.get("/api/v1/version")
    assert response.status_code == 503
    assert "npm run build --prefix web" in response.text
    assert api.status_code == 200


def test_api_trailing_slash_redirects_still_work(web_client: TestClient) -> None:
    response = web_client.get("/api/v1/version/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"].endswith("/api/v1/version")


def test_non_get_requests_to_app_paths_are_404(web_client: TestClient) -> None:
    response = web_client.post("/datasets")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_paths_that_only_start_like_api_paths_get_the_app(web_client: TestClient) -> None:
    assert web_client.get("/apiary").text == INDEX
