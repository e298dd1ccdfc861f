"""Fixtures for the backend tests: isolated settings, a real SQLite app, real PostgreSQL.

PostgreSQL (``postgres_url``, for tests marked ``postgres``)
------------------------------------------------------------
The tests use the machine's PostgreSQL, never a mock, and never skip: a throwaway role
(or ``SHOTBANK_TEST_POSTGRES_ADMIN_URL``) per test session and a database dropped at its
end, from :mod:`tests.pgcluster` (which says how the server is found or started). When no
server can be had the fixture fails with what to install or run.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import URL

from backend.core.config import Settings
from backend.main import create_app
from tests import pgcluster
from tests.backend.live import DOMAIN, URI, Caller, LiveServer, ServerFactory, sign_in, start_server

#: Variables that locate tools or test servers, not settings; they stay.
_KEEP_ENV = frozenset({"SHOTBANK_ANVIL", "SHOTBANK_NODE", pgcluster.ADMIN_URL_ENV})


@pytest.fixture(autouse=True)
def _no_shotbank_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's or CI's ``SHOTBANK_*`` settings out of the settings under test."""
    for name in list(os.environ):
        if name.startswith("SHOTBANK_") and name not in _KEEP_ENV:
            monkeypatch.delenv(name)


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path, closed_port: int) -> SettingsFactory:
    """Build development ``Settings`` on a tmp var dir; the chain RPC refuses by default."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "var_dir": tmp_path / "var",
            "chain_rpc_url": f"http://127.0.0.1:{closed_port}",
            "chain_rpc_timeout_s": 2.0,
        }
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    """Development settings: SQLite under a tmp dir, no chain node."""
    return make_settings()


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """The backend application for ``settings``."""
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client of ``app`` with its start-up (migrations) and shut-down run."""
    with TestClient(app) as test_client:
        yield test_client


# --- live servers ------------------------------------------------------------------------


@pytest.fixture
def upload_settings(make_settings: SettingsFactory) -> SettingsFactory:
    """Settings for upload tests (SIWE bound to DOMAIN/URI), with overrides."""

    def factory(**overrides: Any) -> Settings:
        return make_settings(siwe_domain=DOMAIN, siwe_uri=URI, **overrides)

    return factory


@pytest.fixture
def live(upload_settings: SettingsFactory) -> Iterator[ServerFactory]:
    """Start live servers (stopped at the end of the test)."""
    started: list[LiveServer] = []

    def factory(settings: Settings | None = None, **overrides: Any) -> LiveServer:
        server = start_server(settings or upload_settings(**overrides))
        started.append(server)
        return server

    yield factory
    for server in started:
        if server.thread.is_alive():
            server.stop()


@pytest.fixture
def caller_for(live: ServerFactory) -> Iterator[Callable[[LiveServer], Caller]]:
    """Sign a fresh wallet in on a live server and return a client for it."""
    clients: list[httpx.Client] = []

    def factory(server: LiveServer, account: LocalAccount | None = None) -> Caller:
        token = sign_in(server.url, account or Account.create())
        http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        clients.append(http)
        return Caller(http=http, token=token, server=server)

    yield factory
    for http in clients:
        http.close()


# --- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[URL]:
    """URL of a PostgreSQL role that may create databases (see :mod:`tests.pgcluster`)."""
    try:
        with pgcluster.admin_url() as url:
            yield url
    except pgcluster.PostgresUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: URL) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session, as a SQLAlchemy URL."""
    with pgcluster.throwaway_database(postgres_admin_url) as url:
        yield url
