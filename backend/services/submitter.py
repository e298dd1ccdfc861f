"""The background job that takes closed epochs' roots to the chain and follows them there.

:class:`Submitter` is a loop job (``BackgroundRunner.add_loop``). Each :meth:`Submitter.step`
does, with the operator account (``SHOTBANK_OPERATOR_KEY``) and its transaction outbox
(``backend.services.outboxstore``, table ``tx_outbox``):

1. **drive the outbox** (broadcast, reconcile receipts, bump fees, re-send after a reorg);
2. **follow** (:meth:`Submitter.sync_statuses`): an epoch's status moves with what the
   chain indexer saw (``reward_root``) and the chain's time: ``submitted`` once its
   ``RootSubmitted`` is indexed, ``claimable`` once its ``claimable_at`` has passed (an
   older claimable epoch is then ``superseded``, as the contract's ``rootStatus`` says),
   ``cancelled`` after a veto or challenge. A submission whose transaction reverted or
   was dropped puts the epoch back to ``closed`` to be tried again (under a new key);
3. **draw emission** (:meth:`Submitter.draw_emission`): once per closed epoch, the newest,
   ``drawEmission`` under the key ``emission:{chain_id}:{epoch}``, skipped when
   ``releasableEmission()`` is 0; it funds the next epoch's pool;
4. **submit** (:meth:`Submitter.plan_submission` + :meth:`Submitter.enqueue_submission`):
   while no root of ours is on its way or in its challenge window (and the chain has no
   Pending root in its window), take the newest ``closed`` epoch whose signatures hold
   >= 2/3 of the stake at ``snapshot_block = head - max(confirmations, 1)`` (the
   registry's ``stakeAt`` / ``totalStakeAt``; signers without stake there are left out,
   the contract refuses them), enqueue ``submitRoot`` with the signatures ordered as the
   registry requires under the key ``epoch-root:{chain_id}:{epoch}``, mark the epoch
   ``submitting`` and every older ``closed`` epoch ``superseded`` (the newer cumulative
   root pays what they owed).

Exactly one root transaction per epoch, whatever crashes: the outbox persists the signed
transaction under its key before anything is broadcast, and before planning anything the
submitter adopts a transaction already stored under a closed epoch's key (a crash
between enqueueing and recording it). A crash between the quorum and the enqueue loses
nothing but the computation. Receipts are the outbox's business: a new instance
reconciles the stored attempts.

It never takes the app down: a node that is down, a missing deployment or operator key
are logged once (as a warning; repeats at debug level) and tried again after
``SHOTBANK_CHAIN_POLL_S``. Closing epochs does not depend on it (``backend.services.epochs``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from web3 import Web3
from web3.exceptions import Web3Exception

from backend.core.config import Settings
from backend.errors import BackendError
from backend.models.epochs import MAX_NOTE_CHARS, Epoch, EpochSignature, EpochStatus
from backend.models.rewardchain import CancelReason, RewardRoot
from backend.services import rewardsync
from backend.services.epochs import Deployed, deployed, lock_epochs, quorum_reached
from backend.services.leases import utcnow
from backend.services.outboxstore import operator_outbox
from shotbank.chain.contracts import (
    ContractCall,
    RewardDistributor,
    RootStatus,
    ShotToken,
    ValidatorRegistry,
)
from shotbank.chain.eip712 import EpochRoot, bundle_signatures
from shotbank.chain.errors import (
    ChainError,
    NodeUnavailableError,
    OutboxError,
    TransactionRevertedError,
)
from shotbank.chain.outbox import Outbox, OutboxTx, TxStatus
from shotbank.chain.rpc import RetryPolicy, connect

__all__ = ["RootPlan", "Submitter", "emission_key", "root_key"]

logger = logging.getLogger(__name__)

#: Reads are retried this often within one step; the job's own poll retries after that.
_RPC_ATTEMPTS: Final = 2
#: Closed epochs whose quorum one step considers (newest first).
MAX_CANDIDATES: Final = 16
#: Outbox outcomes after which a root transaction did not land.
_FAILED: Final = (TxStatus.REVERTED, TxStatus.DROPPED, TxStatus.CANCELLED)
#: Statuses of an epoch whose root is on its way or on chain and still followed (and
#: ``superseded`` ones newer than the claimable epoch: one of them may have landed).
_FOLLOWED: Final = (
    EpochStatus.CLOSED,
    EpochStatus.SUBMITTING,
    EpochStatus.SUBMITTED,
    EpochStatus.CLAIMABLE,
)


def root_key(chain_id: int, epoch: int, attempt: int = 0) -> str:
    """The outbox key of epoch ``epoch``'s root submission; a retry after a reverted or
    dropped transaction (``attempt`` >= 1) gets its own."""
    key = f"epoch-root:{chain_id}:{epoch}"
    return key if attempt == 0 else f"{key}:{attempt}"


def emission_key(chain_id: int, epoch: int) -> str:
    """The outbox key of the emission draw made when epoch ``epoch`` closed."""
    return f"emission:{chain_id}:{epoch}"


@dataclass(frozen=True)
class RootPlan:
    """A root submission that reached the quorum: what to enqueue, and for which epoch."""

    epoch: int
    key: str
    call: ContractCall
    snapshot_block: int
    signed_stake: int
    total_stake: int
    signers: tuple[str, ...]


def _now() -> datetime:
    return utcnow()


def _when(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


class Submitter:
    """Submits epoch roots and draws emission; see the module docstring."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        """Work on the database behind ``engine`` per ``settings`` (nothing connects yet)."""
        self.engine = engine
        self.settings = settings
        self._outbox: Outbox | None = None
        self._problem: str | None = None

    # --- the job -----------------------------------------------------------------------

    def step(self) -> bool:
        """One round (see the module docstring); True when it enqueued a transaction."""
        if self.settings.operator_key is None:
            self._report(
                "operator_key",
                "SHOTBANK_OPERATOR_KEY is not set, so epoch roots are not submitted",
            )
            return False
        try:
            done = self._step()
        except NodeUnavailableError as exc:
            self._report("node", f"the chain node is unreachable ({exc})")
            return False
        except BackendError as exc:
            self._report(exc.code, exc.message)
            return False
        except (ChainError, Web3Exception, OSError) as exc:
            # requests' connection errors and timeouts are OSErrors.
            self._report(type(exc).__name__, str(exc))
            return False
        self._recovered()
        return done

    def _step(self) -> bool:
        outbox = self.outbox()
        outbox.process()
        self.sync_statuses()
        drawn = self.draw_emission() is not None
        plan = self.plan_submission()
        if plan is not None:
            self.enqueue_submission(plan)
        enqueued = drawn or plan is not None
        if enqueued:
            outbox.process()
            self.sync_statuses()
        return enqueued

    def outbox(self) -> Outbox:
        """The operator's outbox on the settings' node (connects on first use)."""
        if self._outbox is None:
            w3 = connect(
                str(self.settings.chain_rpc_url),
                expected_chain_id=self.settings.chain_id,
                policy=RetryPolicy(
                    attempts=_RPC_ATTEMPTS,
                    backoff_s=0.2,
                    timeout_s=self.settings.chain_rpc_timeout_s,
                ),
            )
            self._outbox = operator_outbox(w3, self.engine, self.settings)
        return self._outbox

    @property
    def _w3(self) -> Web3:
        return self.outbox().w3

    def _contracts(self) -> Deployed:
        return deployed(self.settings)

    def _chain_time(self) -> tuple[int, int]:
        """``(number, timestamp)`` of the chain's latest block."""
        block = self._w3.eth.get_block("latest")
        return int(block["number"]), int(block["timestamp"])

    # --- following the chain ------------------------------------------------------------

    def sync_statuses(self) -> int:
        """Move epochs' statuses with the indexed root events, the outbox and chain time;
        how many epochs changed."""
        outbox = self.outbox()
        _head, chain_now = self._chain_time()
        changed = 0
        with Session(self.engine) as db:
            lock_epochs(db)
            floor = db.execute(
                select(func.max(col(Epoch.number))).where(
                    col(Epoch.status) == EpochStatus.CLAIMABLE
                )
            ).scalar_one_or_none()
            epochs = list(
                db.execute(
                    select(Epoch)
                    .where(
                        or_(
                            col(Epoch.status).in_(_FOLLOWED),
                            and_(
                                col(Epoch.status) == EpochStatus.SUPERSEDED,
                                col(Epoch.number) > (floor or 0),
                            ),
                        )
                    )
                    .order_by(col(Epoch.number))
                )
                .scalars()
                .all()
            )
            for epoch in epochs:
                event = rewardsync.root_event(db, epoch.number)
                before = (epoch.status, epoch.tx_hash, epoch.root_tx_id)
                if event is not None and epoch.root is not None:
                    self._from_event(epoch, event, chain_now)
                elif epoch.status in (EpochStatus.SUBMITTED, EpochStatus.CLAIMABLE):
                    # The indexer rolled the event back (a reorg): the outbox re-sends.
                    epoch.status = (
                        EpochStatus.SUBMITTING
                        if epoch.root_tx_id is not None
                        else EpochStatus.CLOSED
                    )
                elif epoch.status == EpochStatus.SUBMITTING and epoch.root_tx_id is not None:
                    tx = outbox.store.get(epoch.root_tx_id)
                    if tx is not None:
                        self._from_transaction(epoch, tx)
                if (epoch.status, epoch.tx_hash, epoch.root_tx_id) != before:
                    epoch.updated_at = _now()
                    db.add(epoch)
                    changed += 1
            changed += self._supersede_claimable(db, epochs)
            db.commit()
        return changed

    @staticmethod
    def _from_event(epoch: Epoch, event: RewardRoot, chain_now: int) -> None:
        if event.root.lower() != (epoch.root or "").lower():
            if epoch.status != EpochStatus.SUPERSEDED:
                epoch.status = EpochStatus.SUPERSEDED
                epoch.note = f"the chain holds root {event.root} for this epoch, not ours"
            return
        epoch.tx_hash, epoch.block_number = event.tx_hash, event.block_number
        epoch.snapshot_block = event.snapshot_block
        epoch.signed_stake, epoch.total_stake = event.signed_stake, event.total_stake
        epoch.claimable_at = _when(event.claimable_at)
        if event.cancelled is not None:
            epoch.status = EpochStatus.CANCELLED
            reason = CancelReason(event.cancelled).value
            epoch.note = f"root {reason} on chain by {event.cancelled_by}"
        elif epoch.status == EpochStatus.SUPERSEDED and event.claimable_at <= chain_now:
            # Claimable once, a later root became claimable after it: it stays superseded.
            return
        elif event.claimable_at <= chain_now:
            epoch.status = EpochStatus.CLAIMABLE
        else:
            epoch.status = EpochStatus.SUBMITTED
        epoch.note = epoch.note if epoch.status == EpochStatus.CANCELLED else None

    @staticmethod
    def _from_transaction(epoch: Epoch, tx: OutboxTx) -> None:
        latest = tx.mined_hash or (tx.attempts[-1].tx_hash if tx.attempts else None)
        epoch.tx_hash = latest
        if tx.status in _FAILED:
            logger.warning(
                "epoch %d: root transaction %s %s (%s); it will be submitted again",
                epoch.number,
                latest,
                tx.status.value,
                tx.error,
            )
            epoch.status = EpochStatus.CLOSED
            epoch.note = f"root transaction {latest} {tx.status.value}: {tx.error or ''}".strip()
            epoch.root_tx_id, epoch.tx_hash = None, None
            epoch.snapshot_block = epoch.signed_stake = epoch.total_stake = None
            epoch.submit_attempt += 1

    @staticmethod
    def _supersede_claimable(db: Session, epochs: list[Epoch]) -> int:
        claimable = [epoch for epoch in epochs if epoch.status == EpochStatus.CLAIMABLE]
        for older in claimable[:-1]:
            older.status, older.updated_at = EpochStatus.SUPERSEDED, _now()
            db.add(older)
        return max(0, len(claimable) - 1)

    # --- emission -------------------------------------------------------------------------

    def draw_emission(self) -> OutboxTx | None:
        """Enqueue ``drawEmission`` for the newest closed epoch not handled yet; the
        transaction, or None when there was nothing to draw."""
        outbox = self.outbox()
        contracts = self._contracts()
        with Session(self.engine) as db:
            pending = list(
                db.execute(
                    select(col(Epoch.number))
                    .where(
                        col(Epoch.status) != EpochStatus.OPEN, col(Epoch.emission_done).is_(False)
                    )
                    .order_by(col(Epoch.number).desc())
                )
                .scalars()
                .all()
            )
        if not pending:
            return None
        newest = pending[0]
        # One draw mints everything released so far: older closes need none of their own.
        self._emission_done(pending[1:], tx_id=None)
        key = emission_key(contracts.chain_id, newest)
        tx = outbox.store.get_by_key(chain_id=outbox.chain_id, sender=outbox.sender, key=key)
        if tx is None:
            token = ShotToken(self._w3, contracts.token)
            if token.releasable_emission() == 0:
                self._emission_done([newest], tx_id=None)
                return None
            distributor = RewardDistributor(self._w3, contracts.distributor)
            try:
                tx = outbox.enqueue(distributor.draw_emission().intent(key))
            except TransactionRevertedError as exc:
                logger.warning("epoch %d: emission draw would revert: %s", newest, exc)
                self._emission_done([newest], tx_id=None)
                return None
            logger.info("epoch %d: emission draw enqueued (outbox %d)", newest, tx.id)
        self._emission_done([newest], tx_id=tx.id)
        return tx

    def _emission_done(self, numbers: list[int], *, tx_id: int | None) -> None:
        if not numbers:
            return
        with Session(self.engine) as db:
            db.execute(
                update(Epoch)
                .where(col(Epoch.number).in_(numbers))
                .values(emission_done=True, emission_tx_id=tx_id, updated_at=_now())
            )
            db.commit()

    # --- submission -----------------------------------------------------------------------

    def _adopt_stored(self, db: Session, closed: list[Epoch]) -> bool:
        """Link a closed epoch to a root transaction already stored under its key (a
        crash came between enqueueing and recording it); True if one was."""
        outbox = self.outbox()
        for epoch in closed:
            assert epoch.chain_id is not None
            key = root_key(epoch.chain_id, epoch.number, epoch.submit_attempt)
            tx = outbox.store.get_by_key(chain_id=outbox.chain_id, sender=outbox.sender, key=key)
            if tx is None:
                continue
            snapshot = self._snapshot_of(tx)
            self._record(db, epoch.number, tx=tx, snapshot_block=snapshot, stakes=None)
            logger.info("epoch %d: adopted stored root transaction %d", epoch.number, tx.id)
            return True
        return False

    def _snapshot_of(self, tx: OutboxTx) -> int | None:
        distributor = RewardDistributor(self._w3, tx.to or "")
        _function, arguments = distributor.contract.decode_function_input(tx.data)
        snapshot = arguments.get("snapshotBlock")
        return int(snapshot) if snapshot is not None else None

    def _waiting(self, db: Session, contracts: Deployed, chain_now: int) -> str | None:
        """Why no root may be submitted now, or None."""
        busy = (
            db.execute(
                select(col(Epoch.number)).where(
                    col(Epoch.status).in_((EpochStatus.SUBMITTING, EpochStatus.SUBMITTED))
                )
            )
            .scalars()
            .first()
        )
        if busy is not None:
            return f"epoch {busy}'s root is on its way or in its challenge window"
        distributor = RewardDistributor(self._w3, contracts.distributor)
        last = distributor.last_epoch()
        if last:
            stored = distributor.epoch_root(last)
            if stored.status == RootStatus.PENDING and stored.claimable_at > chain_now:
                return f"epoch {last}'s root is in its challenge window on chain"
        return None

    def plan_submission(self) -> RootPlan | None:
        """The submission to make now, if a closed epoch has the quorum (see the module
        docstring); None when one is on its way, none is due, or none has the quorum.

        Changes nothing on chain; in the database it only adopts a transaction already
        stored under a closed epoch's key and notes why epochs wait.
        """
        contracts = self._contracts()
        head, chain_now = self._chain_time()
        with Session(self.engine) as db:
            closed = list(
                db.execute(
                    select(Epoch)
                    .where(col(Epoch.status) == EpochStatus.CLOSED)
                    .order_by(col(Epoch.number).desc())
                    .limit(MAX_CANDIDATES)
                )
                .scalars()
                .all()
            )
            if not closed or self._adopt_stored(db, closed):
                return None
            waiting = self._waiting(db, contracts, chain_now)
            if waiting is not None:
                self._note(db, closed[0].number, f"waiting: {waiting}")
                return None
            last_on_chain = RewardDistributor(self._w3, contracts.distributor).last_epoch()
            snapshot = head - max(self.settings.chain_confirmations, 1)
            if snapshot < 0:
                return None
            registry = ValidatorRegistry(self._w3, contracts.registry)
            total = registry.total_stake_at(snapshot)
            for epoch in closed:
                if epoch.number < last_on_chain:
                    # The chain is past it: a later (cumulative) root pays what it owed.
                    self._supersede(db, epoch.number, f"the chain is at epoch {last_on_chain}")
                    continue
                if epoch.number == last_on_chain:
                    continue  # its root landed; the indexer will show it
                plan = self._plan(db, epoch, registry, contracts, snapshot=snapshot, total=total)
                if plan is not None:
                    return plan
        return None

    def _plan(
        self,
        db: Session,
        epoch: Epoch,
        registry: ValidatorRegistry,
        contracts: Deployed,
        *,
        snapshot: int,
        total: int,
    ) -> RootPlan | None:
        rows = db.execute(
            select(col(EpochSignature.validator), col(EpochSignature.signature)).where(
                col(EpochSignature.epoch) == epoch.number
            )
        ).all()
        weights = {str(signer): registry.stake_at(str(signer), snapshot) for signer, _ in rows}
        signatures = {
            str(signer): bytes.fromhex(str(sig)[2:]) for signer, sig in rows if weights[str(signer)]
        }
        signed = sum(weights.values())
        if not quorum_reached(signed, total):
            self._note(
                db,
                epoch.number,
                f"quorum not reached at block {snapshot}: {len(signatures)} signers with "
                f"{signed} of {total} staked",
            )
            return None
        assert epoch.root is not None
        assert epoch.cumulative_total is not None
        message = EpochRoot(
            epoch=epoch.number, root=epoch.root, cumulative_total=epoch.cumulative_total
        )
        bundle = bundle_signatures(
            message, signatures, chain_id=contracts.chain_id, verifying_contract=contracts.registry
        )
        call = RewardDistributor(self._w3, contracts.distributor).submit_root(
            message, snapshot, bundle
        )
        return RootPlan(
            epoch=epoch.number,
            key=root_key(contracts.chain_id, epoch.number, epoch.submit_attempt),
            call=call,
            snapshot_block=snapshot,
            signed_stake=signed,
            total_stake=total,
            signers=tuple(s.signer for s in bundle),
        )

    def enqueue_submission(self, plan: RootPlan) -> OutboxTx | None:
        """Put ``plan``'s ``submitRoot`` in the outbox and mark its epoch ``submitting``
        (older closed epochs ``superseded``); the transaction, or None if the chain
        would refuse it now (the reason is noted on the epoch)."""
        outbox = self.outbox()
        try:
            tx = outbox.enqueue(plan.call.intent(plan.key))
        except TransactionRevertedError as exc:
            with Session(self.engine) as db:
                self._note(db, plan.epoch, f"submitRoot would revert: {exc}")
            logger.warning("epoch %d: submitRoot would revert: %s", plan.epoch, exc)
            return None
        except OutboxError:
            # Another process stored a different submission under this key first: the
            # next step adopts that one.
            logger.info("epoch %d: a root transaction is already stored", plan.epoch)
            return None
        with Session(self.engine) as db:
            self._record(
                db,
                plan.epoch,
                tx=tx,
                snapshot_block=plan.snapshot_block,
                stakes=(plan.signed_stake, plan.total_stake),
            )
        logger.info(
            "epoch %d: root submission enqueued (outbox %d, snapshot block %d, %d signers)",
            plan.epoch,
            tx.id,
            plan.snapshot_block,
            len(plan.signers),
        )
        return tx

    @staticmethod
    def _record(
        db: Session,
        number: int,
        *,
        tx: OutboxTx,
        snapshot_block: int | None,
        stakes: tuple[int, int] | None,
    ) -> None:
        lock_epochs(db)
        epoch = db.get(Epoch, number, populate_existing=True)
        assert epoch is not None
        if epoch.status != EpochStatus.CLOSED:
            db.rollback()
            return
        now = _now()
        epoch.status, epoch.root_tx_id, epoch.snapshot_block = (
            EpochStatus.SUBMITTING,
            tx.id,
            snapshot_block,
        )
        if stakes is not None:
            epoch.signed_stake, epoch.total_stake = stakes
        epoch.tx_hash = tx.attempts[-1].tx_hash if tx.attempts else None
        epoch.note, epoch.updated_at = None, now
        db.add(epoch)
        db.execute(
            update(Epoch)
            .where(col(Epoch.number) < number, col(Epoch.status) == EpochStatus.CLOSED)
            .values(
                status=EpochStatus.SUPERSEDED,
                note=f"superseded by epoch {number}'s root",
                updated_at=now,
            )
        )
        db.commit()

    @staticmethod
    def _note(db: Session, number: int, note: str) -> None:
        values: dict[str, Any] = {"note": note[:MAX_NOTE_CHARS]}
        db.execute(update(Epoch).where(col(Epoch.number) == number).values(**values))
        db.commit()

    @staticmethod
    def _supersede(db: Session, number: int, note: str) -> None:
        db.execute(
            update(Epoch)
            .where(col(Epoch.number) == number, col(Epoch.status) == EpochStatus.CLOSED)
            .values(status=EpochStatus.SUPERSEDED, note=note[:MAX_NOTE_CHARS], updated_at=_now())
        )
        db.commit()

    # --- logging -------------------------------------------------------------------------

    def _report(self, kind: str, message: str) -> None:
        # A down node would otherwise log the same warning every poll interval.
        level = logging.DEBUG if kind == self._problem else logging.WARNING
        logger.log(
            level, "root submission: %s; retrying every %.1f s", message, self.settings.chain_poll_s
        )
        self._problem = kind
        if kind == "node":
            # Connect afresh next time (the chain id is checked again).
            self._outbox = None

    def _recovered(self) -> None:
        if self._problem is not None:
            logger.info("root submission works again")
            self._problem = None
