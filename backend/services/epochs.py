"""Reward epochs: closing, publication, validators' signatures (``docs/api/rewards.md``).

Closing
-------
:func:`close_epoch` closes the open epoch in **one database transaction**, using the
database alone (the chain node may be down):

1. it takes the epochs' write lock (:func:`lock_epochs`: ``BEGIN IMMEDIATE`` on SQLite,
   a transaction-scoped advisory lock on PostgreSQL), so two closers (two processes'
   periodic jobs, an operator's ``python -m backend.admin epochs close``) serialise; the
   second finds the epoch it meant to close already closed and returns it unchanged;
2. it takes every clip whose consensus decision was made (``clip_scoring.decided_at``,
   status ``accepted`` or ``rejected``) and that is in no ``epoch_clip`` row yet (the
   clip id is that table's primary key, so no clip is ever counted twice), at most the
   rule's limit of clips (the rest wait for the next epoch), and the validators'
   reports on them (``report.agreed``);
3. funding comes from the reward indexer's tables (``backend.services.rewardsync``):
   ``funding_block`` is the indexer's checkpoint, ``funded_total`` the distributor's
   ``totalFunded()`` there; ``previous_cumulative`` is the cumulative map of the newest
   earlier epoch that has a root, whatever became of it on chain (the rule is
   cumulative: a cancelled or superseded root's amounts are still owed);
4. it runs ``shotbank.rewards.allocate`` and stores the canonical inputs JSON (what
   ``/epochs/{n}/inputs`` serves byte for byte), the result, every clip's and account's
   amounts, every account's proof, sets each accepted clip's ``reward_wei``, and opens
   the next epoch;
5. it stores where the pool came from (:func:`funding_breakdown`): the indexed
   ``Funded`` events since the previous epoch's funding, by source, and what earlier
   epochs carried. Stored rather than computed on read because the indexed rows may
   later be dropped (a redeployed distributor, a re-index) while the epoch's published
   pool does not change.

Dataset sales (rule ``shotbank-rewards/2``, :func:`epoch_sales`): the epoch's sales are
the indexed ``dataset_licence`` rows (``backend.services.marketsync``) with ``previous
funding_block < block_number <= funding_block`` whose ``version_id`` is ``0x`` + the
``version_hash`` of a backend ``dataset_version``; each version's sample count per
contributor comes from ``dataset_version_sample``. Sales of versions the backend does
not know are left out: their contributor share stays in the general pool. So that no
sale at or below ``funding_block`` is missed, ``funding_block`` is the lower of the
reward and market indexers' checkpoints; a close waits
(:class:`~backend.errors.EpochFundingUnknownError`) while the market indexer is behind
the previous epoch's funding block, and closes without sales (logged) while it has
never run.

An epoch that allocates nothing is ``empty``; one with a root is ``closed`` and collects
signatures.

Signatures
----------
:func:`submit_signature` takes a validator's EIP-712 signature over the epoch's
``EpochRoot`` (domain of the ValidatorRegistry on the deployment's chain): the epoch must
be ``closed`` or ``submitting``, the body must name the published root and total, the
signature must recover to the signed-in address, and the signer must be staked in the
backend's snapshot. A byte-identical repeat answers the same receipt (200). Whether
the stake reached the quorum is estimated from the snapshot here; the submitter
(``backend.services.submitter``) decides with the chain's ``stakeAt`` at the snapshot
block it submits with.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

from eth_utils.address import to_checksum_address
from pydantic import ValidationError
from sqlalchemy import Table, bindparam, case, exists, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from backend.core.config import Settings
from backend.errors import (
    ConfigurationError,
    EpochFundingUnknownError,
    EpochNotFoundError,
    EpochNotSignableError,
    EpochOpenError,
    EpochRootMismatchError,
    InvalidSignatureError,
)
from backend.models.clips import Clip, ClipStatus
from backend.models.datasets import DatasetVersion, DatasetVersionSample
from backend.models.epochs import (
    MAX_EPOCH_PAGE,
    MAX_SIGNERS,
    SIGNABLE,
    WITH_ROOT,
    ClipCounts,
    CurrentEpochView,
    Epoch,
    EpochAllocation,
    EpochClip,
    EpochDocument,
    EpochFunding,
    EpochPage,
    EpochSignature,
    EpochStatus,
    EpochSummary,
    EpochValidator,
    SignatureReceipt,
    SignatureSubmission,
    SignaturesView,
    SubmissionView,
    rule_of,
)
from backend.models.licences import DatasetLicence
from backend.models.rewardchain import RewardFunding
from backend.models.scoring import ClipScoring, Report
from backend.models.stakes import ValidatorStake
from backend.services import marketsync, rewardsync, stakes, system
from backend.services.leases import begin_write, is_postgres, utcnow
from scoring.report import to_bps
from shotbank.chain.contracts import DatasetMarket, RewardDistributor, ValidatorRegistry
from shotbank.chain.eip712 import EpochRoot, recover_epoch_root_signer
from shotbank.chain.errors import SignatureError
from shotbank.rewards import (
    MAX_CLIPS,
    MAX_SALE_VERSIONS,
    MAX_SALES,
    MAX_VERSION_CONTRIBUTORS,
    ClipEntry,
    EpochInputs,
    EpochResult,
    RewardRule,
    SaleEntry,
    ValidatorEntry,
    allocate,
    canonical_json,
    proofs,
)

__all__ = [
    "CloseScheduler",
    "Deployed",
    "close_due",
    "close_epoch",
    "current_epoch",
    "deployed",
    "epoch_inputs_json",
    "epoch_sales",
    "epoch_summary",
    "funding_breakdown",
    "list_epochs",
    "lock_epochs",
    "open_epoch",
    "quorum_reached",
    "signature_tally",
    "submit_signature",
]

logger = logging.getLogger(__name__)

#: Key of the PostgreSQL advisory lock that serialises changes of epoch state.
_PG_EPOCH_LOCK: Final = 0x5B07_E90C
#: Rows per bulk statement when a close stores its results.
_BATCH: Final = 5_000
#: The quorum the distributor requires: signed stake >= 2/3 of the snapshot's total.
QUORUM_NUMERATOR: Final = 2
QUORUM_DENOMINATOR: Final = 3


def lock_epochs(db: Session) -> None:
    """Take the epochs' write lock for ``db``'s transaction (held until commit/rollback).

    SQLite: ``BEGIN IMMEDIATE`` (every writer waits); PostgreSQL: a transaction-scoped
    advisory lock, which also covers the moment no epoch row exists yet (a row lock
    could not).
    """
    begin_write(db)
    if is_postgres(db):
        db.execute(select(func.pg_advisory_xact_lock(_PG_EPOCH_LOCK)))


def quorum_reached(signed_stake: int, total_stake: int) -> bool:
    """Whether ``signed_stake`` is at least 2/3 of a positive ``total_stake``, exactly as
    ``RewardDistributor.submitRoot`` decides."""
    return total_stake > 0 and signed_stake * QUORUM_DENOMINATOR >= total_stake * QUORUM_NUMERATOR


@dataclass(frozen=True)
class Deployed:
    """The contracts of the settings' chain an epoch is bound to."""

    chain_id: int
    distributor: str
    registry: str
    token: str
    market: str | None = None
    """The DatasetMarket, when the deployment has one (its sales fund the pool)."""


