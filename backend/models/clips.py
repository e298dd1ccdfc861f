"""Clips: a finished upload bound to an annotation, and what readers see of it.

A clip is created ``received`` when a contributor submits a complete upload with its
annotation; the ingest pipeline takes it through ``probing`` to ``queued``; scoring and
consensus decide ``accepted`` or ``rejected``. See ``docs/api/clips.md``.

``content_key`` is the SHA-256 of the bytes while the clip is live and ``NULL`` once it
is withdrawn or failed: its UNIQUE constraint is what makes "one live clip per content,
whoever submits it" hold under concurrent submissions, without a check-then-insert race.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PublicField
from sqlalchemy import BigInteger, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core.db import WeiField
from backend.models.media import MediaFacts
from shotbank.annotation.camera_path import MAX_CAMERA_PATH_TEXT_CHARS

#: Longest stored JSON text (annotation with a long camera path); requests are smaller.
MAX_JSON_CHARS: Final = 64 * 1024**2


def new_clip_id() -> str:
    """A fresh clip id: 32 random hex characters."""
    return secrets.token_hex(16)


class ClipStatus(StrEnum):
    """Where a clip is in its life (``docs/api/clips.md``, "Lifecycle")."""

    RECEIVED = "received"
    PROBING = "probing"
    QUEUED = "queued"
    SCORING = "scoring"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"


class Clip(SQLModel, table=True):
    """One submitted clip of one wallet: bytes (by hash/CID), annotation, verdict."""

    __tablename__ = "clip"
    __table_args__ = (
        UniqueConstraint("owner", "idempotency_key", name="uq_clip_owner_idempotency_key"),
        # The owner's list: newest first, optionally filtered by status (keyset on id too).
        Index("ix_clip_owner_created_at_id", "owner", "created_at", "id"),
        Index("ix_clip_owner_status_created_at", "owner", "status", "created_at"),
    )

    id: str = Field(default_factory=new_clip_id, primary_key=True, max_length=32)
    owner: str = Field(max_length=42, index=True)
    status: ClipStatus = Field(default=ClipStatus.RECEIVED, sa_type=String(16), index=True)
    reasons_json: str = Field(default="[]", sa_type=Text, max_length=MAX_JSON_CHARS)
    """JSON list of ``{"code", "message", "field"?}``: why it was rejected or failed."""

    upload_id: str = Field(max_length=32, unique=True)
    filename: str | None = Field(default=None, max_length=1024)
    size_bytes: int = Field(sa_type=BigInteger, ge=0)
    sha256: str = Field(max_length=64, index=True)
    content_key: str | None = Field(default=None, max_length=64, unique=True)
    """``sha256`` while live, ``NULL`` once withdrawn or failed (see the module doc)."""
    cid: str = Field(max_length=128)

    annotation_json: str = Field(sa_type=Text, max_length=MAX_JSON_CHARS)
    """The annotation as canonical JSON (RFC 8785)."""
    annotation_hash: str = Field(max_length=66)
    media_json: str | None = Field(default=None, sa_type=Text, max_length=MAX_JSON_CHARS)
    """The probed media facts (``backend.models.media.MediaFacts`` as JSON), ``NULL``
    until probed."""
    poster_cid: str | None = Field(default=None, max_length=128)

    idempotency_key: str | None = Field(default=None, max_length=128)
    request_hash: str | None = Field(default=None, max_length=64)
    """SHA-256 of the canonical submission, to tell a replay from a reused key."""

    revision: int = Field(default=1, ge=1)
    attempts: int = Field(default=0, ge=0)
    """How many times ingest has claimed it (a stale claim counts)."""
    claimed_at: datetime | None = None
    created_at: datetime = Field(index=True)
    updated_at: datetime

    scores_json: str | None = Field(default=None, sa_type=Text, max_length=MAX_JSON_CHARS)
    reward_wei: int | None = WeiField(default=None)


# --- public schemas -------------------------------------------------------------------
#
# The table stores the annotation as canonical JSON text; the API speaks JSON objects, so
# the schemas share ``annotation`` (an object) and not the table's columns.

#: Most statuses one list request may filter on (there are only eight).
MAX_STATUS_FILTERS: Final = len(ClipStatus)
#: Most clips on one page of ``GET /clips``.
MAX_PAGE_SIZE: Final = 100


class ClipReason(BaseModel):
    """Why a clip was rejected or failed: a stable code and a sentence for people."""

    code: str = PublicField(max_length=64)
    message: str = PublicField(max_length=2000)
    field: str | None = PublicField(default=None, max_length=256)
    """Where in the annotation the problem is (dotted path), when it is about a field."""


class ClipBase(SQLModel):
    """What every clip schema carries: the annotation (schema v1) as a JSON object.

    Its JSON Schema is served at ``/api/v1/schemas/annotation/v1``; it is validated by
    the service (not here), so that a merge patch can be applied first and errors point
    at ``body.annotation.<field>``.
    """

    annotation: dict[str, Any] = PublicField(
        description="Annotation schema v1 (see /api/v1/schemas/annotation/v1).",
        max_length=16,
    )


class ClipCreate(ClipBase):
    """Body of ``POST /clips``: a complete upload of the caller and its annotation."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    upload_id: str = PublicField(pattern=r"^[0-9a-f]{32}$", max_length=32)
    camera_path_text: str | None = PublicField(default=None, max_length=MAX_CAMERA_PATH_TEXT_CHARS)
    """A RealEstate10K-style camera path (one pose per line); ``annotation.camera.path``
    must then be absent: the text is parsed into it."""


