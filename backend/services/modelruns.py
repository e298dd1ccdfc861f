"""Registering fine-tuned models and reading their lineage (``docs/api/models.md``).

* :func:`register_model` -- a run record (:class:`shotbank.runs.RunRecord`) becomes a
  model known by its output weights' SHA-256. The record's dataset version must be a
  ready version of this backend (404), the registrant must hold a licence for it, as for
  a shard download (402; operators exempt; ``backend.services.licences``), and the
  record's sample count must be the version's (422). Registering is idempotent: the
  identical record by the same address answers the stored model (``created`` False); the
  hash with another record or another registrant is a 409. Records are compared as
  canonical JSON, so key order and number spelling do not matter.
* :func:`model_view`, :func:`list_models` -- the public views, newest first, keyset-paged
  on ``(registered_at, hash)``.
* :func:`lineage` -- the model's versions and their contributors with sample counts,
  counted by the database (``GROUP BY dataset_version_sample.contributor``); the
  top-level list sums over the versions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_utils.address import to_checksum_address
from sqlalchemy import and_, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.errors import (
    DatasetVersionNotFoundError,
    InvalidCursorError,
    ModelExistsError,
    ModelNotFoundError,
    RunDatasetMismatchError,
)
from backend.models.datasets import DatasetVersion, DatasetVersionSample, DatasetVersionStatus
from backend.models.modelruns import (
    MAX_LINEAGE_LIMIT,
    MAX_MODEL_PAGE,
    ContributorSamples,
    LineageVersion,
    LineageView,
    ModelPage,
    ModelRun,
    ModelRunVersion,
    ModelSummary,
    ModelVersionRef,
    ModelView,
)
from backend.services import licences
from shotbank.runs import RunRecord

__all__ = ["RegisteredModel", "lineage", "list_models", "model_view", "register_model"]


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """What :func:`register_model` did: the model, and whether this call created it."""

    view: ModelView
    created: bool


def _aware(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; they were stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _version_refs(db: Session, hashes: Sequence[str]) -> dict[str, list[ModelVersionRef]]:
    """The dataset versions of each model in ``hashes``, in (dataset, number) order."""
    if not hashes:
        return {}
    rows = db.exec(
        select(
            col(ModelRunVersion.model_hash),
            col(DatasetVersion.dataset_id),
            col(DatasetVersion.number),
            col(DatasetVersion.version_hash),
        )
        .join(DatasetVersion, col(DatasetVersion.id) == col(ModelRunVersion.version_id))
        .where(col(ModelRunVersion.model_hash).in_(hashes))
        .order_by(col(DatasetVersion.dataset_id), col(DatasetVersion.number))
    ).all()
    refs: dict[str, list[ModelVersionRef]] = defaultdict(list)
    for model_hash, dataset_id, number, version_hash in rows:
        refs[model_hash].append(
            ModelVersionRef(dataset_id=dataset_id, number=number, version_hash=version_hash or "")
        )
    return refs


def _view(run: ModelRun, refs: list[ModelVersionRef]) -> ModelView:
    summary = ModelSummary.model_validate_json(run.summary_json)
    return ModelView(
        hash=run.hash,
        registrant=run.registrant,
        base_model=summary.base_model,
        hyperparameters=summary.hyperparameters,
        metrics=summary.metrics,
        output=summary.output,
        dataset_versions=refs,
        registered_at=_aware(run.registered_at),
        started_at=summary.started_at,
        finished_at=summary.finished_at,
    )


def _get_run(db: Session, model_hash: str) -> ModelRun:
    run = db.get(ModelRun, model_hash)
    if run is None:
        raise ModelNotFoundError(f"No model with hash {model_hash} is registered.")
    return run


def model_view(db: Session, *, model_hash: str) -> ModelView:
    """The registered model ``model_hash`` (404 ``model_not_found``)."""
    run = _get_run(db, model_hash)
    return _view(run, _version_refs(db, [run.hash]).get(run.hash, []))


def _existing(run: ModelRun, *, record_json: str, registrant: str) -> None:
    """Raise unless ``run`` is this very registration (same record, same address)."""
    if run.registrant != registrant or run.record_json != record_json:
        raise ModelExistsError(
            f"Model {run.hash} is registered already"
            + (
                " by another address."
                if run.registrant != registrant
                else " with another run record."
            )
        )


def register_model(
    db: Session, settings: Settings, *, record: RunRecord, registrant: str, now: datetime
) -> RegisteredModel:
    """Register the model of the run ``record`` for ``registrant`` (see the module)."""
    registrant = to_checksum_address(registrant)
    version_hash = record.dataset.version_hash
    version = db.exec(
        select(DatasetVersion).where(col(DatasetVersion.version_hash) == version_hash)
    ).first()
    if version is None or version.status != DatasetVersionStatus.READY:
        raise DatasetVersionNotFoundError(
            f"No ready dataset version of this backend has hash {version_hash}: the run was "
            "not trained on a version from here."
        )
    licences.require_access(db, settings, version, address=registrant)
    if record.dataset.samples != version.samples:
        raise RunDatasetMismatchError(
            f"The run record counts {record.dataset.samples} samples but version "
            f"{version.number} of dataset {version.dataset_id} ({version_hash}) has "
            f"{version.samples}."
        )
    record_json = record.canonical_json()
    model_hash = record.model_hash
    found = db.get(ModelRun, model_hash)
    if found is not None:
        _existing(found, record_json=record_json, registrant=registrant)
        return RegisteredModel(model_view(db, model_hash=model_hash), created=False)
    run = ModelRun(
        hash=model_hash,
        registrant=registrant,
        record_json=record_json,
        summary_json=ModelSummary.of(record).model_dump_json(),
        base_model_name=record.base_model.name,
        base_model_tag=record.base_model.tag,
        base_weights_sha256=record.base_model.weights_sha256,
        registered_at=now,
        started_at=record.started_at,
        finished_at=record.finished_at,
    )
    db.add(run)
    db.add(ModelRunVersion(model_hash=model_hash, version_id=version.id))
    try:
        db.commit()
    except IntegrityError:
        # Registered concurrently: the same registration is a repeat, another a conflict.
        db.rollback()
        found = db.get(ModelRun, model_hash)
        if found is None:
            raise
        _existing(found, record_json=record_json, registrant=registrant)
        return RegisteredModel(model_view(db, model_hash=model_hash), created=False)
    return RegisteredModel(model_view(db, model_hash=model_hash), created=True)


def list_models(
    db: Session, *, limit: int, registrant: str | None = None, before: str | None = None
) -> ModelPage:
    """Registered models, newest first: ``limit`` of them registered before the model
    ``before`` (422 ``invalid_cursor`` when no model has that hash), optionally only
    ``registrant``'s."""
    limit = max(1, min(limit, MAX_MODEL_PAGE))
    query = select(ModelRun)
    if registrant is not None:
        query = query.where(col(ModelRun.registrant) == to_checksum_address(registrant))
    if before is not None:
        cursor = db.get(ModelRun, before)
        if cursor is None:
            raise InvalidCursorError(f"No model with hash {before} is registered: no page follows.")
        query = query.where(
            or_(
                col(ModelRun.registered_at) < cursor.registered_at,
                and_(
                    col(ModelRun.registered_at) == cursor.registered_at,
                    col(ModelRun.hash) < cursor.hash,
                ),
            )
        )
    runs = db.exec(
        query.order_by(col(ModelRun.registered_at).desc(), col(ModelRun.hash).desc()).limit(
            limit + 1
        )
    ).all()
    page = list(runs[:limit])
    refs = _version_refs(db, [run.hash for run in page])
    return ModelPage(
        models=[_view(run, refs.get(run.hash, [])) for run in page],
        next_before=page[-1].hash if len(runs) > limit else None,
    )


