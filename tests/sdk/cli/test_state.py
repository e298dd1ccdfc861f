"""The contribute state file: round trip, atomic writes, corruption, versions, the lock."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shotbank.cli.errors import StateFileError, StateLockedError
from shotbank.cli.state import (
    STATE_VERSION,
    ContributeState,
    Submission,
    lock_state,
    target_key,
)

SHA = "ab" * 32
TARGET = target_key("http://127.0.0.1:8000/", "0xAbC0000000000000000000000000000000000001")


def _filled(path: Path) -> ContributeState:
    state = ContributeState.load(path)
    state.remember_sha256("a.mp4", size=10, mtime_ns=123, sha256=SHA)
    state.record(
        TARGET,
        "a.mp4",
        Submission(
            sha256=SHA,
            content_key="k" * 64,
            upload_url="http://127.0.0.1:8000/api/v1/uploads/" + "0" * 32,
            upload_id="0" * 32,
        ),
    )
    return state


def test_a_missing_state_file_is_an_empty_state(tmp_path: Path) -> None:
    state = ContributeState.load(tmp_path / "state.json")

    assert state.document.files == {}
    assert state.set_aside is None
    assert not (tmp_path / "state.json").exists()  # loading writes nothing


def test_the_state_survives_a_save_and_load(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    _filled(path).save()

    loaded = ContributeState.load(path)

    assert loaded.cached_sha256("a.mp4", size=10, mtime_ns=123) == SHA
    submission = loaded.submission(TARGET, "a.mp4")
    assert submission is not None
    assert submission.upload_id == "0" * 32
    assert loaded.submission(target_key("http://other", "0x1"), "a.mp4") is None
    assert json.loads(path.read_text())["version"] == STATE_VERSION
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left


def test_a_changed_size_or_mtime_invalidates_the_cached_hash(tmp_path: Path) -> None:
    state = _filled(tmp_path / "state.json")

    assert state.cached_sha256("a.mp4", size=11, mtime_ns=123) is None
    assert state.cached_sha256("a.mp4", size=10, mtime_ns=124) is None
    assert state.cached_sha256("b.mp4", size=10, mtime_ns=123) is None


def test_the_target_key_ignores_address_case_and_trailing_slash() -> None:
    assert target_key("http://h:1/", "0xABC") == target_key("http://h:1", "0xabc")


def test_a_failed_write_keeps_the_previous_state_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    _filled(path).save()
    before = path.read_bytes()
    state = ContributeState.load(path)
    state.remember_sha256("b.mp4", size=1, mtime_ns=1, sha256=SHA)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StateFileError, match="No space left on device"):
        state.save()

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'{"version": 1, "files": {"a.mp4": {"size": -1, "mtime_ns": 0, "sha256": "x"}}}',
        b'{"version": 1, "files": {}, "targets": {}, "unknown": true}',
        b'{"version": "one"}',
    ],
    ids=["empty", "truncated", "binary", "array", "bad-record", "unknown-key", "bad-version"],
)
def test_a_corrupt_state_file_is_set_aside_and_the_state_rebuilt(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / ".shotbank-contribute.json"
    path.write_bytes(content)

    state = ContributeState.load(path)

    assert state.document.files == {}
    assert state.document.targets == {}
    assert state.set_aside is not None
    assert state.set_aside.name.startswith(".shotbank-contribute.json.corrupt-")
    assert state.set_aside.read_bytes() == content  # kept for inspection
    assert not path.exists()
    state.save()
    assert ContributeState.load(path).set_aside is None


def test_a_state_file_of_a_newer_version_is_an_error_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"version": 2, "whatever": "the future holds"}')

    with pytest.raises(StateFileError, match="version 2"):
        ContributeState.load(path)
    assert path.exists()


def test_an_unreadable_state_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.mkdir()  # reading a directory fails with an OSError

    with pytest.raises(StateFileError, match="cannot read the state file"):
        ContributeState.load(path)


def test_a_second_run_on_the_same_state_file_is_refused_while_the_first_holds_the_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    locked = pytest.raises(StateLockedError, match="another shotbank contribute")
    with lock_state(path), locked, lock_state(path):
        pass  # pragma: no cover - the second lock is refused on entry
    with lock_state(path):  # released when the first one left
        pass
