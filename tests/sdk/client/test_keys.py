"""Loading wallet keys: hex files, encrypted keystores, and the errors that never leak a key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import SecretStr

from shotbank.client import (
    KeyLoadError,
    account_from_hex,
    account_from_key_file,
    key_file_is_shared,
    looks_like_private_key,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def account() -> LocalAccount:
    wallet: LocalAccount = Account.create()
    return wallet


def _hex(account: LocalAccount) -> str:
    return bytes(account.key).hex()


@pytest.mark.parametrize("form", ["{k}", "0x{k}", "  0x{k}\n", "0X{k}\r\n"])
def test_a_hex_key_file_in_any_usual_form_loads(
    tmp_path: Path, account: LocalAccount, form: str
) -> None:
    path = tmp_path / "key"
    path.write_text(form.format(k=_hex(account)))

    assert account_from_key_file(path).address == account.address


def test_a_keystore_is_decrypted_with_the_password(tmp_path: Path, account: LocalAccount) -> None:
    path = tmp_path / "keystore.json"
    path.write_text(json.dumps(Account.encrypt(account.key, PASSWORD, kdf="pbkdf2", iterations=2)))

    loaded = account_from_key_file(path, password=SecretStr(PASSWORD))
    prompted = account_from_key_file(path, prompt_password=lambda: PASSWORD)

    assert loaded.address == prompted.address == account.address


def test_a_keystore_without_password_or_prompt_is_refused(
    tmp_path: Path, account: LocalAccount
) -> None:
    path = tmp_path / "keystore.json"
    path.write_text(json.dumps(Account.encrypt(account.key, PASSWORD, kdf="pbkdf2", iterations=2)))

    with pytest.raises(KeyLoadError, match="SHOTBANK_KEY_PASSWORD"):
        account_from_key_file(path)
    with pytest.raises(KeyLoadError, match="wrong password"):
        account_from_key_file(path, password="not it")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a private key"),
        (b"0x1234", "not a private key"),
        (b"zz" * 32, "not a private key"),
        (b"00" * 32, "not a valid secp256k1 private key"),
        (b"\xff\xfe\x00\x01", "not text"),
        (b"{oops", "not valid JSON"),
        (b'{"address": "0x0"}', "not an encrypted JSON keystore"),
        (b'{"crypto": {}, "version": 3}', "malformed"),
        (b"0" * (64 * 1024 + 1), "too large"),
    ],
    ids=[
        "empty",
        "short",
        "not-hex",
        "zero",
        "binary",
        "bad-json",
        "not-keystore",
        "broken-keystore",
        "huge",
    ],
)
def test_a_bad_key_file_is_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)

    with pytest.raises(KeyLoadError, match=message):
        account_from_key_file(path, password="x")


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyLoadError, match="cannot read the key file"):
        account_from_key_file(tmp_path / "nope")


def test_errors_never_contain_the_key(tmp_path: Path, account: LocalAccount) -> None:
    almost = _hex(account)[:-1] + "g"  # one character off: not hex
    path = tmp_path / "key"
    path.write_text(almost)

    with pytest.raises(KeyLoadError) as caught:
        account_from_key_file(path)
    with pytest.raises(KeyLoadError) as caught_hex:
        account_from_hex(SecretStr(almost), source="SHOTBANK_PRIVATE_KEY")

    for error in (caught.value, caught_hex.value):
        assert almost[:16] not in str(error)
        assert almost[:16] not in repr(error)
    assert "SHOTBANK_PRIVATE_KEY" in str(caught_hex.value)


def test_group_or_world_readable_key_files_are_noticed(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("x")
    path.chmod(0o600)
    assert not key_file_is_shared(path)
    path.chmod(0o640)
    assert key_file_is_shared(path)
    path.chmod(0o604)
    assert key_file_is_shared(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0x" + "a" * 64, True),
        ("A" * 64, True),
        (" 0x" + "1" * 64 + " ", True),
        ("0x" + "a" * 63, False),
        ("a" * 65, False),
        ("0x" + "a" * 40, False),  # an address is fine on a command line
        ("./clips", False),
    ],
)
def test_looks_like_private_key(text: str, expected: bool) -> None:
    assert looks_like_private_key(text) is expected
