"""Reward epochs: what each epoch allocated, to whom, and how its root reached the chain.

The contract is ``docs/api/rewards.md``. Tables:

- :class:`Epoch`: one row per epoch, numbered from 1. The open epoch collects decided
  clips; closing it freezes its inputs, stores the totals of ``shotbank.rewards.allocate``
  and opens the next epoch. After that only its status and submission columns change
  (:class:`EpochStatus`).
- :class:`EpochDocument`: a closed epoch's inputs as canonical JSON (byte for byte what
  ``/epochs/{n}/inputs`` serves and ``inputs_sha256`` hashes) and its whole result, in
  their own table so that reading epochs never drags megabytes of JSON along.
- :class:`EpochClip`: every clip an epoch took, with its amount. ``clip_id`` is the
  primary key, so a clip is in at most one epoch whatever a crash or a retried close
  does.
- :class:`EpochAllocation`: one row per account of the epoch's rewards tree (every
  address with a non-zero cumulative amount, including those that earned nothing in
  this epoch), with its Merkle proof computed at close: serving a proof is one row read.
- :class:`EpochValidator`: each validator's reports on the epoch's clips and its amount.
- :class:`EpochSignature`: validators' EIP-712 signatures over the epoch's root, one per
  validator, with the stake it held in the snapshot when it signed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PublicField
from sqlalchemy import BigInteger, Index, String, Text
from sqlmodel import Field, SQLModel

from backend.core.db import WeiField
from backend.models.stakes import ADDRESS_CHARS, HASH_CHARS
from shotbank.rewards import RewardRule

__all__ = [
    "DECIMAL_PATTERN",
    "MAX_EPOCH_PAGE",
    "MAX_REWARD_EPOCHS",
    "MAX_SIGNERS",
    "SIGNABLE",
    "WITH_ROOT",
    "ClaimView",
    "ClipCounts",
    "CurrentEpochView",
    "Epoch",
    "EpochAllocation",
    "EpochClip",
    "EpochDocument",
    "EpochFunding",
    "EpochPage",
    "EpochSignature",
    "EpochStatus",
    "EpochSummary",
    "EpochValidator",
    "RewardEpochItem",
    "RewardsView",
    "SignatureReceipt",
    "SignatureSubmission",
    "SignaturesView",
    "SubmissionView",
    "rule_of",
]

#: Longest stored inputs or result JSON (an epoch at the rule's limits: a million clips).
MAX_EPOCH_JSON_CHARS: Final = 1 << 30
#: Longest stored rule JSON.
MAX_RULE_JSON_CHARS: Final = 1000
#: Longest stored proof JSON: a tree of at most 2**20 leaves has proofs of <= 21 nodes.
MAX_PROOF_JSON_CHARS: Final = 32 * (HASH_CHARS + 4)
#: Longest stored signature: ``0x`` + 65 bytes in hex.
SIGNATURE_CHARS: Final = 2 + 130
#: Longest stored funding breakdown JSON: five uint256 decimal strings and their names.
MAX_FUNDING_JSON_CHARS: Final = 600
#: Longest stored problem note.
MAX_NOTE_CHARS: Final = 2000
#: Most epochs on one page of ``GET /epochs``.
MAX_EPOCH_PAGE: Final = 100
#: Most epochs listed in a rewards view.
MAX_REWARD_EPOCHS: Final = 50
#: Most signers listed in an epoch summary (the registry caps active validators lower).
MAX_SIGNERS: Final = 10_000
#: A uint256 as a decimal string.
DECIMAL_PATTERN: Final = r"^[0-9]{1,78}$"
_BYTES32_PATTERN: Final = r"^0x[0-9a-fA-F]{64}$"
_SIGNATURE_PATTERN: Final = r"^0x[0-9a-fA-F]{130}$"


class EpochStatus(StrEnum):
    """Where an epoch is in its life (``docs/api/rewards.md``, "Epoch life cycle")."""

    OPEN = "open"
    """Collecting decided clips."""
    CLOSED = "closed"
    """Inputs frozen, allocations and root published; collecting signatures."""
    SUBMITTING = "submitting"
    """Quorum at the chosen snapshot block; ``submitRoot`` is in the outbox."""
    SUBMITTED = "submitted"
    """The indexer saw ``RootSubmitted`` with enough confirmations."""
    CLAIMABLE = "claimable"
    """Its challenge window passed: claims verify against its root."""
    EMPTY = "empty"
    """Nothing allocated: no root to sign."""
    SUPERSEDED = "superseded"
    """A later epoch's root reached the chain first, or became claimable after it."""
    CANCELLED = "cancelled"
    """Vetoed or challenged on chain; its amounts are in the next root."""


