"""Signed requests: who sent a request carrying a ``Shotbank-Signature`` header.

A trainer's job authenticates each request with its wallet key instead of a SIWE
session (``docs/api/datasets.md``, "Signed requests"). The header format and the EIP-712
message are defined once, in the SDK (``shotbank.client.signed``), which the client
signs with; this module verifies:

1. the header parses (at most 1 KB) -> else 401 ``invalid_authorization``;
2. the EIP-712 signature over ``(method, path, SHA-256 of the raw body, timestamp,
   nonce)`` on this backend's chain id recovers to the header's ``address`` -> else 401
   ``request_signature_invalid`` (a signature for another path, body, method or chain recovers
   to some other address, so it lands here too);
3. ``|now - timestamp| <= 300`` s -> else 401 ``request_expired``;
4. the ``(address, nonce)`` pair is new -> else 401 ``request_replayed``. Pairs are kept
   in ``request_nonce`` for 10 minutes, longer than any timestamp stays acceptable
   (300 s either side), so a replay is refused by the nonce or by the clock. The primary
   key makes the check atomic across threads and processes.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Final

from eth_typing import ChecksumAddress
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from backend.errors import (
    RequestExpiredError,
    RequestReplayedError,
    RequestSignatureInvalidError,
    SignedRequestRejectedError,
)
from backend.models.licences import RequestNonce
from shotbank.client.signed import (
    AUTH_SCHEME,
    TIMESTAMP_WINDOW_S,
    MalformedAuthorizationError,
    WrongSignatureError,
    parse_authorization,
    recover_request_signer,
)

__all__ = ["NONCE_TTL", "is_signed_request", "verify_signed_request"]

#: How long a used nonce is remembered (longer than the two-sided timestamp window).
NONCE_TTL: Final = timedelta(minutes=10)


def is_signed_request(authorization: str | None) -> bool:
    """Whether an ``Authorization`` value uses the ``Shotbank-Signature`` scheme."""
    if authorization is None:
        return False
    scheme = authorization.lstrip().split(" ", 1)[0]
    return scheme.lower() == AUTH_SCHEME.lower()


def verify_signed_request(
    db: Session,
    *,
    authorization: str,
    method: str,
    path: str,
    body: bytes,
    chain_id: int,
    now: datetime | None = None,
) -> ChecksumAddress:
    """The address that signed this request, once; raises a
    :class:`~backend.errors.SignedRequestRejectedError` subclass otherwise.

    ``path`` is the request target as received (path and query, percent-encoded) and
    ``body`` the raw body. Records the nonce (commits ``db``).
    """
    moment = now or datetime.now(UTC)
    try:
        header = parse_authorization(authorization)
    except MalformedAuthorizationError as exc:
        raise SignedRequestRejectedError(
            f"The Shotbank-Signature header is malformed: {exc} (expected 'Shotbank-Signature "
            "address=0x…, timestamp=<unix s>, nonce=0x<32 bytes hex>, "
            "signature=0x<65 bytes hex>')."
        ) from None
    try:
        signer = recover_request_signer(
            header,
            method=method,
            path=path,
            body_sha256=hashlib.sha256(body).digest(),
            chain_id=chain_id,
        )
    except WrongSignatureError:
        raise RequestSignatureInvalidError(
            f"The request's signature is not {header.checksum_address}'s signature of "
            f"{method.upper()} {path[:200]} with this body on chain {chain_id}."
        ) from None
    skew = abs(moment.timestamp() - header.timestamp)
    if skew > TIMESTAMP_WINDOW_S:
        raise RequestExpiredError(
            f"The request was signed for {header.timestamp}, {int(skew)} s away from the "
            f"server's clock; at most {TIMESTAMP_WINDOW_S} s are accepted (sign it again)."
        )
    _remember(db, address=signer, nonce=header.nonce.lower(), now=moment)
    return signer


def _remember(db: Session, *, address: str, nonce: str, now: datetime) -> None:
    # Expired pairs go first: the index on expires_at keeps this cheap, and the table
    # stays as small as ten minutes of traffic.
    db.execute(delete(RequestNonce).where(col(RequestNonce.expires_at) < now))
    db.add(RequestNonce(address=address, nonce=nonce, expires_at=now + NONCE_TTL))
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise RequestReplayedError(
            f"The nonce {nonce} of {address} was used before; sign every request with a "
            "fresh nonce."
        ) from None
