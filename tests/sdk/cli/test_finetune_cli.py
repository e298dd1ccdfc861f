"""``shotbank finetune``: the command over a real packed version, and the SDK staying light."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_account import Account

from shotbank.cli import main
from shotbank.cli.finetune import EXIT_NOT_REGISTERED
from shotbank.cli.validator import EXIT_NOT_INSTALLED, INSTALL_HINT
from shotbank.client import ShotbankClient
from shotbank.datasets.format import read_index

pytest.importorskip("scoring.finetune")

from backend.services.packing import pack_version
from scoring.finetune import held_out
from tests.backend.models_world import ALICE, BOB, CAROL, ModelsWorld, models_world
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


# --- --register against a live backend ------------------------------------------------------


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelsWorld]:
    """A live backend with two versions made from real clips (the second: 4 samples)."""
    with models_world(tmp_path_factory.mktemp("cli-market"), tone_base=2800.0) as made:
        yield made


@pytest.fixture(scope="module")
def downloaded(market: ModelsWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Version 2 downloaded through the SDK by the operator (who needs no licence)."""
    folder = tmp_path_factory.mktemp("cli-download")
    with ShotbankClient(market.url) as client:
        client.sign_in(market.operator)
        client.version(market.second.dataset_id, 2).download(folder, progress=False)
    return folder


def _useful_seed(version: Path) -> str:
    """A seed that splits the version's keys into >= 1 held out and >= 2 to train on."""
    keys = [s.key for shard in read_index(version / "index.json").shards for s in shard.samples]
    for seed in range(1000):
        held = sum(held_out(key, seed=seed, fraction=0.25) for key in keys)
        if 1 <= held <= len(keys) - 2:
            return str(seed)
    raise AssertionError("no seed splits these keys")  # pragma: no cover


def _register_args(downloaded: Path, out: Path, market: ModelsWorld) -> list[str]:
    args = _args(downloaded, out, "--register", "--api", market.url, "--batch-size", "2")
    return [*args, "--seed", _useful_seed(downloaded)]


def test_finetune_register_prints_the_model_hash_and_its_lineage(
    market: ModelsWorld, downloaded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = Account.create()
    market.license(trainer.address, market.second)
    monkeypatch.setenv("SHOTBANK_PRIVATE_KEY", trainer.key.hex())
    out = tmp_path / "run"
    result = CliRunner().invoke(main, _register_args(downloaded, out, market))
    assert result.exit_code == 0, result.output
    weights_hash = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    lines = result.stdout.splitlines()
    assert f"model    {weights_hash}" in lines
    assert f"lineage  {market.url}/api/v1/models/{weights_hash}/lineage" in lines
    with ShotbankClient(market.url) as client:
        model = client.model(weights_hash)
        lineage = client.lineage(weights_hash)
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert model.registrant == trainer.address
    assert model.hyperparameters == record["hyperparameters"]
    assert [v.version_hash for v in model.dataset_versions] == [market.second.version_hash]
    assert [(c.address, c.samples) for c in lineage.contributors] == [
        (ALICE, 2),
        (BOB, 1),
        (CAROL, 1),
    ]


def test_finetune_register_with_json_keeps_the_record_as_the_last_line(
    market: ModelsWorld, downloaded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The operator needs no licence. Another learning rate: other weights, another model
    # (the same settings would train the other test's model again, byte for byte).
    monkeypatch.setenv("SHOTBANK_PRIVATE_KEY", market.operator.key.hex())
    out = tmp_path / "run"
    args = [*_register_args(downloaded, out, market), "--json", "--lr", "0.0003"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert f"model    {record['output']['sha256']}" in result.stderr


def test_finetune_register_without_a_licence_keeps_the_run_and_exits_6(
    market: ModelsWorld, downloaded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOTBANK_PRIVATE_KEY", Account.create().key.hex())
    out = tmp_path / "run"
    result = CliRunner().invoke(main, _register_args(downloaded, out, market))
    assert result.exit_code == EXIT_NOT_REGISTERED, result.output
    assert "licence_required" in result.stderr
    assert str(out / "run.json") in result.stderr
    assert (out / "run.json").is_file()


def test_finetune_register_without_a_key_fails_before_training(
    market: ModelsWorld, downloaded: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, _register_args(downloaded, out, market))
    assert result.exit_code == 2, result.output
    assert "no wallet key" in result.output
    assert not out.exists()