def deployed(settings: Settings) -> Deployed:
    """The deployment's distributor, registry, token and market (from the deployments file).

    Raises :class:`~backend.errors.ConfigurationError` when the chain has no such
    deployment (nothing to allocate for, nothing to verify against).
    """
    deployment = system.read_deployment(path=settings.deployments_path, chain_id=settings.chain_id)
    needed = (RewardDistributor.NAME, ValidatorRegistry.NAME, "ShotToken")
    if deployment is None or any(name not in deployment.contracts for name in needed):
        raise ConfigurationError(
            f"No RewardDistributor, ValidatorRegistry and ShotToken are deployed on chain "
            f"{settings.chain_id} per {settings.deployments_path}."
        )
    return Deployed(
        chain_id=settings.chain_id,
        distributor=deployment.address(RewardDistributor.NAME),
        registry=deployment.address(ValidatorRegistry.NAME),
        token=deployment.address("ShotToken"),
        market=deployment.contracts.get(DatasetMarket.NAME),
    )


# --- the open epoch ------------------------------------------------------------------------


def _open_row(db: Session) -> Epoch | None:
    return (
        db.execute(
            select(Epoch)
            .where(col(Epoch.status) == EpochStatus.OPEN)
            .order_by(col(Epoch.number).desc())
            .limit(1)
            .execution_options(populate_existing=True)
        )
        .scalars()
        .first()
    )


def _ensure_open(db: Session, *, now: datetime) -> Epoch:
    """The open epoch, opened now if there is none (the caller holds the lock)."""
    current = _open_row(db)
    if current is not None:
        return current
    highest = db.execute(select(func.max(col(Epoch.number)))).scalar_one_or_none()
    current = Epoch(
        number=(highest or 0) + 1, status=EpochStatus.OPEN, opened_at=now, updated_at=now
    )
    db.add(current)
    db.flush()
    return current


def open_epoch(engine: Engine, *, now: datetime | None = None) -> Epoch:
    """The open epoch; opens epoch 1 (or the next) if none is open. Detached."""
    moment = now or utcnow()
    with Session(engine) as db:
        current = _open_row(db)
        if current is None:
            lock_epochs(db)
            current = _ensure_open(db, now=moment)
            db.commit()
            db.refresh(current)
        db.expunge(current)
        return current


