"""The per-wallet upload quotas hold when a wallet creates uploads concurrently.

Each creation runs in its own thread with its own database session, all released at once
by a barrier, on SQLite and on the machine's PostgreSQL: exactly the cap succeeds, the
rest get ``upload_quota_exceeded``, never one more.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.core.migrate import upgrade_to_head
from backend.errors import UploadQuotaExceededError
from backend.models.uploads import Upload
from backend.services import uploads
from tests.backend.conftest import SettingsFactory

ATTEMPTS = 12
CAP = 3
LENGTH = 10


def _owner() -> str:
    return "0x" + secrets.token_hex(20)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, upload_settings: SettingsFactory) -> Iterator[Any]:
    """A factory of (settings, migrated engine) on SQLite or PostgreSQL."""
    engines: list[Engine] = []

    def factory(**overrides: Any) -> tuple[Settings, Engine]:
        if request.param == "postgresql":
            overrides["database_url"] = request.getfixturevalue("postgres_url")
        settings = upload_settings(**overrides)
        engine = create_db_engine(settings)
        engines.append(engine)
        upgrade_to_head(engine)
        return settings, engine

    yield factory
    for engine in engines:
        engine.dispose()


def _race(settings: Settings, engine: Engine, owner: str) -> list[str]:
    """Create ``ATTEMPTS`` uploads for ``owner`` at once; the outcome of each."""
    barrier = threading.Barrier(ATTEMPTS)

    def attempt(_: int) -> str:
        with Session(engine) as db:
            db.connection()  # check out a connection before the start line
            barrier.wait()
            try:
                uploads.create_upload(
                    db, settings=settings, owner=owner, length=LENGTH, metadata_header=None
                )
            except UploadQuotaExceededError:
                return "refused"
            return "created"

    with ThreadPoolExecutor(ATTEMPTS) as pool:
        return list(pool.map(attempt, range(ATTEMPTS)))


def _rows(engine: Engine, owner: str) -> int:
    with Session(engine) as db:
        return db.scalar(select(func.count()).select_from(Upload).where(Upload.owner == owner)) or 0


def test_concurrent_creations_never_exceed_the_concurrent_upload_cap(database: Any) -> None:
    settings, engine = database(
        upload_max_concurrent_per_wallet=CAP, db_pool_size=ATTEMPTS, db_connect_timeout_s=30
    )
    owner = _owner()
    outcomes = _race(settings, engine, owner)
    assert outcomes.count("created") == CAP, outcomes
    assert _rows(engine, owner) == CAP


def test_concurrent_creations_never_exceed_the_daily_byte_cap(database: Any) -> None:
    settings, engine = database(
        upload_max_concurrent_per_wallet=ATTEMPTS,
        upload_daily_bytes_per_wallet=CAP * LENGTH,
        db_pool_size=ATTEMPTS,
        db_connect_timeout_s=30,
    )
    owner = _owner()
    outcomes = _race(settings, engine, owner)
    assert outcomes.count("created") == CAP, outcomes
    assert _rows(engine, owner) == CAP


def test_a_refused_creation_releases_the_lock_while_its_session_stays_open(
    database: Any,
) -> None:
    settings, engine = database(upload_max_concurrent_per_wallet=1, db_connect_timeout_s=1)
    first, second, third = _owner(), _owner(), _owner()
    with Session(engine) as held, Session(engine) as other:
        uploads.create_upload(held, settings=settings, owner=first, length=1, metadata_header=None)
        with pytest.raises(UploadQuotaExceededError):
            uploads.create_upload(
                held, settings=settings, owner=first, length=1, metadata_header=None
            )
        # ``held`` is still open; had it kept the lock (SQLite: the write lock), this waits
        # out the busy timeout and fails.
        uploads.create_upload(
            other, settings=settings, owner=second, length=1, metadata_header=None
        )
        uploads.create_upload(held, settings=settings, owner=third, length=1, metadata_header=None)
    assert [_rows(engine, owner) for owner in (first, second, third)] == [1, 1, 1]
