"""Clips under ``/clips``: submit a finished upload with its annotation, list, read,
edit, withdraw, and the poster image. The contract is ``docs/api/clips.md``; the
decisions (and why concurrent requests cannot break them) are in
``backend.services.clips``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from fastapi import APIRouter, Header, Query, Request, Response, status

from backend.api.caching import NOSNIFF, if_none_match, strong_etag
from backend.api.deps import (
    BlobStoreDep,
    CurrentAddress,
    OptionalAddress,
    QuarantineDep,
    SessionDep,
    SettingsDep,
)
from backend.errors import ErrorResponse, InvalidInputError
from backend.models.clips import (
    MAX_PAGE_SIZE,
    MAX_STATUS_FILTERS,
    ClipCreate,
    ClipOwnerView,
    ClipPage,
    ClipPublicView,
    ClipStatus,
    ClipUpdate,
)
from backend.models.scoring import ClipReportsView
from backend.services import clips, reports

#: Default page size of ``GET /clips``.
DEFAULT_PAGE_SIZE: Final = 20
#: ``Idempotency-Key``: 1-128 printable ASCII characters.
IDEMPOTENCY_KEY_PATTERN: Final = r"^[\x20-\x7e]{1,128}$"

_IF_MATCH: Final = re.compile(r'^(?:W/)?"?([0-9]{1,18})"?$')
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": ErrorResponse}
    for code in (
        status.HTTP_401_UNAUTHORIZED,
        status.HTTP_404_NOT_FOUND,
        status.HTTP_409_CONFLICT,
    )
}

router = APIRouter(prefix="/clips", tags=["clips"], responses=_ERRORS)


def _if_match(header: str | None) -> int | None:
    """The revision an ``If-Match: "<revision>"`` names (``*`` or none: any)."""
    if header is None or header.strip() == "*":
        return None
    found = _IF_MATCH.match(header.strip())
    if found is None:
        raise InvalidInputError('If-Match must be the clip\'s revision, e.g. If-Match: "3".')
    return int(found.group(1))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        status.HTTP_200_OK: {"model": ClipOwnerView, "description": "An idempotent replay"},
        status.HTTP_410_GONE: {"model": ErrorResponse},
    },
)
def submit(
    body: ClipCreate,
    request: Request,
    response: Response,
    address: CurrentAddress,
    db: SessionDep,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=128, pattern=IDEMPOTENCY_KEY_PATTERN)
    ] = None,
) -> ClipOwnerView:
    """Bind a complete upload of the caller to a new clip with this annotation (202).

    Retrying with the same ``Idempotency-Key`` and body answers the same clip (200,
    ``Idempotent-Replayed: true``).
    """
    submission = clips.submit_clip(
        db,
        owner=address,
        upload_id=body.upload_id,
        annotation_document=body.annotation,
        camera_path_text=body.camera_path_text,
        idempotency_key=idempotency_key,
    )
    response.headers["Location"] = f"{request.url.path.rstrip('/')}/{submission.clip.id}"
    if submission.replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return ClipOwnerView.of(submission.clip)


@router.get("")
def list_clips(
    address: CurrentAddress,
    db: SessionDep,
    settings: SettingsDep,
    status_filter: Annotated[
        list[ClipStatus] | None, Query(alias="status", max_length=MAX_STATUS_FILTERS)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
) -> ClipPage:
    """The caller's clips, newest first; ``status`` may repeat; pass ``next_cursor`` on."""
    page, next_cursor = clips.list_clips(
        db,
        settings=settings,
        owner=address,
        statuses=status_filter or (),
        limit=limit,
        cursor=cursor,
    )
    return ClipPage(items=[ClipOwnerView.of(clip) for clip in page], next_cursor=next_cursor)


@router.get("/{clip_id}", response_model=ClipOwnerView | ClipPublicView)
def read_clip(clip_id: str, viewer: OptionalAddress, db: SessionDep) -> Any:
    """The owner's view for the owner; the public view for anyone else once accepted."""
    clip, owned = clips.visible_clip(db, viewer=viewer, clip_id=clip_id)
    return ClipOwnerView.of(clip) if owned else ClipPublicView.of(clip)


@router.get("/{clip_id}/reports")
def read_clip_reports(clip_id: str, viewer: OptionalAddress, db: SessionDep) -> ClipReportsView:
    """Every validator report on a decided clip (signer, stake weight, scores, signature)
    with the decision; same visibility as the clip, and 409 ``clip_undecided`` before the
    decision (reports stay hidden until then)."""
    return reports.clip_reports(db, viewer=viewer, clip_id=clip_id)


@router.patch(
    "/{clip_id}",
    responses={status.HTTP_412_PRECONDITION_FAILED: {"model": ErrorResponse}},
)
def update_clip(
    clip_id: str,
    body: ClipUpdate,
    address: CurrentAddress,
    db: SessionDep,
    if_match: Annotated[str | None, Header(max_length=64)] = None,
) -> ClipOwnerView:
    """Merge-patch the annotation (or replace the camera path from text) while the clip
    is ``received`` or ``queued``; ``If-Match: "<revision>"`` guards against lost edits."""
    clip = clips.update_clip(
        db, owner=address, clip_id=clip_id, changes=body, if_match=_if_match(if_match)
    )
    return ClipOwnerView.of(clip)


@router.delete("/{clip_id}", status_code=status.HTTP_204_NO_CONTENT)
def withdraw_clip(
    clip_id: str,
    address: CurrentAddress,
    db: SessionDep,
    settings: SettingsDep,
    store: BlobStoreDep,
) -> Response:
    """Withdraw the clip (``received`` or ``queued``): its bytes are deleted and the same
    content may be submitted again."""
    clips.withdraw_clip(db, settings=settings, store=store, owner=address, clip_id=clip_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{clip_id}/poster",
    response_class=Response,
    responses={
        status.HTTP_200_OK: {
            "content": {"image/jpeg": {}, "image/webp": {}},
            "description": "The poster image",
        },
        status.HTTP_304_NOT_MODIFIED: {"description": "The client's copy is current"},
    },
)
def read_poster(
    clip_id: str,
    request: Request,
    viewer: OptionalAddress,
    db: SessionDep,
    store: BlobStoreDep,
    quarantine: QuarantineDep,
) -> Response:
    """The clip's poster (a frame made when it was probed); same visibility as the clip."""
    poster = clips.read_poster(
        db, store=store, quarantine=quarantine, viewer=viewer, clip_id=clip_id
    )
    etag = strong_etag(poster.cid)
    # Visibility can change (a withdrawn clip), so caches revalidate every time.
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", **NOSNIFF}
    if if_none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=poster.data, media_type=poster.media_type, headers=headers)
