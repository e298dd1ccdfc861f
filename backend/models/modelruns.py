"""Registered fine-tuning runs (models) and the dataset versions they were trained on.

A model is known by its **hash**, the SHA-256 of its output weights
(``docs/api/models.md``). :class:`ModelRun` (``model_run``) keeps the run record it was
registered with, as canonical JSON, and the columns lists filter on; :class:`ModelRunVersion`
(``model_run_version``) links it to the backend's dataset versions. Lineage is read from
those links and the versions' membership rows (``dataset_version_sample.contributor``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel
from pydantic import Field as PublicField
from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from shotbank.runs import (
    MAX_HYPERPARAMETERS_JSON_BYTES,
    MAX_RUN_RECORD_BYTES,
    BaseModelInfo,
    EvalMetrics,
    OutputWeights,
    RunRecord,
)

__all__ = [
    "DEFAULT_LINEAGE_LIMIT",
    "DEFAULT_MODEL_PAGE",
    "MAX_LINEAGE_LIMIT",
    "MAX_MODEL_PAGE",
    "MAX_MODEL_VERSIONS",
    "MAX_SUMMARY_JSON_CHARS",
    "ContributorSamples",
    "LineageVersion",
    "LineageView",
    "ModelMetrics",
    "ModelPage",
    "ModelRun",
    "ModelRunVersion",
    "ModelSummary",
    "ModelVersionRef",
    "ModelView",
]

#: Default and largest page of ``GET /models``.
DEFAULT_MODEL_PAGE: Final = 20
MAX_MODEL_PAGE: Final = 100
#: Default and largest ``limit`` of ``GET /models/{hash}/lineage`` (entries per list).
DEFAULT_LINEAGE_LIMIT: Final = 1000
MAX_LINEAGE_LIMIT: Final = 10_000
#: Most dataset versions one model is linked to (a run record names one).
MAX_MODEL_VERSIONS: Final = 100
#: Longest stored summary: the hyperparameters' cap plus the base model, two evaluations
#: and the output, with room to spare.
MAX_SUMMARY_JSON_CHARS: Final = MAX_HYPERPARAMETERS_JSON_BYTES + 16 * 1024


class ModelRun(SQLModel, table=True):
    """A registered model: who registered it and the run record it came with."""

    __tablename__ = "model_run"
    __table_args__ = (
        # GET /models, newest first, keyset on (registered_at, hash); also per registrant.
        Index("ix_model_run_registered_at_hash", "registered_at", "hash"),
        Index("ix_model_run_registrant_registered_at", "registrant", "registered_at", "hash"),
    )

    hash: str = Field(primary_key=True, max_length=64)
    """SHA-256 of the output weights (``record.output.sha256``)."""
    registrant: str = Field(max_length=42)
    """EIP-55 address that registered it."""
    record_json: str = Field(sa_type=Text, max_length=MAX_RUN_RECORD_BYTES)
    """The run record as canonical JSON (``RunRecord.canonical_json``)."""
    summary_json: str = Field(sa_type=Text, max_length=MAX_SUMMARY_JSON_CHARS)
    """What a :class:`ModelView` shows of the record (:class:`ModelSummary`), so reading
    a page of models parses kilobytes, not each record's megabyte of evaluations."""
    base_model_name: str = Field(max_length=100)
    base_model_tag: str | None = Field(default=None, max_length=100)
    base_weights_sha256: str = Field(max_length=64, index=True)
    """The base model's weights: which registered models derive from one base."""
    registered_at: datetime
    started_at: datetime
    finished_at: datetime


class ModelRunVersion(SQLModel, table=True):
    """A dataset version a registered model was trained on."""

    __tablename__ = "model_run_version"

    model_hash: str = Field(foreign_key="model_run.hash", primary_key=True, max_length=64)
    version_id: str = Field(
        foreign_key="dataset_version.id", primary_key=True, max_length=32, index=True
    )


# --- public schemas ---------------------------------------------------------------------


class ModelVersionRef(BaseModel):
    """A dataset version a model was trained on."""

    dataset_id: str = PublicField(max_length=32)
    number: int
    version_hash: str = PublicField(max_length=64)


class ModelMetrics(BaseModel):
    """Held-out retrieval of the base model (the record's first evaluation) and of the
    fine-tuned one (its last)."""

    base: EvalMetrics
    final: EvalMetrics


class ModelSummary(BaseModel):
    """The parts of a run record a :class:`ModelView` shows (``model_run.summary_json``)."""

    base_model: BaseModelInfo
    hyperparameters: dict[str, Any]
    metrics: ModelMetrics
    output: OutputWeights
    started_at: datetime
    finished_at: datetime

    @classmethod
    def of(cls, record: RunRecord) -> ModelSummary:
        """The summary of ``record``."""
        return cls(
            base_model=record.base_model,
            hyperparameters=record.hyperparameters,
            metrics=ModelMetrics(base=record.base_metrics, final=record.final_metrics),
            output=record.output,
            started_at=record.started_at,
            finished_at=record.finished_at,
        )


class ModelView(BaseModel):
    """A registered model (``POST``/``GET /models``)."""

    hash: str = PublicField(max_length=64)
    registrant: str = PublicField(max_length=42)
    base_model: BaseModelInfo
    hyperparameters: dict[str, Any]
    metrics: ModelMetrics
    output: OutputWeights
    dataset_versions: list[ModelVersionRef] = PublicField(max_length=MAX_MODEL_VERSIONS)
    registered_at: datetime
    started_at: datetime
    finished_at: datetime


class ModelPage(BaseModel):
    """One page of ``GET /models``, newest first; pass ``next_before`` as ``before``."""

    models: list[ModelView] = PublicField(max_length=MAX_MODEL_PAGE)
    next_before: str | None = PublicField(default=None, max_length=64)


class ContributorSamples(BaseModel):
    """A contributor and the number of their samples in a version (or in all of them)."""

    address: str = PublicField(max_length=42)
    samples: int


class LineageVersion(BaseModel):
    """One dataset version behind a model and its contributors."""

    dataset_id: str = PublicField(max_length=32)
    number: int
    version_hash: str = PublicField(max_length=64)
    samples: int
    contributors: list[ContributorSamples] = PublicField(max_length=MAX_LINEAGE_LIMIT)
    """By sample count, descending, then address."""


class LineageView(BaseModel):
    """``GET /models/{hash}/lineage``: the versions and contributors behind a model."""

    model: str = PublicField(max_length=64)
    dataset_versions: list[LineageVersion] = PublicField(max_length=MAX_MODEL_VERSIONS)
    contributors: list[ContributorSamples] = PublicField(max_length=MAX_LINEAGE_LIMIT)
    """Summed over the versions; by sample count, descending, then address."""
    truncated: bool
    """Whether any list was cut at ``limit``."""
