"""Signed requests: the header the SDK writes is the one the backend parses and verifies."""

from __future__ import annotations

import hashlib

import pytest
from eth_abi.abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from shotbank.client.signed import (
    AUTH_SCHEME,
    EMPTY_BODY_SHA256,
    MAX_AUTHORIZATION_BYTES,
    MalformedAuthorizationError,
    WrongSignatureError,
    parse_authorization,
    recover_request_signer,
    request_typed_data,
    sign_request,
)

CHAIN_ID = 31337
PATH = "/api/v1/datasets/abc/versions/1/shards/shard-000000.tar?x=%20y"


@pytest.fixture
def account() -> LocalAccount:
    wallet: LocalAccount = Account.create()
    return wallet


def test_a_signed_get_parses_and_recovers_to_the_signer(account: LocalAccount) -> None:
    value = sign_request(account, "GET", PATH, b"", CHAIN_ID)
    assert value.startswith(f"{AUTH_SCHEME} address={account.address}, timestamp=")
    header = parse_authorization(value)
    signer = recover_request_signer(
        header, method="get", path=PATH, body_sha256=EMPTY_BODY_SHA256, chain_id=CHAIN_ID
    )
    assert signer == account.address
    assert len(value) < MAX_AUTHORIZATION_BYTES


def test_every_signature_carries_a_fresh_nonce(account: LocalAccount) -> None:
    nonces = {parse_authorization(sign_request(account, "GET", PATH, b"", 1)).nonce for _ in "ab"}
    assert len(nonces) == 2


@pytest.mark.parametrize(
    ("method", "path", "body", "chain_id"),
    [
        ("POST", PATH, b"", CHAIN_ID),
        ("GET", PATH + "&more", b"", CHAIN_ID),
        ("GET", PATH, b"x", CHAIN_ID),
        ("GET", PATH, b"", 1),
    ],
)
def test_a_signature_over_another_request_is_refused(
    account: LocalAccount, method: str, path: str, body: bytes, chain_id: int
) -> None:
    header = parse_authorization(sign_request(account, "GET", PATH, b"", CHAIN_ID))
    with pytest.raises(WrongSignatureError) as caught:
        recover_request_signer(
            header,
            method=method,
            path=path,
            body_sha256=hashlib.sha256(body).digest(),
            chain_id=chain_id,
        )
    assert caught.value.code == "request_signature_invalid"


def test_a_header_naming_another_address_is_refused(account: LocalAccount) -> None:
    other: LocalAccount = Account.create()
    value = sign_request(account, "GET", PATH, b"", CHAIN_ID).replace(
        account.address, other.address
    )
    with pytest.raises(WrongSignatureError):
        recover_request_signer(
            parse_authorization(value),
            method="GET",
            path=PATH,
            body_sha256=EMPTY_BODY_SHA256,
            chain_id=CHAIN_ID,
        )


def test_the_digest_is_the_eip712_hash_of_the_documented_type(account: LocalAccount) -> None:
    nonce = "0x" + "11" * 32
    body_hash = hashlib.sha256(b"{}").digest()
    typed = request_typed_data(
        method="post",
        path=PATH,
        body_sha256=body_hash,
        timestamp=1763780000,
        nonce=nonce,
        chain_id=CHAIN_ID,
    )
    signable = encode_typed_data(full_message=typed)
    # Written out by hand from EIP-712 and the documented type string, independently of
    # the library, so a change of the type in either place fails here.
    type_hash = keccak(
        text="ShotbankRequest(string method,string path,bytes32 bodySha256,"
        "uint256 timestamp,bytes32 nonce)"
    )
    struct_hash = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "bytes32", "uint256", "bytes32"],
            [
                type_hash,
                keccak(text="POST"),
                keccak(text=PATH),
                body_hash,
                1763780000,
                bytes.fromhex("11" * 32),
            ],
        )
    )
    domain_hash = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256"],
            [
                keccak(text="EIP712Domain(string name,string version,uint256 chainId)"),
                keccak(text="Shotbank"),
                keccak(text="1"),
                CHAIN_ID,
            ],
        )
    )
    assert signable.header == domain_hash
    assert signable.body == struct_hash


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Bearer abc",
        "Shotbank-Signature",
        "Shotbank-Signature address=0x12, timestamp=1, nonce=0x00, signature=0x00",
        "Shotbank-Signature timestamp=1, nonce=0x" + "00" * 32 + ", signature=0x" + "00" * 65,
        "Shotbank-Signature address=0x"
        + "00" * 20
        + ", address=0x"
        + "00" * 20
        + ", timestamp=1, nonce=0x"
        + "00" * 32
        + ", signature=0x"
        + "00" * 65,
        "Shotbank-Signature address=0x"
        + "00" * 20
        + ", timestamp=-1, nonce=0x"
        + "00" * 32
        + ", signature=0x"
        + "00" * 65,
    ],
)
def test_malformed_headers_are_refused(value: str) -> None:
    with pytest.raises(MalformedAuthorizationError) as caught:
        parse_authorization(value)
    assert caught.value.code == "invalid_authorization"


def test_an_oversized_header_is_refused_before_parsing(account: LocalAccount) -> None:
    value = sign_request(account, "GET", PATH, b"", CHAIN_ID) + " " * MAX_AUTHORIZATION_BYTES
    with pytest.raises(MalformedAuthorizationError, match="longer than"):
        parse_authorization(value)


def test_a_signature_that_does_not_recover_is_a_wrong_signature(account: LocalAccount) -> None:
    value = sign_request(account, "GET", PATH, b"", CHAIN_ID)
    header = parse_authorization(value)
    broken = header.model_copy(update={"signature": "0x" + "00" * 64 + "1b"})
    with pytest.raises(WrongSignatureError):
        recover_request_signer(
            broken, method="GET", path=PATH, body_sha256=EMPTY_BODY_SHA256, chain_id=CHAIN_ID
        )
