"""RewardDistributor events, as the chain indexer saw them, and the questions asked of them.

The chain-sync job (``backend.services.chainsync.ChainSync``) follows the distributor with
its own indexer (checkpoint ``reward-distributor:<chain id>:<address>``, the
``SHOTBANK_CHAIN_CONFIRMATIONS`` of the stake snapshot) into three tables
(``backend.models.rewardchain``)::

    event                                          table / effect
    Funded(source, amount, totalFunded)            reward_funding: one row
    RootSubmitted(epoch, root, cumulativeTotal,
      snapshotBlock, claimableAt, signedStake,
      totalStake)                                  reward_root: one row (epoch is unique)
    RootVetoed(epoch, guardian)                    reward_root: cancelled = "vetoed"
    RootChallenged(epoch, validator, challenger)   reward_root: cancelled = "challenged"
    Claimed(account, amount)                       reward_claim: one row

:class:`RewardEventHandler` is that indexer's ``EventHandler``: it writes through the
:class:`~backend.services.chainstore.SqlIndexerStore`'s session, so rows and checkpoint
commit together; a reorg rollback deletes the rows above the common ancestor and undoes
the cancellations recorded above it.

Read side (pure database queries; everything returned is final per the confirmations):

- :func:`indexed_block` -- the distributor indexer's checkpoint block: every event at or
  below it is in the tables. ``None`` before the first indexing.
- :func:`funded_total_at` -- ``(totalFunded, block)`` of the last ``Funded`` event at or
  below a block (``None`` if there was none): ``RewardDistributor.totalFunded()`` at that
  block. Only meaningful for blocks ``<= indexed_block``.
- :func:`claimed_total` -- the sum of an address's ``Claimed`` amounts (its ``claimed``
  on chain, as of :func:`indexed_block`).
- :func:`root_event` -- the ``RootSubmitted`` row of an epoch (with its cancellation).
- :func:`latest_root` -- the row of the highest submitted epoch (optionally skipping
  cancelled roots).
- :func:`claimable_root` -- the root claims verify against at a given chain time: the
  newest root that was not cancelled and whose ``claimable_at`` has passed (the
  contract allows one Pending root at a time, so every older surviving root is
  superseded by it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from backend.models.rewardchain import (
    REWARD_EVENTS,
    CancelReason,
    RewardClaim,
    RewardFunding,
    RewardRoot,
    RewardSource,
)
from backend.models.stakes import ChainCheckpoint
from backend.services.chainstore import SqlIndexerStore
from shotbank.chain.abi import load_abi
from shotbank.chain.contracts import RewardDistributor
from shotbank.chain.deployments import ChecksumAddressStr
from shotbank.chain.errors import IndexerError
from shotbank.chain.indexer import EventBatch, IndexedEvent, LogSource

__all__ = [
    "INDEXER_PREFIX",
    "RewardEventHandler",
    "claimable_root",
    "claimed_total",
    "clear_events",
    "current_source",
    "distributor_log_source",
    "funded_total_at",
    "indexed_block",
    "indexer_name",
    "latest_root",
    "root_event",
    "use_source",
]

#: Prefix of the distributor indexer's checkpoint names.
INDEXER_PREFIX: Final = "reward-distributor:"

_Wei = Annotated[int, Field(ge=0, le=2**256 - 1)]
_Epoch = Annotated[int, Field(ge=0, lt=2**64)]
_Bytes32 = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]


# --- event arguments (the chain boundary) ------------------------------------------------


class _Args(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class _Funded(_Args):
    source: ChecksumAddressStr
    amount: _Wei
    total_funded: _Wei = Field(alias="totalFunded")


class _RootSubmitted(_Args):
    epoch: _Epoch
    root: _Bytes32
    cumulative_total: _Wei = Field(alias="cumulativeTotal")
    snapshot_block: _Wei = Field(alias="snapshotBlock")
    claimable_at: _Wei = Field(alias="claimableAt")
    signed_stake: _Wei = Field(alias="signedStake")
    total_stake: _Wei = Field(alias="totalStake")


class _RootVetoed(_Args):
    epoch: _Epoch
    guardian: ChecksumAddressStr


class _RootChallenged(_Args):
    epoch: _Epoch
    validator: ChecksumAddressStr
    challenger: ChecksumAddressStr


class _Claimed(_Args):
    account: ChecksumAddressStr
    amount: _Wei


_ARGS: Final[dict[str, type[_Args]]] = {
    "Funded": _Funded,
    "RootSubmitted": _RootSubmitted,
    "RootVetoed": _RootVetoed,
    "RootChallenged": _RootChallenged,
    "Claimed": _Claimed,
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def indexer_name(chain_id: int, distributor: str) -> str:
    """The checkpoint name of the distributor indexer for ``distributor`` on ``chain_id``."""
    return f"{INDEXER_PREFIX}{chain_id}:{to_checksum_address(distributor)}"


def distributor_log_source(distributor: str) -> LogSource:
    """What the distributor indexer follows: the five events of :data:`REWARD_EVENTS`."""
    return LogSource(
        address=to_checksum_address(distributor),
        abi=tuple(load_abi(RewardDistributor.NAME)),
        events=REWARD_EVENTS,
    )


class RewardEventHandler:
    """The distributor indexer's ``EventHandler``; writes through ``store.session``."""

    def __init__(self, store: SqlIndexerStore) -> None:
        """Derive the reward tables inside ``store``'s transactions."""
        self.store = store

    def apply(self, batch: EventBatch) -> None:
        """Apply the distributor events of ``batch`` in chain order."""
        session = self.store.session
        for event in batch.events:
            if event.event in _ARGS:
                self._apply_one(session, event)
        session.flush()

    @staticmethod
    def _apply_one(session: Session, event: IndexedEvent) -> None:
        args = _ARGS[event.event].model_validate(event.args)
        number, index = event.block_number, event.log_index
        block_hash, tx_hash = event.block_hash, event.transaction_hash
        if isinstance(args, _Funded):
            session.add(
                RewardFunding(
                    block_number=number,
                    log_index=index,
                    source=args.source,
                    amount=args.amount,
                    total_funded=args.total_funded,
                    block_hash=block_hash,
                    tx_hash=tx_hash,
                )
            )
        elif isinstance(args, _Claimed):
            session.add(
                RewardClaim(
                    block_number=number,
                    log_index=index,
                    account=args.account,
                    amount=args.amount,
                    block_hash=block_hash,
                    tx_hash=tx_hash,
                )
            )
        elif isinstance(args, _RootSubmitted):
            session.add(
                RewardRoot(
                    epoch=args.epoch,
                    root=args.root,
                    cumulative_total=args.cumulative_total,
                    snapshot_block=args.snapshot_block,
                    claimable_at=args.claimable_at,
                    signed_stake=args.signed_stake,
                    total_stake=args.total_stake,
                    block_number=number,
                    log_index=index,
                    block_hash=block_hash,
                    tx_hash=tx_hash,
                )
            )
            # A veto in the same batch reads this row back.
            session.flush()
        else:
            assert isinstance(args, _RootVetoed | _RootChallenged)
            row = session.get(RewardRoot, args.epoch)
            if row is None:
                # The contract only cancels a Pending root; our rows must have missed it.
                raise IndexerError(
                    f"{event.event} for epoch {args.epoch} at block {event.block_number} "
                    "but no RootSubmitted for it was indexed; re-index"
                )
            if isinstance(args, _RootVetoed):
                row.cancelled, row.cancelled_by = CancelReason.VETOED.value, args.guardian
            else:
                row.cancelled, row.cancelled_by = CancelReason.CHALLENGED.value, args.challenger
                row.challenged_validator = args.validator
            row.cancelled_block, row.cancelled_log_index = number, index
            row.cancelled_tx_hash = tx_hash
            session.add(row)

    def rollback(self, to_block: int) -> None:
        """Forget the events after ``to_block``: their rows, and cancellations of older roots."""
        session = self.store.session
        for table in (RewardFunding, RewardClaim, RewardRoot):
            session.execute(delete(table).where(col(table.block_number) > to_block))
        session.execute(
            update(RewardRoot)
            .where(col(RewardRoot.cancelled_block) > to_block)
            .values(
                cancelled=None,
                cancelled_by=None,
                challenged_validator=None,
                cancelled_block=None,
                cancelled_log_index=None,
                cancelled_tx_hash=None,
            )
        )
        session.flush()
        # Rows loaded before the bulk statements must not be written back stale.
        session.expire_all()


