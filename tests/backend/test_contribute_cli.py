"""``shotbank contribute`` end to end: real MP4s, a real backend (uvicorn), real tus uploads.

The CLI runs in-process through click's ``CliRunner`` (and once as the installed console
script); the server is the ``live`` fixture. What the CLI claims is checked against the
server: its clips, its uploads' offsets, the bytes that crossed the wire.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from click.testing import CliRunner, Result
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlmodel import Session, col, select

from backend.core.db import create_db_engine
from backend.models.uploads import Upload
from shotbank.cli import main
from shotbank.cli.state import STATE_FILE_NAME, target_key
from tests.backend.live import TUS, Caller, LiveServer, ServerFactory
from tests.ingest.mediagen import ClipSpec, make_clip
from tests.sdk.annotation.conftest import MINIMAL

pytestmark = pytest.mark.slow

CHUNK = 16 * 1024


@pytest.fixture(scope="module")
def mp4s(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four different real 3 s 640x480 H.264/AAC MP4s (made once for the module)."""
    folder = tmp_path_factory.mktemp("contribute-media")
    # Tones must fit whole periods in a 20 ms audio chunk: multiples of 50 Hz.
    return [
        make_clip(folder / f"source-{n}.mp4", ClipSpec(tone_hz=300.0 + 50.0 * n)) for n in range(4)
    ]


def annotation(description: str = "Waves roll onto an empty beach.", **changes: Any) -> Any:
    document = copy.deepcopy(MINIMAL)
    document["scene"]["description"] = description
    document.update(changes)
    return document


def add_clip(directory: Path, name: str, source: Path, document: Any | None = None) -> Path:
    """Copy ``source`` to ``directory/name`` with ``<stem>.json`` beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    shutil.copyfile(source, target)
    sidecar = target.with_suffix(".json")
    sidecar.write_text(json.dumps(document if document is not None else annotation()))
    return target


@pytest.fixture
def server(live: ServerFactory) -> LiveServer:
    """A live backend whose ingest worker polls often (so --wait is quick)."""
    return live(ingest_poll_s=0.1)


@pytest.fixture
def wallet(tmp_path: Path) -> tuple[LocalAccount, Path]:
    """A fresh wallet and a key file (hex, mode 600) holding its key."""
    account: LocalAccount = Account.create()
    key_file = tmp_path / "wallet.key"
    key_file.write_text("0x" + bytes(account.key).hex() + "\n")
    key_file.chmod(0o600)
    return account, key_file


def contribute(server: LiveServer, key_file: Path, directory: Path, *options: str) -> Result:
    args = ["contribute", str(directory), "--api", server.url, "--key-file", str(key_file)]
    return CliRunner().invoke(main, [*args, *options], catch_exceptions=False)


def rows(result: Result) -> dict[str, str]:
    """``{file: table row}`` from the summary table of the output."""
    found: dict[str, str] = {}
    for line in result.output.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 4 and cells[0]:
            found[cells[0]] = line
    return found


def state_of(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / STATE_FILE_NAME).read_text())
    return loaded


def submissions(directory: Path, server: LiveServer, account: LocalAccount) -> Any:
    return state_of(directory)["targets"][target_key(server.url, account.address)]


def uploads_of(server: LiveServer, address: str) -> list[Upload]:
    engine = create_db_engine(server.settings)
    try:
        with Session(engine) as db:
            return list(db.exec(select(Upload).where(col(Upload.owner) == address)).all())
    finally:
        engine.dispose()


def server_clips(caller: Caller) -> dict[str, dict[str, Any]]:
    response = caller.http.get("/api/v1/clips", params={"limit": 100})
    assert response.status_code == 200, response.text
    return {clip["filename"]: clip for clip in response.json()["items"]}


@pytest.fixture
def patch_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the bytes of every tus PATCH the CLI sends (requests is tuspy's HTTP library)."""
    sent: list[int] = []
    real_patch = requests.patch

    def counting_patch(url: str, data: Any = None, **kwargs: Any) -> requests.Response:
        body = data.getvalue() if hasattr(data, "getvalue") else data
        sent.append(len(body))
        return real_patch(url, data=data, **kwargs)

    monkeypatch.setattr(requests, "patch", counting_patch)
    return sent


# --- the happy path and reruns ------------------------------------------------------------


