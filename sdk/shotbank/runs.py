"""Fine-tuning run records (``run.json``, format ``shotbank-finetune-run/1``).

A run fed from the marketplace (``shotbank finetune``, ``scoring.finetune``) writes a
:class:`RunRecord`: the dataset version trained on, the base model and its weights'
SHA-256, the hyperparameters, every evaluation and the output weights' SHA-256. Posting
it to ``POST /api/v1/models`` registers the model (``docs/api/models.md``); the backend
validates the body with these very models, so the trainer's file and the server agree on
what a record is. This module needs pydantic only (no torch): the backend and the SDK
import it without the scoring stack.

Limits: a record is at most :data:`MAX_RUN_RECORD_BYTES` of JSON (the backend's body cap),
its hyperparameters at most :data:`MAX_HYPERPARAMETERS_JSON_BYTES`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "MAX_HYPERPARAMETERS",
    "MAX_HYPERPARAMETERS_JSON_BYTES",
    "MAX_RUN_RECORD_BYTES",
    "MAX_STEPS",
    "RECALL_AT",
    "RUN_FORMAT",
    "SHA256_PATTERN",
    "BaseModelInfo",
    "DatasetInfo",
    "EvalMetrics",
    "OutputWeights",
    "RunRecord",
]

#: ``format`` of a run record.
RUN_FORMAT: Final = "shotbank-finetune-run/1"
#: Most training steps of one run.
MAX_STEPS: Final = 10_000_000
#: Recall cut-offs reported.
RECALL_AT: Final = (1, 5)
#: Largest run record, as JSON (``POST /api/v1/models`` refuses larger bodies with 413).
MAX_RUN_RECORD_BYTES: Final = 1024 * 1024
#: Largest ``hyperparameters`` object, as compact JSON.
MAX_HYPERPARAMETERS_JSON_BYTES: Final = 64 * 1024
#: Most top-level hyperparameters.
MAX_HYPERPARAMETERS: Final = 256
#: A SHA-256 as 64 lower-case hex digits.
SHA256_PATTERN: Final = r"^[0-9a-f]{64}$"


class EvalMetrics(BaseModel):
    """One evaluation: training loss since the previous one and held-out retrieval."""

    model_config = ConfigDict(extra="forbid")

    step: int = Field(ge=0, le=MAX_STEPS)
    train_loss: float | None = None
    """Mean training loss of the steps since the previous evaluation (None at step 0)."""
    text_to_clip: dict[str, float] = Field(max_length=len(RECALL_AT))
    """``{"r@1": ..., "r@5": ...}``: a text finds its clip among the held-out clips."""
    clip_to_text: dict[str, float] = Field(max_length=len(RECALL_AT))
    """``{"r@1": ..., "r@5": ...}``: a clip finds its text among the held-out texts."""

    @property
    def mean_recall(self) -> float:
        """Mean of the four recalls: one number to compare models by."""
        values = [*self.text_to_clip.values(), *self.clip_to_text.values()]
        return sum(values) / len(values)


class DatasetInfo(BaseModel):
    """The dataset version trained on."""

    model_config = ConfigDict(extra="forbid")

    version_hash: str = Field(pattern=SHA256_PATTERN)
    samples: int = Field(ge=1)
    train_samples: int = Field(ge=1)
    held_out_samples: int = Field(ge=1)

    @model_validator(mode="after")
    def _split_adds_up(self) -> DatasetInfo:
        # The split partitions the version: a record whose halves do not add up was not
        # written by a run over this version.
        if self.train_samples + self.held_out_samples != self.samples:
            raise ValueError("train_samples + held_out_samples must equal samples")
        return self


class BaseModelInfo(BaseModel):
    """The model fine-tuned."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    tag: str | None = Field(default=None, max_length=100)
    weights_sha256: str = Field(pattern=SHA256_PATTERN)


class OutputWeights(BaseModel):
    """The fine-tuned weights file."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(min_length=1, max_length=200)
    sha256: str = Field(pattern=SHA256_PATTERN)
    size: int = Field(ge=1)


class RunRecord(BaseModel):
    """What a run did (``run.json``): what the backend registers and lineage is built on."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["shotbank-finetune-run/1"] = RUN_FORMAT
    dataset: DatasetInfo
    base_model: BaseModelInfo
    hyperparameters: dict[str, Any] = Field(max_length=MAX_HYPERPARAMETERS)
    device: str = Field(max_length=16)
    metrics: list[EvalMetrics] = Field(min_length=1, max_length=MAX_STEPS + 1)
    """Every evaluation in step order; the first is the base model (step 0)."""
    output: OutputWeights
    resumed_from_step: int | None = Field(default=None, ge=0, le=MAX_STEPS)
    started_at: datetime
    finished_at: datetime

    @field_validator("hyperparameters")
    @classmethod
    def _small_hyperparameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())
        except (TypeError, ValueError) as exc:
            raise ValueError(f"hyperparameters must be plain JSON: {exc}") from None
        if size > MAX_HYPERPARAMETERS_JSON_BYTES:
            raise ValueError(
                f"hyperparameters are {size} bytes of JSON, over the limit of "
                f"{MAX_HYPERPARAMETERS_JSON_BYTES}"
            )
        return value

    @model_validator(mode="after")
    def _metrics_in_step_order(self) -> RunRecord:
        steps = [metrics.step for metrics in self.metrics]
        if steps != sorted(steps):
            raise ValueError("metrics must be in step order")
        return self

    @property
    def model_hash(self) -> str:
        """The fine-tuned model's hash: its weights file's SHA-256 (how the API names it)."""
        return self.output.sha256

    @property
    def base_metrics(self) -> EvalMetrics:
        """The base model's evaluation."""
        return self.metrics[0]

    @property
    def final_metrics(self) -> EvalMetrics:
        """The fine-tuned model's evaluation."""
        return self.metrics[-1]

    def canonical_json(self) -> str:
        """The record as compact JSON with sorted keys: equal records, equal text.

        Non-finite floats (a diverged loss) are written as ``null``, as pydantic's JSON does.
        """
        return json.dumps(json.loads(self.model_dump_json()), sort_keys=True, separators=(",", ":"))