#: Statuses of epochs that have a root (their cumulative map is the next one's base).
WITH_ROOT: Final = (
    EpochStatus.CLOSED,
    EpochStatus.SUBMITTING,
    EpochStatus.SUBMITTED,
    EpochStatus.CLAIMABLE,
    EpochStatus.SUPERSEDED,
    EpochStatus.CANCELLED,
)
#: Statuses in which validators' signatures are taken.
SIGNABLE: Final = (EpochStatus.CLOSED, EpochStatus.SUBMITTING)


class Epoch(SQLModel, table=True):
    """One reward epoch (see the module docstring). Amounts are wei."""

    __tablename__ = "epoch"
    __table_args__ = (Index("ix_epoch_status_number", "status", "number"),)

    number: int = Field(
        sa_type=BigInteger, primary_key=True, ge=1, sa_column_kwargs={"autoincrement": False}
    )
    status: EpochStatus = Field(default=EpochStatus.OPEN, sa_type=String(16))
    opened_at: datetime
    closed_at: datetime | None = None
    updated_at: datetime

    # --- frozen at close --------------------------------------------------------------
    chain_id: int | None = Field(default=None, sa_type=BigInteger, ge=1)
    distributor: str | None = Field(default=None, max_length=ADDRESS_CHARS)
    rule_json: str | None = Field(default=None, sa_type=Text, max_length=MAX_RULE_JSON_CHARS)
    funding_block: int | None = Field(default=None, sa_type=BigInteger, ge=0)
    funded_total: int | None = WeiField(default=None)
    previous_epoch: int | None = Field(default=None, sa_type=BigInteger, ge=1)
    previous_cumulative_total: int | None = WeiField(default=None)
    pool: int | None = WeiField(default=None)
    contributor_pool: int | None = WeiField(default=None)
    validator_pool: int | None = WeiField(default=None)
    allocated: int | None = WeiField(default=None)
    carry: int | None = WeiField(default=None)
    sales_pool: int | None = WeiField(default=None)
    """Rule /2: the contributor shares of the epoch's dataset sales (``None`` before it)."""
    sales_allocated: int | None = WeiField(default=None)
    """Rule /2: what those sales gave the sold versions' contributors."""
    cumulative_total: int | None = WeiField(default=None)
    root: str | None = Field(default=None, max_length=HASH_CHARS)
    inputs_sha256: str | None = Field(default=None, max_length=64)
    accepted_clips: int = Field(default=0, ge=0)
    rejected_clips: int = Field(default=0, ge=0)
    accounts: int = Field(default=0, ge=0)
    """Accounts in the epoch's rewards tree."""
    funding_json: str | None = Field(default=None, sa_type=Text, max_length=MAX_FUNDING_JSON_CHARS)
    """Where the pool came from (:class:`EpochFunding` as JSON), fixed at close; ``None``
    for epochs closed before it was recorded."""

    # --- submission -------------------------------------------------------------------
    snapshot_block: int | None = Field(default=None, sa_type=BigInteger, ge=0)
    """The stake snapshot block of the submission (set with ``submitting``)."""
    signed_stake: int | None = WeiField(default=None)
    """Stake that signed at ``snapshot_block`` (``stakeAt`` on chain)."""
    total_stake: int | None = WeiField(default=None)
    """``totalStakeAt(snapshot_block)``."""
    submit_attempt: int = Field(default=0, ge=0)
    """Submissions that reverted or were dropped before (each later one has its own key)."""
    root_tx_id: int | None = Field(default=None, foreign_key="tx_outbox.id")
    tx_hash: str | None = Field(default=None, max_length=HASH_CHARS)
    block_number: int | None = Field(default=None, sa_type=BigInteger, ge=0)
    claimable_at: datetime | None = None
    emission_done: bool = False
    """Whether the emission draw of this close was enqueued or found unnecessary."""
    emission_tx_id: int | None = Field(default=None, foreign_key="tx_outbox.id")
    note: str | None = Field(default=None, sa_type=Text, max_length=MAX_NOTE_CHARS)
    """Why the submission waits or failed last (for operators)."""


