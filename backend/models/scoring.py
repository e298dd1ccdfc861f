"""Scoring: leases of clips to validators, their signed reports, decisions, reputation.

The contract is ``docs/api/validator.md``. Tables:

- :class:`Lease`: one clip handed to one validator until ``expires_at``; ``active`` until
  it is ``reported``, ``returned`` or ``expired``. A partial UNIQUE index on
  ``(clip_id, validator) WHERE state = 'active'`` makes "one validator never holds two
  leases of one clip" hold whatever the code does.
- :class:`Report`: one validator's signed verdict on one clip, with the stake weight it
  carried when it arrived. ``(clip_id, validator)`` is UNIQUE (no second report, and a
  replay is refused by the database too); ``lease_id`` is UNIQUE.
- :class:`ClipScoring`: a clip's scoring bookkeeping from its first lease on: when its
  consensus deadline passes, when and how it was decided. The decision itself is stored
  in the clip row (``status``, ``scores_json``, ``reasons_json``).
- :class:`ValidatorReputation`: per validator, counters updated with every decided
  clip (reports, agreements, quality deviation).
- :class:`ClipEmbedding`: the embedding of every accepted clip per model weights, in
  the order they were accepted (``seq``), which validators page through for their
  near-duplicate index.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PublicField
from sqlalchemy import BigInteger, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from backend.core.db import WeiField
from backend.models.clips import MAX_JSON_CHARS, ClipReason, ClipStatus, new_clip_id
from backend.models.media import MediaFacts
from scoring.report import ClipScores

#: Longest stored signature: ``0x`` + 65 bytes in hex.
SIGNATURE_CHARS: Final = 2 + 130
#: Longest stored embedding (base64, the bound of ``ClipScores.embedding``).
MAX_EMBEDDING_CHARS: Final = 16_384
#: Most leases one request may ask for, whatever the settings say.
MAX_JOBS_LIMIT: Final = 256
#: Most items on one page of the scoring lists.
MAX_PAGE_SIZE: Final = 100
#: Most embeddings on one page of ``GET /validator/embeddings``.
MAX_EMBEDDING_PAGE: Final = 1000
#: Most reports one clip can have (quorum is at most 64); a bound for the reports view.
MAX_REPORTS_PER_CLIP: Final = 64

ADDRESS_PATTERN: Final = r"^0x[0-9a-fA-F]{40}$"
ID_PATTERN: Final = r"^[0-9a-f]{32}$"
SIGNATURE_PATTERN: Final = r"^0x[0-9a-fA-F]{130}$"
SHA256_PATTERN: Final = r"^[0-9a-f]{64}$"


class LeaseState(StrEnum):
    """Where a lease is in its life."""

    ACTIVE = "active"
    REPORTED = "reported"
    RETURNED = "returned"
    EXPIRED = "expired"


class DecisionTrigger(StrEnum):
    """What made consensus run for a clip."""

    QUORUM = "quorum"
    DEADLINE = "deadline"


class Lease(SQLModel, table=True):
    """One clip leased to one validator until ``expires_at`` (see the module doc)."""

    __tablename__ = "lease"
    __table_args__ = (
        # One active lease per (clip, validator), whatever races the code loses.
        Index(
            "uq_lease_active_clip_validator",
            "clip_id",
            "validator",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
        # How many leases a clip has out (need), and the expiry sweep.
        Index("ix_lease_clip_id_state", "clip_id", "state"),
        Index("ix_lease_state_expires_at", "state", "expires_at"),
        # A validator's active leases (``GET /validator/leases``).
        Index("ix_lease_validator_state", "validator", "state"),
    )

    id: str = Field(default_factory=new_clip_id, primary_key=True, max_length=32)
    clip_id: str = Field(foreign_key="clip.id", max_length=32)
    validator: str = Field(max_length=42)
    state: LeaseState = Field(default=LeaseState.ACTIVE, sa_type=String(16))
    annotation_hash: str = Field(max_length=66)
    """The clip's annotation hash when leased (it cannot change while scoring)."""
    issued_at: datetime
    expires_at: datetime
    deadline: int = Field(sa_type=BigInteger, ge=0)
    """``expires_at`` in unix seconds: signed into the report."""
    ended_at: datetime | None = None
    """When it was reported, returned or found expired."""


