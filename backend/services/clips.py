"""Clips: a contributor binds a complete upload to an annotation, edits and withdraws it.

The contract is ``docs/api/clips.md``; the lifecycle after ``received`` (probing,
scoring, consensus) belongs to the ingest pipeline and the scoring services.

Why concurrent requests cannot break the invariants
---------------------------------------------------
No decision here is "read, check, then write" without the database having the last
word; every write is conditional or guarded by a UNIQUE constraint, and a refused write
is explained by re-reading after the rollback:

* **An upload binds to one clip.** In one transaction the upload is moved
  ``complete -> consumed`` with a conditional ``UPDATE`` and the clip is inserted; of
  two concurrent submissions of one upload, the second ``UPDATE`` matches no row
  (PostgreSQL waits for the first to commit, SQLite serialises writers) and nothing of
  it is kept. ``clip.upload_id`` is UNIQUE as a second guard.
* **One live clip per content, whoever submits it.** ``clip.content_key`` holds the
  SHA-256 while the clip is live and is UNIQUE; the insert of a duplicate fails and
  rolls the upload's binding back with it. Withdrawing keeps the key until the blob is
  deleted, so a new submission of the same bytes can never lose its blob to an
  unfinished withdrawal; only then is the key cleared.
* **Idempotency keys.** ``(owner, idempotency_key)`` is UNIQUE; a request that loses a
  race to its own retry finds the winner and replays it.
* **Edits never overwrite the pipeline.** ``PATCH`` and ``DELETE`` update with
  ``WHERE id = ? AND revision = ? AND status = ?``: a worker that claimed the clip in
  between (``received -> probing``) makes the update match nothing, and the caller gets
  409 ``clip_busy`` instead of a silently lost transition.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, NoReturn

from pydantic import ValidationError
from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.errors import (
    BackendError,
    CameraPathInvalidError,
    ClipBusyError,
    ClipDuplicateError,
    ClipNotEditableError,
    ClipNotFoundError,
    ConflictError,
    DependencyUnavailableError,
    FieldValidationError,
    IdempotencyKeyReusedError,
    InvalidCursorError,
    PosterNotFoundError,
    RevisionMismatchError,
    UploadAlreadyUsedError,
    UploadIncompleteError,
)
from backend.models.clips import Clip, ClipStatus, ClipUpdate, clip_media
from backend.models.uploads import Upload, UploadState
from backend.services import blobs, uploads
from ingest import errors as ingest_errors
from ingest.blobstore import BlobStore
from shotbank.annotation import (
    Annotation,
    CameraPathFormatError,
    MediaMismatchError,
    annotation_hash,
    canonical_json,
    parse_camera_path_text,
    validate_against_media,
)
from shotbank.annotation.canonical import canonical_json_value

#: States in which the contributor may edit or withdraw a clip.
EDITABLE: Final = frozenset({ClipStatus.RECEIVED, ClipStatus.QUEUED})
#: Statuses whose rows no longer need their bytes stored (their content key is free).
RELEASED: Final = (ClipStatus.WITHDRAWN, ClipStatus.FAILED)
#: Largest poster served (the probe's thumbnail limit is 4 MiB).
MAX_POSTER_BYTES: Final = 4 << 20

_CLIP_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_CURSOR_VERSION: Final = 1
_MAX_CURSOR_CHARS: Final = 1024
_BODY_ANNOTATION: Final = ("body", "annotation")


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


# --- the annotation ---------------------------------------------------------------------


def _invalid_annotation(problems: Sequence[Mapping[str, Any]]) -> FieldValidationError:
    """Pydantic-style problems of the annotation as a 422 answer, at ``body.annotation``."""
    count = len(problems)
    details = [
        {
            "loc": [*_BODY_ANNOTATION, *problem.get("loc", ())],
            "msg": str(problem.get("msg", ""))[:500],
            "type": str(problem.get("type", ""))[:64],
        }
        for problem in problems
    ]
    return FieldValidationError(
        f"The annotation is invalid ({count} problem{'s' if count != 1 else ''}).",
        details=details,
    )


def build_annotation(document: Mapping[str, Any], camera_path_text: str | None) -> Annotation:
    """Validate an annotation document, with ``camera_path_text`` parsed into its path.

    Raises :class:`FieldValidationError` (locations under ``body.annotation``) or
    :class:`CameraPathInvalidError` (naming the line).
    """
    if camera_path_text is not None:
        camera = document.get("camera")
        if isinstance(camera, Mapping) and camera.get("path") is not None:
            raise CameraPathInvalidError(
                "Send the camera path either as annotation.camera.path or as "
                "camera_path_text, not both."
            )
    try:
        annotation = Annotation.model_validate(document)
    except ValidationError as exc:
        raise _invalid_annotation(exc.errors(include_url=False, include_input=False)) from None
    if camera_path_text is None:
        return annotation
    lens = annotation.camera.lens
    try:
        path = parse_camera_path_text(
            camera_path_text,
            sensor_width_mm=lens.effective_sensor_width_mm if lens is not None else None,
        )
    except CameraPathFormatError as exc:
        raise CameraPathInvalidError(
            f"The camera path text cannot be read: {exc}", line=exc.line
        ) from None
    merged = annotation.model_dump(mode="json", exclude_none=True)
    merged["camera"]["path"] = path.model_dump(mode="json", exclude_none=True)
    try:
        return Annotation.model_validate(merged)
    except ValidationError as exc:  # pragma: no cover - a parsed path is a valid path
        raise _invalid_annotation(exc.errors(include_url=False, include_input=False)) from None


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with the JSON merge patch ``patch`` applied (RFC 7396)."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _check_against_media(clip: Clip, annotation: Annotation) -> None:
    media = clip_media(clip)
    if media is None:  # pragma: no cover - queued clips were probed
        return
    try:
        validate_against_media(
            annotation, media.duration_s, has_audio=media.audio_codec is not None
        )
    except MediaMismatchError as exc:
        raise _invalid_annotation(exc.errors()) from None


# --- submitting -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submission:
    """The clip a ``POST`` answers with; ``replayed`` when it was an idempotent retry."""

    clip: Clip
    replayed: bool


def request_hash(upload_id: str, annotation: Annotation, camera_path_text: str | None) -> str:
    """SHA-256 (hex) of the canonical submission, to tell a retry from a reused key."""
    document = {
        "upload_id": upload_id,
        "annotation": annotation.model_dump(mode="json", exclude_none=True),
        "camera_path_text": camera_path_text,
    }
    return hashlib.sha256(canonical_json_value(document)).hexdigest()


def _by_idempotency_key(db: Session, owner: str, key: str) -> Clip | None:
    return db.exec(select(Clip).where(Clip.owner == owner, Clip.idempotency_key == key)).first()


def _replay(earlier: Clip, digest: str) -> Submission:
    if earlier.request_hash is None or not secrets.compare_digest(earlier.request_hash, digest):
        raise IdempotencyKeyReusedError(
            f"This Idempotency-Key was already used for another request (clip {earlier.id}); "
            "use a new key for a new submission."
        )
    return Submission(clip=earlier, replayed=True)


def _already_used(db: Session, upload_id: str) -> UploadAlreadyUsedError:
    bound = db.exec(select(Clip.id).where(Clip.upload_id == upload_id)).first()
    if bound is None:  # pragma: no cover - consumed uploads always have their clip
        return UploadAlreadyUsedError("The upload is already bound to a clip.")
    return UploadAlreadyUsedError(
        f"The upload is already bound to clip {bound}; upload the file again to submit "
        "it once more.",
        clip_id=bound,
    )


def _explain_refusal(
    db: Session,
    *,
    owner: str,
    upload_id: str,
    sha256: str | None,
    idempotency_key: str | None,
    digest: str,
) -> Submission:
    """Why the binding was refused (read after the rollback); a replay if it was ours."""
    if idempotency_key is not None:
        earlier = _by_idempotency_key(db, owner, idempotency_key)
        if earlier is not None:
            return _replay(earlier, digest)
    upload = uploads.get_upload(db, owner=owner, upload_id=upload_id)
    if upload.state == UploadState.CONSUMED:
        raise _already_used(db, upload_id)
    live = db.exec(select(Clip.id).where(Clip.content_key == sha256)).first() if sha256 else None
    if live is not None:
        raise ClipDuplicateError(
            f"This content (SHA-256 {sha256}) was already submitted as clip {live}.",
            existing_clip_id=live,
        )
    raise _CollidedError("The submission collided with a concurrent change; try again.")


class _CollidedError(ConflictError):
    """The binding was refused by a row that was gone again when the refusal was read
    (e.g. the live clip holding this content was withdrawn in between): worth retrying."""


#: Attempts at binding an upload when the refusal could not be explained (see above).
SUBMIT_ATTEMPTS: Final = 3


def submit_clip(
    db: Session,
    *,
    owner: str,
    upload_id: str,
    annotation_document: Mapping[str, Any],
    camera_path_text: str | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Submission:
    """Bind ``owner``'s complete upload to a new ``received`` clip with this annotation.

    Raises FieldValidationError / CameraPathInvalidError (422), IdempotencyKeyReusedError
    (422), UploadNotFoundError (404), UploadExpiredError (410), UploadIncompleteError,
    UploadAlreadyUsedError, ClipDuplicateError (409); ConflictError (409) only when a
    concurrent change kept colliding over :data:`SUBMIT_ATTEMPTS` attempts.
    """
    for attempt in range(1, SUBMIT_ATTEMPTS + 1):
        try:
            return _submit_once(
                db,
                owner=owner,
                upload_id=upload_id,
                annotation_document=annotation_document,
                camera_path_text=camera_path_text,
                idempotency_key=idempotency_key,
                now=now,
            )
        except _CollidedError:
            if attempt == SUBMIT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _submit_once(
    db: Session,
    *,
    owner: str,
    upload_id: str,
    annotation_document: Mapping[str, Any],
    camera_path_text: str | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Submission:
    annotation = build_annotation(annotation_document, camera_path_text)
    digest = request_hash(upload_id, annotation, camera_path_text)
    if idempotency_key is not None:
        earlier = _by_idempotency_key(db, owner, idempotency_key)
        if earlier is not None:
            return _replay(earlier, digest)

    def refused(sha256: str | None) -> Submission:
        db.rollback()
        return _explain_refusal(
            db,
            owner=owner,
            upload_id=upload_id,
            sha256=sha256,
            idempotency_key=idempotency_key,
            digest=digest,
        )

    upload = uploads.get_upload(db, owner=owner, upload_id=upload_id)
    if upload.state == UploadState.CONSUMED:
        # Perhaps by a concurrent retry with this key, committed since the look-up above.
        return refused(None)
    if upload.state != UploadState.COMPLETE or upload.sha256 is None or upload.cid is None:
        raise UploadIncompleteError(
            f"The upload has {upload.offset} of its {upload.length} bytes; finish it first."
        )
    moment = now or utcnow()
    sha256, cid = upload.sha256, upload.cid
    clip = Clip(
        owner=owner,
        status=ClipStatus.RECEIVED,
        upload_id=upload.id,
        filename=upload.filename,
        size_bytes=upload.length,
        sha256=sha256,
        content_key=sha256,
        cid=cid,
        annotation_json=canonical_json(annotation).decode("utf-8"),
        annotation_hash=annotation_hash(annotation),
        idempotency_key=idempotency_key,
        request_hash=digest,
        created_at=moment,
        updated_at=moment,
    )
    try:
        bound = db.execute(
            update(Upload)
            .where(
                col(Upload.id) == upload_id,
                col(Upload.owner) == owner,
                col(Upload.state) == UploadState.COMPLETE,
            )
            .values(state=UploadState.CONSUMED)
            .execution_options(synchronize_session=False)
        )
        if getattr(bound, "rowcount", 0) != 1:
            return refused(sha256)
        db.add(clip)
        db.commit()
    except IntegrityError:
        return refused(sha256)
    db.refresh(clip)
    return Submission(clip=clip, replayed=False)


# --- reading --------------------------------------------------------------------------


def _get(db: Session, clip_id: str) -> Clip | None:
    return db.get(Clip, clip_id) if _CLIP_ID.match(clip_id) else None


def own_clip(db: Session, *, owner: str, clip_id: str) -> Clip:
    """``owner``'s clip ``clip_id``; another wallet's clip is :class:`ClipNotFoundError`."""
    clip = _get(db, clip_id)
    if clip is None or not secrets.compare_digest(clip.owner, owner):
        raise ClipNotFoundError("No such clip.")
    return clip


def visible_clip(db: Session, *, viewer: str | None, clip_id: str) -> tuple[Clip, bool]:
    """The clip and whether ``viewer`` owns it; others (``None``: anonymous) see it only
    once accepted, else :class:`ClipNotFoundError` (existence is not leaked)."""
    clip = _get(db, clip_id)
    if clip is not None:
        if viewer is not None and secrets.compare_digest(clip.owner, viewer):
            return clip, True
        if clip.status == ClipStatus.ACCEPTED:
            return clip, False
    raise ClipNotFoundError("No such clip.")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _cursor_mac(settings: Settings, owner: str, body: bytes) -> bytes:
    key = hmac.new(
        settings.secret_key.get_secret_value().encode("utf-8"),
        b"shotbank clips cursor v1",
        hashlib.sha256,
    ).digest()
    return hmac.new(key, owner.encode("utf-8") + b"\n" + body, hashlib.sha256).digest()[:16]


def _make_cursor(settings: Settings, owner: str, statuses: list[str], last: Clip) -> str:
    body = json.dumps(
        {"v": _CURSOR_VERSION, "s": statuses, "t": last.created_at.isoformat(), "i": last.id},
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    return f"{_b64encode(body)}.{_b64encode(_cursor_mac(settings, owner, body))}"


def _read_cursor(
    settings: Settings, owner: str, statuses: list[str], cursor: str
) -> tuple[datetime, str]:
    garbled = InvalidCursorError("The cursor is not one this server issued to you.")
    encoded_body, dot, encoded_mac = cursor.partition(".")
    if len(cursor) > _MAX_CURSOR_CHARS or not dot:
        raise garbled
    try:
        body, mac = _b64decode(encoded_body), _b64decode(encoded_mac)
    except (ValueError, binascii.Error):
        raise garbled from None
    if not hmac.compare_digest(mac, _cursor_mac(settings, owner, body)):
        raise garbled
    try:
        fields = json.loads(body)
        version, filtered, stamp, last_id = fields["v"], fields["s"], fields["t"], fields["i"]
        created_at = datetime.fromisoformat(stamp)
    except (ValueError, KeyError, TypeError):  # pragma: no cover - signed by us
        raise garbled from None
    if version != _CURSOR_VERSION or created_at.utcoffset() is None:  # pragma: no cover
        raise garbled
    if filtered != statuses:
        raise InvalidCursorError(
            "The cursor was made for another status filter; start again without a cursor."
        )
    if not isinstance(last_id, str) or not _CLIP_ID.match(last_id):  # pragma: no cover
        raise garbled
    return created_at, last_id


def list_clips(
    db: Session,
    *,
    settings: Settings,
    owner: str,
    statuses: Sequence[ClipStatus] = (),
    limit: int,
    cursor: str | None = None,
) -> tuple[list[Clip], str | None]:
    """``owner``'s clips, newest first, and the cursor of the next page (``None`` at the end).

    Keyset pagination on ``(created_at, id)``: pages stay consistent while clips are
    added. A cursor carries the status filter and is signed for ``owner``; a garbled,
    forged or foreign one, or one made for another filter, is :class:`InvalidCursorError`.
    """
    wanted = sorted({ClipStatus(s).value for s in statuses})
    query = select(Clip).where(Clip.owner == owner)
    if wanted:
        query = query.where(col(Clip.status).in_(wanted))
    if cursor is not None:
        created_at, last_id = _read_cursor(settings, owner, wanted, cursor)
        query = query.where(
            or_(
                col(Clip.created_at) < created_at,
                and_(col(Clip.created_at) == created_at, col(Clip.id) < last_id),
            )
        )
    query = query.order_by(col(Clip.created_at).desc(), col(Clip.id).desc()).limit(limit + 1)
    rows = list(db.exec(query).all())
    page = rows[:limit]
    more = len(rows) > limit
    return page, _make_cursor(settings, owner, wanted, page[-1]) if more else None


# --- changing ---------------------------------------------------------------------------


def _check_editable(clip: Clip) -> None:
    if clip.status in EDITABLE:
        return
    if clip.status == ClipStatus.PROBING:
        raise ClipBusyError("The clip is being probed right now; try again in a moment.")
    raise ClipNotEditableError(
        f"The clip is {ClipStatus(clip.status).value}; it can only be changed or withdrawn while "
        "received or queued."
    )


def _refused_change(db: Session, clip_id: str, if_match: int | None) -> NoReturn:
    """Why a conditional update of the clip matched no row (read after the rollback)."""
    db.expire_all()
    fresh = db.get(Clip, clip_id)
    if fresh is None:  # pragma: no cover - clips are never deleted
        raise ClipNotFoundError("No such clip.")
    _check_editable(fresh)
    if if_match is not None:
        raise RevisionMismatchError(
            f"The clip changed meanwhile (now revision {fresh.revision}); reload it and "
            "apply your change again."
        )
    raise ClipBusyError("The clip changed while this request was applied; try again.")


def update_clip(
    db: Session,
    *,
    owner: str,
    clip_id: str,
    changes: ClipUpdate,
    if_match: int | None = None,
    now: datetime | None = None,
) -> Clip:
    """Apply a merge patch of the annotation (and/or a camera-path text) to a clip.

    Allowed while ``received`` or ``queued`` (then also checked against the probed
    media); ``revision`` increases when the annotation changes. Raises
    ClipNotFoundError, RevisionMismatchError (412, ``if_match`` is stale), ClipBusyError,
    ClipNotEditableError (409), FieldValidationError / CameraPathInvalidError (422).
    """
    clip = own_clip(db, owner=owner, clip_id=clip_id)
    if if_match is not None and if_match != clip.revision:
        raise RevisionMismatchError(
            f"The clip is at revision {clip.revision}, not {if_match}; reload it and apply "
            "your change again."
        )
    _check_editable(clip)
    document: Any = json.loads(clip.annotation_json)
    if "annotation" in changes.model_fields_set:
        if changes.annotation is None:
            raise FieldValidationError(
                "The annotation cannot be removed.",
                details=[
                    {
                        "loc": list(_BODY_ANNOTATION),
                        "msg": "the annotation cannot be removed; send a merge patch of it",
                        "type": "missing",
                    }
                ],
            )
        document = merge_patch(document, changes.annotation)
    if changes.camera_path_text is not None:
        patched_camera = (changes.annotation or {}).get("camera")
        if isinstance(patched_camera, Mapping) and patched_camera.get("path") is not None:
            raise CameraPathInvalidError(
                "Send the camera path either as annotation.camera.path or as "
                "camera_path_text, not both."
            )
        camera = document.get("camera")
        if isinstance(camera, dict):
            camera.pop("path", None)  # the text replaces the stored path
    annotation = build_annotation(document, changes.camera_path_text)
    if clip.status == ClipStatus.QUEUED:
        _check_against_media(clip, annotation)
    canonical = canonical_json(annotation).decode("utf-8")
    if canonical == clip.annotation_json:
        return clip  # nothing changed: no new revision
    done = db.execute(
        update(Clip)
        .where(
            col(Clip.id) == clip.id,
            col(Clip.revision) == clip.revision,
            col(Clip.status) == clip.status,
        )
        .values(
            annotation_json=canonical,
            annotation_hash=annotation_hash(annotation),
            revision=clip.revision + 1,
            updated_at=now or utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        db.rollback()
        _refused_change(db, clip.id, if_match)
    db.commit()
    db.refresh(clip)
    return clip


def _delete_blob(store: BlobStore, cid: str) -> None:
    try:
        store.delete(cid)
    except ingest_errors.BlobNotFoundError:
        pass
    except ingest_errors.BlobStoreError as exc:
        raise DependencyUnavailableError(
            "The blob store did not answer; the clip is withdrawn, send DELETE again to "
            "release its content."
        ) from exc


def _release(db: Session, *, settings: Settings, store: BlobStore, clip: Clip) -> None:
    """Delete a withdrawn clip's bytes, then free its content hash for new submissions."""
    uploads.upload_file(settings, clip.upload_id).unlink(missing_ok=True)
    for cid in {c for c in (clip.cid, clip.poster_cid) if c is not None}:
        shared = db.exec(
            select(Clip.id).where(
                or_(col(Clip.cid) == cid, col(Clip.poster_cid) == cid),
                col(Clip.id) != clip.id,
                col(Clip.status).not_in(RELEASED),
            )
        ).first()
        if shared is None:
            _delete_blob(store, cid)
    db.execute(
        update(Clip)
        .where(col(Clip.id) == clip.id, col(Clip.status) == ClipStatus.WITHDRAWN)
        .values(content_key=None)
        .execution_options(synchronize_session=False)
    )
    db.commit()


