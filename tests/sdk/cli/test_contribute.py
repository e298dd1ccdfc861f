"""``shotbank contribute`` without a server: usage errors, dry runs, exit statuses.

Runs through click's ``CliRunner`` with the real command group. Uploading to a real
backend is tested in ``tests/backend/test_contribute_cli.py``.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from shotbank.cli import main
from shotbank.cli.contribute import ByteSize, idempotency_key
from shotbank.cli.state import STATE_FILE_NAME, lock_state
from tests.sdk.cli.conftest import ClipMaker


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def clips(tmp_path: Path, make_clip_files: ClipMaker, annotation: dict[str, Any]) -> Path:
    """A directory with two valid clips and one whose annotation is invalid."""
    root = tmp_path / "clips"
    make_clip_files("beach.mp4", annotation, root=root)
    make_clip_files("pier.mov", annotation, root=root, data=b"other bytes")
    annotation["camera"]["movement"] = "sideways"
    make_clip_files("broken.mp4", annotation, root=root)
    return root


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "key_argument",
    [["0x" + "ab" * 32], ["--key", "cd" * 32], ["--api=0x" + "ef" * 32]],
    ids=["positional", "option", "option-value"],
)
def test_a_key_on_the_command_line_is_refused_without_echoing_it(
    clips: Path, key_argument: list[str]
) -> None:
    result = run("contribute", str(clips), *key_argument)

    assert result.exit_code == 2
    assert "looks like a private key" in result.output
    assert "--key-file" in result.output
    assert "SHOTBANK_PRIVATE_KEY" in result.output
    for secret in ("ab" * 32, "cd" * 32, "ef" * 32):
        assert secret not in result.output


def test_without_a_key_the_run_is_a_usage_error(clips: Path) -> None:
    result = run("contribute", str(clips))

    assert result.exit_code == 2
    assert "no wallet key" in result.output


def test_a_dry_run_checks_everything_needs_no_key_and_writes_nothing(clips: Path) -> None:
    result = run("contribute", str(clips), "--dry-run")

    assert result.exit_code == 1  # one annotation is invalid
    assert "camera.movement" in result.output
    assert "sideways" in result.output
    lines = result.output.splitlines()
    assert any("beach.mp4" in line and "ready" in line for line in lines)
    assert any("pier.mov" in line and "ready" in line for line in lines)
    assert any("broken.mp4" in line and "invalid" in line for line in lines)
    assert "3 clip(s): 2 ready, 1 invalid" in result.output
    assert not (clips / STATE_FILE_NAME).exists()


def test_a_dry_run_of_valid_clips_succeeds(clips: Path) -> None:
    (clips / "broken.mp4").unlink()

    result = run("contribute", str(clips), "--dry-run")

    assert result.exit_code == 0, result.output
    assert "2 clip(s): 2 ready" in result.output


def test_only_invalid_clips_fail_before_any_key_is_needed(clips: Path) -> None:
    (clips / "beach.mp4").unlink()
    (clips / "pier.mov").unlink()

    result = run("contribute", str(clips))

    assert result.exit_code == 1
    assert "1 clip(s): 1 invalid" in result.output


def test_an_empty_directory_is_not_a_failure(tmp_path: Path) -> None:
    result = run("contribute", str(tmp_path))

    assert result.exit_code == 0
    assert "no clips found" in result.output
    assert "--recursive" in result.output


def test_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    assert run("contribute", str(tmp_path / "nope")).exit_code == 2


@pytest.mark.parametrize("size", ["12", "1TiB", "lots", "-5"])
def test_a_bad_chunk_size_is_a_usage_error(clips: Path, size: str) -> None:
    result = run("contribute", str(clips), "--dry-run", "--chunk-size", size)

    assert result.exit_code == 2
    assert "--chunk-size" in result.output


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("262144", 262_144),
        ("256KiB", 262_144),
        ("8MiB", 8 * 1024**2),
        ("1g", 1024**3),
        ("64 kb", 65_536),
    ],
)
def test_chunk_sizes_take_binary_units(text: str, size: int) -> None:
    assert ByteSize(1024, 2 * 1024**3).convert(text, None, None) == size


def test_a_bad_api_url_is_a_usage_error(clips: Path, hex_key_file: Path) -> None:
    result = run("contribute", str(clips), "--key-file", str(hex_key_file), "--api", "ftp://x")

    assert result.exit_code == 2
    assert "api_url" in result.output


def test_an_unreadable_key_file_fails_with_its_reason(clips: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "garbage.key"
    key_file.write_text("this is not a key")

    result = run("contribute", str(clips), "--key-file", str(key_file))

    assert result.exit_code == 1
    assert "is not a private key" in result.output


def test_an_unreachable_server_fails_the_run_after_the_retries(
    clips: Path, hex_key_file: Path, closed_port: int
) -> None:
    api = f"http://127.0.0.1:{closed_port}"

    result = run("contribute", str(clips), "--key-file", str(hex_key_file), "--api", api)

    assert result.exit_code == 1
    assert f"cannot sign in at {api}" in result.output


def test_a_second_run_on_the_same_directory_is_refused_while_one_is_running(
    clips: Path, hex_key_file: Path
) -> None:
    with lock_state(clips / STATE_FILE_NAME):
        result = run("contribute", str(clips), "--key-file", str(hex_key_file))

    assert result.exit_code == 1
    assert "another shotbank contribute is using" in result.output


def test_a_newer_state_file_is_not_overwritten(clips: Path, hex_key_file: Path) -> None:
    (clips / STATE_FILE_NAME).write_text('{"version": 9}')

    result = run("contribute", str(clips), "--key-file", str(hex_key_file))

    assert result.exit_code == 1
    assert "version 9" in result.output
    assert (clips / STATE_FILE_NAME).read_text() == '{"version": 9}'


def test_the_idempotency_key_is_deterministic_printable_and_short_enough() -> None:
    key = idempotency_key("a" * 64, "b" * 64, "c" * 32)

    assert key == idempotency_key("a" * 64, "b" * 64, "c" * 32)
    assert key != idempotency_key("a" * 64, "b" * 64, "d" * 32)
    assert key != idempotency_key("a" * 64, "e" * 64, "c" * 32)
    assert 1 <= len(key) <= 128
    assert key.isascii()
    assert key.isprintable()


def test_the_help_documents_exit_statuses_and_key_handling() -> None:
    result = run("contribute", "--help")

    assert result.exit_code == 0
    assert "130 interrupted" in click.unstyle(result.output)
    assert "--key-file" in result.output
    assert "--private-key" not in result.output