def current_epoch(engine: Engine, *, settings: Settings) -> CurrentEpochView:
    """``GET /epochs/current``: the open epoch and when it is scheduled to close."""
    current = open_epoch(engine)
    return CurrentEpochView(
        epoch=current.number,
        opened_at=current.opened_at,
        scheduled_close_at=current.opened_at + timedelta(seconds=settings.epoch_length_s),
    )


# --- closing ---------------------------------------------------------------------------------


def _quality_bps(scores_json: str | None) -> int:
    """The consensus quality of a decided clip in basis points (0 when it has none)."""
    if not scores_json:
        return 0
    quality = json.loads(scores_json).get("quality")
    if not isinstance(quality, int | float):
        return 0
    return to_bps(min(1.0, max(0.0, float(quality))))


def _take_clips(db: Session, *, epoch: int, now: datetime) -> list[ClipEntry]:
    """Assign the decided clips of no epoch to ``epoch`` (``epoch_clip`` rows, amount 0
    for now); their entries, in clip-id order."""
    rows = db.execute(
        select(col(Clip.id), col(Clip.owner), col(Clip.status), col(Clip.scores_json))
        .join(ClipScoring, col(ClipScoring.clip_id) == col(Clip.id))
        .where(
            col(ClipScoring.decided_at).is_not(None),
            col(ClipScoring.decided_at) <= now,
            col(Clip.status).in_((ClipStatus.ACCEPTED, ClipStatus.REJECTED)),
            ~exists().where(col(EpochClip.clip_id) == col(Clip.id)),
        )
        # Oldest decisions first: beyond the rule's limit the newest wait an epoch.
        .order_by(col(ClipScoring.decided_at), col(Clip.id))
        .limit(MAX_CLIPS)
    ).all()
    entries = [
        ClipEntry(
            clip_id=clip_id,
            contributor=owner,
            accepted=status == ClipStatus.ACCEPTED,
            quality_bps=_quality_bps(scores_json) if status == ClipStatus.ACCEPTED else 0,
        )
        for clip_id, owner, status, scores_json in rows
    ]
    values = [
        {
            "clip_id": entry.clip_id,
            "epoch": epoch,
            "contributor": entry.contributor,
            "accepted": entry.accepted,
            "quality_bps": entry.quality_bps,
            "amount": 0,
        }
        for entry in entries
    ]
    for start in range(0, len(values), _BATCH):
        db.execute(insert(EpochClip), values[start : start + _BATCH])
    return sorted(entries, key=lambda entry: entry.clip_id)


def _validator_entries(db: Session, *, epoch: int) -> list[ValidatorEntry]:
    """Each validator's reports (and agreed ones) on the clips assigned to ``epoch``."""
    agreed = func.sum(case((col(Report.agreed).is_(True), 1), else_=0))
    rows = db.execute(
        select(col(Report.validator), func.count(), agreed)
        .join(EpochClip, col(EpochClip.clip_id) == col(Report.clip_id))
        .where(col(EpochClip.epoch) == epoch)
        .group_by(col(Report.validator))
    ).all()
    return [
        ValidatorEntry(address=address, reports=int(count), agreed_reports=int(agreed_count or 0))
        for address, count, agreed_count in rows
    ]


def _previous(db: Session, *, before: int) -> tuple[int | None, dict[str, int]]:
    """The newest epoch before ``before`` that has a root, and its cumulative map."""
    number = db.execute(
        select(func.max(col(Epoch.number))).where(
            col(Epoch.number) < before, col(Epoch.status).in_(WITH_ROOT)
        )
    ).scalar_one_or_none()
    if number is None:
        return None, {}
    rows = db.execute(
        select(col(EpochAllocation.address), col(EpochAllocation.cumulative)).where(
            col(EpochAllocation.epoch) == number
        )
    ).all()
    return int(number), {str(address): int(amount) for address, amount in rows}


