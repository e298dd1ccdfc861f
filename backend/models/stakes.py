"""Validator stake snapshot: the ValidatorRegistry's stakes as the chain indexer saw them.

The snapshot answers "who is a validator, with what weight" (``docs/api/validator.md``)
without a chain call per request. Tables:

- :class:`ValidatorStake`: per validator, its **active** stake (``bonded_wei``: the stake
  that counts, the registry's ``stakeOf``) and its stake in unbonding (no longer
  counting, still slashable), after the last confirmed event touching it;
- :class:`ValidatorStakeEvent`: every applied ``Staked`` / ``UnstakeRequested`` /
  ``Withdrawn`` / ``Slashed`` log with the stake it left behind, so a reorg rollback
  deletes the events above the common ancestor and restores each touched validator
  from its newest remaining event;
- :class:`StakeSource`: the one registry the snapshot was derived from (chain id,
  address, start block, its immutable ``minStake``) and the indexer's settings; when
  the deployment changes, the derived rows are dropped and re-indexed;
- :class:`ChainCheckpoint` and :class:`ChainBlock`: the chain indexer's checkpoint and
  recent block hashes (``shotbank.chain.indexer.IndexerStore``, implemented in
  ``backend.services.chainstore``), in the same database so derived rows and the
  checkpoint commit together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PublicField
from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from backend.core.db import WeiField

#: An EIP-55 address: ``0x`` + 40 hex digits.
ADDRESS_CHARS: Final = 42
#: A block or transaction hash: ``0x`` + 64 hex digits.
HASH_CHARS: Final = 66
#: Longest indexer name (``validator-stake:<chain id>:<registry>``).
INDEXER_NAME_CHARS: Final = 128
#: Names of the ValidatorRegistry events that change stake.
STAKE_EVENTS: Final = ("Staked", "UnstakeRequested", "Withdrawn", "Slashed")


class ValidatorStake(SQLModel, table=True):
    """One validator's stake after the newest confirmed event that touched it."""

    __tablename__ = "validator_stake"

    address: str = Field(primary_key=True, max_length=ADDRESS_CHARS)
    """EIP-55 checksum address."""
    bonded_wei: int = WeiField()
    """Active stake: what counts as the validator's weight (``stakeOf`` on chain)."""
    unbonding_wei: int = WeiField()
    """Stake requested out and not yet withdrawn: no weight, still slashable."""
    updated_block: int = Field(sa_type=BigInteger, ge=0)
    """Block of the newest event applied to this row."""
    updated_at: datetime


class ValidatorStakeEvent(SQLModel, table=True):
    """One applied stake event and the stake it left its validator with."""

    __tablename__ = "validator_stake_event"

    block_number: int = Field(sa_type=BigInteger, primary_key=True, ge=0)
    log_index: int = Field(sa_type=BigInteger, primary_key=True, ge=0)
    address: str = Field(max_length=ADDRESS_CHARS, index=True)
    event: str = Field(max_length=32)
    amount_wei: int = WeiField()
    """The event's ``amount``."""
    bonded_wei: int = WeiField()
    """Active stake after the event."""
    unbonding_wei: int = WeiField()
    """Unbonding stake after the event."""
    block_hash: str = Field(max_length=HASH_CHARS)
    transaction_hash: str = Field(max_length=HASH_CHARS)


class StakeSource(SQLModel, table=True):
    """The registry the snapshot is derived from (a single row, ``id = 1``)."""

    __tablename__ = "stake_source"

    id: int = Field(default=1, primary_key=True)
    chain_id: int = Field(sa_type=BigInteger, ge=1)
    registry_address: str = Field(max_length=ADDRESS_CHARS)
    start_block: int = Field(sa_type=BigInteger, ge=0)
    min_stake_wei: int = WeiField()
    """The registry's ``minStake`` (immutable in the contract, so read once)."""
    confirmations: int = Field(ge=0)
    """Blocks an event must be deep before it enters the snapshot."""
    indexer: str = Field(max_length=INDEXER_NAME_CHARS)
    """Name of the indexer checkpoint that tracks this registry."""
    updated_at: datetime


class ChainCheckpoint(SQLModel, table=True):
    """The last block an indexer applied (``shotbank.chain.indexer.Checkpoint``)."""

    __tablename__ = "chain_checkpoint"

    name: str = Field(primary_key=True, max_length=INDEXER_NAME_CHARS)
    block_number: int = Field(sa_type=BigInteger, ge=-1)
    """-1 is the virtual block before genesis."""
    block_hash: str | None = Field(default=None, max_length=HASH_CHARS)


class ChainBlock(SQLModel, table=True):
    """A recent block hash an indexer remembers to detect reorgs."""

    __tablename__ = "chain_block"

    name: str = Field(primary_key=True, max_length=INDEXER_NAME_CHARS)
    block_number: int = Field(sa_type=BigInteger, primary_key=True, ge=0)
    block_hash: str = Field(max_length=HASH_CHARS)


class StakeSnapshot(BaseModel):
    """A validator's stake in the current snapshot."""

    model_config = ConfigDict(frozen=True)

    address: str = PublicField(max_length=ADDRESS_CHARS)
    bonded_wei: int = PublicField(ge=0)
    """Active stake (the validator's weight)."""
    block: int = PublicField(ge=-1)
    """The snapshot's block: every confirmed event up to it is included."""
    is_active: bool
    """Whether ``bonded_wei`` reaches the registry's ``minStake``."""


class ValidatorConfigPublic(BaseModel):
    """``GET /api/v1/validator/config``: what a validator node needs to know."""

    model_config = ConfigDict(frozen=True)

    chain_id: int = PublicField(ge=1)
    validator_registry: str = PublicField(max_length=ADDRESS_CHARS)
    """Address of the ValidatorRegistry: the EIP-712 ``verifyingContract`` of reports."""
    min_stake_wei: str = PublicField(pattern=r"^[0-9]{1,78}$")
    """The registry's ``minStake``, as a decimal string (wei)."""
    snapshot_block: int | None = PublicField(default=None, ge=-1)
    """Block of the stake snapshot; ``None`` until the indexer has run once."""
    confirmations: int = PublicField(ge=0)
    """Blocks a stake change must be deep before the snapshot shows it."""
    quorum: int = PublicField(ge=1)
    lease_ttl_s: int = PublicField(ge=1)
    max_jobs_per_lease: int = PublicField(ge=1)
    report_version: int = PublicField(ge=1)
