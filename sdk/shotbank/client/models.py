"""What the backend answers, as pydantic models (the client's side of the HTTP boundary).

Models ignore members they do not know, so a newer server does not break an older SDK;
statuses are plain strings for the same reason (compare them with :class:`ClipStatus`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "PENDING_STATUSES",
    "Clip",
    "ClipPage",
    "ClipReason",
    "ClipStatus",
    "NonceChallenge",
    "SessionInfo",
    "UploadInfo",
    "UploadRef",
]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ClipStatus(StrEnum):
    """Where a clip is in its life (see the API's clips contract)."""

    RECEIVED = "received"
    PROBING = "probing"
    QUEUED = "queued"
    SCORING = "scoring"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"


#: Statuses in which ingest has not yet decided whether the media is acceptable.
PENDING_STATUSES: Final = frozenset({ClipStatus.RECEIVED, ClipStatus.PROBING})


class NonceChallenge(_Answer):
    """``GET /auth/nonce``: what to put into the SIWE message."""

    nonce: str = Field(max_length=128)
    expires_at: datetime
    domain: str = Field(max_length=253)
    uri: str = Field(max_length=2048)
    chain_id: int


class SessionInfo(_Answer):
    """An open session: whose it is and until when."""

    address: str = Field(max_length=42)
    created_at: datetime
    expires_at: datetime


class UploadRef(NamedTuple):
    """A tus upload: its id and its absolute URL (what resuming needs)."""

    upload_id: str
    url: str


class UploadInfo(_Answer):
    """``GET /uploads/{id}``: state and, once complete, the digests."""

    id: str
    state: str
    length: int
    offset: int
    filename: str | None = None
    created_at: datetime
    expires_at: datetime
    sha256: str | None = None
    cid: str | None = None


class ClipReason(_Answer):
    """Why a clip was rejected or failed: stable code, sentence, optional field."""

    code: str
    message: str
    field: str | None = None


class Clip(_Answer):
    """A clip as the backend shows it: the owner's view or, for others, the public one.

    Owner-only members (``upload_id``, ``filename``, ``reasons``...) are ``None`` or
    empty in the public view; :attr:`is_owner_view` tells which one this is.
    """

    id: str
    status: str
    created_at: datetime
    updated_at: datetime | None = None
    revision: int | None = None
    reasons: tuple[ClipReason, ...] = ()
    upload_id: str | None = None
    filename: str | None = None
    contributor: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    cid: str | None = None
    annotation: dict[str, Any] | None = None
    annotation_hash: str | None = None
    media: dict[str, Any] | None = None
    poster_cid: str | None = None
    scores: dict[str, Any] | None = None
    reward_wei: str | None = None

    @property
    def is_owner_view(self) -> bool:
        """Whether this is the owner's view (only the owner sees the upload id)."""
        return self.upload_id is not None

    @property
    def is_pending(self) -> bool:
        """Whether ingest has yet to decide (``received`` or ``probing``)."""
        return self.status in PENDING_STATUSES


class ClipPage(_Answer):
    """One page of ``GET /clips``."""

    items: tuple[Clip, ...]
    next_cursor: str | None = None