class Report(SQLModel, table=True):
    """One validator's signed verdict on one leased clip (see the module doc)."""

    __tablename__ = "report"
    __table_args__ = (
        UniqueConstraint("clip_id", "validator", name="uq_report_clip_id_validator"),
        # A validator's own reports, newest first (``GET /validator/reports``).
        Index("ix_report_validator_created_at_id", "validator", "created_at", "id"),
    )

    id: str = Field(default_factory=new_clip_id, primary_key=True, max_length=32)
    lease_id: str = Field(foreign_key="lease.id", max_length=32, unique=True)
    clip_id: str = Field(foreign_key="clip.id", max_length=32)
    validator: str = Field(max_length=42)
    outcome: str = Field(max_length=16)
    quality: float | None = None
    passed: bool
    flags: int = Field(ge=0)
    """Bit mask of the flags raised (``scoring.report.FLAG_BITS``)."""
    weights_sha256: str = Field(max_length=64)
    scores_json: str = Field(sa_type=Text, max_length=MAX_JSON_CHARS)
    """The submitted ``ClipScores``, as canonical JSON (what ``detailsHash`` hashes)."""
    signature: str = Field(max_length=SIGNATURE_CHARS)
    stake_wei: int = WeiField()
    """The signer's bonded stake in the snapshot when the report arrived: its weight."""
    snapshot_block: int = Field(sa_type=BigInteger, ge=0)
    deadline: int = Field(sa_type=BigInteger, ge=0)
    created_at: datetime
    agreed: bool | None = None
    """Set when the clip is decided: whether this report agreed with the decision."""
    quality_deviation: float | None = None
    """Set when the clip is decided: ``|quality - consensus quality|`` when both exist."""


class ClipScoring(SQLModel, table=True):
    """A clip's scoring bookkeeping from its first lease on."""

    __tablename__ = "clip_scoring"

    clip_id: str = Field(foreign_key="clip.id", primary_key=True, max_length=32)
    first_leased_at: datetime
    consensus_deadline: datetime = Field(index=True)
    """Past it, the clip is decided on the reports it has (at least one)."""
    decided_at: datetime | None = None
    trigger: DecisionTrigger | None = Field(default=None, sa_type=String(16))


class ValidatorReputation(SQLModel, table=True):
    """How one validator's reports compared with the decisions (counters)."""

    __tablename__ = "validator_reputation"

    address: str = Field(primary_key=True, max_length=42)
    decided_reports: int = Field(default=0, ge=0)
    agreements: int = Field(default=0, ge=0)
    deviation_sum: float = Field(default=0.0, ge=0)
    """Sum of ``|quality - consensus quality|`` over the reports that have both."""
    deviation_count: int = Field(default=0, ge=0)
    last_report_at: datetime | None = None
    updated_at: datetime


class ClipEmbedding(SQLModel, table=True):
    """An accepted clip's embedding under one model's weights, in acceptance order."""

    __tablename__ = "clip_embedding"
    __table_args__ = (
        UniqueConstraint("clip_id", "weights_sha256", name="uq_clip_embedding_clip_id_weights"),
        Index("ix_clip_embedding_weights_sha256_seq", "weights_sha256", "seq"),
    )

    seq: int | None = Field(default=None, primary_key=True)
    clip_id: str = Field(foreign_key="clip.id", max_length=32)
    weights_sha256: str = Field(max_length=64)
    model: str = Field(max_length=100)
    embedding: str = Field(sa_type=Text, max_length=MAX_EMBEDDING_CHARS)
    report_id: str = Field(max_length=32)
    created_at: datetime


# --- public schemas -------------------------------------------------------------------


class LeaseRequest(BaseModel):
    """Body of ``POST /validator/leases``; more than the server's max is clamped to it."""

    model_config = ConfigDict(extra="forbid")

    max_jobs: int = PublicField(default=1, ge=1, le=MAX_JOBS_LIMIT)


class LeaseView(BaseModel):
    """One leased job: what to fetch, what it is annotated with, and until when."""

    lease_id: str = PublicField(max_length=32)
    clip_id: str = PublicField(max_length=32)
    content_cid: str = PublicField(max_length=128)
    content_url: str = PublicField(max_length=256)
    sha256: str = PublicField(max_length=64)
    size_bytes: int
    annotation: dict[str, Any] = PublicField(max_length=16)
    annotation_hash: str = PublicField(max_length=66)
    media: MediaFacts | None = None
    issued_at: datetime
    expires_at: datetime
    deadline: int
    """Unix seconds; equals ``expires_at``; signed into the report."""