def _funding(db: Session, contracts: Deployed, *, number: int) -> tuple[int, int]:
    """``(funding_block, funded_total)`` from the reward and market indexers' tables."""
    source = rewardsync.current_source(db)
    block = rewardsync.indexed_block(db)
    if (
        source is None
        or block is None
        or (source.chain_id, source.distributor_address)
        != (contracts.chain_id, contracts.distributor)
    ):
        raise EpochFundingUnknownError(
            f"The reward indexer has not read RewardDistributor {contracts.distributor} on "
            f"chain {contracts.chain_id} yet, so the epoch's pool is unknown; the epoch "
            "closes once the chain sync has run."
        )
    if contracts.market is not None:
        market_block = marketsync.indexed_block(
            db, chain_id=contracts.chain_id, market=contracts.market
        )
        after = _sales_after(db, contracts, number=number)
        if market_block is None:
            logger.warning(
                "epoch %d: the market indexer has not read DatasetMarket %s yet; the epoch "
                "closes without dataset sales (their share stays in the general pool)",
                number,
                contracts.market,
            )
        elif market_block < after:
            raise EpochFundingUnknownError(
                f"The market indexer is at block {market_block}, before the previous epoch's "
                f"funding block {after}, so the epoch's dataset sales are unknown; the epoch "
                "closes once the chain sync has caught up."
            )
        else:
            # Every sale up to the funding block must be indexed: a sale funded but not
            # indexed would be missed for good (the next epoch starts after this block).
            block = min(block, market_block)
    funded = rewardsync.funded_total_at(db, block)
    return block, (funded[0] if funded is not None else 0)


def _sales_after(db: Session, contracts: Deployed, *, number: int) -> int:
    """The block after which epoch ``number``'s sales start: the previous epoch's funding
    block when it was closed against the same distributor, else -1 (every sale)."""
    previous = db.get(Epoch, number - 1) if number > 1 else None
    if (
        previous is not None
        and previous.funding_block is not None
        and (previous.chain_id, previous.distributor) == (contracts.chain_id, contracts.distributor)
    ):
        return previous.funding_block
    return -1


def epoch_sales(
    db: Session, *, contracts: Deployed, number: int, funding_block: int
) -> tuple[list[SaleEntry], dict[str, dict[str, int]]]:
    """The dataset sales of epoch ``number`` and the sample counts of the sold versions.

    See the module docstring. At most the rule's limits are taken (oldest sales first);
    sales beyond them, which no real epoch comes near, stay in the general pool.
    """
    if contracts.market is None:
        return [], {}
    after = _sales_after(db, contracts, number=number)
    rows = db.execute(
        select(
            col(DatasetLicence.tx_hash),
            col(DatasetLicence.log_index),
            col(DatasetLicence.block_number),
            col(DatasetLicence.version_id),
            col(DatasetLicence.contributor_share),
        )
        .where(
            col(DatasetLicence.block_number) > after,
            col(DatasetLicence.block_number) <= funding_block,
        )
        .order_by(col(DatasetLicence.block_number), col(DatasetLicence.log_index))
        .limit(MAX_SALES)
    ).all()
    hashes = sorted({str(version_id)[2:].lower() for *_, version_id, _ in rows})
    known: dict[str, str] = {}  # version hash -> backend version id
    for start in range(0, len(hashes), _BATCH):
        found = db.execute(
            select(col(DatasetVersion.version_hash), col(DatasetVersion.id)).where(
                col(DatasetVersion.version_hash).in_(hashes[start : start + _BATCH])
            )
        ).all()
        known.update({str(version_hash): str(version) for version_hash, version in found})
    versions: dict[str, dict[str, int]] = {}
    entries = 0
    for version_hash in sorted(known)[:MAX_SALE_VERSIONS]:
        counts = db.execute(
            select(col(DatasetVersionSample.contributor), func.count())
            .where(col(DatasetVersionSample.version_id) == known[version_hash])
            .group_by(col(DatasetVersionSample.contributor))
        ).all()
        if not counts or entries + len(counts) > MAX_VERSION_CONTRIBUTORS:
            continue
        entries += len(counts)
        versions["0x" + version_hash] = {
            to_checksum_address(contributor): int(count) for contributor, count in counts
        }
    sales = [
        SaleEntry(
            tx_hash=str(tx_hash).lower(),
            log_index=int(log_index),
            block_number=int(block_number),
            version_id=str(version_id).lower(),
            amount=int(amount),
        )
        for tx_hash, log_index, block_number, version_id, amount in rows
        if str(version_id).lower() in versions
    ]
    return sales, versions


