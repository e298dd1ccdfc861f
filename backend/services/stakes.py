"""Validator stakes: the snapshot the chain indexer derives from ValidatorRegistry events.

How each event changes a validator's stake (``contracts/ValidatorRegistry.sol``)::

    event              active stake (bonded_wei)   unbonding (unbonding_wei)
    Staked             = activeStake               unchanged
    UnstakeRequested   -= amount                   = unbondingAmount
    Withdrawn          unchanged                   = 0 (all of it is paid out)
    Slashed            = 0                         = 0 (everything bonded goes)

A validator is **active** when its active stake reaches the registry's ``minStake`` (the
contract keeps active stake either 0 or at least ``minStake``). Only the active stake
counts as a report's weight.

:class:`StakeEventHandler` is the indexer's ``EventHandler``: it writes through the
:class:`~backend.services.chainstore.SqlIndexerStore`'s session, so the snapshot and the
checkpoint commit together, and keeps every event with the stake it left behind; a
reorg rollback deletes the events above the ancestor and restores each touched
validator from its newest remaining event.

The read side (:func:`snapshot_of`, :func:`require_validator`,
:func:`total_active_stake`, :func:`snapshot_block`) needs only the database: the
registry's address and ``minStake`` are kept in the ``stake_source`` row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlmodel import Session, col
from web3 import Web3
from web3.exceptions import Web3Exception

from backend.core.config import Settings
from backend.errors import DependencyUnavailableError, ValidatorNotStakedError
from backend.models.stakes import (
    STAKE_EVENTS,
    ChainCheckpoint,
    StakeSnapshot,
    StakeSource,
    ValidatorConfigPublic,
    ValidatorStake,
    ValidatorStakeEvent,
)
from backend.services.chainstore import SqlIndexerStore
from backend.services.system import read_deployment
from scoring.report import REPORT_SCHEMA_VERSION
from shotbank.chain.abi import load_abi
from shotbank.chain.contracts import ValidatorRegistry
from shotbank.chain.deployments import ChecksumAddressStr
from shotbank.chain.errors import ChainError, IndexerError
from shotbank.chain.indexer import EventBatch, IndexedEvent, LogSource

__all__ = [
    "INDEXER_PREFIX",
    "StakeEventHandler",
    "clear_snapshot",
    "current_source",
    "format_shot",
    "indexer_name",
    "read_min_stake",
    "registry_log_source",
    "require_validator",
    "snapshot_block",
    "snapshot_of",
    "total_active_stake",
    "use_source",
    "validator_config",
]

#: Prefix of the stake indexer's checkpoint names.
INDEXER_PREFIX: Final = "validator-stake:"
#: SHOT has the ERC-20 default of 18 decimals.
SHOT_DECIMALS: Final = 18

_Wei = Annotated[int, Field(ge=0, le=2**256 - 1)]


# --- event arguments (the chain boundary) ------------------------------------------------


class _Args(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    validator: ChecksumAddressStr
    amount: _Wei


class _Staked(_Args):
    active_stake: _Wei = Field(alias="activeStake")


class _UnstakeRequested(_Args):
    unbonding_amount: _Wei = Field(alias="unbondingAmount")
    release_time: _Wei = Field(alias="releaseTime")


class _Withdrawn(_Args):
    pass


class _Slashed(_Args):
    epoch: int = Field(ge=0, lt=2**64)
    reporter: ChecksumAddressStr


_ARGS: Final[dict[str, type[_Args]]] = {
    "Staked": _Staked,
    "UnstakeRequested": _UnstakeRequested,
    "Withdrawn": _Withdrawn,
    "Slashed": _Slashed,
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def indexer_name(chain_id: int, registry: str) -> str:
    """The checkpoint name of the stake indexer for ``registry`` on ``chain_id``."""
    return f"{INDEXER_PREFIX}{chain_id}:{to_checksum_address(registry)}"


def registry_log_source(registry: str) -> LogSource:
    """What the stake indexer follows: the registry's four stake events."""
    return LogSource(
        address=to_checksum_address(registry),
        abi=tuple(load_abi(ValidatorRegistry.NAME)),
        events=STAKE_EVENTS,
    )


