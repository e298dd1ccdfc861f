"""Sign-in state: issued SIWE nonces and sessions, plus the auth endpoints' schemas.

Times are aware UTC datetimes (SQLModel's ``UTCDateTime`` column).
Only the SHA-256 of a session token is stored, so a leaked database holds no usable
session.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from pydantic import Field as PublicField
from sqlmodel import Field, SQLModel

#: An Ethereum address in EIP-55 checksum form.
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"


class AuthNonce(SQLModel, table=True):
    """A single-use sign-in nonce; ``consumed_at`` is set atomically when it is used."""

    __tablename__ = "auth_nonce"

    nonce: str = Field(primary_key=True, max_length=64)
    created_at: datetime
    expires_at: datetime = Field(index=True)
    consumed_at: datetime | None = None


class AuthSession(SQLModel, table=True):
    """A session of one address, found by the SHA-256 (hex) of its bearer token."""

    __tablename__ = "auth_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    address: str = Field(max_length=42, index=True)
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


class NoncePublic(BaseModel):
    """Answer of ``GET /auth/nonce``: put ``nonce`` in the SIWE message before it expires."""

    nonce: str = PublicField(max_length=64)
    expires_at: datetime
    domain: str = PublicField(max_length=253)
    uri: str = PublicField(max_length=2048)
    chain_id: int


class VerifyRequest(BaseModel):
    """Body of ``POST /auth/verify``: the signed EIP-4361 message and its signature."""

    message: str = PublicField(min_length=1, max_length=8192)
    signature: str = PublicField(pattern=r"^0x[0-9a-fA-F]{130}$")
    cookie: bool = False
    """Also set the session as an HttpOnly cookie (for the web app)."""


class SessionPublic(BaseModel):
    """A session as its owner sees it (never the token's hash)."""

    address: str = PublicField(pattern=ADDRESS_PATTERN)
    created_at: datetime
    expires_at: datetime


class SessionCreated(SessionPublic):
    """Answer of ``POST /auth/verify``: the bearer token (shown once) and its session."""

    token: str = PublicField(max_length=128)
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