def funding_breakdown(
    db: Session,
    *,
    contracts: Deployed,
    number: int,
    funding_block: int,
    pool: int,
) -> EpochFunding | None:
    """Where the ``pool`` of epoch ``number`` (funded up to ``funding_block``) came from.

    New funding is every indexed ``Funded`` event at or below ``funding_block`` that
    raised ``totalFunded`` above the previous epoch's ``funded_total`` (all of them for
    the first epoch, or when the previous epoch was closed against another
    distributor), added up by source: ``totalFunded`` only grows, so that is "since the
    previous epoch's funding block", and it stays exact even if rows at or below that
    block were re-indexed since. ``carried = pool - new funding``: the previous epoch's
    carry. ``None`` (logged) when that would be negative, which only a change of
    deployment between epochs can cause.
    """
    previous = db.get(Epoch, number - 1) if number > 1 else None
    query = select(col(RewardFunding.source), col(RewardFunding.amount)).where(
        col(RewardFunding.block_number) <= funding_block
    )
    if (
        previous is not None
        and previous.funded_total is not None
        and (previous.chain_id, previous.distributor) == (contracts.chain_id, contracts.distributor)
    ):
        query = query.where(col(RewardFunding.total_funded) > previous.funded_total)
    kinds = {to_checksum_address(contracts.token): "emission"}
    kinds[to_checksum_address(contracts.registry)] = "slashing"
    if contracts.market is not None:
        kinds[to_checksum_address(contracts.market)] = "sales"
    sums = dict.fromkeys(("emission", "sales", "slashing", "other"), 0)
    # Added up in Python: SQLite stores wei as text (backend.core.db.Wei).
    for source, amount in db.execute(query.execution_options(yield_per=_BATCH)):
        sums[kinds.get(to_checksum_address(source), "other")] += int(amount)
    carried = pool - sum(sums.values())
    if carried < 0:
        logger.warning(
            "epoch %d: the funding indexed since epoch %d exceeds the pool by %d wei (was "
            "the distributor redeployed?); no funding breakdown is recorded",
            number,
            number - 1,
            -carried,
        )
        return None
    return EpochFunding(
        emission=str(sums["emission"]),
        sales=str(sums["sales"]),
        slashing=str(sums["slashing"]),
        other=str(sums["other"]),
        carried=str(carried),
    )


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def _store_result(db: Session, *, epoch: Epoch, inputs: EpochInputs, result: EpochResult) -> None:
    """Write the allocation of ``epoch``: clip and validator amounts, accounts, proofs."""
    number = epoch.number
    paid = [(clip_id, amount) for clip_id, amount in result.clip_amounts.items() if amount > 0]
    for start in range(0, len(paid), _BATCH):
        chunk = [
            {"b_id": clip_id, "b_amount": amount}
            for clip_id, amount in paid[start : start + _BATCH]
        ]
        db.execute(
            update(_table(EpochClip))
            .where(_table(EpochClip).c.clip_id == bindparam("b_id"))
            .values(amount=bindparam("b_amount")),
            chunk,
        )
        db.execute(
            update(_table(Clip))
            .where(_table(Clip).c.id == bindparam("b_id"))
            .values(reward_wei=bindparam("b_amount")),
            chunk,
        )
    by_address = {allocation.address: allocation for allocation in result.allocations}
    validator_rows = [
        {
            "epoch": number,
            "address": entry.address,
            "reports": entry.reports,
            "agreed_reports": entry.agreed_reports,
            "amount": by_address[entry.address].validator_amount
            if entry.address in by_address
            else 0,
        }
        for entry in inputs.validators
    ]
    for start in range(0, len(validator_rows), _BATCH):
        db.execute(insert(EpochValidator), validator_rows[start : start + _BATCH])
    if result.root is None:
        # Nothing allocated: no tree, and the previous epoch's accounts stay the latest.
        return
    account_proofs = proofs(result)
    account_rows = []
    for address, cumulative in result.cumulative.items():
        allocation = by_address.get(address)
        account_rows.append(
            {
                "epoch": number,
                "address": address,
                "contributor_amount": allocation.contributor_amount if allocation else 0,
                "validator_amount": allocation.validator_amount if allocation else 0,
                "sales_amount": allocation.sales_amount if allocation else 0,
                "amount": allocation.amount if allocation else 0,
                "cumulative": cumulative,
                "proof_json": json.dumps(account_proofs[address], separators=(",", ":")),
            }
        )
    for start in range(0, len(account_rows), _BATCH):
        db.execute(insert(EpochAllocation), account_rows[start : start + _BATCH])