class StakeEventHandler:
    """The stake indexer's ``EventHandler``; writes through ``store.session``."""

    def __init__(self, store: SqlIndexerStore) -> None:
        """Derive the snapshot inside ``store``'s transactions."""
        self.store = store

    def apply(self, batch: EventBatch) -> None:
        """Apply the stake events of ``batch`` in chain order."""
        session = self.store.session
        now = _utcnow()
        for event in batch.events:
            if event.event in _ARGS:
                self._apply_one(session, event, now)
        session.flush()

    @staticmethod
    def _apply_one(session: Session, event: IndexedEvent, now: datetime) -> None:
        args = _ARGS[event.event].model_validate(event.args)
        row = session.get(ValidatorStake, args.validator)
        bonded, unbonding = (row.bonded_wei, row.unbonding_wei) if row else (0, 0)
        if isinstance(args, _Staked):
            bonded = args.active_stake
        elif isinstance(args, _UnstakeRequested):
            if args.amount > bonded:
                # The contract refuses this; our rows must have missed an event.
                raise IndexerError(
                    f"{args.validator} unstakes {args.amount} wei at block "
                    f"{event.block_number} but the snapshot holds only {bonded}; re-index"
                )
            bonded -= args.amount
            unbonding = args.unbonding_amount
        elif isinstance(args, _Withdrawn):
            unbonding = 0
        else:
            bonded, unbonding = 0, 0
        session.add(
            ValidatorStakeEvent(
                block_number=event.block_number,
                log_index=event.log_index,
                address=args.validator,
                event=event.event,
                amount_wei=args.amount,
                bonded_wei=bonded,
                unbonding_wei=unbonding,
                block_hash=event.block_hash,
                transaction_hash=event.transaction_hash,
            )
        )
        if row is None:
            row = ValidatorStake(
                address=args.validator,
                bonded_wei=bonded,
                unbonding_wei=unbonding,
                updated_block=event.block_number,
                updated_at=now,
            )
        row.bonded_wei, row.unbonding_wei = bonded, unbonding
        row.updated_block, row.updated_at = event.block_number, now
        session.add(row)
        # The next event of the same validator reads this row back.
        session.flush()

    def rollback(self, to_block: int) -> None:
        """Forget the events after ``to_block`` and restore the validators they touched."""
        session = self.store.session
        touched = session.scalars(
            select(col(ValidatorStakeEvent.address))
            .where(col(ValidatorStakeEvent.block_number) > to_block)
            .distinct()
        ).all()
        session.execute(
            delete(ValidatorStakeEvent).where(col(ValidatorStakeEvent.block_number) > to_block)
        )
        now = _utcnow()
        for address in touched:
            latest = session.scalars(
                select(ValidatorStakeEvent)
                .where(col(ValidatorStakeEvent.address) == address)
                .order_by(
                    col(ValidatorStakeEvent.block_number).desc(),
                    col(ValidatorStakeEvent.log_index).desc(),
                )
                .limit(1)
            ).first()
            row = session.get(ValidatorStake, address)
            if latest is None:
                if row is not None:
                    session.delete(row)
                continue
            if row is None:
                row = ValidatorStake(
                    address=address,
                    bonded_wei=latest.bonded_wei,
                    unbonding_wei=latest.unbonding_wei,
                    updated_block=latest.block_number,
                    updated_at=now,
                )
            row.bonded_wei, row.unbonding_wei = latest.bonded_wei, latest.unbonding_wei
            row.updated_block, row.updated_at = latest.block_number, now
            session.add(row)
        session.flush()


# --- where the snapshot comes from -----------------------------------------------------


def read_min_stake(w3: Web3, *, registry: str) -> int:
    """The registry's ``minStake``, read from the chain.

    The chain sync reads it once per registry it follows and keeps it in the
    ``stake_source`` row (``minStake`` is immutable in the contract), where the read side
    finds it without a chain call. Chain errors (``NodeUnavailableError``...) reach the
    caller.
    """
    return ValidatorRegistry(w3, to_checksum_address(registry)).min_stake()


def current_source(session: Session) -> StakeSource | None:
    """The registry the snapshot was derived from, if the indexer has set one up."""
    return session.get(StakeSource, 1)


def clear_snapshot(store: SqlIndexerStore, name: str) -> None:
    """Drop every derived row and indexer ``name``'s checkpoint (inside a transaction):
    the next step re-indexes from the deployment's start block."""
    session = store.session
    session.execute(delete(ValidatorStakeEvent))
    session.execute(delete(ValidatorStake))
    store.forget_indexer(name)


def use_source(
    store: SqlIndexerStore,
    *,
    chain_id: int,
    registry: str,
    start_block: int,
    min_stake_wei: int,
    confirmations: int,
) -> str:
    """Record ``registry`` as the snapshot's source; the stake indexer's name.

    A different source than the recorded one (another chain, a redeployed registry, a
    new start block) makes the old snapshot meaningless: it is dropped with its
    checkpoint, and the indexer starts over.
    """
    name = indexer_name(chain_id, registry)
    with store.transaction():
        session = store.session
        source = current_source(session)
        same = source is not None and (
            (source.chain_id, source.registry_address, source.start_block, source.indexer)
            == (chain_id, to_checksum_address(registry), start_block, name)
        )
        if not same:
            stale = session.scalars(
                select(col(ChainCheckpoint.name)).where(
                    col(ChainCheckpoint.name).startswith(INDEXER_PREFIX)
                )
            ).all()
            for old in {*stale, name}:
                clear_snapshot(store, old)
        if source is None:
            source = StakeSource(
                chain_id=chain_id,
                registry_address=to_checksum_address(registry),
                start_block=start_block,
                min_stake_wei=min_stake_wei,
                confirmations=confirmations,
                indexer=name,
                updated_at=_utcnow(),
            )
        source.chain_id, source.registry_address = chain_id, to_checksum_address(registry)
        source.start_block, source.min_stake_wei = start_block, min_stake_wei
        source.confirmations, source.indexer = confirmations, name
        source.updated_at = _utcnow()
        session.add(source)
    return name