def current_source(session: Session) -> RewardSource | None:
    """The distributor the reward tables are derived from, if any."""
    return session.get(RewardSource, 1)


def clear_events(store: SqlIndexerStore, name: str) -> None:
    """Drop every reward row and indexer ``name``'s checkpoint (inside a transaction)."""
    session = store.session
    for table in (RewardFunding, RewardClaim, RewardRoot):
        session.execute(delete(table))
    store.forget_indexer(name)


def use_source(
    store: SqlIndexerStore,
    *,
    chain_id: int,
    distributor: str,
    start_block: int,
    confirmations: int,
) -> str:
    """Record ``distributor`` as the reward tables' source; the distributor indexer's name.

    A different source than the recorded one (another chain, a redeployed distributor, a
    new start block), or rows without the checkpoint that vouches for them, makes the
    rows meaningless: they are dropped with every distributor checkpoint, and the
    indexer starts over from ``start_block``.
    """
    distributor = to_checksum_address(distributor)
    name = indexer_name(chain_id, distributor)
    with store.transaction():
        session = store.session
        source = current_source(session)
        same = (
            source is not None
            and (source.chain_id, source.distributor_address, source.start_block, source.indexer)
            == (chain_id, distributor, start_block, name)
            and session.get(ChainCheckpoint, name) is not None
        )
        if not same:
            stale = session.scalars(
                select(col(ChainCheckpoint.name)).where(
                    col(ChainCheckpoint.name).startswith(INDEXER_PREFIX)
                )
            ).all()
            for old in {*stale, name}:
                clear_events(store, old)
        if source is None:
            source = RewardSource(
                chain_id=chain_id,
                distributor_address=distributor,
                start_block=start_block,
                confirmations=confirmations,
                indexer=name,
                updated_at=_utcnow(),
            )
        source.chain_id, source.distributor_address = chain_id, distributor
        source.start_block, source.confirmations = start_block, confirmations
        source.indexer, source.updated_at = name, _utcnow()
        session.add(source)
    return name