def _close(db: Session, *, epoch: Epoch, settings: Settings, now: datetime) -> None:
    """Close ``epoch`` (open, locked by the caller) and open the next one."""
    contracts = deployed(settings)
    funding_block, funded_total = _funding(db, contracts, number=epoch.number)
    previous_epoch, previous_cumulative = _previous(db, before=epoch.number)
    clips = _take_clips(db, epoch=epoch.number, now=now)
    validators = _validator_entries(db, epoch=epoch.number)
    sales, versions = epoch_sales(
        db, contracts=contracts, number=epoch.number, funding_block=funding_block
    )
    rule = RewardRule(
        validator_share_bps=settings.epoch_validator_share_bps,
        contributor_cap_bps=settings.epoch_contributor_cap_bps,
    )
    inputs = EpochInputs(
        chain_id=contracts.chain_id,
        distributor=contracts.distributor,
        epoch=epoch.number,
        rule=rule,
        funding_block=funding_block,
        funded_total=funded_total,
        previous_epoch=previous_epoch,
        previous_cumulative=previous_cumulative,
        clips=tuple(clips),
        validators=tuple(validators),
        market=contracts.market,
        sales=tuple(sales),
        versions=versions,
    )
    result = allocate(inputs)
    canonical = canonical_json(inputs)
    _store_result(db, epoch=epoch, inputs=inputs, result=result)

    epoch.status = EpochStatus.CLOSED if result.root is not None else EpochStatus.EMPTY
    epoch.closed_at = epoch.updated_at = now
    epoch.chain_id, epoch.distributor = contracts.chain_id, contracts.distributor
    epoch.rule_json = rule.model_dump_json()
    epoch.funding_block, epoch.funded_total = funding_block, funded_total
    epoch.previous_epoch = previous_epoch
    epoch.previous_cumulative_total = result.previous_cumulative_total
    epoch.pool, epoch.contributor_pool = result.pool, result.contributor_pool
    epoch.validator_pool, epoch.allocated = result.validator_pool, result.allocated
    epoch.carry, epoch.cumulative_total = result.carry, result.cumulative_total
    epoch.sales_pool, epoch.sales_allocated = result.sales_pool, result.sales_allocated
    epoch.root = result.root
    epoch.inputs_sha256 = hashlib.sha256(canonical).hexdigest()
    funding = funding_breakdown(
        db, contracts=contracts, number=epoch.number, funding_block=funding_block, pool=result.pool
    )
    epoch.funding_json = funding.model_dump_json() if funding is not None else None
    db.add(
        EpochDocument(
            epoch=epoch.number,
            inputs_json=canonical.decode("ascii"),
            result_json=json.dumps(
                result.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
            ),
        )
    )
    epoch.accepted_clips = sum(1 for clip in clips if clip.accepted)
    epoch.rejected_clips = len(clips) - epoch.accepted_clips
    epoch.accounts = len(result.cumulative)
    db.add(epoch)
    db.add(Epoch(number=epoch.number + 1, status=EpochStatus.OPEN, opened_at=now, updated_at=now))
    db.flush()


def close_epoch(
    engine: Engine,
    *,
    settings: Settings,
    number: int | None = None,
    now: datetime | None = None,
) -> Epoch:
    """Close the open epoch (see the module docstring); the closed epoch, detached.

    With ``number``, close that epoch only if it is the open one: an epoch closed
    already is returned unchanged (so a retried or concurrent close is harmless), an
    unknown one raises :class:`~backend.errors.EpochNotFoundError`. Raises
    :class:`~backend.errors.EpochFundingUnknownError` before the reward indexer has
    read the distributor, and :class:`~backend.errors.ConfigurationError` without a
    deployment; nothing is changed then.
    """
    moment = now or utcnow()
    with Session(engine) as db:
        try:
            lock_epochs(db)
            current = _ensure_open(db, now=moment)
            if number is not None and number != current.number:
                existing = db.get(Epoch, number)
                if existing is None:
                    raise EpochNotFoundError(f"There is no epoch {number}.")
                db.expunge(existing)
                db.rollback()
                return existing
            _close(db, epoch=current, settings=settings, now=moment)
            db.commit()
        except BaseException:
            db.rollback()
            raise
        db.refresh(current)
        db.expunge(current)
    logger.info(
        "epoch %d closed %s: %d clips accepted, %d rejected, %s allocated, root %s",
        current.number,
        EpochStatus(current.status).value,
        current.accepted_clips,
        current.rejected_clips,
        current.allocated,
        current.root,
    )
    return current


def close_due(engine: Engine, *, settings: Settings, now: datetime | None = None) -> Epoch | None:
    """Close the open epoch if it is ``SHOTBANK_EPOCH_LENGTH_S`` old; the closed epoch,
    or None when none was due. Opens epoch 1 on the first call."""
    moment = now or utcnow()
    current = open_epoch(engine, now=moment)
    if moment < current.opened_at + timedelta(seconds=settings.epoch_length_s):
        return None
    return close_epoch(engine, settings=settings, number=current.number, now=moment)


class CloseScheduler:
    """The periodic job that closes epochs on schedule (``BackgroundRunner.add_periodic``).

    A close that cannot happen yet (no deployment, funding never indexed) is logged once
    as a warning and again at debug level while it persists; the job tries again at its
    next turn.
    """

    def __init__(self, engine: Engine, settings: Settings) -> None:
        """Close epochs of the database behind ``engine`` per ``settings``."""
        self.engine = engine
        self.settings = settings
        self._problem: str | None = None

    def run(self) -> Epoch | None:
        """One check; the epoch it closed, if any."""
        try:
            closed = close_due(self.engine, settings=self.settings)
        except (EpochFundingUnknownError, ConfigurationError) as exc:
            level = logging.DEBUG if exc.code == self._problem else logging.WARNING
            logger.log(level, "epoch close waits: %s", exc.message)
            self._problem = exc.code
            return None
        self._problem = None
        return closed


