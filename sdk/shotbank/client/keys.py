"""Loading a wallet's private key for signing in: a key file or an environment variable.

A key file holds either the key as hex (64 hex digits, ``0x`` optional, surrounding
white space ignored) or an encrypted JSON keystore (Web3 Secret Storage, as written by
geth, Foundry's ``cast wallet`` or ``Account.encrypt``), decrypted with eth-account.
Every failure is a :class:`KeyLoadError` whose message never contains key material.

Keys do not belong on a command line (shell history, ``ps``): :func:`looks_like_private_key`
lets a program refuse an argument that is one.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Final

from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import SecretStr

from shotbank.client.errors import KeyLoadError

__all__ = [
    "MAX_KEY_FILE_BYTES",
    "account_from_hex",
    "account_from_key_file",
    "key_file_is_shared",
    "looks_like_private_key",
]

#: A key file larger than this is not a key file (keystores are about 500 bytes).
MAX_KEY_FILE_BYTES: Final = 64 * 1024

_HEX_KEY: Final = re.compile(r"(?:0[xX])?[0-9a-fA-F]{64}")

PasswordPrompt = Callable[[], str]


def looks_like_private_key(text: str) -> bool:
    """Whether ``text`` has the shape of a raw private key (``0x`` + 64 hex, or 64 hex)."""
    return _HEX_KEY.fullmatch(text.strip()) is not None


def _secret(value: SecretStr | str) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def account_from_hex(key: SecretStr | str, *, source: str = "the private key") -> LocalAccount:
    """The account of a hex private key; ``source`` names where it came from in errors."""
    text = _secret(key).strip()
    if not looks_like_private_key(text):
        raise KeyLoadError(f"{source} is not a private key (expected 64 hex digits)")
    try:
        account: LocalAccount = Account.from_key(text)
    except (ValueError, TypeError) as exc:  # e.g. zero or beyond the curve order
        raise KeyLoadError(f"{source} is not a valid secp256k1 private key") from exc
    return account


def key_file_is_shared(path: Path) -> bool:
    """Whether users other than the owner may read ``path`` (group or world bits set)."""
    if os.name != "posix":
        return False
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def account_from_key_file(
    path: Path,
    *,
    password: SecretStr | str | None = None,
    prompt_password: PasswordPrompt | None = None,
) -> LocalAccount:
    """The account of the key in ``path`` (hex or JSON keystore).

    A keystore is decrypted with ``password``, else with what ``prompt_password``
    returns; without either it is an error.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyLoadError(f"cannot read the key file {path}: {exc.strerror}") from exc
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise KeyLoadError(f"the key file {path} is too large to be a key file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KeyLoadError(f"the key file {path} is not text (hex key or JSON keystore)") from exc
    if not text.lstrip().startswith("{"):
        return account_from_hex(text, source=f"the key file {path}")
    try:
        keystore = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyLoadError(f"the key file {path} is not valid JSON") from exc
    if not isinstance(keystore, dict) or not ("crypto" in keystore or "Crypto" in keystore):
        raise KeyLoadError(f"the key file {path} is not an encrypted JSON keystore")
    if password is None:
        if prompt_password is None:
            raise KeyLoadError(
                f"the key file {path} is an encrypted keystore: set SHOTBANK_KEY_PASSWORD "
                "or run interactively to be asked for its password"
            )
        password = prompt_password()
    try:
        key = Account.decrypt(keystore, _secret(password))
    except ValueError as exc:
        raise KeyLoadError(f"cannot decrypt the keystore {path}: wrong password?") from exc
    except (KeyError, TypeError) as exc:
        raise KeyLoadError(f"the keystore {path} is malformed") from exc
    account: LocalAccount = Account.from_key(key)
    return account