class LeaseBatch(BaseModel):
    """Answer of ``POST /validator/leases``: the jobs, and when to ask again if none."""

    leases: list[LeaseView] = PublicField(max_length=MAX_JOBS_LIMIT)
    retry_after_s: int | None = None


class ReportSubmission(BaseModel):
    """Body of ``POST /validator/reports``: a signed verdict on a leased clip."""

    model_config = ConfigDict(extra="forbid")

    lease_id: str = PublicField(pattern=ID_PATTERN, max_length=32)
    scores: ClipScores
    deadline: int = PublicField(ge=0, le=2**64 - 1)
    signature: str = PublicField(pattern=SIGNATURE_PATTERN, max_length=SIGNATURE_CHARS)


class ReportReceipt(BaseModel):
    """Answer of ``POST /validator/reports``."""

    report_id: str = PublicField(max_length=32)
    clip_id: str = PublicField(max_length=32)
    clip_status: ClipStatus


class ReportView(BaseModel):
    """A stored report, with its signature and the weight it carried."""

    report_id: str = PublicField(max_length=32)
    lease_id: str = PublicField(max_length=32)
    clip_id: str = PublicField(max_length=32)
    validator: str = PublicField(max_length=42)
    stake_wei: str = PublicField(pattern=r"^[0-9]{1,78}$")
    """Decimal string (uint256 does not fit a JSON number)."""
    snapshot_block: int
    scores: ClipScores
    deadline: int
    signature: str = PublicField(max_length=SIGNATURE_CHARS)
    created_at: datetime
    agreed: bool | None = None
    quality_deviation: float | None = None


class OwnReportView(ReportView):
    """One of the caller's reports, with its clip's current status."""

    clip_status: ClipStatus


class OwnReportPage(BaseModel):
    """A page of the caller's reports, newest first; pass ``next_cursor`` on."""

    items: list[OwnReportView] = PublicField(max_length=MAX_PAGE_SIZE)
    next_cursor: str | None = PublicField(default=None, max_length=32)


class ClipReportsView(BaseModel):
    """Every report on a decided clip, with the decision they made."""

    clip_id: str = PublicField(max_length=32)
    status: ClipStatus
    decision: dict[str, Any] | None = PublicField(default=None, max_length=64)
    reasons: list[ClipReason] = PublicField(default_factory=list, max_length=64)
    reports: list[ReportView] = PublicField(max_length=MAX_REPORTS_PER_CLIP)


class ValidatorView(BaseModel):
    """A validator's stake and reputation."""

    address: str = PublicField(max_length=42)
    bonded_wei: str | None = PublicField(default=None, pattern=r"^[0-9]{1,78}$")
    """Bonded stake in the current snapshot (decimal string); None when never staked."""
    is_active: bool
    """Bonded at least the registry's minimum stake in the current snapshot."""
    snapshot_block: int | None = None
    decided_reports: int
    agreements: int
    agreement_rate: float | None = None
    """``agreements / decided_reports``; None before the first decided report."""
    mean_quality_deviation: float | None = None
    """Mean ``|quality - consensus quality|``; None before the first such report."""
    last_report_at: datetime | None = None


class ValidatorPage(BaseModel):
    """A page of ``GET /validators``, by address; pass ``next_cursor`` on."""

    items: list[ValidatorView] = PublicField(max_length=MAX_PAGE_SIZE)
    next_cursor: str | None = PublicField(default=None, max_length=42)


class EmbeddingItem(BaseModel):
    """One accepted clip's embedding under the requested weights."""

    seq: int
    """Its position in acceptance order (``str(seq)`` is a cursor)."""
    clip_id: str = PublicField(max_length=32)
    model: str = PublicField(max_length=100)
    embedding: str = PublicField(max_length=MAX_EMBEDDING_CHARS)
    """Base64 of the little-endian float16, L2-normalised clip embedding."""


class EmbeddingPage(BaseModel):
    """A page of ``GET /validator/embeddings``, in acceptance order."""

    items: list[EmbeddingItem] = PublicField(max_length=MAX_EMBEDDING_PAGE)
    next_cursor: str | None = PublicField(default=None, max_length=20)
    """Where to go on from: pass it as ``after``. Set whenever a position is known (the
    last item's, else the ``after`` given), also on the last page, so a poller keeps it
    and asks again later for clips accepted since; None only for an empty first page."""
    has_more: bool
    """Whether more items were waiting when this page was cut."""
