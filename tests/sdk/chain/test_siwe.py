"""SIWE helpers: messages the siwe library parses, and every rejection with its code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from shotbank.chain.errors import SiweError
from shotbank.chain.siwe import (
    NONCE_LENGTH,
    build_siwe_message,
    new_nonce,
    sign_siwe_message,
    verify_siwe_message,
)

DOMAIN = "shotbank.localhost:8000"
URI = "http://shotbank.localhost:8000/api/auth"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def account() -> LocalAccount:
    key: LocalAccount = Account.from_key(b"\x01" * 32)
    return key


def message_for(account: LocalAccount, **overrides: object) -> str:
    fields: dict[str, object] = {
        "domain": DOMAIN,
        "address": account.address,
        "uri": URI,
        "chain_id": 31337,
        "nonce": "abcdEFGH1234",
        "statement": "Sign in to Shotbank.",
        "issued_at": NOW,
    }
    fields.update(overrides)
    return build_siwe_message(**fields)  # type: ignore[arg-type]


def verify(message: str, signature: str, **overrides: object) -> object:
    expected: dict[str, object] = {
        "domain": DOMAIN,
        "nonce": "abcdEFGH1234",
        "chain_id": 31337,
        "uri": URI,
        "now": NOW + timedelta(minutes=1),
    }
    expected.update(overrides)
    return verify_siwe_message(message, signature, **expected)  # type: ignore[arg-type]


def test_nonces_are_long_alphanumeric_and_unique() -> None:
    nonces = {new_nonce() for _ in range(200)}
    assert len(nonces) == 200
    assert all(len(n) == NONCE_LENGTH and n.isalnum() for n in nonces)


def test_built_message_is_eip4361_with_expiry(account: LocalAccount) -> None:
    message = message_for(account, resources=["ipfs://bafy"])
    assert message.startswith(f"{DOMAIN} wants you to sign in with your Ethereum account:\n")
    assert f"\n{account.address}\n" in message
    assert "Chain ID: 31337" in message
    assert "Issued At: 2026-11-21T12:00:00.000Z" in message
    assert "Expiration Time: 2026-11-21T12:10:00.000Z" in message
    assert message.endswith("Resources:\n- ipfs://bafy")


def test_valid_signed_message_verifies(account: LocalAccount) -> None:
    message = message_for(account)
    verified = verify(message, sign_siwe_message(account, message))
    assert verified.address == account.address  # type: ignore[attr-defined]
    assert verified.chain_id == 31337  # type: ignore[attr-defined]
    assert verified.expiration_time == NOW + timedelta(minutes=10)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("expected", "code"),
    [
        ({"domain": "evil.example"}, "domain_mismatch"),
        ({"nonce": "otherNonce99"}, "nonce_mismatch"),
        ({"chain_id": 1}, "chain_mismatch"),
        ({"uri": "http://shotbank.localhost:8000/other"}, "uri_mismatch"),
        ({"now": NOW + timedelta(minutes=10)}, "expired"),
        ({"now": NOW - timedelta(minutes=5)}, "not_yet_valid"),
        ({"max_lifetime": timedelta(minutes=5)}, "lifetime_too_long"),
    ],
)
def test_mismatches_are_rejected_with_stable_codes(
    account: LocalAccount, expected: dict[str, object], code: str
) -> None:
    message = message_for(account)
    with pytest.raises(SiweError) as caught:
        verify(message, sign_siwe_message(account, message), **expected)
    assert caught.value.code == code


def test_signature_of_another_key_is_rejected(account: LocalAccount) -> None:
    message = message_for(account)
    other = Account.from_key(b"\x02" * 32)
    with pytest.raises(SiweError) as caught:
        verify(message, sign_siwe_message(other, message))
    assert caught.value.code == "invalid_signature"


def test_garbage_signature_is_rejected(account: LocalAccount) -> None:
    with pytest.raises(SiweError) as caught:
        verify(message_for(account), "0x1234")
    assert caught.value.code == "invalid_signature"


def test_edited_message_no_longer_matches_its_signature(account: LocalAccount) -> None:
    message = message_for(account)
    signature = sign_siwe_message(account, message)
    with pytest.raises(SiweError) as caught:
        verify(message.replace("Sign in to Shotbank.", "Sign in to Shotbank!"), signature)
    assert caught.value.code == "invalid_signature"


def test_not_before_is_enforced(account: LocalAccount) -> None:
    message = message_for(account, not_before=NOW + timedelta(minutes=2))
    signature = sign_siwe_message(account, message)
    with pytest.raises(SiweError) as caught:
        verify(message, signature)
    assert caught.value.code == "not_yet_valid"
    assert verify(message, signature, now=NOW + timedelta(minutes=3))


@pytest.mark.parametrize(
    "message",
    [
        "hello",
        "x" * 9000,
    ],
)
def test_malformed_messages_are_rejected(message: str) -> None:
    with pytest.raises(SiweError) as caught:
        verify(message, "0x" + "00" * 65)
    assert caught.value.code == "malformed"


def test_message_without_expiry_is_refused(account: LocalAccount) -> None:
    message = message_for(account)
    lines = [line for line in message.split("\n") if not line.startswith("Expiration Time")]
    bare = "\n".join(lines)
    with pytest.raises(SiweError) as caught:
        verify(bare, sign_siwe_message(account, bare))
    assert caught.value.code == "expiry_required"


def test_building_with_bad_fields_fails_clearly(account: LocalAccount) -> None:
    with pytest.raises(SiweError, match=r"cannot build"):
        message_for(account, nonce="short")
    with pytest.raises(SiweError):
        message_for(account, statement="two\nlines")
