"""The ingest pipeline: how a submitted clip goes from ``received`` to ``queued``.

State machine (the part of ``docs/api/clips.md`` "Lifecycle" this module drives)::

    received ──claim_next──> probing ──process_clip──> queued
                                │            ├───────> rejected  a verdict on the bytes or
                                │            │                   the annotation (media.*,
                                │            │                   annotation.*)
                                │            ├───────> received  no verdict, attempts left
                                │            └───────> failed    no verdict, attempts used
                                └──recover_stale──> received | failed   (worker died)

Claims
    :func:`claim_next` moves one ``received`` row to ``probing`` with one conditional
    ``UPDATE ... WHERE id = ? AND status = 'received'`` (on PostgreSQL the candidate is
    also picked ``FOR UPDATE SKIP LOCKED``, so concurrent workers do not even contend),
    setting ``claimed_at`` and ``attempts + 1``. A claim is named by ``(id, attempts)``:
    every later transition of it is conditional on ``status = 'probing' AND attempts =
    n``, so a worker whose claim was declared stale (and perhaps taken again by another
    worker) can never overwrite what the newer claim decided.

Verdicts and retries
    :class:`~ingest.errors.MediaRejectedError` from sniffing or probing, and an
    annotation that contradicts the media (a keyframe after the end, an audio section
    on a silent clip), are verdicts: ``rejected`` with reasons, the upload file deleted,
    ``content_key`` kept (the same bytes again are a duplicate of a rejected clip).
    Probe timeouts, resource limits, worker crashes, an unreachable blob store and any
    unexpected exception are not: the clip goes back to ``received`` until
    ``ingest_max_attempts`` claims were spent, then ``failed`` with ``content_key``
    ``NULL`` (the content may be submitted again). Bytes that are gone or no longer
    match their recorded digest fail at once: retrying cannot help.

Crash safety: no row ever points to a missing blob
    Rows point to blobs once ``queued`` (``cid``) and through ``poster_cid``. Both
    blobs are stored *before* the one ``UPDATE`` that sets ``queued`` and
    ``poster_cid``, so wherever the process dies the database holds either the old
    claim or the finished row. A dead worker's clip stays ``probing`` until
    :func:`recover_stale` hands it back; the retry then finds one of:

    * the upload file, nothing stored: it starts over;
    * no upload file, the blob present (the move into the store happened, the final
      ``UPDATE`` did not): it checks the stored blob's size, probes the stored bytes
      and carries on from there (nothing is moved twice);
    * neither: the bytes are lost; ``failed`` (``blob.not_found``).

    A poster stored by an attempt that died before its ``UPDATE`` is left unreferenced
    (a leak, never a dangling pointer). Blobs are deleted by this module only when no
    other row that is neither withdrawn nor failed names them, and only while the clip
    still holds its content key (so no new clip with the same bytes can appear and need
    them): a failed clip frees its key after its bytes are released, and
    :func:`recover_stale` finishes a release a crash interrupted. Upload files are
    deleted after the verdict is committed; one left by a crash in between is removed
    by :func:`sweep_leftovers`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.models.clips import Clip, ClipStatus
from backend.models.media import MediaFacts
from backend.models.uploads import Upload, UploadState
from backend.services.clips import RELEASED
from backend.services.uploads import upload_file, utcnow
from ingest.blobstore import BlobStore, LocalBlobStore
from ingest.cid import digest_file
from ingest.errors import (
    BlobIntegrityError,
    BlobNotFoundError,
    BlobStoreError,
    MediaRejectedError,
    ProbeFailedError,
)
from ingest.probe import ProbeResult, Thumbnail, probe_file
from ingest.sniff import sniff_file
from shotbank.annotation import Annotation
from shotbank.annotation.media import media_issues

__all__ = [
    "INTERRUPTED_CODE",
    "LEFTOVER_AGE_S",
    "RECOVER_BATCH",
    "TEMP_PREFIX",
    "UNEXPECTED_CODE",
    "claim_next",
    "ingest_once",
    "media_facts",
    "process_clip",
    "recover_stale",
    "sweep_leftovers",
]

logger = logging.getLogger(__name__)

#: Reason code of a clip whose ingest failed with an unexpected error (details logged).
UNEXPECTED_CODE: Final = "ingest.error"
#: Reason code of a clip whose workers died (stale claims) until attempts ran out.
INTERRUPTED_CODE: Final = "ingest.interrupted"
#: Prefix of the pipeline's temporary files in the upload folder.
TEMP_PREFIX: Final = ".ingest-"
#: Temporary files and row-less upload files younger than this are never swept.
LEFTOVER_AGE_S: Final = 3600.0
#: Rows looked at per call of :func:`recover_stale`.
RECOVER_BATCH: Final = 500

_CLAIM_TRIES: Final = 16
_SWEEP_BATCH: Final = 500
#: What recovery reads of a row (not the annotation, which may be large).
_CLAIM_COLUMNS: Final = (
    col(Clip.id),
    col(Clip.attempts),
    col(Clip.revision),
    col(Clip.upload_id),
    col(Clip.cid),
    col(Clip.sha256),
    col(Clip.size_bytes),
)
_MAX_MESSAGE: Final = 1000
_UPLOAD_NAME: Final = re.compile(r"^[0-9a-f]{32}$")
#: Statuses whose upload file is still needed (ingest has not finished with it).
_IN_INGEST: Final = (ClipStatus.RECEIVED, ClipStatus.PROBING)


def _reason(code: str, message: str, field_path: str | None = None) -> dict[str, str]:
    reason = {"code": code, "message": message[:_MAX_MESSAGE]}
    if field_path is not None:
        reason["field"] = field_path
    return reason


# --- claiming -------------------------------------------------------------------------


def claim_next(engine: Engine, *, now: datetime | None = None) -> str | None:
    """Claim the oldest ``received`` clip (``received → probing``); its id, or None.

    Safe with any number of worker threads and processes: the transition is a
    compare-and-set on the status, so exactly one caller wins each clip.
    """
    moment = now or utcnow()
    with Session(engine) as db:
        postgres = db.get_bind().dialect.name == "postgresql"
        for _ in range(_CLAIM_TRIES):
            query = (
                select(Clip.id)
                .where(col(Clip.status) == ClipStatus.RECEIVED)
                .order_by(col(Clip.created_at), col(Clip.id))
                .limit(1)
            )
            if postgres:
                query = query.with_for_update(skip_locked=True)
            clip_id = db.exec(query).first()
            if clip_id is None:
                db.rollback()
                return None
            done = db.execute(
                update(Clip)
                .where(col(Clip.id) == clip_id, col(Clip.status) == ClipStatus.RECEIVED)
                .values(
                    status=ClipStatus.PROBING,
                    claimed_at=moment,
                    attempts=col(Clip.attempts) + 1,
                    updated_at=moment,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(done, "rowcount", 0) == 1:
                db.commit()
                return clip_id
            db.rollback()  # another worker took it between our read and write
    return None


# --- processing -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Queued:
    media: MediaFacts
    poster_cid: str | None


@dataclass(frozen=True)
class _Rejected:
    reasons: list[dict[str, str]]


@dataclass(frozen=True)
class _NoVerdict:
    reason: dict[str, str]
    #: Retrying cannot help (the bytes are gone or damaged): fail now.
    final: bool = False


_Outcome = _Queued | _Rejected | _NoVerdict


class _BytesMissingError(Exception):
    """Neither the upload file nor the stored blob holds the clip's bytes."""


