"""Fixtures for the backend tests: isolated settings, a real SQLite app, real PostgreSQL.

PostgreSQL (``postgres_url``, for tests marked ``postgres``)
------------------------------------------------------------
The tests use the machine's PostgreSQL, never a mock, and never skip:

* If ``SHOTBANK_TEST_POSTGRES_ADMIN_URL`` is set (a SQLAlchemy URL of a role that may
  ``CREATE DATABASE``, e.g. ``postgresql+psycopg://postgres:pw@127.0.0.1:5432/postgres``),
  that server is used.
* Otherwise the local Debian cluster is used (``pg_lsclusters``; PostgreSQL 15 on the
  project's machines). If it is down it is started with ``pg_ctlcluster <ver> <name>
  start`` (this needs root) and left running: stopping it could break another test
  session using it at the same time. A login role ``shotbank_test_<random>`` with a
  random password is created for the session through ``runuser -u postgres -- psql``
  and dropped at its end.

Either way each test session gets its own database ``shotbank_test_<random>``, dropped
afterwards. When no server can be had the fixture fails with what to install or run
(``apt-get install -y postgresql``; run the tests as root or set the admin URL).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from backend.core.config import Settings
from backend.main import create_app
from tests.backend.live import DOMAIN, URI, Caller, LiveServer, ServerFactory, sign_in, start_server

_PG_ADMIN_URL_ENV = "SHOTBANK_TEST_POSTGRES_ADMIN_URL"


#: Variables that locate tools or test servers, not settings; they stay.
_KEEP_ENV = frozenset({"SHOTBANK_ANVIL", "SHOTBANK_NODE", _PG_ADMIN_URL_ENV})


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


@dataclass(frozen=True)
class _Cluster:
    version: str
    name: str
    port: int
    online: bool


def _run(argv: list[str], what: str) -> str:
    try:
        result = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        stderr = getattr(exc, "stderr", None) or ""
        pytest.fail(f"{what} failed ({' '.join(argv[:4])}...): {exc} {stderr}", pytrace=False)
    return result.stdout


def _local_cluster() -> _Cluster:
    if shutil.which("pg_lsclusters") is None:
        pytest.fail(
            "PostgreSQL is not installed (no pg_lsclusters): `apt-get install -y postgresql`, "
            f"or set {_PG_ADMIN_URL_ENV}",
            pytrace=False,
        )
    listing = _run(["pg_lsclusters", "--no-header"], "listing PostgreSQL clusters")
    clusters = [line.split() for line in listing.splitlines() if line.strip()]
    if not clusters:
        pytest.fail("PostgreSQL has no cluster (pg_lsclusters lists none)", pytrace=False)
    version, name, port, status = clusters[0][:4]
    return _Cluster(version=version, name=name, port=int(port), online=status == "online")


def _psql(cluster: _Cluster, sql: str) -> None:
    argv = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-p", str(cluster.port), "-d", "postgres", "-c", sql]  # fmt: skip
    _run(argv, "psql as the postgres user")


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[URL]:
    """URL of a PostgreSQL role that may create databases (see the module docstring)."""
    given = os.environ.get(_PG_ADMIN_URL_ENV)
    if given:
        yield make_url(given)
        return
    cluster = _local_cluster()
    if not cluster.online:
        if os.geteuid() != 0:
            pytest.fail(
                f"PostgreSQL {cluster.version}/{cluster.name} is down and starting it needs "
                f"root (`pg_ctlcluster {cluster.version} {cluster.name} start`); "
                f"or set {_PG_ADMIN_URL_ENV}",
                pytrace=False,
            )
        _run(["pg_ctlcluster", cluster.version, cluster.name, "start"], "starting PostgreSQL")
    # A role per session: concurrent sessions never change each other's password.
    role = f"shotbank_test_{secrets.token_hex(6)}"
    password = secrets.token_hex(16)
    _psql(cluster, f"CREATE ROLE {role} WITH LOGIN CREATEDB PASSWORD '{password}'")
    try:
        yield URL.create(
            "postgresql+psycopg",
            username=role,
            password=password,
            host="127.0.0.1",
            port=cluster.port,
            database="postgres",
        )
    finally:
        _psql(cluster, f"DROP ROLE IF EXISTS {role}")


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: URL) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session, as a SQLAlchemy URL."""
    name = f"shotbank_test_{secrets.token_hex(6)}"
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield postgres_admin_url.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
