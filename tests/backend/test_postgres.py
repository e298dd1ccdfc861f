"""The backend on PostgreSQL, the production target: migrations, health, exact wei."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select, text

from backend.core.db import UINT256_MAX, Wei, create_db_engine
from backend.core.migrate import head_revision
from backend.main import create_app
from tests.backend.conftest import SettingsFactory

pytestmark = pytest.mark.postgres


def test_startup_migrates_postgresql_and_health_reports_it(
    make_settings: SettingsFactory, postgres_url: str
) -> None:
    settings = make_settings(database_url=postgres_url)
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/v1/health")
    body = response.json()
    assert body["db"] == {"reachable": True, "revision": head_revision()}
    engine = create_db_engine(settings)
    try:
        with engine.connect() as connection:
            assert connection.dialect.name == "postgresql"
            stored = connection.execute(text("SELECT version_num FROM alembic_version"))
            assert stored.scalar_one() == head_revision()
    finally:
        engine.dispose()


def test_wei_is_exact_numeric_78_and_sums_exactly_on_postgresql(
    make_settings: SettingsFactory, postgres_url: str
) -> None:
    engine = create_db_engine(make_settings(database_url=postgres_url))
    table = Table(
        "wei_probe", MetaData(), Column("id", Integer, primary_key=True), Column("amount", Wei())
    )
    try:
        table.metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(insert(table), [{"amount": UINT256_MAX - 1}, {"amount": 1}])
            stored = connection.execute(select(table.c.amount).order_by(table.c.id)).scalars()
            assert list(stored) == [UINT256_MAX - 1, 1]
            total = connection.execute(select(func.sum(table.c.amount))).scalar_one()
            assert Decimal(total) == Decimal(UINT256_MAX)
            column_type = connection.execute(
                text(
                    "SELECT numeric_precision, numeric_scale FROM information_schema.columns "
                    "WHERE table_name = 'wei_probe' AND column_name = 'amount'"
                )
            ).one()
            assert tuple(column_type) == (78, 0)
    finally:
        table.metadata.drop_all(engine)
        engine.dispose()
