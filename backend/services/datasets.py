"""Datasets and their frozen versions: define, freeze, pack, read (``docs/api/datasets.md``).

* :func:`create_dataset` stores a definition (operators only; the route checks
  :func:`require_operator`).
* :func:`freeze_version` snapshots the clips matching the dataset's filter now into
  ``dataset_version_sample`` rows in one transaction -- the version's immutable
  membership -- and leaves the version ``packing``, with its price (the request's, else
  the dataset's; ``None``: not for sale). An empty match makes no version. Once it is
  ``ready``, a priced version is listed on chain by ``backend.services.licences.Lister``.
* :func:`pack_next` (a background loop) packs the oldest ``packing`` version with
  :func:`backend.services.packing.pack_version`, reading clip bytes from the blob store,
  and marks it ``ready`` or ``failed``. It packs into ``datasets/packing/<version id>``
  (the hash is known only once packed) and then renames that to
  ``datasets/<version hash>``. Every step can be interrupted: a killed pack leaves only
  a staging directory (cleared by ``remove_partials`` when packing resumes), a pack
  killed after its rename is adopted when the same bytes are packed again, and a version
  stays ``packing`` until its row is updated, so the loop resumes it after a restart.
  Only one packer may run per ``SHOTBANK_VAR_DIR`` (one serving process).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.errors import (
    BackendError,
    DatasetEmptyMatchError,
    DatasetFilterInvalidError,
    DatasetNotFoundError,
    DatasetSlugTakenError,
    DatasetVersionExistsError,
    DatasetVersionInvalidError,
    DatasetVersionNotFoundError,
    NotAnOperatorError,
)
from backend.models.clips import Clip, clip_media
from backend.models.datasets import (
    MAX_DATASET_PAGE,
    MAX_PRICE_WEI,
    Dataset,
    DatasetCreate,
    DatasetPage,
    DatasetVersion,
    DatasetVersionSample,
    DatasetVersionStatus,
    DatasetVersionView,
    DatasetView,
)
from backend.models.scoring import ClipScoring
from backend.services.dataset_filter import DatasetFilter, matching_clips
from backend.services.licences import listing_view, market_address
from backend.services.packing import PackInput, pack_version, remove_partials
from ingest.blobstore import BlobStore
from ingest.errors import IngestError
from shotbank.datasets.format import (
    INDEX_NAME,
    MANIFEST_JSONL_NAME,
    SampleRecord,
    ShardIndex,
    read_index,
)

__all__ = [
    "create_dataset",
    "dataset_view",
    "freeze_version",
    "licence_terms",
    "list_datasets",
    "pack_next",
    "require_operator",
    "version_file",
    "version_view",
]

logger = logging.getLogger(__name__)

#: Media extension of a sample by the probed container family.
_EXTENSIONS: Final = {"mp4": "mp4", "matroska": "mkv", "webm": "webm", "mov": "mov"}
#: Membership rows read at a time while building a version's records.
_BATCH: Final = 500
#: Longest error text kept on a failed version.
_MAX_ERROR_CHARS: Final = 2000


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes; every time the backend stores is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def require_operator(settings: Settings, address: str) -> None:
    """Raise :class:`NotAnOperatorError` unless ``address`` is an operator."""
    if address.lower() not in {operator.lower() for operator in settings.operators}:
        raise NotAnOperatorError(
            f"Only operators may define or freeze datasets; {address} is not one "
            "(operators are listed in SHOTBANK_OPERATORS)."
        )


def parse_filter(document: dict[str, Any]) -> DatasetFilter:
    """``document`` as a :class:`DatasetFilter`, or :class:`DatasetFilterInvalidError`."""
    try:
        return DatasetFilter.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'filter'}: {error['msg']}"
            for error in exc.errors()[:10]
        )
        raise DatasetFilterInvalidError(f"The dataset filter is invalid: {problems}.") from None


def _get_dataset(db: Session, dataset_id: str) -> Dataset:
    dataset = db.get(Dataset, dataset_id)
    if dataset is None:
        raise DatasetNotFoundError(f"No dataset {dataset_id}.")
    return dataset


def _contributors(db: Session, version_id: str) -> int:
    count = db.exec(
        select(func.count(func.distinct(col(DatasetVersionSample.contributor)))).where(
            col(DatasetVersionSample.version_id) == version_id
        )
    ).one()
    return int(count)


class _Market:
    """The market facts a view needs, looked up once per request (a file read)."""

    def __init__(self, settings: Settings | None) -> None:
        self.settings = settings
        self.address = None if settings is None else market_address(settings)


def _version_view(
    db: Session, version: DatasetVersion, market: _Market | None = None
) -> DatasetVersionView:
    listing = None
    if market is not None and market.settings is not None:
        listing = listing_view(db, market.settings, version, market=market.address)
    return DatasetVersionView(
        dataset_id=version.dataset_id,
        number=version.number,
        status=version.status,
        version_hash=version.version_hash,
        samples=version.samples,
        contributors=_contributors(db, version.id),
        total_bytes=version.total_bytes,
        shard_bytes=version.shard_bytes,
        shards=version.shard_count,
        error=version.error,
        created_at=_aware(version.created_at),
        ready_at=_aware(version.ready_at) if version.ready_at else None,
        listing=listing,
    )


def _dataset_view(dataset: Dataset, versions: list[DatasetVersionView]) -> DatasetView:
    return DatasetView(
        id=dataset.id,
        slug=dataset.slug,
        title=dataset.title,
        description=dataset.description,
        filter=json.loads(dataset.filter_json),
        licence_terms=dataset.licence_terms,
        price=None if dataset.price is None else str(dataset.price),
        created_by=dataset.created_by,
        created_at=_aware(dataset.created_at),
        versions=versions,
    )


def create_dataset(
    db: Session, *, request: DatasetCreate, created_by: str, now: datetime
) -> DatasetView:
    """Store a new dataset definition; its slug must be free."""
    flt = parse_filter(request.filter)
    dataset = Dataset(
        slug=request.slug,
        title=request.title,
        description=request.description,
        filter_json=json.dumps(flt.document(), sort_keys=True),
        licence_terms=request.licence_terms,
        price=None if request.price is None else int(request.price),
        created_by=created_by,
        created_at=now,
    )
    db.add(dataset)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise DatasetSlugTakenError(f"A dataset with slug {request.slug!r} exists.") from None
    db.refresh(dataset)
    return _dataset_view(dataset, [])


def list_datasets(db: Session, *, limit: int, after: str | None = None) -> DatasetPage:
    """Datasets in id order (without their versions); ``after`` continues a listing."""
    limit = max(1, min(limit, MAX_DATASET_PAGE))
    query = select(Dataset).order_by(col(Dataset.id)).limit(limit + 1)
    if after is not None:
        query = query.where(col(Dataset.id) > after)
    found = list(db.exec(query).all())
    page = found[:limit]
    return DatasetPage(
        items=[_dataset_view(dataset, []) for dataset in page],
        next_after=page[-1].id if len(found) > limit else None,
    )


def dataset_view(db: Session, *, dataset_id: str, settings: Settings | None = None) -> DatasetView:
    """A dataset's definition and all its versions, oldest first (with each ready
    version's ``listing`` when ``settings`` are given)."""
    dataset = _get_dataset(db, dataset_id)
    versions = db.exec(
        select(DatasetVersion)
        .where(col(DatasetVersion.dataset_id) == dataset_id)
        .order_by(col(DatasetVersion.number))
    ).all()
    market = _Market(settings)
    return _dataset_view(dataset, [_version_view(db, version, market) for version in versions])