# --- reading ---------------------------------------------------------------------------------


def _closed(db: Session, number: int) -> Epoch:
    epoch = db.get(Epoch, number)
    if epoch is None or epoch.status == EpochStatus.OPEN:
        raise EpochNotFoundError(
            f"Epoch {number} does not exist or is still open; GET /api/v1/epochs/current "
            "tells the open epoch."
        )
    return epoch


def _signers(db: Session, number: int) -> list[str]:
    return list(
        db.execute(
            select(col(EpochSignature.validator))
            .where(col(EpochSignature.epoch) == number)
            .order_by(col(EpochSignature.validator))
            .limit(MAX_SIGNERS)
        )
        .scalars()
        .all()
    )


def signature_tally(db: Session, epoch: Epoch) -> tuple[int, int]:
    """``(signed stake, total stake)`` of ``epoch``'s signatures.

    From ``submitting`` on, the chain's figures at the submission's snapshot block;
    before, the backend's stake snapshot now: the signers' active stake against every
    active validator's.
    """
    if epoch.snapshot_block is not None and epoch.signed_stake is not None:
        return epoch.signed_stake, epoch.total_stake or 0
    source = stakes.current_source(db)
    if source is None:
        return 0, 0
    signers = select(col(EpochSignature.validator)).where(col(EpochSignature.epoch) == epoch.number)
    signed = db.execute(
        select(col(ValidatorStake.bonded_wei)).where(
            col(ValidatorStake.address).in_(signers),
            col(ValidatorStake.bonded_wei) >= source.min_stake_wei,
        )
    ).scalars()
    # Added up in Python: SQLite stores wei as text (backend.core.db.Wei).
    return sum(signed), stakes.total_active_stake(db)


def _amount(value: int | None) -> str | None:
    return None if value is None else str(value)


def _summary(db: Session, epoch: Epoch) -> EpochSummary:
    signed, total = signature_tally(db, epoch)
    submission = None
    if epoch.snapshot_block is not None or epoch.tx_hash is not None:
        submission = SubmissionView(
            snapshot_block=epoch.snapshot_block,
            tx_hash=epoch.tx_hash,
            block_number=epoch.block_number,
            claimable_at=epoch.claimable_at,
        )
    return EpochSummary(
        epoch=epoch.number,
        status=epoch.status,
        opened_at=epoch.opened_at,
        closed_at=epoch.closed_at,
        chain_id=epoch.chain_id,
        distributor=epoch.distributor,
        rule=rule_of(epoch),
        funding_block=epoch.funding_block,
        funded_total=_amount(epoch.funded_total),
        previous_epoch=epoch.previous_epoch,
        previous_cumulative_total=_amount(epoch.previous_cumulative_total),
        pool=_amount(epoch.pool),
        contributor_pool=_amount(epoch.contributor_pool),
        validator_pool=_amount(epoch.validator_pool),
        allocated=_amount(epoch.allocated),
        carry=_amount(epoch.carry),
        sales_pool=_amount(epoch.sales_pool),
        sales_allocated=_amount(epoch.sales_allocated),
        funding=EpochFunding.model_validate_json(epoch.funding_json)
        if epoch.funding_json
        else None,
        root=epoch.root,
        cumulative_total=_amount(epoch.cumulative_total),
        inputs_sha256=epoch.inputs_sha256,
        clips=ClipCounts(accepted=epoch.accepted_clips, rejected=epoch.rejected_clips),
        accounts=epoch.accounts,
        signatures=SignaturesView(
            signed_stake=str(signed), total_stake=str(total), signers=_signers(db, epoch.number)
        ),
        submission=submission,
    )


def epoch_summary(db: Session, *, number: int) -> EpochSummary:
    """``GET /epochs/{n}``; :class:`~backend.errors.EpochNotFoundError` for an unknown or
    open epoch."""
    return _summary(db, _closed(db, number))


def list_epochs(db: Session, *, limit: int, before: int | None = None) -> EpochPage:
    """``GET /epochs``: closed epochs newest first, ``before`` (exclusive) to page on."""
    limit = max(1, min(limit, MAX_EPOCH_PAGE))
    query = select(Epoch).where(col(Epoch.status) != EpochStatus.OPEN)
    if before is not None:
        query = query.where(col(Epoch.number) < before)
    rows: Sequence[Epoch] = (
        db.execute(query.order_by(col(Epoch.number).desc()).limit(limit + 1)).scalars().all()
    )
    page = list(rows[:limit])
    return EpochPage(
        epochs=[_summary(db, epoch) for epoch in page],
        next_before=page[-1].number if len(rows) > limit else None,
    )


