"""Sign-In with Ethereum (EIP-4361) and sessions.

Flow: :func:`issue_nonce` stores a random single-use nonce with an expiry;
:func:`sign_in` verifies a signed message with the SDK's
:func:`shotbank.chain.siwe.verify_siwe_message` (domain, URI, chain id, time window,
signature), then consumes the nonce with one conditional ``UPDATE`` (so two concurrent
requests with the same message cannot both win) and opens a session. The session token
is 256 random bits; only its SHA-256 is stored, and lookups compare digests in constant
time. :func:`authenticate` resolves a token to its address; :func:`revoke` logs out.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.errors import (
    NonceExpiredError,
    NonceUnknownError,
    NonceUsedError,
    RateLimitedError,
    SessionExpiredError,
    SessionInvalidError,
    SignInRejectedError,
    SiweChainMismatchError,
    SiweDomainMismatchError,
    SiweExpiredError,
    SiweInvalidSignatureError,
    SiweMalformedError,
    SiweUriMismatchError,
)
from backend.models.auth import AuthNonce, AuthSession
from shotbank.chain.errors import SiweError
from shotbank.chain.siwe import new_nonce, verify_siwe_message

#: Longest bearer token looked at (ours are 43 characters); longer ones are refused unread.
MAX_TOKEN_CHARS: Final = 128
#: Consumed or expired nonces are deleted this long after they expire (kept a while so a
#: replay is reported as a replay rather than as an unknown nonce).
_NONCE_RETENTION: Final = timedelta(days=1)
_NONCE_LINE: Final = re.compile(r"^Nonce: ([A-Za-z0-9]{8,64})$", re.MULTILINE)

_SIWE_ERRORS: Final[dict[str, type[SignInRejectedError]]] = {
    "malformed": SiweMalformedError,
    "domain_mismatch": SiweDomainMismatchError,
    "scheme_mismatch": SiweUriMismatchError,
    "uri_mismatch": SiweUriMismatchError,
    "chain_mismatch": SiweChainMismatchError,
    "expiry_required": SiweExpiredError,
    "lifetime_too_long": SiweExpiredError,
    "not_yet_valid": SiweExpiredError,
    "expired": SiweExpiredError,
    "invalid_signature": SiweInvalidSignatureError,
}


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def hash_token(token: str) -> str:
    """SHA-256 (hex) of a session token: what the database keeps instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedNonce:
    """A nonce handed to a client, and until when it can be used."""

    nonce: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A new session and its bearer token (the only time the token exists in clear)."""

    token: str
    session: AuthSession


def issue_nonce(db: Session, *, settings: Settings, now: datetime | None = None) -> IssuedNonce:
    """Store and return a fresh single-use nonce.

    Raises :class:`RateLimitedError` when ``max_pending_nonces`` unused nonces are
    outstanding (after old ones are purged), so the table cannot be flooded.
    """
    moment = now or utcnow()
    db.execute(delete(AuthNonce).where(col(AuthNonce.expires_at) < moment - _NONCE_RETENTION))
    pending = db.scalar(
        select(func.count())
        .select_from(AuthNonce)
        .where(col(AuthNonce.consumed_at).is_(None), col(AuthNonce.expires_at) > moment)
    )
    if (pending or 0) >= settings.max_pending_nonces:
        db.commit()
        raise RateLimitedError("Too many sign-ins are in progress; try again in a minute.")
    row = AuthNonce(
        nonce=new_nonce(),
        created_at=moment,
        expires_at=moment + timedelta(seconds=settings.nonce_ttl_s),
    )
    db.add(row)
    db.commit()
    return IssuedNonce(nonce=row.nonce, expires_at=row.expires_at)


def _consume_nonce(db: Session, nonce: str, moment: datetime) -> None:
    """Mark ``nonce`` used, atomically; raise why it cannot be used otherwise."""
    result = db.execute(
        update(AuthNonce)
        .where(
            col(AuthNonce.nonce) == nonce,
            col(AuthNonce.consumed_at).is_(None),
            col(AuthNonce.expires_at) > moment,
        )
        .values(consumed_at=moment)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) == 1:
        return
    db.rollback()
    row = db.get(AuthNonce, nonce)
    if row is None:
        raise NonceUnknownError("The message's nonce was not issued by this service.")
    if row.consumed_at is not None:
        raise NonceUsedError("The message's nonce was already used; request a new one.")
    raise NonceExpiredError("The message's nonce has expired; request a new one.")


def sign_in(
    db: Session,
    *,
    settings: Settings,
    message: str,
    signature: str,
    now: datetime | None = None,
) -> OpenedSession:
    """Verify a signed SIWE ``message`` and open a session for its address.

    Raises a :class:`SignInRejectedError` subclass naming the reason.
    """
    moment = now or utcnow()
    if len(message) > settings.siwe_max_message_chars:
        raise SiweMalformedError(
            f"The message is longer than {settings.siwe_max_message_chars} characters."
        )
    found = _NONCE_LINE.search(message)
    if found is None:
        raise SiweMalformedError("The message has no valid Nonce line.")
    try:
        verified = verify_siwe_message(
            message,
            signature,
            domain=settings.siwe_domain_value,
            uri=settings.siwe_uri_value,
            chain_id=settings.chain_id,
            nonce=found.group(1),
            now=moment,
            max_lifetime=timedelta(seconds=settings.siwe_max_lifetime_s),
        )
    except SiweError as exc:
        error = _SIWE_ERRORS.get(exc.code, SiweMalformedError)
        raise error(f"Sign-in rejected: {exc}.") from exc
    _consume_nonce(db, verified.nonce, moment)
    token = secrets.token_urlsafe(32)
    session = AuthSession(
        token_hash=hash_token(token),
        address=verified.address,
        created_at=moment,
        expires_at=moment + timedelta(seconds=settings.session_ttl_s),
    )
    db.add(session)
    db.commit()
    db.refresh(session)
    return OpenedSession(token=token, session=session)


def _find_session(db: Session, token: str) -> AuthSession:
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise SessionInvalidError("The session token is not valid; sign in again.")
    digest = hash_token(token)
    session = db.exec(select(AuthSession).where(AuthSession.token_hash == digest)).first()
    # The index lookup finds the row; the digest comparison that decides is constant-time.
    if session is None or not secrets.compare_digest(session.token_hash, digest):
        raise SessionInvalidError("The session token is not valid; sign in again.")
    return session


def authenticate(db: Session, *, token: str, now: datetime | None = None) -> AuthSession:
    """The live session of ``token``; raises if it is unknown, revoked or expired."""
    session = _find_session(db, token)
    if session.revoked_at is not None:
        raise SessionInvalidError("The session was logged out; sign in again.")
    if (now or utcnow()) >= session.expires_at:
        raise SessionExpiredError("The session has expired; sign in again.")
    return session


def revoke(db: Session, *, token: str, now: datetime | None = None) -> None:
    """Log the session of ``token`` out (idempotent for a session already revoked)."""
    session = _find_session(db, token)
    if session.revoked_at is None:
        session.revoked_at = now or utcnow()
        db.add(session)
        db.commit()
