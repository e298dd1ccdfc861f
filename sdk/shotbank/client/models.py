"""What the backend answers, as pydantic models (the client's side of the HTTP boundary).

Models ignore members they do not know, so a newer server does not break an older SDK;
statuses are plain strings for the same reason (compare them with :class:`ClipStatus`,
:class:`EpochStatus`). Token amounts are ``int`` base units here and decimal strings in
JSON (:data:`shotbank.rewards.Amount`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Final, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shotbank.chain.deployments import ChecksumAddressStr
from shotbank.rewards.models import Amount

if TYPE_CHECKING:
    from shotbank.rewards import EpochInputs, EpochResult

__all__ = [
    "MAX_LICENCES",
    "MAX_PROOF_LENGTH",
    "MAX_REWARD_EPOCHS",
    "PENDING_STATUSES",
    "Clip",
    "ClipPage",
    "ClipReason",
    "ClipStatus",
    "EpochClipCounts",
    "EpochFunding",
    "EpochPage",
    "EpochRuleInfo",
    "EpochSignatures",
    "EpochStatus",
    "EpochSubmission",
    "EpochSummary",
    "Licence",
    "LicenceList",
    "NonceChallenge",
    "PublishedEpochInputs",
    "RewardClaim",
    "RewardEpoch",
    "Rewards",
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


# --- rewards -----------------------------------------------------------------------------

#: A proof has one hash per tree level: 2**64 leaves would need 64.
MAX_PROOF_LENGTH: Final = 64
#: ``GET /rewards/{address}`` lists the newest 50 epochs; some room for a newer server.
MAX_REWARD_EPOCHS: Final = 200
#: Most signers listed for one epoch (the validator set is far smaller).
_MAX_SIGNERS: Final = 100_000

#: A 32-byte value as ``0x`` hex, kept in lower case.
_Bytes32 = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$"), AfterValidator(str.lower)]


class EpochStatus(StrEnum):
    """Where an epoch is in its life (``docs/api/rewards.md``, "Epoch life cycle")."""

    OPEN = "open"
    CLOSED = "closed"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    CLAIMABLE = "claimable"
    EMPTY = "empty"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"


class EpochRuleInfo(_Answer):
    """The allocation rule an epoch was computed with (its version and parameters)."""

    version: str = Field(max_length=64)
    validator_share_bps: int = Field(ge=0, le=10_000)
    contributor_cap_bps: int = Field(ge=0, le=10_000)


class EpochClipCounts(_Answer):
    """How many clips decided in the epoch were accepted and rejected."""

    accepted: int = Field(ge=0)
    rejected: int = Field(ge=0)


class EpochSignatures(_Answer):
    """The validators' signatures collected so far over the epoch's root."""

    signed_stake: Amount
    total_stake: Amount
    signers: tuple[ChecksumAddressStr, ...] = Field(default=(), max_length=_MAX_SIGNERS)


class EpochSubmission(_Answer):
    """The root's way onto the chain (all ``None`` until it is submitted)."""

    snapshot_block: int | None = Field(default=None, ge=0)
    tx_hash: _Bytes32 | None = None
    block_number: int | None = Field(default=None, ge=0)
    claimable_at: datetime | None = None


class EpochFunding(_Answer):
    """Where an epoch's pool came from: the funding since the previous epoch by source,
    and what earlier epochs left unallocated (``pool`` is the sum of all five)."""

    emission: Amount
    """Scheduled emission drawn with ``drawEmission`` (``Funded`` from the ShotToken)."""
    sales: Amount
    """The contributor share of dataset licence sales (from the DatasetMarket)."""
    slashing: Amount
    """Slashed validator stake (from the ValidatorRegistry)."""
    other: Amount
    """Any other ``fund()`` caller, such as the treasury."""
    carried: Amount
    """What earlier epochs did not allocate (the previous epoch's ``carry``)."""


