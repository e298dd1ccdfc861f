"""A dataset version looked up by its hash: ``GET /dataset-versions/{version_hash}`` (public).

The chain knows a version only by its id (``0x`` + version hash: ``DatasetMarket``'s
``versionId``); a validator node checking an epoch's dataset sales
(``docs/api/rewards.md``, "Dataset sales") asks here which backend version a sold id is,
and where its manifest is, to count the samples of each contributor itself. 404
``dataset_version_not_found`` when the backend has no ready version of that hash: its
sales stay in the general pool.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Path, status
from pydantic import Field
from sqlmodel import Session, col, select

from backend.api.deps import SessionDep
from backend.errors import DatasetVersionNotFoundError, ErrorResponse
from backend.models.datasets import DatasetVersion, DatasetVersionStatus, DatasetVersionView
from backend.services import datasets

__all__ = ["DatasetVersionLookup", "router", "version_by_hash"]

#: Longest manifest path served (``/api/v1/datasets/<32>/versions/<int>/manifest.jsonl``).
_MAX_URL_CHARS: Final = 200

VersionHash = Annotated[
    str, Path(pattern=r"^[0-9a-f]{64}$", description="The version hash (64 lower-case hex).")
]

router = APIRouter(
    prefix="/dataset-versions",
    tags=["datasets"],
    responses={status.HTTP_404_NOT_FOUND: {"model": ErrorResponse}},
)


class DatasetVersionLookup(DatasetVersionView):
    """A version's summary and the path of its ``manifest.jsonl`` (under the API root)."""

    manifest_url: str = Field(max_length=_MAX_URL_CHARS)
    """``/api/v1/datasets/{dataset_id}/versions/{number}/manifest.jsonl``."""


def version_by_hash(db: Session, *, version_hash: str) -> DatasetVersionLookup:
    """The ready version whose manifest hashes to ``version_hash``; 404 otherwise."""
    row = db.exec(
        select(DatasetVersion).where(col(DatasetVersion.version_hash) == version_hash)
    ).first()
    if row is None or row.status != DatasetVersionStatus.READY:
        raise DatasetVersionNotFoundError(f"No ready dataset version has hash {version_hash}.")
    view = datasets.version_view(db, dataset_id=row.dataset_id, number=row.number)
    return DatasetVersionLookup(
        **view.model_dump(),
        manifest_url=(f"/api/v1/datasets/{view.dataset_id}/versions/{view.number}/manifest.jsonl"),
    )


@router.get("/{version_hash}")
def read_version_by_hash(version_hash: VersionHash, db: SessionDep) -> DatasetVersionLookup:
    """The dataset version of this hash (the on-chain ``versionId`` without ``0x``)."""
    return version_by_hash(db, version_hash=version_hash)