# --- the read side -----------------------------------------------------------------------


def snapshot_block(session: Session, source: StakeSource | None = None) -> int | None:
    """The block the snapshot is complete up to; ``None`` before the first indexing."""
    source = source if source is not None else current_source(session)
    if source is None:
        return None
    checkpoint = session.get(ChainCheckpoint, source.indexer)
    return None if checkpoint is None else checkpoint.block_number


def snapshot_of(session: Session, address: str) -> StakeSnapshot | None:
    """``address``'s stake in the current snapshot; ``None`` if it never staked (or the
    snapshot does not exist yet)."""
    source = current_source(session)
    if source is None:
        return None
    block = snapshot_block(session, source)
    row = session.get(ValidatorStake, to_checksum_address(address))
    if row is None or block is None:
        return None
    return StakeSnapshot(
        address=row.address,
        bonded_wei=row.bonded_wei,
        block=block,
        is_active=row.bonded_wei >= source.min_stake_wei,
    )


def format_shot(amount_wei: int) -> str:
    """``amount_wei`` in whole SHOT, with decimals only where needed (``1,000`` / ``0.5``)."""
    whole, fraction = divmod(amount_wei, 10**SHOT_DECIMALS)
    decimals = f".{fraction:0{SHOT_DECIMALS}d}".rstrip("0") if fraction else ""
    return f"{whole:,}{decimals}"


def require_validator(session: Session, address: str) -> StakeSnapshot:
    """``address``'s snapshot if it is an active validator.

    Raises :class:`~backend.errors.ValidatorNotStakedError` (403) saying how to become one, or
    :class:`~backend.errors.DependencyUnavailableError` (503) while the backend has no
    snapshot yet (it has not reached the chain since it started indexing).
    """
    source = current_source(session)
    block = snapshot_block(session, source) if source is not None else None
    if source is None or block is None:
        raise DependencyUnavailableError(
            "The validator stake snapshot is not ready yet: the backend has not indexed "
            "the ValidatorRegistry. Try again shortly."
        )
    snapshot = snapshot_of(session, address)
    if snapshot is not None and snapshot.is_active:
        return snapshot
    checksum = to_checksum_address(address)
    held = (
        f"only {format_shot(snapshot.bonded_wei)} SHOT of active stake"
        if snapshot is not None and snapshot.bonded_wei > 0
        else "no active stake"
    )
    wait = source.confirmations
    raise ValidatorNotStakedError(
        f"{checksum} has {held} in ValidatorRegistry {source.registry_address} "
        f"(chain {source.chain_id}, snapshot block {block}); stake at least "
        f"{format_shot(source.min_stake_wei)} SHOT with `stake(amount)` and wait for "
        f"{wait} confirmation{'' if wait == 1 else 's'}."
    )


def total_active_stake(session: Session) -> int:
    """Sum of the active stake of every active validator in the snapshot (wei).

    Added up in Python: SQLite stores wei as text (``backend.core.db.Wei``). The rows are
    the registry's validators, which it caps (``MAX_ACTIVE_VALIDATORS``) plus those that
    left.
    """
    source = current_source(session)
    if source is None:
        return 0
    amounts = session.scalars(
        select(col(ValidatorStake.bonded_wei)).where(
            col(ValidatorStake.bonded_wei) >= source.min_stake_wei
        )
    ).all()
    return sum(amounts)


def validator_config(session: Session, *, settings: Settings, w3: Web3) -> ValidatorConfigPublic:
    """What a validator node needs to know (``GET /api/v1/validator/config``).

    ``minStake`` comes from the snapshot's source row when it is about the deployed
    registry, else from the chain (until the chain sync has set the row up). Raises
    :class:`~backend.errors.DependencyUnavailableError` when nothing is deployed on the
    chain or ``minStake`` cannot be read.
    """
    deployment = read_deployment(path=settings.deployments_path, chain_id=settings.chain_id)
    if deployment is None or ValidatorRegistry.NAME not in deployment.contracts:
        raise DependencyUnavailableError(
            f"No ValidatorRegistry is deployed on chain {settings.chain_id} yet."
        )
    registry = deployment.address(ValidatorRegistry.NAME)
    source = current_source(session)
    if source is not None and (source.chain_id, source.registry_address) == (
        settings.chain_id,
        registry,
    ):
        min_stake, block = source.min_stake_wei, snapshot_block(session, source)
    else:
        try:
            min_stake = read_min_stake(w3, registry=registry)
        except (ChainError, Web3Exception, OSError) as exc:
            # requests' connection errors and timeouts are OSErrors.
            raise DependencyUnavailableError(
                "The chain node did not answer; the registry's minimum stake is unknown."
            ) from exc
        block = None
    return ValidatorConfigPublic(
        chain_id=settings.chain_id,
        validator_registry=registry,
        min_stake_wei=str(min_stake),
        snapshot_block=block,
        confirmations=settings.chain_confirmations,
        quorum=settings.consensus_quorum,
        lease_ttl_s=settings.lease_ttl_s,
        max_jobs_per_lease=settings.lease_max_jobs,
        report_version=REPORT_SCHEMA_VERSION,
    )
