"""Fixtures for the CLI tests: a directory of clips with sidecar files, wallet key files.

The clip files here are plain bytes: scanning, pairing and local validation never look
inside the media (the server probes it). The end-to-end tests with real MP4s and a real
backend are in ``tests/backend/test_contribute_cli.py``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.sdk.annotation.conftest import MINIMAL

ClipMaker = Callable[..., Path]


@pytest.fixture(autouse=True)
def _no_shotbank_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's ``SHOTBANK_*`` settings (a real key!) out of the tests."""
    for name in list(os.environ):
        if name.startswith("SHOTBANK_"):
            monkeypatch.delenv(name)


@pytest.fixture
def annotation() -> dict[str, Any]:
    """A valid annotation document (a fresh copy the test may change)."""
    return copy.deepcopy(MINIMAL)


@pytest.fixture
def make_clip_files(tmp_path: Path) -> ClipMaker:
    """Write ``<name>`` (bytes) and, unless ``annotation=None``, ``<stem>.json`` beside it."""

    def factory(
        name: str,
        annotation: dict[str, Any] | str | None = MINIMAL,
        *,
        data: bytes = b"not really a video",
        camera_path: str | None = None,
        root: Path = tmp_path,
    ) -> Path:
        media = root / name
        media.parent.mkdir(parents=True, exist_ok=True)
        media.write_bytes(data)
        stem = media.with_suffix("")
        if annotation is not None:
            text = annotation if isinstance(annotation, str) else json.dumps(annotation)
            stem.with_name(stem.name + ".json").write_text(text)
        if camera_path is not None:
            stem.with_name(stem.name + ".camera.txt").write_text(camera_path)
        return media

    return factory


@pytest.fixture
def account() -> LocalAccount:
    """A fresh wallet."""
    wallet: LocalAccount = Account.create()
    return wallet


@pytest.fixture
def hex_key_file(tmp_path: Path, account: LocalAccount) -> Path:
    """A key file holding ``account``'s key as ``0x`` hex and a newline, mode 600."""
    path = tmp_path / "wallet.key"
    path.write_text("0x" + bytes(account.key).hex() + "\n")
    path.chmod(0o600)
    return path


KEYSTORE_PASSWORD = "correct horse battery staple"


@pytest.fixture
def keystore_file(tmp_path: Path, account: LocalAccount) -> Path:
    """``account``'s key as an encrypted JSON keystore (pbkdf2, few rounds: fast)."""
    keystore = Account.encrypt(account.key, KEYSTORE_PASSWORD, kdf="pbkdf2", iterations=2)
    path = tmp_path / "wallet.json"
    path.write_text(json.dumps(keystore))
    path.chmod(0o600)
    return path
