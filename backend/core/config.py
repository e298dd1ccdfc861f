"""The backend's one settings object, read from ``SHOTBANK_*`` environment variables.

Defaults are the embedded development setup (SQLite under ``var/``, the local anvil on
127.0.0.1:8545, chain id 31337). Outside ``environment="development"`` the settings
refuse to start with defaults that are only safe on a developer's machine.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, HttpUrl, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

Environment = Literal["development", "staging", "production"]
LogLevel = Literal["critical", "error", "warning", "info", "debug"]

#: Secrets that appear in examples and templates; never acceptable outside development.
_WEAK_SECRETS = frozenset({"changethis", "changeme", "secret", "dev", "development", "test"})
_MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    """Configuration of one backend process.

    Every field can be set through the environment as ``SHOTBANK_<FIELD>`` (for example
    ``SHOTBANK_DATABASE_URL``). Instances are immutable.
    """

    model_config = SettingsConfigDict(
        env_prefix="SHOTBANK_",
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    environment: Environment = "development"
    """``development`` allows the embedded defaults; anything else demands real secrets."""

    secret_key: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_urlsafe(_MIN_SECRET_LENGTH)),
        description="Signs sessions. Random per process in development; required elsewhere.",
    )

    host: str = Field("127.0.0.1", min_length=1, max_length=253)
    """Interface the HTTP server binds to; loopback unless explicitly asked otherwise."""

    port: int = Field(8000, ge=1, le=65535)

    var_dir: Path = Path("var")
    """Root of local state: the SQLite database, the deployments file, devstack state."""

    database_url: SecretStr | None = None
    """SQLAlchemy URL, e.g. ``postgresql+psycopg://user:pw@host/db``; SQLite under
    ``var_dir`` when unset."""

    auto_migrate: bool = True
    """Apply Alembic migrations up to head when the app starts."""

    db_pool_size: int = Field(5, ge=1, le=100)
    db_max_overflow: int = Field(10, ge=0, le=100)
    db_pool_timeout_s: float = Field(10.0, gt=0, le=120)
    db_connect_timeout_s: int = Field(5, ge=1, le=60)

    chain_rpc_url: HttpUrl = HttpUrl("http://127.0.0.1:8545")
    chain_id: int = Field(31337, ge=1, le=2**53)
    """The chain this deployment serves; its contracts are looked up under this id."""

    chain_rpc_timeout_s: float = Field(3.0, gt=0, le=60)

    deployments_file: Path | None = None
    """Contract addresses by chain id (see docs/decisions/0001); ``var_dir/deployments.json``
    when unset."""

    git_commit: str | None = Field(None, pattern=r"^[0-9a-f]{7,40}$")
    """Commit reported by ``/api/v1/version``; read from the source checkout when unset."""

    max_concurrency: int = Field(256, ge=1, le=10_000)
    """Connections served at once before the server answers 503."""

    keep_alive_timeout_s: int = Field(5, ge=1, le=300)
    log_level: LogLevel = "info"

    @field_validator("var_dir")
    @classmethod
    def _absolute_var_dir(cls, value: Path) -> Path:
        # Child processes (uvicorn, the devstack's services) may run from another cwd.
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _refuse_insecure_defaults(self) -> Self:
        if self.environment == "development":
            return self
        if "secret_key" not in self.model_fields_set:
            raise ValueError(
                f"SHOTBANK_SECRET_KEY must be set when SHOTBANK_ENVIRONMENT={self.environment}"
            )
        key = self.secret_key.get_secret_value()
        if len(key) < _MIN_SECRET_LENGTH or key.lower() in _WEAK_SECRETS:
            raise ValueError(
                f"SHOTBANK_SECRET_KEY must be at least {_MIN_SECRET_LENGTH} random characters "
                f"when SHOTBANK_ENVIRONMENT={self.environment}"
            )
        return self

    @property
    def database_url_value(self) -> URL:
        """The SQLAlchemy URL to connect to (contains the password, if any)."""
        if self.database_url is None:
            return URL.create("sqlite", database=str(self.var_dir / "shotbank.db"))
        return make_url(self.database_url.get_secret_value())

    @property
    def database_url_display(self) -> str:
        """The database URL with any password masked, safe for logs and banners."""
        return self.database_url_value.render_as_string(hide_password=True)

    @property
    def deployments_path(self) -> Path:
        """Where the deployments file is read (and, by the devstack, written)."""
        return self.deployments_file or self.var_dir / "deployments.json"
