"""Fine-tuning the in-project model on a real dataset version (``scoring.finetune``).

The version: 64 generated clips (a coloured shape under a lighting setup, encoded with
PyAV, packed with the backend's packer) whose descriptions use words the base model was
never taught -- "a scarlet disc" for a red circle -- in colour/shape combinations that
are all different, so the held-out clips are combinations the training split never
shows. The base model retrieves them poorly (only the lighting words help it); the
fine-tuned one must do much better on the very same held-out samples.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pytest
import torch

import scoring.finetune as finetune_module
import shotbank.runs
from backend.services.packing import pack_version
from scoring.clipgen import scene_frames, write_clip
from scoring.finetune import (
    FinetuneConfig,
    FinetuneError,
    Progress,
    RunRecord,
    RunResult,
    finetune,
    held_out,
    recall_at_k,
    text_prompt,
)
from scoring.models import TEST_MODEL, load_model
from scoring.pretrained import sha256_file
from scoring.synthetic import COLOURS, LIGHTING, SHAPES, Scene
from shotbank.annotation.vocabulary import LightingSetup
from tests.sdk.datasets.builders import annotation_document, record_for_bytes

#: Words the base model never saw, one per colour and shape.
SYNONYMS = {
    "red": "scarlet",
    "green": "emerald",
    "blue": "azure",
    "yellow": "golden",
    "purple": "violet",
    "orange": "amber",
    "circle": "disc",
    "square": "box",
    "triangle": "wedge",
    "star": "asterisk",
}
CLIPS = 64
STEPS = 30


def build_version(directory: Path, count: int = CLIPS) -> Path:
    """Pack ``count`` generated clips of distinct (colour, shape, lighting) into a version."""
    clips = directory / "clips"
    clips.mkdir(parents=True)
    visible = [setup for setup in LIGHTING if setup is not LightingSetup.SILHOUETTE]
    combos = [(c, s, setup) for c in COLOURS for s in SHAPES for setup in visible]
    picked = [combos[i] for i in np.random.default_rng(0).permutation(len(combos))[:count]]
    inputs: list[tuple[Any, Any]] = []
    for number, (colour, shape, setup) in enumerate(picked):
        frames = scene_frames(
            Scene(colour, shape, setup), seconds=0.5, fps=8, size=(64, 64), seed=number
        )
        path = write_clip(clips / f"{number}.mp4", frames, fps=8)
        annotation = annotation_document(number)
        annotation["scene"]["description"] = f"a {SYNONYMS[colour]} {SYNONYMS[shape]}"
        annotation["lighting"]["setup"] = setup.value
        record = record_for_bytes(
            number,
            path.read_bytes(),
            annotation=annotation,
            media={"duration_s": 0.5, "width": 64, "height": 64, "fps": 8.0, "audio": False},
        )
        inputs.append((record, _opener(path)))
    version = directory / "version"
    pack_version(inputs, version)
    return version


def _opener(path: Path) -> Callable[[], BinaryIO]:
    return lambda: path.open("rb")


@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 64-clip version, packed once for the module."""
    return build_version(tmp_path_factory.mktemp("finetune"))


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """One CPU thread: fast on a shared machine and the same reductions every run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(version: Path, out: Path, **changes: Any) -> FinetuneConfig:
    fields: dict[str, Any] = {
        "shards": version,
        "out": out,
        "steps": STEPS,
        "batch_size": 16,
        "lr": 1e-3,
        "frames": 2,
        "eval_every": 10,
        "checkpoint_every": 10,
        "device": "cpu",
        "threads": 1,
    }
    fields.update(changes)
    return FinetuneConfig(**fields)


@pytest.fixture(scope="module")
def full_run(
    version: Path, tmp_path_factory: pytest.TempPathFactory, single_thread: None
) -> RunResult:
    """One uninterrupted run of :data:`STEPS` steps."""
    return finetune(_config(version, tmp_path_factory.mktemp("full")))


class _StopError(Exception):
    """Stands for the process being killed mid-run."""


@pytest.fixture(scope="module")
def stopped_run(
    version: Path, tmp_path_factory: pytest.TempPathFactory, single_thread: None
) -> Path:
    """A run with the same settings stopped after step 25 (checkpoints at 10 and 20)."""
    out = tmp_path_factory.mktemp("stopped")

    def stop(event: Progress) -> None:
        if event.step == 25 and event.metrics is None:
            raise _StopError

    with pytest.raises(_StopError):
        finetune(_config(version, out), progress=stop)
    assert not (out / "model.safetensors").exists()
    return out


def test_fine_tuned_model_beats_base_model_on_held_out_retrieval(full_run: RunResult) -> None:
    base, final = full_run.record.base_metrics, full_run.record.final_metrics
    assert base.step == 0
    assert final.step == STEPS
    # The base model knows the lighting words only: well below the fine-tuned recall.
    assert base.text_to_clip["r@1"] <= 0.5
    assert final.text_to_clip["r@1"] >= base.text_to_clip["r@1"] + 0.4
    assert final.clip_to_text["r@1"] >= base.clip_to_text["r@1"] + 0.4
    assert final.mean_recall >= base.mean_recall + 0.25
    losses = [m.train_loss for m in full_run.record.metrics[1:]]
    assert losses[0] is not None
    assert losses[-1] is not None
    assert losses[-1] < losses[0]


def test_run_record_names_data_base_model_and_output_weights(
    full_run: RunResult, version: Path
) -> None:
    record = RunRecord.model_validate_json(full_run.record_path.read_text(encoding="utf-8"))
    assert record == full_run.record
    index = json.loads((version / "index.json").read_text(encoding="utf-8"))
    assert record.dataset.version_hash == index["version_hash"]
    assert record.dataset.samples == CLIPS
    assert record.dataset.train_samples + record.dataset.held_out_samples == CLIPS
    name, tag = TEST_MODEL
    base = load_model(name, tag, device="cpu", precision="fp32")
    assert (record.base_model.name, record.base_model.tag) == (name, tag)
    assert record.base_model.weights_sha256 == base.identity.weights_sha256
    assert record.output.sha256 == sha256_file(full_run.weights)
    assert record.output.sha256 != record.base_model.weights_sha256
    assert record.hyperparameters["steps"] == STEPS
    assert record.hyperparameters["lr"] == 1e-3
    assert [m.step for m in record.metrics] == [0, 10, 20, 30]
    assert record.started_at <= record.finished_at
    assert record.resumed_from_step is None
    # The file is what the backend registers: the SDK's model (no torch) reads it the same.
    assert (
        shotbank.runs.RunRecord.model_validate_json(
            full_run.record_path.read_bytes()
        ).canonical_json()
        == record.canonical_json()
    )
    assert record.model_hash == record.output.sha256


def test_run_record_models_are_the_sdks() -> None:
    assert RunRecord is shotbank.runs.RunRecord
    assert finetune_module.EvalMetrics is shotbank.runs.EvalMetrics
    assert finetune_module.RUN_FORMAT == shotbank.runs.RUN_FORMAT


def test_output_weights_load_as_a_pinned_model_with_the_fine_tuned_recall(
    full_run: RunResult,
) -> None:
    tuned = load_model(
        TEST_MODEL[0],
        full_run.weights,
        device="cpu",
        precision="fp32",
        expected_sha256=full_run.record.output.sha256,
    )
    assert tuned.identity.weights_sha256 == full_run.record.output.sha256
    # The new words now land next to the words they stand for.
    texts = tuned.encode_texts(["a scarlet disc", "a red circle", "an azure box", "a blue square"])
    similarity = texts @ texts.T
    assert similarity[0, 1] > similarity[0, 3]
    assert similarity[2, 3] > similarity[2, 1]


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_run(
    version: Path, full_run: RunResult, stopped_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "resumed"
    shutil.copytree(stopped_run, out)
    resumed = finetune(_config(version, out, resume=True))
    assert resumed.record.resumed_from_step == 20
    assert resumed.record.output.sha256 == full_run.record.output.sha256
    assert resumed.record.metrics == full_run.record.metrics


def test_resume_skips_a_damaged_checkpoint_and_a_half_written_one(
    version: Path, full_run: RunResult, stopped_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "damaged"
    shutil.copytree(stopped_run, out)
    newest = out / "checkpoints" / "step-00000020.pt"
    data = newest.read_bytes()
    # A crash while writing leaves only a temporary file; a damaged disk, a cut file.
    (out / "checkpoints" / ".step-00000030.pt.abc123.tmp").write_bytes(data[: len(data) // 3])
    newest.write_bytes(data[: len(data) // 2])
    resumed = finetune(_config(version, out, resume=True))
    assert resumed.record.resumed_from_step == 10
    assert resumed.record.output.sha256 == full_run.record.output.sha256


def test_resume_without_a_checkpoint_starts_afresh(version: Path, tmp_path: Path) -> None:
    result = finetune(_config(version, tmp_path / "fresh", steps=2, resume=True, eval_every=0))
    assert result.record.resumed_from_step is None
    assert [m.step for m in result.record.metrics] == [0, 2]


def test_checkpoints_of_other_settings_are_not_resumed(
    version: Path, stopped_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "other"
    shutil.copytree(stopped_run, out)
    # Another learning rate is another run: its checkpoints must not be continued.
    result = finetune(_config(version, out, steps=2, lr=5e-4, resume=True, eval_every=0))
    assert result.record.resumed_from_step is None


def test_a_fresh_run_refuses_a_directory_with_checkpoints(version: Path, stopped_run: Path) -> None:
    with pytest.raises(FinetuneError, match="earlier run"):
        finetune(_config(version, stopped_run))


def test_split_is_a_pure_function_of_key_and_seed() -> None:
    keys = [f"{i:032x}" for i in range(2000)]
    split = [held_out(k, seed=7, fraction=0.25) for k in keys]
    assert split == [held_out(k, seed=7, fraction=0.25) for k in keys]
    assert 0.2 < sum(split) / len(keys) < 0.3
    assert split != [held_out(k, seed=8, fraction=0.25) for k in keys]


def test_recall_counts_any_correct_item_in_the_top_k() -> None:
    similarity = torch.tensor([[0.9, 0.1, 0.5], [0.8, 0.2, 0.7], [0.1, 0.3, 0.2]])
    correct = torch.eye(3, dtype=torch.bool)
    assert recall_at_k(similarity, correct, 1) == pytest.approx(1 / 3)
    assert recall_at_k(similarity, correct, 2) == pytest.approx(2 / 3)
    assert recall_at_k(similarity, correct, 3) == pytest.approx(1.0)
    # Two items with the same text: either one is a hit.
    correct[1, 0] = True
    assert recall_at_k(similarity, correct, 1) == pytest.approx(2 / 3)


def test_prompt_puts_the_description_before_lighting_and_camera() -> None:
    annotation = annotation_document(3)
    annotation["scene"]["description"] = "A red circle."
    assert text_prompt(annotation) == "A red circle, natural lighting, dolly in shot"


def test_a_version_too_small_to_split_is_refused(version: Path, tmp_path: Path) -> None:
    with pytest.raises(FinetuneError, match="batch"):
        finetune(_config(version, tmp_path / "out", batch_size=4000))
    with pytest.raises(FinetuneError, match=r"index\.json"):
        finetune(_config(tmp_path, tmp_path / "out"))