@dataclass
class _Claim:
    """The clip as claimed: what processing needs, detached from any session."""

    id: str
    attempts: int
    revision: int
    upload_id: str
    cid: str
    sha256: str
    size_bytes: int
    annotation_json: str
    stored: bool = field(default=False)
    """The bytes were found in the blob store (an earlier attempt moved them)."""


def media_facts(result: ProbeResult) -> MediaFacts:
    """The compact media facts stored for a clip, from a probe result."""
    video = result.video
    width, height = video.width, video.height
    if video.rotation % 180 == 90:
        width, height = height, width
    audio = result.primary_audio
    loudness = audio.loudness if audio is not None else None
    return MediaFacts(
        container=result.container.value,
        duration_s=result.duration_s,
        width=width,
        height=height,
        frame_rate=video.frame_rate,
        video_codec=video.codec,
        audio_codec=audio.codec if audio is not None else None,
        sample_rate_hz=audio.sample_rate if audio is not None else None,
        channels=audio.channels if audio is not None else None,
        integrated_loudness_lufs=loudness.integrated_lufs if loudness is not None else None,
        true_peak_dbtp=loudness.true_peak_dbtp if loudness is not None else None,
        stream_count=result.stream_count,
        bit_rate=result.bit_rate,
    )


def _temp_path(settings: Settings, clip_id: str, kind: str) -> Path:
    settings.upload_path.mkdir(parents=True, exist_ok=True)
    return settings.upload_path / f"{TEMP_PREFIX}{kind}-{clip_id}-{secrets.token_hex(8)}"