class ClipUpdate(ClipBase):
    """Body of ``PATCH /clips/{id}``: a JSON merge patch of the annotation and/or a new
    camera-path text. Any other key (status, scores, hashes) is refused."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    annotation: dict[str, Any] | None = PublicField(  # type: ignore[assignment]
        default=None,
        description="RFC 7396 merge patch of the annotation (null removes a key).",
        max_length=16,
    )
    camera_path_text: str | None = PublicField(default=None, max_length=MAX_CAMERA_PATH_TEXT_CHARS)
    """Replaces ``annotation.camera.path`` with the parsed text."""


class ClipPublicView(ClipBase):
    """A clip as anyone sees it once accepted: no file name, upload id or reasons."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    id: str = PublicField(max_length=32)
    status: ClipStatus
    contributor: str = PublicField(max_length=42)
    created_at: datetime
    sha256: str = PublicField(max_length=64)
    cid: str = PublicField(max_length=128)
    size_bytes: int
    annotation_hash: str = PublicField(max_length=66)
    media: MediaFacts | None = None
    """What ingest measured (``None`` until probed)."""
    poster_cid: str | None = PublicField(default=None, max_length=128)
    scores: dict[str, Any] | None = PublicField(default=None, max_length=64)

    @classmethod
    def of(cls, clip: Clip) -> ClipPublicView:
        """The public view of ``clip``."""
        return cls(
            id=clip.id,
            status=clip.status,
            contributor=clip.owner,
            created_at=clip.created_at,
            sha256=clip.sha256,
            cid=clip.cid,
            size_bytes=clip.size_bytes,
            annotation=json.loads(clip.annotation_json),
            annotation_hash=clip.annotation_hash,
            media=clip_media(clip),
            poster_cid=clip.poster_cid,
            scores=json.loads(clip.scores_json) if clip.scores_json else None,
        )


class ClipOwnerView(ClipBase):
    """A clip as its contributor sees it: everything but the idempotency bookkeeping."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    id: str = PublicField(max_length=32)
    status: ClipStatus
    reasons: list[ClipReason] = PublicField(default_factory=list, max_length=64)
    created_at: datetime
    updated_at: datetime
    revision: int
    """Increases with every change of the annotation; send it back as ``If-Match``."""
    upload_id: str = PublicField(max_length=32)
    filename: str | None = PublicField(default=None, max_length=1024)
    size_bytes: int
    sha256: str = PublicField(max_length=64)
    cid: str = PublicField(max_length=128)
    annotation_hash: str = PublicField(max_length=66)
    media: MediaFacts | None = None
    """What ingest measured (``None`` until probed)."""
    poster_cid: str | None = PublicField(default=None, max_length=128)
    scores: dict[str, Any] | None = PublicField(default=None, max_length=64)
    reward_wei: str | None = PublicField(default=None, pattern=r"^[0-9]{1,78}$")
    """Decimal string (uint256 does not fit a JSON number)."""

    @classmethod
    def of(cls, clip: Clip) -> ClipOwnerView:
        """The owner's view of ``clip``."""
        return cls(
            id=clip.id,
            status=clip.status,
            reasons=[ClipReason.model_validate(r) for r in json.loads(clip.reasons_json)],
            created_at=clip.created_at,
            updated_at=clip.updated_at,
            revision=clip.revision,
            upload_id=clip.upload_id,
            filename=clip.filename,
            size_bytes=clip.size_bytes,
            sha256=clip.sha256,
            cid=clip.cid,
            annotation=json.loads(clip.annotation_json),
            annotation_hash=clip.annotation_hash,
            media=clip_media(clip),
            poster_cid=clip.poster_cid,
            scores=json.loads(clip.scores_json) if clip.scores_json else None,
            reward_wei=str(clip.reward_wei) if clip.reward_wei is not None else None,
        )


class ClipPage(BaseModel):
    """One page of ``GET /clips``: newest first; pass ``next_cursor`` for the next."""

    items: list[ClipOwnerView] = PublicField(max_length=MAX_PAGE_SIZE)
    next_cursor: str | None = PublicField(default=None, max_length=1024)


def clip_media(clip: Clip) -> MediaFacts | None:
    """The probed media facts of ``clip`` (``None`` until probed)."""
    return MediaFacts.model_validate_json(clip.media_json) if clip.media_json else None
