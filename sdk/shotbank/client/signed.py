"""Signed requests: an ``Authorization`` header that proves the caller's address.

A training job holds the wallet key that bought a licence; instead of a SIWE sign-in round
trip it signs each request (``docs/api/datasets.md``, "Signed requests")::

    Authorization: Shotbank-Signature address=0x…, timestamp=1763780000,
        nonce=0x<32 bytes hex>, signature=0x<65 bytes hex>

``signature`` is an EIP-712 signature, domain ``{name: "Shotbank", version: "1",
chainId}`` (no verifying contract: the backend, not a contract, checks it), of
``ShotbankRequest(string method,string path,bytes32 bodySha256,uint256 timestamp,bytes32
nonce)``. This module is the one definition of that message: the client signs with
:func:`sign_request` and the backend parses with :func:`parse_authorization` and recovers
with :func:`recover_request_signer`, so the two cannot drift apart. Hashing is left to
eth-account's ``encode_typed_data``.

Freshness (the timestamp window) and replay (the nonce) are the verifier's business: this
module only says what was signed and by whom.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Any, Final

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ConfigDict, Field

from shotbank.client.errors import ClientError

__all__ = [
    "AUTH_SCHEME",
    "EMPTY_BODY_SHA256",
    "MAX_AUTHORIZATION_BYTES",
    "REQUEST_DOMAIN_NAME",
    "REQUEST_DOMAIN_VERSION",
    "REQUEST_PRIMARY_TYPE",
    "REQUEST_TYPES",
    "TIMESTAMP_WINDOW_S",
    "MalformedAuthorizationError",
    "SignedRequestError",
    "SignedRequestHeader",
    "WrongSignatureError",
    "format_authorization",
    "parse_authorization",
    "recover_request_signer",
    "request_typed_data",
    "sign_request",
]

#: The ``Authorization`` scheme name.
AUTH_SCHEME: Final = "Shotbank-Signature"
#: Longest ``Authorization`` value accepted (a well-formed one is about 330 bytes).
MAX_AUTHORIZATION_BYTES: Final = 1024
#: Largest ``|now - timestamp|`` in seconds the backend accepts.
TIMESTAMP_WINDOW_S: Final = 300
REQUEST_DOMAIN_NAME: Final = "Shotbank"
REQUEST_DOMAIN_VERSION: Final = "1"
REQUEST_PRIMARY_TYPE: Final = "ShotbankRequest"
#: The EIP-712 ``types`` object (``eth_signTypedData_v4`` input) of a signed request.
REQUEST_TYPES: Final[dict[str, list[dict[str, str]]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
    ],
    REQUEST_PRIMARY_TYPE: [
        {"name": "method", "type": "string"},
        {"name": "path", "type": "string"},
        {"name": "bodySha256", "type": "bytes32"},
        {"name": "timestamp", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ],
}
#: ``bodySha256`` of a request without a body (``GET``/``HEAD``).
EMPTY_BODY_SHA256: Final = hashlib.sha256(b"").digest()

_MAX_PATH_CHARS: Final = 4096
_ADDRESS: Final = r"^0x[0-9a-fA-F]{40}$"
_NONCE: Final = r"^0x[0-9a-fA-F]{64}$"
_SIGNATURE: Final = r"^0x[0-9a-fA-F]{130}$"
_PARAM: Final = re.compile(r"^\s*([a-z]+)=([0-9A-Za-z]+)\s*$")
_FIELDS: Final = ("address", "timestamp", "nonce", "signature")


class SignedRequestError(ClientError, ValueError):
    """A signed-request header cannot be used; ``code`` is the API's 401 error code."""

    code = "invalid_authorization"


class MalformedAuthorizationError(SignedRequestError):
    """The header is not ``Shotbank-Signature address=…, timestamp=…, nonce=…, signature=…``."""

    code = "invalid_authorization"


class WrongSignatureError(SignedRequestError):
    """The signature does not recover, or recovers to another address than the header's."""

    code = "request_signature_invalid"


