"""Datasets and their frozen versions under ``/datasets`` (``docs/api/datasets.md``).

Defining and freezing are for operators (``SHOTBANK_OPERATORS``); everything else is
public, metadata included, so trainers can judge a version before they buy it, and so
are a dataset's licence terms (``/terms``, the terms URI of its on-chain listings).
Shard bytes are not served here: downloads come with licences.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import FileResponse, PlainTextResponse

from backend.api.deps import CurrentAddress, EngineDep, SessionDep, SettingsDep
from backend.errors import ErrorResponse
from backend.models.datasets import (
    MAX_DATASET_PAGE,
    DatasetCreate,
    DatasetPage,
    DatasetVersionView,
    DatasetView,
    VersionCreate,
)
from backend.services import datasets
from shotbank.datasets.format import INDEX_NAME, MANIFEST_JSONL_NAME

#: Default page size of ``GET /datasets``.
DEFAULT_PAGE_SIZE: Final = 20

DatasetId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The dataset id.")]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="The version number.")]

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": ErrorResponse}
    for code in (
        status.HTTP_401_UNAUTHORIZED,
        status.HTTP_403_FORBIDDEN,
        status.HTTP_404_NOT_FOUND,
        status.HTTP_409_CONFLICT,
    )
}

router = APIRouter(prefix="/datasets", tags=["datasets"], responses=_ERRORS)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_dataset(
    body: DatasetCreate, db: SessionDep, settings: SettingsDep, caller: CurrentAddress
) -> DatasetView:
    """Define a dataset by a filter over accepted clips (operators only)."""
    datasets.require_operator(settings, caller)
    return datasets.create_dataset(db, request=body, created_by=caller, now=datetime.now(UTC))


@router.get("")
def list_datasets(
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_DATASET_PAGE)] = DEFAULT_PAGE_SIZE,
    after: Annotated[str | None, Query(pattern=r"^[0-9a-f]{32}$")] = None,
) -> DatasetPage:
    """Datasets in id order; pass ``next_after`` as ``after`` for the next page."""
    return datasets.list_datasets(db, limit=limit, after=after)


@router.get("/{dataset_id}")
def read_dataset(dataset_id: DatasetId, db: SessionDep, settings: SettingsDep) -> DatasetView:
    """A dataset's definition and its versions (with their listings), oldest first."""
    return datasets.dataset_view(db, dataset_id=dataset_id, settings=settings)


@router.get(
    "/{dataset_id}/terms",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
def read_terms(dataset_id: DatasetId, db: SessionDep) -> PlainTextResponse:
    """The dataset's licence terms as plain text (its listings' terms URI)."""
    return PlainTextResponse(datasets.licence_terms(db, dataset_id=dataset_id))


@router.post("/{dataset_id}/versions", status_code=status.HTTP_202_ACCEPTED)
def freeze_version(
    dataset_id: DatasetId,
    engine: EngineDep,
    settings: SettingsDep,
    caller: CurrentAddress,
    body: VersionCreate | None = None,
) -> DatasetVersionView:
    """Freeze the clips matching now into the next version (operators only; 202).

    The version is ``packing`` until the background packer has written its shards;
    409 when nothing matches.
    """
    datasets.require_operator(settings, caller)
    return datasets.freeze_version(
        engine,
        settings=settings,
        dataset_id=dataset_id,
        created_by=caller,
        now=datetime.now(UTC),
        shard_bytes=body.shard_bytes if body is not None else None,
        price=int(body.price) if body is not None and body.price is not None else None,
    )


@router.get("/{dataset_id}/versions/{number}")
def read_version(
    dataset_id: DatasetId, number: VersionNumber, db: SessionDep, settings: SettingsDep
) -> DatasetVersionView:
    """A version's summary: status, hash, samples, bytes, shards, contributors, listing."""
    return datasets.version_view(db, dataset_id=dataset_id, number=number, settings=settings)


@router.get(
    "/{dataset_id}/versions/{number}/manifest.jsonl",
    response_class=FileResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def read_manifest(
    dataset_id: DatasetId, number: VersionNumber, db: SessionDep, settings: SettingsDep
) -> FileResponse:
    """A ready version's manifest (JSON Lines; its SHA-256 is the version hash)."""
    path = datasets.version_file(
        db, settings=settings, dataset_id=dataset_id, number=number, name=MANIFEST_JSONL_NAME
    )
    return FileResponse(path, media_type="application/x-ndjson")


@router.get(
    "/{dataset_id}/versions/{number}/index.json",
    response_class=FileResponse,
    responses={200: {"content": {"application/json": {}}}},
)
def read_index(
    dataset_id: DatasetId, number: VersionNumber, db: SessionDep, settings: SettingsDep
) -> FileResponse:
    """A ready version's shard index (sizes, SHA-256 and CID per shard, sample ranges)."""
    path = datasets.version_file(
        db, settings=settings, dataset_id=dataset_id, number=number, name=INDEX_NAME
    )
    return FileResponse(path, media_type="application/json")