class EpochSummary(_Answer):
    """``GET /epochs/{n}``: a closed epoch, its pool, its root and where the root is."""

    epoch: int = Field(ge=1, lt=2**64)
    status: str = Field(max_length=32)
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    chain_id: int = Field(ge=1, lt=2**64)
    distributor: ChecksumAddressStr
    rule: EpochRuleInfo
    funding_block: int = Field(ge=0)
    funded_total: Amount
    previous_epoch: int | None = Field(default=None, ge=1, lt=2**64)
    previous_cumulative_total: Amount
    pool: Amount
    contributor_pool: Amount
    validator_pool: Amount
    allocated: Amount
    carry: Amount
    sales_pool: Amount | None = None
    """Rule ``shotbank-rewards/2``: the contributor shares of the epoch's dataset sales
    (``None`` from older servers and for rule /1 epochs closed before it)."""
    sales_allocated: Amount | None = None
    """Rule /2: what those sales gave the sold versions' contributors."""
    funding: EpochFunding | None = None
    """``None`` from servers that do not report it, and for epochs closed before they did."""
    root: _Bytes32 | None = None
    cumulative_total: Amount
    inputs_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    clips: EpochClipCounts | None = None
    accounts: int | None = Field(default=None, ge=0)
    signatures: EpochSignatures | None = None
    submission: EpochSubmission | None = None


class EpochPage(_Answer):
    """``GET /epochs``: epochs newest first, and where the next (older) page starts."""

    epochs: tuple[EpochSummary, ...] = Field(max_length=100)
    next_before: int | None = None


@dataclass(frozen=True, slots=True)
class PublishedEpochInputs:
    """``GET /epochs/{n}/inputs``: what ``shotbank.rewards.allocate`` takes, and the
    backend's own result, to recompute and compare."""

    inputs: EpochInputs
    result: EpochResult


class RewardClaim(_Answer):
    """What ``RewardDistributor.claim(account, cumulative_amount, proof)`` needs."""

    epoch: int = Field(ge=1, lt=2**64)
    root: _Bytes32
    cumulative_amount: Amount
    proof: tuple[_Bytes32, ...] = Field(max_length=MAX_PROOF_LENGTH)
    distributor: ChecksumAddressStr
    chain_id: int = Field(ge=1, lt=2**64)


class RewardEpoch(_Answer):
    """One epoch in which the address earned."""

    epoch: int = Field(ge=1, lt=2**64)
    amount: Amount
    sales_amount: Amount = 0
    """The part of ``amount`` that came from dataset sales of the address's samples."""
    cumulative: Amount
    status: str = Field(max_length=32)


class Rewards(_Answer):
    """``GET /rewards/{address}``: earned, claimed, claimable, pending, and the claim."""

    address: ChecksumAddressStr
    earned: Amount
    claimed: Amount
    claimable: Amount
    pending: Amount
    claim: RewardClaim | None = None
    epochs: tuple[RewardEpoch, ...] = Field(default=(), max_length=MAX_REWARD_EPOCHS)


#: Most licences ``GET /licences`` answers with (the API's bound).
MAX_LICENCES: Final = 1000


class Licence(_Answer):
    """One licence purchase, as indexed by the backend (``docs/api/datasets.md``).

    ``dataset_id``/``number`` are ``None`` when the versionId is no version of this
    backend; amounts are SHOT base units, the three shares summing to ``price``.
    """

    version_id: _Bytes32
    dataset_id: str | None = Field(default=None, max_length=32)
    number: int | None = Field(default=None, ge=1)
    buyer: ChecksumAddressStr
    price: Amount
    contributor_share: Amount
    validator_share: Amount
    treasury_share: Amount
    tx_hash: _Bytes32
    log_index: int = Field(ge=0)
    block_number: int = Field(ge=0)
    purchased_at: datetime | None = None


class LicenceList(_Answer):
    """``GET /licences`` and ``GET /licences/{address}``: newest first."""

    licences: tuple[Licence, ...] = Field(default=(), max_length=MAX_LICENCES)