@contextlib.contextmanager
def _media_file(claim: _Claim, *, settings: Settings, blobs: BlobStore) -> Iterator[Path]:
    """A local path holding the clip's bytes: the upload file, or the stored blob."""
    source = upload_file(settings, claim.upload_id)
    if source.is_file():
        yield source
        return
    if not blobs.exists(claim.cid):
        raise _BytesMissingError
    # An earlier attempt moved the bytes into the store and died before its UPDATE.
    claim.stored = True
    if blobs.size(claim.cid) != claim.size_bytes:
        raise BlobIntegrityError("The stored bytes of the clip do not have its recorded size.")
    logger.info("clip %s: upload already moved into the blob store; resuming", claim.id)
    if isinstance(blobs, LocalBlobStore):
        yield blobs.path_for(claim.cid)
        return
    temp = _temp_path(settings, claim.id, "media")
    try:
        with blobs.open(claim.cid) as reader, temp.open("xb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def _store_poster(
    thumbnail: Thumbnail | None, *, settings: Settings, blobs: BlobStore, clip_id: str
) -> str | None:
    if thumbnail is None:
        return None
    temp = _temp_path(settings, clip_id, "poster")
    try:
        with temp.open("xb") as handle:
            handle.write(thumbnail.data)
        digest = digest_file(temp)
        return blobs.put_file(
            temp, cid=digest.cid, sha256=digest.sha256, size=digest.size, move=True
        ).cid
    finally:
        temp.unlink(missing_ok=True)


def _ingest(claim: _Claim, *, settings: Settings, blobs: BlobStore) -> _Outcome:
    annotation = Annotation.model_validate_json(claim.annotation_json)
    with _media_file(claim, settings=settings, blobs=blobs) as path:
        try:
            result = probe_file(path, limits=settings.probe_limits, sniffed=sniff_file(path))
        except MediaRejectedError as exc:
            return _Rejected([_reason(exc.code, exc.message)])
    issues = media_issues(annotation, result.duration_s, has_audio=bool(result.audio))
    if issues:
        return _Rejected(
            [
                _reason(f"annotation.{issue.type}", issue.msg, ".".join(map(str, issue.loc)))
                for issue in issues
            ]
        )
    if not claim.stored:
        source = upload_file(settings, claim.upload_id)
        try:
            blobs.put_file(
                source, cid=claim.cid, sha256=claim.sha256, size=claim.size_bytes, move=True
            )
        except FileNotFoundError:
            # Another claim of this clip (ours was declared stale) moved it first.
            if not blobs.exists(claim.cid):
                raise
    poster_cid = _store_poster(result.thumbnail, settings=settings, blobs=blobs, clip_id=claim.id)
    return _Queued(media=media_facts(result), poster_cid=poster_cid)


def _load_claim(engine: Engine, clip_id: str) -> _Claim | ClipStatus | None:
    with Session(engine) as db:
        clip = db.get(Clip, clip_id)
        if clip is None:
            return None
        if clip.status != ClipStatus.PROBING:
            return ClipStatus(clip.status)
        return _Claim(
            id=clip.id,
            attempts=clip.attempts,
            revision=clip.revision,
            upload_id=clip.upload_id,
            cid=clip.cid,
            sha256=clip.sha256,
            size_bytes=clip.size_bytes,
            annotation_json=clip.annotation_json,
        )