class EpochDocument(SQLModel, table=True):
    """A closed epoch's published inputs and result (see the module docstring)."""

    __tablename__ = "epoch_document"

    epoch: int = Field(sa_type=BigInteger, foreign_key="epoch.number", primary_key=True, ge=1)
    inputs_json: str = Field(sa_type=Text, max_length=MAX_EPOCH_JSON_CHARS)
    """The canonical JSON of the ``EpochInputs``: exactly what ``inputs_sha256`` hashes."""
    result_json: str = Field(sa_type=Text, max_length=MAX_EPOCH_JSON_CHARS)
    """The ``EpochResult`` as JSON (sorted keys, no spaces)."""


class EpochClip(SQLModel, table=True):
    """One clip taken by one epoch (a clip is in at most one: ``clip_id`` is the key)."""

    __tablename__ = "epoch_clip"
    __table_args__ = (Index("ix_epoch_clip_epoch_clip_id", "epoch", "clip_id"),)

    clip_id: str = Field(foreign_key="clip.id", primary_key=True, max_length=32)
    epoch: int = Field(sa_type=BigInteger, foreign_key="epoch.number", ge=1)
    contributor: str = Field(max_length=ADDRESS_CHARS)
    accepted: bool
    quality_bps: int = Field(ge=0, le=10_000)
    amount: int = WeiField()


class EpochAllocation(SQLModel, table=True):
    """One account of an epoch's rewards tree: its amounts and its proof."""

    __tablename__ = "epoch_allocation"
    __table_args__ = (
        # A wallet's epochs, newest first (``GET /rewards/{address}``).
        Index("ix_epoch_allocation_address_epoch", "address", "epoch"),
    )

    epoch: int = Field(sa_type=BigInteger, foreign_key="epoch.number", primary_key=True, ge=1)
    address: str = Field(primary_key=True, max_length=ADDRESS_CHARS)
    """EIP-55 checksum address."""
    contributor_amount: int = WeiField()
    validator_amount: int = WeiField()
    sales_amount: int | None = WeiField(default=None)
    """Rule /2: the account's part of the epoch's dataset sales (``None``: closed before
    sales were earmarked, which is 0)."""
    amount: int = WeiField()
    """Earned in this epoch (0 for an account that only carries its earlier total)."""
    cumulative: int = WeiField()
    """The leaf amount: everything the account earned up to this epoch."""
    proof_json: str = Field(sa_type=Text, max_length=MAX_PROOF_JSON_CHARS)
    """JSON list of ``0x`` hex siblings, what ``RewardDistributor.claim`` takes."""


class EpochValidator(SQLModel, table=True):
    """One validator's reports on the clips of an epoch, and what it earned by them."""

    __tablename__ = "epoch_validator"

    epoch: int = Field(sa_type=BigInteger, foreign_key="epoch.number", primary_key=True, ge=1)
    address: str = Field(primary_key=True, max_length=ADDRESS_CHARS)
    reports: int = Field(ge=0)
    agreed_reports: int = Field(ge=0)
    amount: int = WeiField()