def _contributors(
    db: Session, *, where: Any, join_models: bool, limit: int
) -> list[ContributorSamples]:
    """Contributors and their sample counts under ``where``, by count then address, at
    most ``limit + 1`` (one more than asked: the caller learns that the list was cut)."""
    samples = func.count().label("samples")
    query = select(col(DatasetVersionSample.contributor), samples)
    if join_models:
        query = query.join(
            ModelRunVersion,
            col(ModelRunVersion.version_id) == col(DatasetVersionSample.version_id),
        )
    rows = db.exec(
        query.where(where)
        .group_by(col(DatasetVersionSample.contributor))
        .order_by(samples.desc(), col(DatasetVersionSample.contributor))
        .limit(limit + 1)
    ).all()
    return [ContributorSamples(address=address, samples=count) for address, count in rows]


def lineage(db: Session, *, model_hash: str, limit: int) -> LineageView:
    """The dataset versions and contributors behind the model ``model_hash`` (404 when
    it is not registered); each list holds at most ``limit`` entries."""
    limit = max(1, min(limit, MAX_LINEAGE_LIMIT))
    run = _get_run(db, model_hash)
    versions = db.exec(
        select(DatasetVersion)
        .join(ModelRunVersion, col(ModelRunVersion.version_id) == col(DatasetVersion.id))
        .where(col(ModelRunVersion.model_hash) == run.hash)
        .order_by(col(DatasetVersion.dataset_id), col(DatasetVersion.number))
    ).all()
    truncated = False
    entries = []
    for version in versions:
        contributors = _contributors(
            db,
            where=col(DatasetVersionSample.version_id) == version.id,
            join_models=False,
            limit=limit,
        )
        truncated |= len(contributors) > limit
        entries.append(
            LineageVersion(
                dataset_id=version.dataset_id,
                number=version.number,
                version_hash=version.version_hash or "",
                samples=version.samples,
                contributors=contributors[:limit],
            )
        )
    overall = _contributors(
        db, where=col(ModelRunVersion.model_hash) == run.hash, join_models=True, limit=limit
    )
    truncated |= len(overall) > limit
    return LineageView(
        model=run.hash,
        dataset_versions=entries,
        contributors=overall[:limit],
        truncated=truncated,
    )