# --- the read side -----------------------------------------------------------------------


def indexed_block(session: Session) -> int | None:
    """The distributor indexer's checkpoint block (every event at or below it is in the
    tables and final per the confirmations); ``None`` before the first indexing."""
    source = current_source(session)
    if source is None:
        return None
    checkpoint = session.get(ChainCheckpoint, source.indexer)
    return None if checkpoint is None else checkpoint.block_number


def funded_total_at(session: Session, block: int) -> tuple[int, int] | None:
    """``(totalFunded, its block)`` of the last ``Funded`` event at or below ``block``.

    That is ``RewardDistributor.totalFunded()`` at ``block``, provided ``block <=
    indexed_block(session)``. ``None`` when the pool was never funded up to ``block``
    (``totalFunded()`` is 0 there).
    """
    row = session.scalars(
        select(RewardFunding)
        .where(col(RewardFunding.block_number) <= block)
        .order_by(col(RewardFunding.block_number).desc(), col(RewardFunding.log_index).desc())
        .limit(1)
    ).first()
    return None if row is None else (row.total_funded, row.block_number)


def claimed_total(session: Session, address: str) -> int:
    """Everything ``address`` was paid by claims (the sum of its ``Claimed`` amounts).

    Added up in Python: SQLite stores wei as text (``backend.core.db.Wei``).
    """
    amounts = session.scalars(
        select(col(RewardClaim.amount)).where(
            col(RewardClaim.account) == to_checksum_address(address)
        )
    ).all()
    return sum(amounts)


def root_event(session: Session, epoch: int) -> RewardRoot | None:
    """The ``RootSubmitted`` row of ``epoch`` (see ``cancelled`` for a veto/challenge)."""
    return session.get(RewardRoot, epoch)


def latest_root(session: Session, *, include_cancelled: bool = True) -> RewardRoot | None:
    """The row of the highest epoch submitted on chain (not cancelled, if asked)."""
    query = select(RewardRoot)
    if not include_cancelled:
        query = query.where(col(RewardRoot.cancelled).is_(None))
    return session.scalars(query.order_by(col(RewardRoot.epoch).desc()).limit(1)).first()


def claimable_root(session: Session, *, now: int) -> RewardRoot | None:
    """The root ``RewardDistributor.claim`` verifies against at chain time ``now``.

    ``now`` should be the timestamp of the chain's latest block (or of the block at
    :func:`indexed_block` for an answer that cannot change); the newest root not
    cancelled whose ``claimable_at <= now``.
    """
    return session.scalars(
        select(RewardRoot)
        .where(col(RewardRoot.cancelled).is_(None), col(RewardRoot.claimable_at) <= now)
        .order_by(col(RewardRoot.epoch).desc())
        .limit(1)
    ).first()
