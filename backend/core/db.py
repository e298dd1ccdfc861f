"""Database engine, sessions and the column types every table shares.

SQLite (a file under ``var/``) is the embedded default; PostgreSQL is the production
target. Other databases are refused rather than half-supported.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import Dialect, Numeric, String, event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Field, Session, SQLModel, create_engine

from backend.core.config import Settings
from backend.errors import ConfigurationError

#: Deterministic constraint names, so Alembic can drop and alter them on PostgreSQL.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION

SUPPORTED_DIALECTS: Final = frozenset({"sqlite", "postgresql"})

UINT256_MAX: Final = 2**256 - 1
_WEI_DIGITS: Final = len(str(UINT256_MAX))  # 78


class Wei(TypeDecorator[int]):
    """A uint256 amount (wei), exact: ``NUMERIC(78, 0)`` on PostgreSQL.

    SQLite has no exact decimal type (its NUMERIC silently becomes a float beyond 2**63),
    so there the value is stored as TEXT zero-padded to 78 digits: equality, ordering and
    indexes stay correct, but SQL arithmetic and aggregates (``SUM``) do not; add such
    amounts up in Python or on PostgreSQL.
    """

    impl = Numeric(_WEI_DIGITS, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(_WEI_DIGITS))
        return dialect.type_descriptor(Numeric(_WEI_DIGITS, 0, asdecimal=True))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"a wei amount must be an int, not {type(value).__name__}")
        if not 0 <= value <= UINT256_MAX:
            raise ValueError(f"a wei amount must be within uint256, got {value}")
        if dialect.name == "sqlite":
            return f"{value:0{_WEI_DIGITS}d}"
        return Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, Decimal):
            return int(value)
        return int(str(value))


def WeiField(**kwargs: Any) -> Any:  # noqa: N802 - reads like the SQLModel ``Field`` it wraps
    """A SQLModel field for a uint256 wei amount: ``amount: int = WeiField()``.

    Validates ``0 <= value <= 2**256 - 1`` on the model and stores it as :class:`Wei`.
    Keyword arguments are passed on to :func:`sqlmodel.Field`.
    """
    return Field(sa_type=Wei, ge=0, le=UINT256_MAX, **kwargs)


def _set_sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL lets readers (API requests) proceed while a writer commits.
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def create_db_engine(settings: Settings) -> Engine:
    """Build the engine for ``settings.database_url`` (SQLite under ``var_dir`` if unset)."""
    url: URL = settings.database_url_value
    dialect = url.get_backend_name()
    if dialect not in SUPPORTED_DIALECTS:
        raise ConfigurationError(
            f"Database '{dialect}' is not supported; use SQLite or PostgreSQL."
        )
    if dialect == "sqlite":
        if url.database and url.database != ":memory:":
            settings.var_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            # The same pool bounds as PostgreSQL: request admission is sized from them
            # (``backend.api.deps.get_db``).
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
            connect_args={
                # FastAPI runs sync routes in a thread pool; SQLite connections move between them.
                "check_same_thread": False,
                "timeout": settings.db_connect_timeout_s,
            },
        )
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": settings.db_connect_timeout_s,
            "application_name": "shotbank-backend",
        },
    )


def iter_session(engine: Engine) -> Iterator[Session]:
    """Yield one session bound to ``engine``, closed afterwards."""
    with Session(engine) as session:
        yield session