def licence_terms(db: Session, *, dataset_id: str) -> str:
    """The dataset's licence terms (what a listing's terms URI serves)."""
    return _get_dataset(db, dataset_id).licence_terms


def _get_version(db: Session, dataset_id: str, number: int) -> DatasetVersion:
    _get_dataset(db, dataset_id)
    version = db.exec(
        select(DatasetVersion).where(
            col(DatasetVersion.dataset_id) == dataset_id, col(DatasetVersion.number) == number
        )
    ).first()
    if version is None:
        raise DatasetVersionNotFoundError(f"Dataset {dataset_id} has no version {number}.")
    return version


def version_view(
    db: Session, *, dataset_id: str, number: int, settings: Settings | None = None
) -> DatasetVersionView:
    """A version's summary (with its ``listing`` when ``settings`` are given)."""
    return _version_view(db, _get_version(db, dataset_id, number), _Market(settings))


def version_file(
    db: Session, *, settings: Settings, dataset_id: str, number: int, name: str
) -> Path:
    """The path of a ready version's metadata file (``manifest.jsonl`` or ``index.json``)."""
    if name not in (MANIFEST_JSONL_NAME, INDEX_NAME):
        raise DatasetVersionNotFoundError(f"A version has no public file {name!r}.")
    version = _get_version(db, dataset_id, number)
    if version.status != DatasetVersionStatus.READY or version.storage_path is None:
        raise DatasetVersionNotFoundError(
            f"Version {number} of dataset {dataset_id} is {version.status.value}, not ready: "
            "its files are not available."
        )
    return settings.var_dir / version.storage_path / name