class SignedRequestHeader(BaseModel):
    """The four parameters of a ``Shotbank-Signature`` header."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str = Field(pattern=_ADDRESS)
    timestamp: int = Field(ge=0, lt=2**63)
    nonce: str = Field(pattern=_NONCE)
    signature: str = Field(pattern=_SIGNATURE)

    @property
    def checksum_address(self) -> ChecksumAddress:
        """``address`` in EIP-55 form."""
        return to_checksum_address(self.address)


def request_typed_data(
    *,
    method: str,
    path: str,
    body_sha256: bytes,
    timestamp: int,
    nonce: str,
    chain_id: int,
) -> dict[str, Any]:
    """The complete EIP-712 document for one request (``eth_signTypedData_v4`` input).

    ``method`` is upper-cased here so ``get`` and ``GET`` sign the same message, as HTTP
    treats them alike on the wire.
    """
    if len(body_sha256) != 32:
        raise SignedRequestError("bodySha256 must be 32 bytes")
    if len(path) > _MAX_PATH_CHARS:
        raise SignedRequestError(f"path longer than {_MAX_PATH_CHARS} characters")
    return {
        "types": REQUEST_TYPES,
        "primaryType": REQUEST_PRIMARY_TYPE,
        "domain": {
            "name": REQUEST_DOMAIN_NAME,
            "version": REQUEST_DOMAIN_VERSION,
            "chainId": chain_id,
        },
        "message": {
            "method": method.upper(),
            "path": path,
            "bodySha256": body_sha256,
            "timestamp": timestamp,
            "nonce": bytes.fromhex(nonce[2:]),
        },
    }


def _signable(
    *, method: str, path: str, body_sha256: bytes, timestamp: int, nonce: str, chain_id: int
) -> SignableMessage:
    return encode_typed_data(
        full_message=request_typed_data(
            method=method,
            path=path,
            body_sha256=body_sha256,
            timestamp=timestamp,
            nonce=nonce,
            chain_id=chain_id,
        )
    )


def format_authorization(header: SignedRequestHeader) -> str:
    """The ``Authorization`` header value for ``header``."""
    return (
        f"{AUTH_SCHEME} address={header.checksum_address}, timestamp={header.timestamp}, "
        f"nonce={header.nonce.lower()}, signature={header.signature.lower()}"
    )


def sign_request(
    account: LocalAccount,
    method: str,
    path: str,
    body: bytes,
    chain_id: int,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> str:
    """Sign one request and return its ``Authorization`` header value.

    ``path`` is the request target exactly as it goes on the wire (path and query,
    percent-encoded); ``body`` the raw body bytes (``b""`` for ``GET``/``HEAD``). A fresh
    random nonce is drawn unless one is given, so every call yields a header that the
    backend accepts once; ``timestamp`` defaults to now (tests pass old ones).
    """
    when = int(time.time()) if timestamp is None else timestamp
    fresh_nonce = "0x" + secrets.token_hex(32) if nonce is None else nonce.lower()
    signable = _signable(
        method=method,
        path=path,
        body_sha256=hashlib.sha256(body).digest(),
        timestamp=when,
        nonce=fresh_nonce,
        chain_id=chain_id,
    )
    signature = bytes(account.sign_message(signable).signature)
    header = SignedRequestHeader(
        address=account.address,
        timestamp=when,
        nonce=fresh_nonce,
        signature="0x" + signature.hex(),
    )
    return format_authorization(header)


def parse_authorization(value: str) -> SignedRequestHeader:
    """Parse a ``Shotbank-Signature`` header value (anything else is malformed).

    Each of the four parameters must appear exactly once; the order is free. Raises
    :class:`MalformedAuthorizationError` on anything unexpected, including a value
    longer than :data:`MAX_AUTHORIZATION_BYTES`.
    """
    if len(value.encode("utf-8", "surrogatepass")) > MAX_AUTHORIZATION_BYTES:
        raise MalformedAuthorizationError(
            f"Authorization header longer than {MAX_AUTHORIZATION_BYTES} bytes"
        )
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != AUTH_SCHEME.lower():
        raise MalformedAuthorizationError(f"Authorization scheme is not {AUTH_SCHEME}")
    params: dict[str, str] = {}
    for part in rest.split(","):
        match = _PARAM.match(part)
        if match is None:
            raise MalformedAuthorizationError("Authorization parameters must be name=value")
        name, raw = match.group(1), match.group(2)
        if name not in _FIELDS or name in params:
            raise MalformedAuthorizationError(f"unexpected or repeated parameter {name!r}")
        params[name] = raw
    missing = [name for name in _FIELDS if name not in params]
    if missing:
        raise MalformedAuthorizationError(f"Authorization lacks {', '.join(missing)}")
    if not params["timestamp"].isdigit() or len(params["timestamp"]) > 18:
        raise MalformedAuthorizationError("timestamp must be decimal seconds")
    try:
        return SignedRequestHeader(
            address=params["address"],
            timestamp=int(params["timestamp"]),
            nonce=params["nonce"],
            signature=params["signature"],
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise MalformedAuthorizationError(f"malformed Authorization parameter: {exc}") from exc


def recover_request_signer(
    header: SignedRequestHeader,
    *,
    method: str,
    path: str,
    body_sha256: bytes,
    chain_id: int,
) -> ChecksumAddress:
    """The address that signed this request; it must be the header's own ``address``.

    Raises :class:`WrongSignatureError` when the signature does not recover or recovers
    to another address (a signature over another path, body, method, timestamp, nonce or
    chain recovers to some unrelated address, so it lands here too).
    """
    signable = _signable(
        method=method,
        path=path,
        body_sha256=body_sha256,
        timestamp=header.timestamp,
        nonce=header.nonce,
        chain_id=chain_id,
    )
    signature = bytes.fromhex(header.signature[2:])
    try:
        signer = to_checksum_address(Account.recover_message(signable, signature=signature))
    except Exception as exc:  # eth-keys raises several unrelated types for bad input
        raise WrongSignatureError(f"cannot recover the signer: {exc}") from exc
    if signer != header.checksum_address:
        raise WrongSignatureError("the signature is not the header address's")
    return signer
