"""The backend's side of the reward chain plumbing: its transaction outbox and the
RewardDistributor events the chain indexer saw.

Tables:

- :class:`OutboxTransaction` (``tx_outbox``) and :class:`OutboxAttempt` (``tx_attempt``):
  ``shotbank.chain.outbox.OutboxStore`` on the backend database
  (``backend.services.outboxstore.SqlOutboxStore``). One row per transaction the backend
  sends (root submissions, emission draws), unique per ``(chain_id, sender, key)`` (the
  idempotency key) and per ``(chain_id, sender, nonce)``; every signed attempt for its
  nonce (original, fee bumps, cancellation) is kept, since any of them may be the one
  that lands;
- :class:`RewardFunding` (``reward_funding``): every ``Funded`` event;
- :class:`RewardRoot` (``reward_root``): every ``RootSubmitted`` event, with the
  ``RootVetoed`` / ``RootChallenged`` event that cancelled it, if any;
- :class:`RewardClaim` (``reward_claim``): every ``Claimed`` event;
- :class:`RewardSource` (``reward_source``): the one distributor these rows were derived
  from (when the deployment changes they are dropped and re-indexed).

Every event row keeps ``block_number``, ``log_index``, ``block_hash`` and ``tx_hash``; a
reorg rollback deletes the rows above the common ancestor
(``backend.services.rewardsync.RewardEventHandler``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from sqlalchemy import BigInteger, Float, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core.db import WeiField
from backend.models.stakes import ADDRESS_CHARS, HASH_CHARS, INDEXER_NAME_CHARS

__all__ = [
    "MAX_ERROR_CHARS",
    "MAX_KEY_CHARS",
    "MAX_TX_DATA_CHARS",
    "REWARD_EVENTS",
    "CancelReason",
    "OutboxAttempt",
    "OutboxTransaction",
    "RewardClaim",
    "RewardFunding",
    "RewardRoot",
    "RewardSource",
]

#: Longest idempotency key (``shotbank.chain.outbox.TxIntent.key``).
MAX_KEY_CHARS: Final = 200
#: Longest calldata or raw transaction, hex with ``0x`` (TxIntent allows 128 KiB of data;
#: a signed transaction adds its envelope and signature).
MAX_TX_DATA_CHARS: Final = 2 * 128 * 1024 + 2 + 2 * 1024
#: Longest error message kept with a transaction (node answers can be long).
MAX_ERROR_CHARS: Final = 2000
#: Names of the RewardDistributor events the indexer follows.
REWARD_EVENTS: Final = ("Funded", "RootSubmitted", "RootVetoed", "RootChallenged", "Claimed")


class OutboxTransaction(SQLModel, table=True):
    """One outgoing transaction (``shotbank.chain.outbox.OutboxTx`` without attempts)."""

    __tablename__ = "tx_outbox"
    __table_args__ = (
        UniqueConstraint("chain_id", "sender", "key", name="uq_tx_outbox_chain_id_sender_key"),
        UniqueConstraint("chain_id", "sender", "nonce", name="uq_tx_outbox_chain_id_sender_nonce"),
        Index("ix_tx_outbox_chain_id_sender_status_nonce", "chain_id", "sender", "status", "nonce"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chain_id: int = Field(sa_type=BigInteger, ge=1)
    sender: str = Field(max_length=ADDRESS_CHARS)
    """EIP-55 address of the sending account."""
    key: str = Field(max_length=MAX_KEY_CHARS)
    """Idempotency key (``epoch-root:{chain_id}:{epoch}``...)."""
    nonce: int = Field(sa_type=BigInteger, ge=0)
    to_address: str | None = Field(default=None, max_length=ADDRESS_CHARS)
    data: str = Field(sa_type=Text, max_length=MAX_TX_DATA_CHARS)
    value: int = WeiField()
    gas: int = Field(sa_type=BigInteger, gt=0)
    status: str = Field(sa_type=String(16), max_length=16)
    """A ``shotbank.chain.outbox.TxStatus`` value."""
    created_at: float = Field(sa_type=Float)
    """Unix seconds, as the outbox's clock gives them."""
    updated_at: float = Field(sa_type=Float)
    last_sent_at: float | None = Field(default=None, sa_type=Float)
    mined_hash: str | None = Field(default=None, max_length=HASH_CHARS)
    block_number: int | None = Field(default=None, sa_type=BigInteger, ge=0)
    block_hash: str | None = Field(default=None, max_length=HASH_CHARS)
    error: str | None = Field(default=None, sa_type=Text, max_length=MAX_ERROR_CHARS)