def test_a_directory_of_clips_is_submitted_and_a_rerun_uploads_nothing_again(
    server: LiveServer,
    wallet: tuple[LocalAccount, Path],
    mp4s: list[Path],
    tmp_path: Path,
    caller_for: Callable[..., Caller],
    patch_bytes: list[int],
) -> None:
    account, key_file = wallet
    clips = tmp_path / "clips"
    add_clip(clips, "beach.mp4", mp4s[0])
    add_clip(clips, "pier.mov", mp4s[1], annotation("A wooden pier stretches into the sea."))
    nested = add_clip(clips / "day2", "dunes.mp4", mp4s[2], annotation("Wind moves sand dunes."))
    camera_text = (
        "https://example.test/source\n"
        "0 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n"
        "2000000 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n"
    )
    nested.with_suffix("").with_suffix(".camera.txt").write_text(camera_text)

    first = contribute(server, key_file, clips, "--recursive", "--chunk-size", "256KiB")

    assert first.exit_code == 0, first.output
    table = rows(first)
    assert set(table) == {"beach.mp4", "day2/dunes.mp4", "pier.mov"}
    assert all("submitted" in row for row in table.values())
    assert "3 clip(s): 3 submitted" in first.output
    caller = caller_for(server, account)
    on_server = server_clips(caller)
    assert set(on_server) == {"beach.mp4", "dunes.mp4", "pier.mov"}
    for name, relative in [("beach.mp4", "beach.mp4"), ("dunes.mp4", "day2/dunes.mp4")]:
        assert on_server[name]["id"] in table[relative]
    # The camera path text was sent and parsed into the annotation by the server.
    assert len(on_server["dunes.mp4"]["annotation"]["camera"]["path"]["keyframes"]) == 2
    total = sum(p.stat().st_size for p in [mp4s[0], mp4s[1], mp4s[2]])
    assert sum(patch_bytes) == total
    recorded = submissions(clips, server, account)
    assert {r["clip_id"] for r in recorded.values()} == {c["id"] for c in on_server.values()}

    patch_bytes.clear()
    again = contribute(server, key_file, clips, "--recursive")

    assert again.exit_code == 0, again.output
    assert all("already submitted" in row for row in rows(again).values())
    assert "3 clip(s): 3 already submitted" in again.output
    assert patch_bytes == []  # nothing uploaded again
    assert len(uploads_of(server, account.address)) == 3
    assert set(server_clips(caller)) == set(on_server)


def test_an_invalid_annotation_fails_the_run_and_the_other_clips_are_still_submitted(
    server: LiveServer,
    wallet: tuple[LocalAccount, Path],
    mp4s: list[Path],
    tmp_path: Path,
    caller_for: Callable[..., Caller],
) -> None:
    account, key_file = wallet
    clips = tmp_path / "clips"
    add_clip(clips, "a.mp4", mp4s[0])
    add_clip(clips, "b.mp4", mp4s[1], annotation(camera={"movement": "sideways"}))
    add_clip(clips, "c.mp4", mp4s[2])

    result = contribute(server, key_file, clips)

    assert result.exit_code == 1, result.output
    table = rows(result)
    assert "invalid" in table["b.mp4"]
    assert "camera.movement" in result.output
    assert "sideways" in result.output
    assert "submitted" in table["a.mp4"]
    assert "submitted" in table["c.mp4"]
    assert set(server_clips(caller_for(server, account))) == {"a.mp4", "c.mp4"}
    assert {u.filename for u in uploads_of(server, account.address)} == {"a.mp4", "c.mp4"}


# --- interruptions and resuming ---------------------------------------------------------


