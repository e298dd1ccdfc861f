"""Which wallet the CLI signs in with, from a key file or the environment."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from eth_account.signers.local import LocalAccount

from shotbank.cli.credentials import argument_holds_a_key, resolve_account
from shotbank.client import ClientSettings, KeyLoadError
from tests.sdk.cli.conftest import KEYSTORE_PASSWORD


def test_the_key_file_option_wins(hex_key_file: Path, account: LocalAccount) -> None:
    settings = ClientSettings(private_key="0x" + "11" * 32)

    assert resolve_account(hex_key_file, settings, interactive=False).address == account.address


def test_the_key_file_comes_from_the_environment(
    hex_key_file: Path, account: LocalAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOTBANK_KEY_FILE", str(hex_key_file))

    assert resolve_account(None, ClientSettings(), interactive=False).address == account.address


def test_the_private_key_comes_from_the_environment(
    account: LocalAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOTBANK_PRIVATE_KEY", bytes(account.key).hex())

    settings = ClientSettings()

    assert resolve_account(None, settings, interactive=False).address == account.address
    assert bytes(account.key).hex() not in repr(settings)


def test_a_keystore_password_comes_from_the_environment(
    keystore_file: Path, account: LocalAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOTBANK_KEY_PASSWORD", KEYSTORE_PASSWORD)

    resolved = resolve_account(keystore_file, ClientSettings(), interactive=False)

    assert resolved.address == account.address


def test_a_keystore_without_password_is_refused_when_nobody_can_be_asked(
    keystore_file: Path,
) -> None:
    with pytest.raises(KeyLoadError, match="SHOTBANK_KEY_PASSWORD"):
        resolve_account(keystore_file, ClientSettings(), interactive=False)


def test_both_environment_keys_at_once_are_ambiguous(
    hex_key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOTBANK_KEY_FILE", str(hex_key_file))
    monkeypatch.setenv("SHOTBANK_PRIVATE_KEY", "11" * 32)

    with pytest.raises(click.UsageError, match="unset one"):
        resolve_account(None, ClientSettings(), interactive=False)


def test_no_key_at_all_is_a_usage_error() -> None:
    with pytest.raises(click.UsageError, match="--key-file"):
        resolve_account(None, ClientSettings(), interactive=False)


def test_a_readable_by_others_key_file_is_warned_about(
    hex_key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hex_key_file.chmod(0o644)

    resolve_account(hex_key_file, ClientSettings(), interactive=False)

    assert "can be read by other users" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["contribute", "clips", "--key-file", "k.txt"], False),
        (["contribute", "0x" + "ab" * 32], True),
        (["contribute", "clips", "--key", "ab" * 32], True),
        (["contribute", "clips", "--api=" + "ab" * 32], True),
        (["contribute", "0x" + "ab" * 20], False),  # an address
    ],
)
def test_arguments_shaped_like_keys_are_spotted(args: list[str], expected: bool) -> None:
    assert argument_holds_a_key(args) is expected
