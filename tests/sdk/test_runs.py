"""``shotbank.runs``: the run record the trainer writes and the backend registers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from shotbank.runs import MAX_HYPERPARAMETERS_JSON_BYTES, RunRecord
from tests.backend.models_world import ReadyVersion, run_record

VERSION = ReadyVersion("0" * 32, 1, "0" * 32, "ab" * 32, 9)


def _document(**changes: Any) -> dict[str, Any]:
    document = run_record(VERSION).model_dump(mode="json")
    document.update(changes)
    return document


def test_equal_records_have_equal_canonical_json_whatever_their_key_order() -> None:
    document = _document(hyperparameters={"b": 1, "a": [1, 2]})
    shuffled = dict(reversed(list(document.items())))
    shuffled["hyperparameters"] = {"a": [1, 2], "b": 1}
    first = RunRecord.model_validate(document)
    second = RunRecord.model_validate_json(json.dumps(shuffled))
    assert first.canonical_json() == second.canonical_json()
    assert first.model_hash == document["output"]["sha256"]


def test_a_diverged_loss_is_written_as_null() -> None:
    record = RunRecord.model_validate(_document())
    record.metrics[-1].train_loss = math.nan
    assert json.loads(record.canonical_json())["metrics"][-1]["train_loss"] is None


def test_a_split_that_does_not_add_up_is_refused() -> None:
    document = _document()
    document["dataset"]["held_out_samples"] += 1
    with pytest.raises(ValidationError, match="must equal samples"):
        RunRecord.model_validate(document)


def test_hyperparameters_over_64_kib_are_refused() -> None:
    with pytest.raises(ValidationError, match="over the limit"):
        RunRecord.model_validate(
            _document(hyperparameters={"notes": "x" * MAX_HYPERPARAMETERS_JSON_BYTES})
        )


@pytest.mark.parametrize(
    "change",
    [
        {"metrics": []},
        {"format": "shotbank-finetune-run/2"},
        {"surprise": 1},
    ],
)
def test_records_that_are_not_of_this_format_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RunRecord.model_validate(_document(**change))


def test_metrics_out_of_step_order_are_refused() -> None:
    document = _document()
    document["metrics"].reverse()
    with pytest.raises(ValidationError, match="step order"):
        RunRecord.model_validate(document)


def test_importing_the_run_models_pulls_in_no_torch() -> None:
    code = "import sys, shotbank.runs; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