class OutboxAttempt(SQLModel, table=True):
    """One signed transaction for an :class:`OutboxTransaction`'s nonce."""

    __tablename__ = "tx_attempt"
    __table_args__ = (Index("ix_tx_attempt_tx_id_id", "tx_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    tx_id: int = Field(foreign_key="tx_outbox.id")
    tx_hash: str = Field(max_length=HASH_CHARS, unique=True)
    raw: str = Field(sa_type=Text, max_length=MAX_TX_DATA_CHARS)
    max_fee_per_gas: int = WeiField()
    max_priority_fee_per_gas: int = WeiField()
    kind: str = Field(sa_type=String(16), max_length=16)
    """A ``shotbank.chain.outbox.AttemptKind`` value."""
    created_at: float = Field(sa_type=Float)


class RewardFunding(SQLModel, table=True):
    """A ``Funded(source, amount, totalFunded)`` event."""

    __tablename__ = "reward_funding"

    block_number: int = Field(sa_type=BigInteger, primary_key=True, ge=0)
    log_index: int = Field(sa_type=BigInteger, primary_key=True, ge=0)
    source: str = Field(max_length=ADDRESS_CHARS)
    """Who funded: the token (emission), the market (sales), the registry (slashing)..."""
    amount: int = WeiField()
    total_funded: int = WeiField()
    """``totalFunded()`` right after this event."""
    block_hash: str = Field(max_length=HASH_CHARS)
    tx_hash: str = Field(max_length=HASH_CHARS)


class CancelReason(StrEnum):
    """Why a submitted root was cancelled on chain."""

    VETOED = "vetoed"
    CHALLENGED = "challenged"


class RewardRoot(SQLModel, table=True):
    """A ``RootSubmitted`` event, and the event that cancelled the root, if one did.

    Epoch numbers only grow on chain (a cancelled epoch's number is burnt), so ``epoch`` is
    unique. Whether the root is claimable is derived: not cancelled and
    ``claimable_at <= `` the chain's latest block timestamp
    (``backend.services.rewardsync.claimable_root``).
    """

    __tablename__ = "reward_root"

    epoch: int = Field(sa_type=BigInteger, primary_key=True, ge=1)
    root: str = Field(max_length=HASH_CHARS)
    """``0x`` + 64 hex digits."""
    cumulative_total: int = WeiField()
    snapshot_block: int = Field(sa_type=BigInteger, ge=0)
    claimable_at: int = Field(sa_type=BigInteger, ge=0)
    """Unix seconds (chain time) from which claims verify against this root."""
    signed_stake: int = WeiField()
    total_stake: int = WeiField()
    block_number: int = Field(sa_type=BigInteger, ge=0, index=True)
    log_index: int = Field(sa_type=BigInteger, ge=0)
    block_hash: str = Field(max_length=HASH_CHARS)
    tx_hash: str = Field(max_length=HASH_CHARS)
    cancelled: str | None = Field(default=None, sa_type=String(16), max_length=16)
    """A :class:`CancelReason` value once ``RootVetoed`` / ``RootChallenged`` was seen."""
    cancelled_by: str | None = Field(default=None, max_length=ADDRESS_CHARS)
    """The guardian (veto) or the challenger."""
    challenged_validator: str | None = Field(default=None, max_length=ADDRESS_CHARS)
    """The equivocating validator named by a challenge."""
    cancelled_block: int | None = Field(default=None, sa_type=BigInteger, ge=0, index=True)
    cancelled_log_index: int | None = Field(default=None, sa_type=BigInteger, ge=0)
    cancelled_tx_hash: str | None = Field(default=None, max_length=HASH_CHARS)


class RewardClaim(SQLModel, table=True):
    """A ``Claimed(account, amount)`` event."""

    __tablename__ = "reward_claim"

    block_number: int = Field(sa_type=BigInteger, primary_key=True, ge=0)
    log_index: int = Field(sa_type=BigInteger, primary_key=True, ge=0)
    account: str = Field(max_length=ADDRESS_CHARS, index=True)
    """EIP-55 address that was paid."""
    amount: int = WeiField()
    block_hash: str = Field(max_length=HASH_CHARS)
    tx_hash: str = Field(max_length=HASH_CHARS)


class RewardSource(SQLModel, table=True):
    """The distributor the reward event rows are derived from (a single row, ``id = 1``)."""

    __tablename__ = "reward_source"

    id: int = Field(default=1, primary_key=True)
    chain_id: int = Field(sa_type=BigInteger, ge=1)
    distributor_address: str = Field(max_length=ADDRESS_CHARS)
    start_block: int = Field(sa_type=BigInteger, ge=0)
    confirmations: int = Field(ge=0)
    """Blocks an event must be deep before it is indexed."""
    indexer: str = Field(max_length=INDEXER_NAME_CHARS)
    """Name of the indexer checkpoint that follows the distributor."""
    updated_at: datetime
