"""Engine set-up, the exact wei column type, and migrations that match the models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError
from sqlmodel import SQLModel

import backend.models  # noqa: F401 - registers the table models
from backend.core.config import Settings
from backend.core.db import UINT256_MAX, Wei, WeiField, create_db_engine
from backend.core.migrate import current_revision, head_revision, upgrade_to_head
from backend.errors import ConfigurationError
from tests.backend.conftest import SettingsFactory

AMOUNTS = [0, 1, 10**18, 2**63, 2**64 + 1, 10**30, UINT256_MAX]


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """An engine on the SQLite file of ``settings``."""
    engine = create_db_engine(settings)
    yield engine
    engine.dispose()


def _amounts_table() -> Table:
    metadata = MetaData()
    return Table(
        "amounts",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("amount", Wei(), nullable=True),
    )


def test_sqlite_engine_creates_the_var_dir_and_enforces_foreign_keys(
    settings: Settings, engine: Engine
) -> None:
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert (settings.var_dir / "shotbank.db").is_file()


def test_databases_other_than_sqlite_and_postgresql_are_refused(
    make_settings: SettingsFactory,
) -> None:
    with pytest.raises(ConfigurationError, match="'mysql' is not supported"):
        create_db_engine(make_settings(database_url="mysql://u:p@localhost/db"))


def test_wei_round_trips_exactly_on_sqlite(engine: Engine) -> None:
    table = _amounts_table()
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"amount": value} for value in [*AMOUNTS, None]])
        stored = connection.execute(select(table.c.amount).order_by(table.c.id)).scalars().all()
    assert stored == [*AMOUNTS, None]


def test_wei_compares_and_orders_numerically_on_sqlite(engine: Engine) -> None:
    table = _amounts_table()
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"amount": value} for value in reversed(AMOUNTS)])
        ordered = connection.execute(select(table.c.amount).order_by(table.c.amount)).scalars()
        assert list(ordered) == AMOUNTS
        above = connection.execute(select(table.c.amount).where(table.c.amount > 2**64))
        assert sorted(above.scalars()) == [2**64 + 1, 10**30, UINT256_MAX]


@pytest.mark.parametrize("bad", [-1, UINT256_MAX + 1, 1.5, True, "12"])
def test_wei_refuses_values_outside_uint256_or_not_int(engine: Engine, bad: object) -> None:
    table = _amounts_table()
    table.metadata.create_all(engine)
    with engine.begin() as connection, pytest.raises(StatementError):
        connection.execute(insert(table), {"amount": bad})


def test_wei_field_validates_range_on_the_model() -> None:
    class Payout(SQLModel):
        amount: int = WeiField()

    assert Payout(amount=UINT256_MAX).amount == UINT256_MAX
    for bad in (-1, UINT256_MAX + 1):
        with pytest.raises(ValidationError):
            Payout(amount=bad)


def test_upgrade_to_head_is_idempotent(engine: Engine) -> None:
    upgrade_to_head(engine)
    upgrade_to_head(engine)
    with engine.connect() as connection:
        assert current_revision(connection) == head_revision()


def test_migrations_match_the_table_models(engine: Engine) -> None:
    upgrade_to_head(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == [], "models changed: write a migration (see alembic.ini)"
