"""Alembic environment: runs migrations on a connection given by the caller or from Settings.

``backend.core.migrate`` hands in an open connection (``config.attributes["connection"]``);
the ``alembic`` CLI gets an engine built from the same ``SHOTBANK_*`` settings as the app.
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import backend.models  # noqa: F401 - importing the package registers every table model
from backend.core.config import Settings
from backend.core.db import Wei, create_db_engine

config = context.config
target_metadata = SQLModel.metadata


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Autogenerate would otherwise render the full dotted path without importing it.
    if type_ == "type" and isinstance(obj, Wei):
        autogen_context.imports.add("from backend.core.db import Wei")
        return "Wei()"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=_render_item,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations against a live database."""
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name)
    engine = create_db_engine(Settings())
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported; run them against a database.")
run_migrations_online()