def _refuse_identical(
    db: Session, dataset_id: str, *, members: list[tuple[str, str]], shard_bytes: int
) -> None:
    """Refuse a freeze that would repeat the newest live version: the same clips packed
    with the same shard target give the same bytes and the same version hash."""
    newest = db.exec(
        select(DatasetVersion)
        .where(
            col(DatasetVersion.dataset_id) == dataset_id,
            col(DatasetVersion.status) != DatasetVersionStatus.FAILED,
        )
        .order_by(col(DatasetVersion.number).desc())
        .limit(1)
    ).first()
    if newest is None or newest.shard_bytes != shard_bytes or newest.samples != len(members):
        return
    existing = db.exec(
        select(col(DatasetVersionSample.clip_id))
        .where(col(DatasetVersionSample.version_id) == newest.id)
        .order_by(col(DatasetVersionSample.clip_id))
    ).all()
    if list(existing) == sorted(clip_id for clip_id, _owner in members):
        raise DatasetVersionExistsError(
            f"Nothing changed since version {newest.number} of dataset {dataset_id}: the "
            "same clips with the same shard target would make an identical version."
        )


def freeze_version(
    engine: Engine,
    *,
    settings: Settings,
    dataset_id: str,
    created_by: str,
    now: datetime,
    shard_bytes: int | None = None,
    price: int | None = None,
) -> DatasetVersionView:
    """Snapshot the dataset's current match as its next version, left ``packing``.

    One transaction writes the version row and its membership, so a version either
    has all its samples or does not exist. Raises :class:`DatasetEmptyMatchError` when
    no accepted clip matches. ``price`` (wei) defaults to the dataset's.
    """
    if price is not None and not 1 <= price <= MAX_PRICE_WEI:
        raise DatasetVersionInvalidError(f"A price is 1 .. 10**36 wei, not {price}.")
    with Session(engine) as db:
        dataset = _get_dataset(db, dataset_id)
        flt = parse_filter(json.loads(dataset.filter_json))
        members = [(clip.id, clip.owner) for clip in matching_clips(db, flt)]
        if not members:
            raise DatasetEmptyMatchError(
                f"No accepted clip matches dataset {dataset.slug!r} now; there is nothing "
                "to freeze (no version was made)."
            )
        latest = db.exec(
            select(func.max(col(DatasetVersion.number))).where(
                col(DatasetVersion.dataset_id) == dataset_id
            )
        ).one()
        target = shard_bytes or settings.dataset_shard_bytes
        _refuse_identical(db, dataset_id, members=members, shard_bytes=target)
        version = DatasetVersion(
            dataset_id=dataset_id,
            number=(latest or 0) + 1,
            samples=len(members),
            shard_bytes=target,
            price=price if price is not None else dataset.price,
            created_by=created_by,
            created_at=now,
        )
        db.add(version)
        db.flush()
        db.add_all(
            DatasetVersionSample(version_id=version.id, clip_id=clip_id, contributor=owner)
            for clip_id, owner in members
        )
        try:
            db.commit()
        except IntegrityError:
            # Another freeze of this dataset took the same number at the same time.
            db.rollback()
            raise DatasetVersionExistsError(
                f"Dataset {dataset_id} was frozen concurrently; try again."
            ) from None
        db.refresh(version)
        logger.info(
            "dataset %s version %d frozen: %d samples", dataset_id, version.number, len(members)
        )
        return _version_view(db, version, _Market(settings))


