"""Apply and inspect the Alembic schema migrations from code (no ``alembic.ini`` needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

_VERSION_TABLE: Final = "alembic_version"
MIGRATIONS_DIR: Final = Path(__file__).resolve().parent.parent / "migrations"

#: Key of the PostgreSQL advisory lock that serialises concurrent upgrades (several
#: workers starting at once); any constant unique to this application works.
_PG_MIGRATION_LOCK: Final = 0x5B07_BA2C


def alembic_config() -> Config:
    """An Alembic configuration pointing at the backend's migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    """The newest revision the code knows about."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database behind ``connection`` is at (``None`` if never migrated).

    Reads Alembic's version table directly: ``MigrationContext`` would log at INFO on
    every call, and the health check calls this on every request.
    """
    if not inspect(connection).has_table(_VERSION_TABLE):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return ",".join(sorted(rows)) or None


def upgrade_to_head(engine: Engine) -> None:
    """Migrate the database behind ``engine`` to the newest revision, in one transaction."""
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
