"""``shotbank validator run``: what it refuses before it ever reaches the network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from eth_account import Account

from scoring.models import TEST_MODEL
from scoring.pretrained import get_pretrained
from shotbank.cli import main
from shotbank.cli.credentials import KEY_ARGUMENT_REFUSAL
from shotbank.cli.validator import EXIT_MODEL_REFUSED, EXIT_NOT_INSTALLED, INSTALL_HINT

WEIGHTS_DIR = Path(__file__).resolve().parents[3] / "scoring" / "weights"


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, closed_port: int) -> str:
    """A wallet key in SHOTBANK_PRIVATE_KEY, a state dir, a backend that is not there."""
    key = "0x" + bytes(Account.create().key).hex()
    monkeypatch.setenv("SHOTBANK_PRIVATE_KEY", key)
    monkeypatch.setenv("SHOTBANK_VALIDATOR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SHOTBANK_VALIDATOR_API_URL", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("SHOTBANK_VALIDATOR_RPC_URL", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("SHOTBANK_VALIDATOR_METRICS_PORT", "0")
    monkeypatch.setenv("SHOTBANK_VALIDATOR_MODEL", TEST_MODEL[0])
    monkeypatch.setenv("SHOTBANK_VALIDATOR_PRETRAINED", TEST_MODEL[1])
    monkeypatch.setenv("SHOTBANK_VALIDATOR_DEVICE", "cpu")
    monkeypatch.setenv("SHOTBANK_VALIDATOR_PRECISION", "fp32")
    return key


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["validator", "run", *args], catch_exceptions=False)


def test_a_key_on_the_command_line_is_refused_before_anything_else(key_env: str) -> None:
    for args in (["--api", key_env], [f"--key-file={key_env[2:]}"]):
        result = invoke(*args)
        assert result.exit_code == 2
        assert KEY_ARGUMENT_REFUSAL in result.output
        assert key_env[2:] not in result.output


def test_no_key_at_all_is_a_usage_error(key_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOTBANK_PRIVATE_KEY")
    result = invoke()
    assert result.exit_code == 2
    assert "no wallet key" in result.output


def test_a_config_file_holding_a_key_is_a_usage_error(key_env: str, tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(f'private_key = "{key_env}"\n')
    result = invoke("--config", str(config))
    assert result.exit_code == 2
    assert "key material" in result.output
    assert key_env[2:] not in result.output


@pytest.mark.slow
def test_tampered_weights_refuse_to_start(key_env: str, tmp_path: Path) -> None:
    # A copy of the registered file with one byte changed, where the node looks first.
    entry = get_pretrained(*TEST_MODEL)
    tampered_dir = tmp_path / "models"
    tampered_dir.mkdir()
    tampered = tampered_dir / entry.file
    shutil.copyfile(WEIGHTS_DIR / entry.file, tampered)
    with tampered.open("r+b") as handle:
        handle.seek(-100, os.SEEK_END)
        byte = handle.read(1)
        handle.seek(-100, os.SEEK_END)
        handle.write(bytes([byte[0] ^ 0xFF]))
    config = tmp_path / "node.json"
    config.write_text(f'{{"weights_dirs": ["{tampered_dir}"]}}')
    env = {**os.environ, "NO_COLOR": "1"}
    process = subprocess.run(
        [
            str(Path(sys.executable).with_name("shotbank")),
            "validator",
            "run",
            "--config",
            str(config),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == EXIT_MODEL_REFUSED, process.stderr
    assert "the model was refused" in process.stderr
    assert "SHA-256" in process.stderr or "sha256" in process.stderr.lower()


def test_without_the_scoring_stack_the_node_says_how_to_install_it(
    key_env: str, tmp_path: Path
) -> None:
    # torch made unimportable: what a contributor's SDK-only install looks like to the node.
    program = (
        "import sys; sys.modules['torch'] = None; "
        "from shotbank.cli import main; main(['validator', 'run'])"
    )
    process = subprocess.run(
        [sys.executable, "-c", program],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == EXIT_NOT_INSTALLED, process.stderr
    assert "'torch'" in process.stderr
    assert INSTALL_HINT in process.stderr