def _records(db: Session, version_id: str, blobs: BlobStore) -> Iterator[PackInput]:
    """The version's samples as pack inputs, in clip-id order, read in batches."""
    after = ""
    while True:
        rows = db.exec(
            select(Clip, ClipScoring)
            .join(DatasetVersionSample, col(DatasetVersionSample.clip_id) == col(Clip.id))
            .join(ClipScoring, col(ClipScoring.clip_id) == col(Clip.id), isouter=True)
            .where(col(DatasetVersionSample.version_id) == version_id, col(Clip.id) > after)
            .order_by(col(Clip.id))
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for clip, scoring in rows:
            after = clip.id
            yield _record(clip, scoring), _opener(blobs, clip.cid)


def _opener(blobs: BlobStore, cid: str) -> Any:
    return lambda: blobs.open(cid)


def _record(clip: Clip, scoring: ClipScoring | None) -> SampleRecord:
    media = clip_media(clip)
    if media is None:
        raise DatasetVersionInvalidError(f"Clip {clip.id} has no probed media facts.")
    annotation = json.loads(clip.annotation_json)
    decided = scoring.decided_at if scoring and scoring.decided_at else clip.updated_at
    try:
        return SampleRecord(
            key=clip.id,
            clip_id=clip.id,
            cid=clip.cid,
            sha256=clip.sha256,
            size_bytes=clip.size_bytes,
            ext=_EXTENSIONS.get(media.container, "mp4"),
            media=media.model_dump(mode="json", exclude_none=True),
            annotation=annotation,
            scores=json.loads(clip.scores_json) if clip.scores_json else {},
            contributor=clip.owner,
            licence=annotation.get("rights") or {},
            accepted_at=_aware(decided),
        )
    except ValidationError as exc:
        raise DatasetVersionInvalidError(
            f"Clip {clip.id} cannot be a sample: {exc.errors()[0]['msg']}"
        ) from None


def _pack_dir(settings: Settings, version_id: str) -> Path:
    return settings.datasets_path / "packing" / version_id


def _pack(settings: Settings, version: DatasetVersion, db: Session, blobs: BlobStore) -> ShardIndex:
    """Pack ``version`` into its build directory (or reuse a finished build there)."""
    build = _pack_dir(settings, version.id)
    remove_partials(build)
    if (build / INDEX_NAME).is_file():
        return read_index(build / INDEX_NAME)
    if build.exists():
        shutil.rmtree(build)
    return pack_version(_records(db, version.id, blobs), build, shard_bytes=version.shard_bytes)


def _finish(
    engine: Engine, settings: Settings, version_id: str, index: ShardIndex, now: datetime
) -> None:
    """Move the build under its hash and mark the version ready (or failed as a repeat)."""
    build = _pack_dir(settings, version_id)
    final = settings.datasets_path / index.version_hash
    with Session(engine) as db:
        twin = db.exec(
            select(DatasetVersion).where(
                col(DatasetVersion.version_hash) == index.version_hash,
                col(DatasetVersion.id) != version_id,
            )
        ).first()
        if twin is not None:
            shutil.rmtree(build, ignore_errors=True)
            _fail(
                engine,
                version_id,
                f"The version is identical to version {twin.number} of its dataset (same "
                f"clips and shard target, hash {index.version_hash}); nothing changed.",
            )
            return
        if final.exists():
            # A pack killed after its rename: the same bytes are already in place.
            shutil.rmtree(build, ignore_errors=True)
        else:
            build.rename(final)
        version = db.get(DatasetVersion, version_id)
        assert version is not None
        version.status = DatasetVersionStatus.READY
        version.version_hash = index.version_hash
        version.samples = index.samples
        version.total_bytes = sum(shard.size for shard in index.shards)
        version.shard_count = len(index.shards)
        version.storage_path = str(final.relative_to(settings.var_dir))
        version.ready_at = now
        db.add(version)
        db.commit()


def _fail(engine: Engine, version_id: str, reason: str) -> None:
    with Session(engine) as db:
        version = db.get(DatasetVersion, version_id)
        assert version is not None
        version.status = DatasetVersionStatus.FAILED
        version.error = reason[:_MAX_ERROR_CHARS]
        db.add(version)
        db.commit()
    logger.warning("dataset version %s failed: %s", version_id, reason)


def pack_next(
    engine: Engine, *, settings: Settings, blobs: BlobStore, now: datetime | None = None
) -> bool:
    """Pack the oldest ``packing`` version; False when there was none (a loop step)."""
    with Session(engine) as db:
        version = db.exec(
            select(DatasetVersion)
            .where(col(DatasetVersion.status) == DatasetVersionStatus.PACKING)
            .order_by(col(DatasetVersion.created_at), col(DatasetVersion.id))
        ).first()
        if version is None:
            return False
        version_id = version.id
        try:
            index = _pack(settings, version, db, blobs)
        except (BackendError, IngestError) as exc:
            # A damaged or lost blob, a clip that makes no sample: packing it again
            # would fail the same way, so the version fails with the reason.
            _fail(engine, version_id, str(exc))
            return True
    _finish(engine, settings, version_id, index, now or datetime.now(UTC))
    return True