def _is_withdrawn(db: Session, clip_id: str) -> bool:
    status = db.exec(select(Clip.status).where(Clip.id == clip_id)).first()
    return status == ClipStatus.WITHDRAWN


def withdraw_clip(
    db: Session,
    *,
    settings: Settings,
    store: BlobStore,
    owner: str,
    clip_id: str,
    now: datetime | None = None,
) -> None:
    """Withdraw a ``received`` or ``queued`` clip: its bytes are deleted and its content
    may be submitted again. Withdrawing a withdrawn clip finishes an interrupted release.

    Raises ClipNotFoundError, ClipBusyError, ClipNotEditableError,
    DependencyUnavailableError (the blob store did not answer; the clip stays withdrawn).
    """
    clip = own_clip(db, owner=owner, clip_id=clip_id)
    if clip.status != ClipStatus.WITHDRAWN:
        _check_editable(clip)
        done = db.execute(
            update(Clip)
            .where(col(Clip.id) == clip.id, col(Clip.status) == clip.status)
            .values(status=ClipStatus.WITHDRAWN, updated_at=now or utcnow())
            .execution_options(synchronize_session=False)
        )
        if getattr(done, "rowcount", 0) != 1:
            db.rollback()
            if not _is_withdrawn(db, clip.id):  # else: a concurrent DELETE won; finish it
                _refused_change(db, clip.id, None)
            db.refresh(clip)
        else:
            db.commit()
            db.refresh(clip)
    if clip.content_key is not None:
        _release(db, settings=settings, store=store, clip=clip)


# --- the poster -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Poster:
    """A clip's poster image, read whole (it is small) and verified against its CID."""

    cid: str
    data: bytes
    media_type: str


def _image_type(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    return "application/octet-stream"


def read_poster(
    db: Session,
    *,
    store: BlobStore,
    quarantine: blobs.Quarantine,
    viewer: str | None,
    clip_id: str,
) -> Poster:
    """The poster of a clip ``viewer`` may see; PosterNotFoundError before probing."""
    clip, _owner = visible_clip(db, viewer=viewer, clip_id=clip_id)
    if clip.poster_cid is None:
        raise PosterNotFoundError("The clip has no poster yet; it is made when it is probed.")
    head = blobs.head(store, quarantine, cid=clip.poster_cid)
    if head.size > MAX_POSTER_BYTES:
        raise BackendError(f"The poster of clip {clip.id} is larger than a poster may be.")
    data = b"".join(blobs.open_full(store, quarantine, head))
    return Poster(cid=head.cid, data=data, media_type=_image_type(data))
