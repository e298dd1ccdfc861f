"""Sign-In with Ethereum (EIP-4361) helpers, on top of the ``siwe`` library.

The server issues a single-use nonce, the client builds and signs a message bound to the
server's domain, URI and chain id with an expiry, and the server verifies all of it.
Parsing, formatting and signature recovery are the ``siwe`` library's; this module adds
the checks a relying party must not forget (chain id, URI, expiry required, bounded
age) and maps every failure to :class:`SiweError` with a stable ``code``.

Smart-contract wallets (EIP-1271) are not verified here: that needs a node and is the
backend's decision.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime, timedelta
from typing import Final

import siwe
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ConfigDict, ValidationError

from shotbank.chain.errors import SiweError

__all__ = [
    "NONCE_LENGTH",
    "VerifiedSiwe",
    "build_siwe_message",
    "new_nonce",
    "sign_siwe_message",
    "verify_siwe_message",
]

#: Characters in a nonce from :func:`new_nonce`: 22 alphanumerics ~ 131 bits.
NONCE_LENGTH: Final = 22
_ALPHANUMERIC: Final = string.ascii_letters + string.digits
_MAX_MESSAGE_CHARS: Final = 8192
_CLOCK_SKEW: Final = timedelta(minutes=2)


def new_nonce() -> str:
    """A fresh random nonce (alphanumeric, as EIP-4361 requires)."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(NONCE_LENGTH))


def _iso(moment: datetime) -> str:
    return str(siwe.siwe.ISO8601Datetime.from_datetime(moment))


def build_siwe_message(
    *,
    domain: str,
    address: str,
    uri: str,
    chain_id: int,
    nonce: str,
    statement: str | None = None,
    issued_at: datetime | None = None,
    expires_in: timedelta = timedelta(minutes=10),
    not_before: datetime | None = None,
    request_id: str | None = None,
    resources: list[str] | None = None,
    scheme: str | None = None,
) -> str:
    """The EIP-4361 text for the given fields, ready for ``personal_sign``.

    ``issued_at`` defaults to now (UTC); the message always carries an expiration time
    ``issued_at + expires_in``.
    """
    if expires_in <= timedelta(0):
        raise SiweError("malformed", "expires_in must be positive")
    issued = issued_at or datetime.now(UTC)
    try:
        message = siwe.SiweMessage(
            scheme=scheme,
            domain=domain,
            address=to_checksum_address(address),
            uri=uri,
            version="1",
            chain_id=chain_id,
            issued_at=_iso(issued),
            nonce=nonce,
            statement=statement,
            expiration_time=_iso(issued + expires_in),
            not_before=_iso(not_before) if not_before else None,
            request_id=request_id,
            resources=resources,
        )
    except (ValidationError, ValueError) as exc:
        raise SiweError("malformed", f"cannot build a SIWE message: {exc}") from exc
    text: str = message.prepare_message()
    return text


def sign_siwe_message(account: LocalAccount, message: str) -> str:
    """``personal_sign`` (EIP-191) of ``message`` by ``account``; ``0x`` hex signature."""
    signed = account.sign_message(encode_defunct(text=message))
    return "0x" + bytes(signed.signature).hex()


class VerifiedSiwe(BaseModel):
    """What a verified SIWE message proves: who signed in, where, until when."""

    model_config = ConfigDict(frozen=True)

    address: str
    chain_id: int
    domain: str
    uri: str
    nonce: str
    issued_at: datetime
    expiration_time: datetime
    statement: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = ()


def _parse_time(value: str) -> datetime:
    parsed: datetime = siwe.siwe.datetime_from_iso8601_string(value)
    return parsed


def verify_siwe_message(
    message: str,
    signature: str,
    *,
    domain: str,
    nonce: str,
    chain_id: int,
    uri: str | None = None,
    scheme: str | None = None,
    now: datetime | None = None,
    max_lifetime: timedelta = timedelta(hours=24),
) -> VerifiedSiwe:
    """Verify a signed SIWE message against what the server expects.

    Checks, in order: size, syntax (ABNF), domain, scheme, URI, chain id, nonce, presence
    of an expiration time not more than ``max_lifetime`` after ``issued_at``, the time
    window (``issued_at`` not in the future beyond a small clock skew, ``not_before``,
    expiry) and finally the signature. Raises :class:`SiweError` with ``code`` one of
    ``malformed``, ``domain_mismatch``, ``scheme_mismatch``, ``uri_mismatch``,
    ``chain_mismatch``, ``nonce_mismatch``, ``expiry_required``, ``lifetime_too_long``,
    ``not_yet_valid``, ``expired``, ``invalid_signature``.
    """
    if len(message) > _MAX_MESSAGE_CHARS:
        raise SiweError("malformed", "message too long")
    try:
        parsed = siwe.SiweMessage.from_message(message=message, abnf=True)
    except (siwe.VerificationError, ValidationError, ValueError) as exc:
        raise SiweError("malformed", f"not a valid EIP-4361 message: {exc}") from exc
    if parsed.prepare_message() != message:
        raise SiweError("malformed", "message is not in canonical EIP-4361 form")
    if parsed.domain != domain:
        raise SiweError("domain_mismatch", f"message is for {parsed.domain!r}, not {domain!r}")
    if scheme is not None and parsed.scheme not in (None, scheme):
        raise SiweError("scheme_mismatch", f"message scheme {parsed.scheme!r} is not {scheme!r}")
    if uri is not None and parsed.uri != uri:
        raise SiweError("uri_mismatch", f"message URI {parsed.uri!r} is not {uri!r}")
    if parsed.chain_id != chain_id:
        raise SiweError("chain_mismatch", f"message is for chain {parsed.chain_id}")
    if not secrets.compare_digest(parsed.nonce.encode(), nonce.encode()):
        raise SiweError("nonce_mismatch", "message nonce is not the one issued")
    if parsed.expiration_time is None:
        raise SiweError("expiry_required", "message has no expiration time")
    issued_at = _parse_time(parsed.issued_at)
    expiration = _parse_time(parsed.expiration_time)
    if expiration - issued_at > max_lifetime:
        raise SiweError("lifetime_too_long", f"message is valid for more than {max_lifetime}")
    moment = now or datetime.now(UTC)
    if issued_at > moment + _CLOCK_SKEW:
        raise SiweError("not_yet_valid", "message is issued in the future")
    if parsed.not_before is not None and moment < _parse_time(parsed.not_before):
        raise SiweError("not_yet_valid", "message is not valid yet")
    if moment >= expiration:
        raise SiweError("expired", "message has expired")
    try:
        signer = Account.recover_message(encode_defunct(text=message), signature=signature)
    except Exception as exc:  # eth-keys raises several unrelated types for bad input
        raise SiweError("invalid_signature", "signature cannot be decoded") from exc
    if signer != parsed.address:
        raise SiweError("invalid_signature", "signature is not from the message's address")
    return VerifiedSiwe(
        address=parsed.address,
        chain_id=parsed.chain_id,
        domain=parsed.domain,
        uri=parsed.uri,
        nonce=parsed.nonce,
        issued_at=issued_at,
        expiration_time=expiration,
        statement=parsed.statement,
        request_id=parsed.request_id,
        resources=tuple(parsed.resources or ()),
    )