class EpochSignature(SQLModel, table=True):
    """One validator's signature over an epoch's ``EpochRoot`` (one per validator)."""

    __tablename__ = "epoch_signature"

    epoch: int = Field(sa_type=BigInteger, foreign_key="epoch.number", primary_key=True, ge=1)
    validator: str = Field(primary_key=True, max_length=ADDRESS_CHARS)
    """EIP-55 checksum address of the signer."""
    signature: str = Field(max_length=SIGNATURE_CHARS)
    """``0x`` + 65 bytes ``r || s || v`` in hex, lower case."""
    stake_wei: int = WeiField()
    """The signer's active stake in the backend's snapshot when it signed."""
    created_at: datetime


# --- public schemas -------------------------------------------------------------------


class ClipCounts(BaseModel):
    """How many of an epoch's clips were accepted and rejected."""

    accepted: int
    rejected: int


class SignaturesView(BaseModel):
    """Who signed an epoch's root and how much stake that is.

    Before submission the figures are the backend's stake snapshot now (an estimate of
    the quorum); from ``submitting`` on they are the chain's at ``snapshot_block``.
    """

    signed_stake: str = PublicField(pattern=DECIMAL_PATTERN)
    total_stake: str = PublicField(pattern=DECIMAL_PATTERN)
    signers: list[str] = PublicField(max_length=MAX_SIGNERS)


class SubmissionView(BaseModel):
    """How an epoch's root goes to the chain (``None`` until quorum)."""

    snapshot_block: int | None = None
    tx_hash: str | None = PublicField(default=None, max_length=HASH_CHARS)
    block_number: int | None = None
    claimable_at: datetime | None = None


class EpochFunding(BaseModel):
    """Where an epoch's pool came from (``docs/api/rewards.md``, ``GET /epochs/{n}``).

    The ``Funded`` events after the previous epoch's funding, up to this epoch's
    ``funding_block``, added up by who called ``fund``: ``emission`` (the ShotToken, by
    ``drawEmission``), ``sales`` (the DatasetMarket: the contributor share of licence
    sales), ``slashing`` (the ValidatorRegistry: slashed stake), ``other`` (anyone else,
    such as the treasury topping the pool up). ``carried`` is what earlier epochs left
    unallocated, so ``pool = emission + sales + slashing + other + carried``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    emission: str = PublicField(pattern=DECIMAL_PATTERN)
    sales: str = PublicField(pattern=DECIMAL_PATTERN)
    slashing: str = PublicField(pattern=DECIMAL_PATTERN)
    other: str = PublicField(pattern=DECIMAL_PATTERN)
    carried: str = PublicField(pattern=DECIMAL_PATTERN)


class EpochSummary(BaseModel):
    """``GET /epochs/{n}``: a closed epoch's totals, root, signatures and submission."""

    epoch: int
    status: EpochStatus
    opened_at: datetime
    closed_at: datetime | None = None
    chain_id: int | None = None
    distributor: str | None = PublicField(default=None, max_length=ADDRESS_CHARS)
    rule: RewardRule | None = None
    funding_block: int | None = None
    funded_total: str | None = PublicField(default=None, pattern=DECIMAL_PATTERN)
    previous_epoch: int | None = None
    previous_cumulative_total: str | None = PublicField(default=None, pattern=DECIMAL_PATTERN)
    pool: str | None = PublicField(default=None, pattern=DECIMAL_PATTERN)
    contributor_pool: str | None = PublicField(default=None, pattern=DECIMAL_PATTERN)
    validator_pool: str | None = PublicField(default=None, pattern=DECIMAL_PATTERN)
    allocated: str | None = PublicField(default=None, pattern=DECIMAL_PATTERN)
    carry: str | None = PublicField(default=None, pattern=DECIMAL_PATTERN)
    sales_pool: str | None = PublicField(default=None, pattern=DECIMAL_PATTERN)
    """Rule /2: the contributor shares of the epoch's dataset sales of known versions."""
    sales_allocated: str | None = PublicField(default=None, pattern=DECIMAL_PATTERN)
    """Rule /2: what those sales gave the versions' contributors (rounding joins the rest)."""
    funding: EpochFunding | None = None
    """Where ``pool`` came from; ``None`` for epochs closed before it was recorded."""
    root: str | None = PublicField(default=None, max_length=HASH_CHARS)
    cumulative_total: str | None = PublicField(default=None, pattern=DECIMAL_PATTERN)
    inputs_sha256: str | None = PublicField(default=None, max_length=64)
    clips: ClipCounts
    accounts: int
    signatures: SignaturesView
    submission: SubmissionView | None = None


