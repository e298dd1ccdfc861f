"""``shotbank finetune``: the command over a real packed version, and the SDK staying light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from shotbank.cli import main
from shotbank.cli.validator import EXIT_NOT_INSTALLED, INSTALL_HINT

pytest.importorskip("scoring.finetune")

from backend.services.packing import pack_version
from tests.sdk.datasets.builders import build_samples


@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-clip version of the dataset tests' generated samples."""
    directory = tmp_path_factory.mktemp("cli-version")
    samples = build_samples(directory / "clips", 12, seconds=(0.5,))
    out = directory / "version"
    pack_version([sample.pack_input for sample in samples], out)
    return out


def _args(version: Path, out: Path, *extra: str) -> list[str]:
    return [
        "finetune",
        "--shards",
        str(version),
        "--out",
        str(out),
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--frames",
        "1",
        "--device",
        "cpu",
        # Seed 1 holds out 4 of these 12 keys (seed 0 happens to hold out none).
        "--seed",
        "1",
        *extra,
    ]


def test_finetune_json_prints_the_run_record(version: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, _args(version, tmp_path / "run", "--json"))
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    index = json.loads((version / "index.json").read_text(encoding="utf-8"))
    assert record["dataset"]["version_hash"] == index["version_hash"]
    assert record["base_model"]["name"] == "shotbank-tiny"
    assert [m["step"] for m in record["metrics"]] == [0, 2]
    assert record["hyperparameters"]["steps"] == 2
    assert (tmp_path / "run" / record["output"]["file"]).is_file()
    assert json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8")) == record


def test_finetune_prints_base_and_fine_tuned_recall(version: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, _args(version, tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "base" in result.stdout
    assert "fine-tuned" in result.stdout
    assert "R@1" in result.stdout
    assert "sha256" in result.stdout


def test_finetune_refuses_a_folder_that_is_no_version(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, _args(tmp_path, tmp_path / "run"))
    assert result.exit_code == 2
    assert "index.json" in result.output


def test_finetune_refuses_unpinned_weights_with_exit_3(version: Path, tmp_path: Path) -> None:
    weights = tmp_path / "other.safetensors"
    weights.write_bytes(b"not the pinned weights")
    result = CliRunner().invoke(
        main, _args(version, tmp_path / "run", "--pretrained", str(weights))
    )
    assert result.exit_code == 3
    assert "refused" in result.output


def test_without_the_scoring_stack_finetune_says_how_to_install_it(
    version: Path, tmp_path: Path
) -> None:
    # torch made unimportable: what an SDK-only install looks like to the command.
    program = (
        "import sys; sys.modules['torch'] = None; from shotbank.cli import main; "
        f"main({_args(version, tmp_path / 'run')!r})"
    )
    process = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False
    )
    assert process.returncode == EXIT_NOT_INSTALLED, process.stderr
    assert "'torch'" in process.stderr
    assert INSTALL_HINT in process.stderr


def test_cli_import_does_not_import_torch() -> None:
    code = "import sys, shotbank.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