def process_clip(
    engine: Engine,
    *,
    settings: Settings,
    blobs: BlobStore,
    clip_id: str,
    now: datetime | None = None,
) -> ClipStatus | None:
    """Take a claimed (``probing``) clip to its next status and return that status.

    See the module docstring for the steps, the verdicts and what is retried. Never
    raises for a problem of the clip itself and never leaves it ``probing`` (short of
    the process dying, which :func:`recover_stale` repairs). A clip that is not
    ``probing`` is left alone (its status is returned; None for an unknown id).
    """
    claim = _load_claim(engine, clip_id)
    if not isinstance(claim, _Claim):
        logger.warning("clip %s is not claimed for ingest (status %s); skipped", clip_id, claim)
        return claim
    started = time.monotonic()
    outcome: _Outcome
    try:
        outcome = _ingest(claim, settings=settings, blobs=blobs)
    except ProbeFailedError as exc:
        outcome = _NoVerdict(_reason(exc.code, exc.message))
    except _BytesMissingError:
        outcome = _NoVerdict(
            _reason(BlobNotFoundError.code, "The clip's bytes are lost; upload it again."),
            final=True,
        )
    except (BlobIntegrityError, BlobNotFoundError) as exc:
        outcome = _NoVerdict(_reason(exc.code, exc.message), final=True)
    except BlobStoreError as exc:
        logger.warning("clip %s: blob store error: %s", clip_id, exc.message)
        outcome = _NoVerdict(_reason(exc.code, "The blob store could not store the clip."))
    except Exception:
        logger.exception("clip %s: ingest failed unexpectedly", clip_id)
        outcome = _NoVerdict(_reason(UNEXPECTED_CODE, "Ingest failed with an internal error."))
    status = _settle(engine, settings=settings, blobs=blobs, claim=claim, outcome=outcome, now=now)
    logger.info(
        "clip %s: %s after %.1f s (attempt %d)",
        clip_id,
        status,
        time.monotonic() - started,
        claim.attempts,
    )
    return status


