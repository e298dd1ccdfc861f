"""The machine's PostgreSQL for tests and benchmarks: a throwaway role and database.

* If ``SHOTBANK_TEST_POSTGRES_ADMIN_URL`` is set (a SQLAlchemy URL of a role that may
  ``CREATE DATABASE``, e.g. ``postgresql+psycopg://postgres:pw@127.0.0.1:5432/postgres``),
  that server is used.
* Otherwise the local Debian cluster is used (``pg_lsclusters``; PostgreSQL 15 on the
  project's machines). If it is down it is started with ``pg_ctlcluster <ver> <name>
  start`` (this needs root) and left running: stopping it could break another session
  using it at the same time. A login role ``<prefix>_<random>`` with a random password
  is created through ``runuser -u postgres -- psql`` and dropped afterwards.

Either way :func:`throwaway_database` creates a database ``<prefix>_<random>`` and drops
it afterwards. When no server can be had, :class:`PostgresUnavailableError` says what to
install or run (``apt-get install -y postgresql``; run as root or set the admin URL).
The pytest fixtures ``postgres_admin_url`` and ``postgres_url`` (``tests/backend/
conftest.py``) and the API latency benchmark are built on this module.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

#: Environment variable naming an existing PostgreSQL admin URL (skips the local cluster).
ADMIN_URL_ENV: Final = "SHOTBANK_TEST_POSTGRES_ADMIN_URL"


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server can be had; the message says what to install or run."""


@dataclass(frozen=True)
class Cluster:
    """One local Debian PostgreSQL cluster, as ``pg_lsclusters`` lists it."""

    version: str
    name: str
    port: int
    online: bool


def _run(argv: list[str], what: str) -> str:
    try:
        result = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        stderr = getattr(exc, "stderr", None) or ""
        raise PostgresUnavailableError(
            f"{what} failed ({' '.join(argv[:4])}...): {exc} {stderr}"
        ) from exc
    return result.stdout


def local_cluster() -> Cluster:
    """The first local cluster (``pg_lsclusters``)."""
    if shutil.which("pg_lsclusters") is None:
        raise PostgresUnavailableError(
            "PostgreSQL is not installed (no pg_lsclusters): `apt-get install -y postgresql`, "
            f"or set {ADMIN_URL_ENV}"
        )
    listing = _run(["pg_lsclusters", "--no-header"], "listing PostgreSQL clusters")
    clusters = [line.split() for line in listing.splitlines() if line.strip()]
    if not clusters:
        raise PostgresUnavailableError("PostgreSQL has no cluster (pg_lsclusters lists none)")
    version, name, port, status = clusters[0][:4]
    return Cluster(version=version, name=name, port=int(port), online=status == "online")


def ensure_started(cluster: Cluster) -> None:
    """Start ``cluster`` if it is down (needs root); it is left running afterwards."""
    if cluster.online:
        return
    if os.geteuid() != 0:
        raise PostgresUnavailableError(
            f"PostgreSQL {cluster.version}/{cluster.name} is down and starting it needs "
            f"root (`pg_ctlcluster {cluster.version} {cluster.name} start`); "
            f"or set {ADMIN_URL_ENV}"
        )
    _run(["pg_ctlcluster", cluster.version, cluster.name, "start"], "starting PostgreSQL")


def psql(cluster: Cluster, sql: str) -> None:
    """Run ``sql`` as the ``postgres`` superuser of ``cluster``."""
    argv = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-p", str(cluster.port), "-d", "postgres", "-c", sql]  # fmt: skip
    _run(argv, "psql as the postgres user")


@contextmanager
def admin_url(prefix: str = "shotbank_test") -> Iterator[URL]:
    """URL of a role that may create databases, for the duration of the block."""
    given = os.environ.get(ADMIN_URL_ENV)
    if given:
        yield make_url(given)
        return
    cluster = local_cluster()
    ensure_started(cluster)
    # A role per session: concurrent sessions never change each other's password.
    role = f"{prefix}_{secrets.token_hex(6)}"
    password = secrets.token_hex(16)
    psql(cluster, f"CREATE ROLE {role} WITH LOGIN CREATEDB PASSWORD '{password}'")
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
        psql(cluster, f"DROP ROLE IF EXISTS {role}")


@contextmanager
def throwaway_database(admin: URL, prefix: str = "shotbank_test") -> Iterator[str]:
    """A fresh, empty database (its SQLAlchemy URL, password included), dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            with engine.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()
