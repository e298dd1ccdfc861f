"""The one settings object of the SDK's API client, read from ``SHOTBANK_*`` variables.

=========================== ========================================================
``SHOTBANK_API_URL``        base URL of the backend (default ``http://127.0.0.1:8000``)
``SHOTBANK_PRIVATE_KEY``    a wallet's private key as hex (prefer a key file)
``SHOTBANK_KEY_FILE``       a file holding the key: hex, or an encrypted JSON keystore
``SHOTBANK_KEY_PASSWORD``   the keystore's password (otherwise asked interactively)
``SHOTBANK_API_TIMEOUT_S``  seconds one HTTP exchange may take (default 30)
``SHOTBANK_RPC_URL``        the chain's JSON-RPC URL, for on-chain calls (``buy``)
=========================== ========================================================

Secrets are :class:`~pydantic.SecretStr`: they never show in a ``repr`` or a log line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_API_URL", "ClientSettings"]

DEFAULT_API_URL: Final = "http://127.0.0.1:8000"


class ClientSettings(BaseSettings):
    """How the SDK reaches the backend and which wallet it signs in with."""

    model_config = SettingsConfigDict(env_prefix="SHOTBANK_", extra="ignore", frozen=True)

    api_url: str = Field(DEFAULT_API_URL, max_length=2048)
    """Base URL of the backend, without ``/api/v1``."""
    private_key: SecretStr | None = None
    """A private key as hex; a key file is safer (no process listing, no shell history)."""
    key_file: Path | None = None
    """A file holding a hex private key or an encrypted JSON keystore."""
    key_password: SecretStr | None = None
    """Password of the keystore in ``key_file``."""
    api_timeout_s: float = Field(30.0, gt=0, le=600)
    """Seconds one HTTP exchange may take."""
    rpc_url: str | None = Field(None, max_length=2048)
    """JSON-RPC URL of the chain the backend's contracts live on (licence purchases)."""

    @field_validator("api_url", "rpc_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")