def _cas(engine: Engine, claim: _Claim, values: dict[str, Any], *, same_revision: bool) -> bool:
    """Apply ``values`` if the claim still holds; whether it did."""
    conditions = [
        col(Clip.id) == claim.id,
        col(Clip.status) == ClipStatus.PROBING,
        col(Clip.attempts) == claim.attempts,
    ]
    if same_revision:
        conditions.append(col(Clip.revision) == claim.revision)
    with Session(engine) as db:
        done = db.execute(
            update(Clip)
            .where(*conditions)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        db.commit()
        return getattr(done, "rowcount", 0) == 1


def _status_of(engine: Engine, clip_id: str) -> ClipStatus | None:
    with Session(engine) as db:
        status = db.exec(select(Clip.status).where(col(Clip.id) == clip_id)).first()
        return None if status is None else ClipStatus(status)


def _settle(
    engine: Engine,
    *,
    settings: Settings,
    blobs: BlobStore,
    claim: _Claim,
    outcome: _Outcome,
    now: datetime | None,
) -> ClipStatus | None:
    moment = now or utcnow()
    if isinstance(outcome, _NoVerdict):
        return _no_verdict(
            engine, settings=settings, blobs=blobs, claim=claim, outcome=outcome, now=moment
        )
    if isinstance(outcome, _Queued):
        values: dict[str, Any] = {
            "status": ClipStatus.QUEUED,
            "media_json": outcome.media.model_dump_json(),
            "poster_cid": outcome.poster_cid,
            "reasons_json": "[]",
            "updated_at": moment,
        }
    else:
        values = {
            "status": ClipStatus.REJECTED,
            "reasons_json": json.dumps(outcome.reasons),
            "updated_at": moment,
        }
    # Both verdicts were reached on the annotation as loaded: they stand only if it is
    # still the clip's annotation.
    if _cas(engine, claim, values, same_revision=True):
        if isinstance(outcome, _Queued):
            return ClipStatus.QUEUED
        upload_file(settings, claim.upload_id).unlink(missing_ok=True)
        if claim.stored:
            # Moved in by an earlier attempt; the rejected row keeps the content key, so
            # no other clip can need these bytes.
            _release_blobs(engine, blobs, [claim.cid], exclude=claim.id)
        return ClipStatus.REJECTED
    current = _status_of(engine, claim.id)
    release = {"status": ClipStatus.RECEIVED, "claimed_at": None, "updated_at": moment}
    if current == ClipStatus.PROBING and _cas(engine, claim, release, same_revision=False):
        logger.warning("clip %s was edited while probed; it will be checked again", claim.id)
        return ClipStatus.RECEIVED
    logger.warning(
        "clip %s changed while probed (now %s); its result is dropped", claim.id, current
    )
    if isinstance(outcome, _Queued):
        _release_blobs(engine, blobs, [claim.cid, outcome.poster_cid], exclude=None)
    return current


def _no_verdict(
    engine: Engine,
    *,
    settings: Settings,
    blobs: BlobStore,
    claim: _Claim,
    outcome: _NoVerdict,
    now: datetime,
) -> ClipStatus | None:
    if not outcome.final and claim.attempts < settings.ingest_max_attempts:
        values = {"status": ClipStatus.RECEIVED, "claimed_at": None, "updated_at": now}
        if _cas(engine, claim, values, same_revision=False):
            logger.warning(
                "clip %s: no verdict (%s); attempt %d of %d, it will be tried again",
                claim.id,
                outcome.reason["code"],
                claim.attempts,
                settings.ingest_max_attempts,
            )
            return ClipStatus.RECEIVED
        return _status_of(engine, claim.id)
    if _fail(engine, settings=settings, blobs=blobs, claim=claim, reason=outcome.reason, now=now):
        return ClipStatus.FAILED
    return _status_of(engine, claim.id)


def _fail(
    engine: Engine,
    *,
    settings: Settings,
    blobs: BlobStore | None,
    claim: _Claim,
    reason: dict[str, str],
    now: datetime,
) -> bool:
    """``probing → failed`` for this claim, then its bytes released; whether it applied.

    The content key is freed last, once the bytes are gone: until then no other clip
    with the same content can exist to need them. A crash in between leaves a failed
    row that still holds its key; :func:`recover_stale` finishes its release.
    """
    values = {"status": ClipStatus.FAILED, "reasons_json": json.dumps([reason]), "updated_at": now}
    if not _cas(engine, claim, values, same_revision=False):
        return False
    logger.warning("clip %s failed: %s", claim.id, reason["code"])
    _release_failed(
        engine,
        settings=settings,
        blobs=blobs,
        clip_id=claim.id,
        upload_id=claim.upload_id,
        cid=claim.cid,
    )
    return True


def _release_failed(
    engine: Engine,
    *,
    settings: Settings,
    blobs: BlobStore | None,
    clip_id: str,
    upload_id: str,
    cid: str,
) -> None:
    """Delete a failed clip's bytes (upload file, and a blob an attempt stored), then
    free its content key."""
    upload_file(settings, upload_id).unlink(missing_ok=True)
    if blobs is not None:
        _release_blobs(engine, blobs, [cid], exclude=clip_id)
    with Session(engine) as db:
        db.execute(
            update(Clip)
            .where(col(Clip.id) == clip_id, col(Clip.status) == ClipStatus.FAILED)
            .values(content_key=None)
            .execution_options(synchronize_session=False)
        )
        db.commit()


def _release_blobs(
    engine: Engine, blobs: BlobStore, cids: Sequence[str | None], *, exclude: str | None
) -> None:
    """Delete each blob that no clip (other than ``exclude``) still needs."""
    for cid in {cid for cid in cids if cid}:
        with Session(engine) as db:
            query = select(func.count()).where(
                or_(col(Clip.cid) == cid, col(Clip.poster_cid) == cid),
                col(Clip.status).not_in(RELEASED),
            )
            if exclude is not None:
                query = query.where(col(Clip.id) != exclude)
            users = db.exec(query).one()
        if users:
            continue
        try:
            if blobs.delete(cid):
                logger.info("blob %s released (no clip needs it)", cid)
        except BlobStoreError as exc:
            logger.warning("blob %s could not be released: %s", cid, exc.message)


def ingest_once(engine: Engine, *, settings: Settings, blobs: BlobStore) -> bool:
    """Claim and process one clip; False when none was waiting (a worker loop's step)."""
    clip_id = claim_next(engine)
    if clip_id is None:
        return False
    process_clip(engine, settings=settings, blobs=blobs, clip_id=clip_id)
    return True


# --- recovery and sweeping -------------------------------------------------------------------


def recover_stale(
    engine: Engine,
    *,
    settings: Settings,
    now: datetime | None = None,
    blobs: BlobStore | None = None,
) -> int:
    """Hand back clips whose worker died: ``probing`` claimed over ``ingest_stale_s`` ago.

    Each goes back to ``received``, or to ``failed`` (``ingest.interrupted``) when its
    claims reached ``ingest_max_attempts``; with ``blobs`` a blob such a failed clip had
    already stored is released. Also finishes releases a crash interrupted (failed clips
    that still hold their content key). Returns how many clips it handled.
    """
    moment = now or utcnow()
    cutoff = moment - timedelta(seconds=settings.ingest_stale_s)
    with Session(engine) as db:
        rows = db.execute(
            sa_select(*_CLAIM_COLUMNS)
            .where(
                col(Clip.status) == ClipStatus.PROBING,
                or_(col(Clip.claimed_at).is_(None), col(Clip.claimed_at) < cutoff),
            )
            .order_by(col(Clip.claimed_at))
            .limit(RECOVER_BATCH)
        ).all()
    claims = [
        _Claim(
            id=row.id,
            attempts=row.attempts,
            revision=row.revision,
            upload_id=row.upload_id,
            cid=row.cid,
            sha256=row.sha256,
            size_bytes=row.size_bytes,
            annotation_json="",  # not needed to hand a claim back or fail it
        )
        for row in rows
    ]
    recovered = 0
    for claim in claims:
        if claim.attempts < settings.ingest_max_attempts:
            values = {"status": ClipStatus.RECEIVED, "claimed_at": None, "updated_at": moment}
            if _cas(engine, claim, values, same_revision=False):
                logger.warning("clip %s: stale ingest claim handed back", claim.id)
                recovered += 1
            continue
        reason = _reason(
            INTERRUPTED_CODE,
            f"Ingest was interrupted {claim.attempts} times without reaching a verdict.",
        )
        if _fail(engine, settings=settings, blobs=blobs, claim=claim, reason=reason, now=moment):
            recovered += 1
    with Session(engine) as db:
        unreleased = db.exec(
            select(Clip.id, Clip.upload_id, Clip.cid)
            .where(col(Clip.status) == ClipStatus.FAILED, col(Clip.content_key).is_not(None))
            .limit(RECOVER_BATCH)
        ).all()
    for clip_id, upload_id, cid in unreleased:
        logger.warning("clip %s: finishing the release of a failed clip", clip_id)
        _release_failed(
            engine, settings=settings, blobs=blobs, clip_id=clip_id, upload_id=upload_id, cid=cid
        )
    return recovered + len(unreleased)


def sweep_leftovers(
    engine: Engine, *, settings: Settings, older_than_s: float = LEFTOVER_AGE_S
) -> int:
    """Delete files in the upload folder that nothing needs any more; returns how many.

    That is: the pipeline's temporary files, the upload file of a clip that ingest has
    finished with (a crash came between its verdict and the deletion), and the file of
    an upload that was terminated, expired or has no row; the last kind and temporary
    files only when older than ``older_than_s`` (an upload's file is created just before
    its row is committed).
    """
    folder = settings.upload_path
    if not folder.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    candidates: dict[str, Path] = {}
    removed = 0
    for entry in folder.iterdir():
        if entry.name.startswith(TEMP_PREFIX):
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
        elif _UPLOAD_NAME.match(entry.name) and entry.is_file():
            candidates[entry.name] = entry
    names = list(candidates)
    for start in range(0, len(names), _SWEEP_BATCH):
        batch = names[start : start + _SWEEP_BATCH]
        with Session(engine) as db:
            states = dict(
                db.exec(select(Upload.id, Upload.state).where(col(Upload.id).in_(batch))).all()
            )
            clips = dict(
                db.exec(
                    select(Clip.upload_id, Clip.status).where(col(Clip.upload_id).in_(batch))
                ).all()
            )
        for name in batch:
            if _leftover(candidates[name], states.get(name), clips.get(name), cutoff):
                candidates[name].unlink(missing_ok=True)
                removed += 1
    return removed


def _leftover(path: Path, state: str | None, status: str | None, cutoff: float) -> bool:
    if status is not None:
        return ClipStatus(status) not in _IN_INGEST
    if state in (UploadState.TERMINATED, UploadState.EXPIRED, None):
        try:
            return path.stat().st_mtime < cutoff
        except FileNotFoundError:
            return False
    return False