class EpochPage(BaseModel):
    """``GET /epochs``: closed epochs, newest first; pass ``next_before`` on."""

    epochs: list[EpochSummary] = PublicField(max_length=MAX_EPOCH_PAGE)
    next_before: int | None = None


class CurrentEpochView(BaseModel):
    """``GET /epochs/current``: the open epoch."""

    epoch: int
    opened_at: datetime
    scheduled_close_at: datetime


class SignatureSubmission(BaseModel):
    """Body of ``POST /validator/epochs/{n}/signatures``."""

    model_config = ConfigDict(extra="forbid")

    root: str = PublicField(pattern=_BYTES32_PATTERN, max_length=HASH_CHARS)
    cumulative_total: str = PublicField(pattern=DECIMAL_PATTERN, max_length=78)
    signature: str = PublicField(pattern=_SIGNATURE_PATTERN, max_length=SIGNATURE_CHARS)


class SignatureReceipt(BaseModel):
    """Answer of ``POST /validator/epochs/{n}/signatures`` (the same for a replay)."""

    epoch: int
    signed_stake: str = PublicField(pattern=DECIMAL_PATTERN)
    total_stake: str = PublicField(pattern=DECIMAL_PATTERN)
    quorum_reached: bool


class ClaimView(BaseModel):
    """What ``RewardDistributor.claim(account, cumulative_amount, proof)`` takes now."""

    epoch: int
    root: str = PublicField(max_length=HASH_CHARS)
    cumulative_amount: str = PublicField(pattern=DECIMAL_PATTERN)
    proof: list[str] = PublicField(max_length=64)
    distributor: str = PublicField(max_length=ADDRESS_CHARS)
    chain_id: int


class RewardEpochItem(BaseModel):
    """One epoch in which an address earned."""

    epoch: int
    amount: str = PublicField(pattern=DECIMAL_PATTERN)
    sales_amount: str = PublicField(default="0", pattern=DECIMAL_PATTERN)
    """The part of ``amount`` that came from dataset sales of the address's samples."""
    cumulative: str = PublicField(pattern=DECIMAL_PATTERN)
    status: EpochStatus


class RewardsView(BaseModel):
    """``GET /rewards/{address}``: earned, claimed, claimable, pending, and the claim."""

    address: str = PublicField(max_length=ADDRESS_CHARS)
    earned: str = PublicField(pattern=DECIMAL_PATTERN)
    """Cumulative amount in the newest closed epoch with a root."""
    claimed: str = PublicField(pattern=DECIMAL_PATTERN)
    """Sum of the confirmed ``Claimed`` events of the address."""
    claimable: str = PublicField(pattern=DECIMAL_PATTERN)
    """Cumulative amount in the claimable root minus ``claimed`` (never negative)."""
    pending: str = PublicField(pattern=DECIMAL_PATTERN)
    """``earned`` minus the claimable root's cumulative amount."""
    claim: ClaimView | None = None
    epochs: list[RewardEpochItem] = PublicField(max_length=MAX_REWARD_EPOCHS)


def rule_of(epoch: Epoch) -> RewardRule | None:
    """The rule an epoch was closed under (``None`` while open)."""
    return RewardRule.model_validate_json(epoch.rule_json) if epoch.rule_json else None