def test_an_interrupted_upload_resumes_from_the_server_offset_on_the_next_run(
    server: LiveServer,
    wallet: tuple[LocalAccount, Path],
    mp4s: list[Path],
    tmp_path: Path,
    caller_for: Callable[..., Caller],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account, key_file = wallet
    clips = tmp_path / "clips"
    clip = add_clip(clips, "long-take.mp4", mp4s[3])
    size = clip.stat().st_size
    assert size > 3 * CHUNK
    real_patch = requests.patch
    sent: list[int] = []

    def ctrl_c_during_the_third_chunk(url: str, data: Any = None, **kwargs: Any) -> Any:
        if len(sent) == 2:
            raise KeyboardInterrupt
        sent.append(len(data.getvalue()))
        return real_patch(url, data=data, **kwargs)

    monkeypatch.setattr(requests, "patch", ctrl_c_during_the_third_chunk)
    interrupted = contribute(server, key_file, clips, "--chunk-size", str(CHUNK))

    assert interrupted.exit_code == 130, interrupted.output
    assert "interrupted" in rows(interrupted)["long-take.mp4"]
    assert "run the same command again" in interrupted.output
    recorded = submissions(clips, server, account)["long-take.mp4"]
    assert recorded["upload_complete"] is False
    assert recorded["clip_id"] is None
    caller = caller_for(server, account)
    head = caller.head(recorded["upload_url"].removeprefix(server.url))
    assert head.headers["upload-offset"] == str(2 * CHUNK)

    sent.clear()
    monkeypatch.setattr(requests, "patch", lambda url, data=None, **kw: (
        sent.append(len(data.getvalue())) or real_patch(url, data=data, **kw)
    ))  # fmt: skip
    resumed = contribute(server, key_file, clips, "--chunk-size", str(CHUNK))

    assert resumed.exit_code == 0, resumed.output
    assert "submitted" in rows(resumed)["long-take.mp4"]
    assert sum(sent) == size - 2 * CHUNK  # only what the server did not have
    after = submissions(clips, server, account)["long-take.mp4"]
    assert after["upload_id"] == recorded["upload_id"]
    [on_server] = server_clips(caller).values()
    assert on_server["upload_id"] == recorded["upload_id"]
    assert on_server["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()


def test_a_dropped_connection_and_a_revoked_session_mid_upload_are_survived_in_one_run(
    server: LiveServer,
    wallet: tuple[LocalAccount, Path],
    mp4s: list[Path],
    tmp_path: Path,
    caller_for: Callable[..., Caller],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account, key_file = wallet
    clips = tmp_path / "clips"
    clip = add_clip(clips, "a.mp4", mp4s[0])
    real_patch = requests.patch
    calls: list[str] = []

    def flaky(url: str, data: Any = None, **kwargs: Any) -> Any:
        calls.append(kwargs["headers"]["Authorization"])
        if len(calls) == 2:
            raise requests.exceptions.ConnectionError("connection reset by peer")
        if len(calls) == 4:  # the session ends (logged out elsewhere, or expired)
            revoked = httpx.post(
                f"{server.url}/api/v1/auth/logout", headers={"Authorization": calls[-1]}
            )
            assert revoked.status_code == 204
        return real_patch(url, data=data, **kwargs)

    monkeypatch.setattr(requests, "patch", flaky)
    result = contribute(server, key_file, clips, "--chunk-size", str(CHUNK))

    assert result.exit_code == 0, result.output
    assert "submitted" in rows(result)["a.mp4"]
    assert len(set(calls)) == 2  # signed in again after the session ended
    [on_server] = server_clips(caller_for(server, account)).values()
    assert on_server["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert len(uploads_of(server, account.address)) == 1  # resumed, never restarted


def test_an_upload_the_server_no_longer_knows_is_started_again(
    server: LiveServer,
    wallet: tuple[LocalAccount, Path],
    mp4s: list[Path],
    tmp_path: Path,
    caller_for: Callable[..., Caller],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account, key_file = wallet
    clips = tmp_path / "clips"
    add_clip(clips, "a.mp4", mp4s[0])
    real_patch = requests.patch

    def ctrl_c(url: str, data: Any = None, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(requests, "patch", ctrl_c)
    assert contribute(server, key_file, clips, "--chunk-size", str(CHUNK)).exit_code == 130
    old = submissions(clips, server, account)["a.mp4"]
    caller = caller_for(server, account)
    terminated = caller.http.delete(old["upload_url"].removeprefix(server.url), headers=TUS)
    assert terminated.status_code == 204

    monkeypatch.setattr(requests, "patch", real_patch)
    result = contribute(server, key_file, clips, "--chunk-size", str(CHUNK))

    assert result.exit_code == 0, result.output
    new = submissions(clips, server, account)["a.mp4"]
    assert new["upload_id"] != old["upload_id"]
    assert server_clips(caller)["a.mp4"]["upload_id"] == new["upload_id"]


def test_a_lost_or_corrupt_state_file_is_rebuilt_from_the_server(
    server: LiveServer,
    wallet: tuple[LocalAccount, Path],
    mp4s: list[Path],
    tmp_path: Path,
    caller_for: Callable[..., Caller],
) -> None:
    account, key_file = wallet
    clips = tmp_path / "clips"
    add_clip(clips, "a.mp4", mp4s[0])
    first = contribute(server, key_file, clips)
    assert first.exit_code == 0, first.output
    [clip] = server_clips(caller_for(server, account)).values()
    (clips / STATE_FILE_NAME).write_text('{"version": 1, "files": {"a.mp4": ')  # torn write

    again = contribute(server, key_file, clips)

    assert again.exit_code == 0, again.output
    assert "state file was corrupt" in again.output
    row = rows(again)["a.mp4"]
    assert "already submitted" in row
    assert clip["id"] in row
    assert submissions(clips, server, account)["a.mp4"]["clip_id"] == clip["id"]
    assert list(clips.glob(f"{STATE_FILE_NAME}.corrupt-*"))


# --- duplicates and verdicts --------------------------------------------------------------


def test_a_clip_another_wallet_already_submitted_is_a_duplicate_and_fails_the_run(
    server: LiveServer,
    wallet: tuple[LocalAccount, Path],
    mp4s: list[Path],
    tmp_path: Path,
    caller_for: Callable[..., Caller],
) -> None:
    other_key = tmp_path / "other.key"
    other: LocalAccount = Account.create()
    other_key.write_text(bytes(other.key).hex())
    other_key.chmod(0o600)
    theirs = tmp_path / "theirs"
    add_clip(theirs, "original.mp4", mp4s[0])
    assert contribute(server, other_key, theirs).exit_code == 0
    [original] = server_clips(caller_for(server, other)).values()

    account, key_file = wallet
    mine = tmp_path / "mine"
    add_clip(mine, "copy.mp4", mp4s[0])
    add_clip(mine, "own.mp4", mp4s[1])
    result = contribute(server, key_file, mine)

    assert result.exit_code == 1, result.output
    table = rows(result)
    assert "duplicate" in table["copy.mp4"]
    assert f"duplicate of {original['id']}" in table["copy.mp4"]
    assert "submitted" in table["own.mp4"]
    assert set(server_clips(caller_for(server, account))) == {"own.mp4"}


def test_wait_shows_what_ingest_decided_for_each_clip(
    server: LiveServer,
    wallet: tuple[LocalAccount, Path],
    mp4s: list[Path],
    tmp_path: Path,
) -> None:
    _account, key_file = wallet
    clips = tmp_path / "clips"
    add_clip(clips, "good.mp4", mp4s[0])
    too_long_path = {
        "movement": "static",
        "path": {
            "keyframes": [
                {"time_s": 0, "position_m": [0, 0, 0], "orientation_wxyz": [1, 0, 0, 0]},
                {"time_s": 30, "position_m": [0, 0, 0], "orientation_wxyz": [1, 0, 0, 0]},
            ]
        },
    }
    add_clip(clips, "path-too-long.mp4", mp4s[1], annotation(camera=too_long_path))

    result = contribute(server, key_file, clips, "--wait", "--wait-timeout", "120")

    assert result.exit_code == 1, result.output
    table = rows(result)
    assert "queued" in table["good.mp4"]
    assert "rejected" in table["path-too-long.mp4"]
    assert "annotation.outside_clip" in table["path-too-long.mp4"]


# --- the installed console script ---------------------------------------------------------


def test_the_console_script_signs_in_with_a_key_from_the_environment(
    server: LiveServer, mp4s: list[Path], tmp_path: Path, caller_for: Callable[..., Caller]
) -> None:
    account: LocalAccount = Account.create()
    clips = tmp_path / "clips"
    add_clip(clips, "a.mp4", mp4s[2])
    script = Path(sys.executable).with_name("shotbank")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHOTBANK_")},
        "SHOTBANK_API_URL": server.url,
        "SHOTBANK_PRIVATE_KEY": bytes(account.key).hex(),
    }

    done = subprocess.run(
        [str(script), "contribute", str(clips)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 clip(s): 1 submitted" in done.stdout
    assert bytes(account.key).hex() not in done.stdout + done.stderr
    assert set(server_clips(caller_for(server, account))) == {"a.mp4"}
    assert httpx.get(f"{server.url}/api/v1/health").status_code in (200, 503)