def epoch_inputs_json(db: Session, *, number: int) -> str:
    """``GET /epochs/{n}/inputs``: the stored canonical inputs JSON with the result added
    as ``"result"`` (the inputs' bytes are exactly those that were allocated and hashed).

    :class:`~backend.errors.EpochOpenError` while the epoch is open,
    :class:`~backend.errors.EpochNotFoundError` for an unknown one.
    """
    document = db.get(EpochDocument, number)
    if document is None:
        if db.get(Epoch, number) is None:
            raise EpochNotFoundError(f"There is no epoch {number}.")
        raise EpochOpenError(f"Epoch {number} is still open: its inputs are frozen when it closes.")
    inputs = document.inputs_json
    # Spliced as text: the members of EpochInputs stay exactly the stored bytes.
    return f'{inputs[:-1]},"result":{document.result_json}}}'


# --- signatures ------------------------------------------------------------------------------


def _receipt(db: Session, epoch: Epoch) -> SignatureReceipt:
    signed, total = signature_tally(db, epoch)
    return SignatureReceipt(
        epoch=epoch.number,
        signed_stake=str(signed),
        total_stake=str(total),
        quorum_reached=quorum_reached(signed, total),
    )


def _matches(epoch: Epoch, body: SignatureSubmission) -> bool:
    return (
        epoch.root is not None
        and body.root.lower() == epoch.root.lower()
        and int(body.cumulative_total) == epoch.cumulative_total
    )


def submit_signature(
    db: Session,
    *,
    settings: Settings,
    validator: str,
    number: int,
    body: SignatureSubmission,
    now: datetime | None = None,
) -> tuple[SignatureReceipt, bool]:
    """Check and store ``validator``'s signature over epoch ``number``'s root (see the
    module docstring); the receipt and whether it was stored now (False: a repeat)."""
    moment = now or utcnow()
    validator = to_checksum_address(validator)
    epoch = db.get(Epoch, number)
    if epoch is None:
        raise EpochNotFoundError(f"There is no epoch {number}.")
    signature = body.signature.lower()
    earlier = db.get(EpochSignature, (number, validator))
    if earlier is not None and earlier.signature == signature and _matches(epoch, body):
        return _receipt(db, epoch), False
    if epoch.status not in SIGNABLE or epoch.root is None or epoch.cumulative_total is None:
        state = {
            EpochStatus.OPEN: "is still open: its root is published when it closes",
            EpochStatus.EMPTY: "allocated nothing and has no root to sign",
            EpochStatus.SUBMITTED: "has its root on chain already",
            EpochStatus.CLAIMABLE: "has its root on chain already",
            EpochStatus.SUPERSEDED: "was superseded by a later epoch's root",
            EpochStatus.CANCELLED: "had its root cancelled on chain",
        }.get(EpochStatus(epoch.status), f"is {EpochStatus(epoch.status).value}")
        raise EpochNotSignableError(f"Epoch {number} takes no signatures: it {state}.")
    if not _matches(epoch, body):
        raise EpochRootMismatchError(
            f"Epoch {number} published root {epoch.root} with cumulative total "
            f"{epoch.cumulative_total}; the signature names another. Recompute the epoch "
            "from GET /api/v1/epochs/{n}/inputs."
        )
    contracts = deployed(settings)
    message = EpochRoot(epoch=number, root=epoch.root, cumulative_total=epoch.cumulative_total)
    try:
        signer = recover_epoch_root_signer(
            message,
            bytes.fromhex(signature[2:]),
            chain_id=contracts.chain_id,
            verifying_contract=contracts.registry,
        )
    except (SignatureError, ValidationError) as exc:
        raise InvalidSignatureError(f"The signature is invalid: {exc}") from None
    if not secrets.compare_digest(signer, validator):
        raise InvalidSignatureError(
            f"The EpochRoot of epoch {number} was not signed by {validator} (the signature "
            f"recovers to {signer}): sign it, in the ValidatorRegistry's EIP-712 domain on "
            f"chain {contracts.chain_id}, with the key you signed in with."
        )
    snapshot = stakes.require_validator(db, validator)
    if earlier is not None:
        # Another valid signature of the same signer over the same root: the first stays.
        return _receipt(db, epoch), False
    db.add(
        EpochSignature(
            epoch=number,
            validator=validator,
            signature=signature,
            stake_wei=snapshot.bonded_wei,
            created_at=moment,
        )
    )
    try:
        db.commit()
    except IntegrityError:
        # The same validator's signature arrived concurrently and was stored first.
        db.rollback()
        return _receipt(db, _closed(db, number)), False
    db.refresh(epoch)
    logger.info("epoch %d: signature of %s stored", number, validator)
    return _receipt(db, epoch), True
