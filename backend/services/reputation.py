"""Reputation: how each validator's reports compared with the decisions.

Every decided clip updates every validator that reported on it (in the decision's
transaction, :func:`record`): one more decided report; one more agreement when its
verdict agreed with the decision (``consensus.Verdict.agrees``: same failed/passed
outcome and the same junk flags); and the absolute deviation of its ``quality`` from the
consensus quality, summed so the mean is exact. Rows are locked in address order, so
two decisions sharing validators never wait on each other in a cycle.

Reading (:func:`validator_view`, :func:`list_validators`) joins the counters with the
validator's stake in the current snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from eth_utils.address import is_address, to_checksum_address
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from backend.errors import InvalidInputError, ValidatorNotFoundError
from backend.models.scoring import ValidatorPage, ValidatorReputation, ValidatorView
from backend.services import stakes

__all__ = ["Outcome", "checksum_address", "list_validators", "record", "validator_view"]

_MAX_ADDRESS_CHARS: Final = 42


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one report fared in its clip's decision."""

    validator: str
    agreed: bool
    deviation: float | None
    reported_at: datetime


def _ensure_row(db: Session, address: str, now: datetime) -> None:
    values = {"address": address, "updated_at": now}
    if db.get_bind().dialect.name == "postgresql":
        db.execute(pg_insert(ValidatorReputation).values(**values).on_conflict_do_nothing())
    else:
        db.execute(sqlite_insert(ValidatorReputation).values(**values).on_conflict_do_nothing())


def record(db: Session, outcomes: Sequence[Outcome], *, now: datetime) -> None:
    """Add one decided clip's outcomes to the reputations, within ``db``'s transaction."""
    for outcome in sorted(outcomes, key=lambda o: o.validator):
        _ensure_row(db, outcome.validator, now)
        row = db.exec(
            select(ValidatorReputation)
            .where(col(ValidatorReputation.address) == outcome.validator)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        row.decided_reports += 1
        row.agreements += int(outcome.agreed)
        if outcome.deviation is not None:
            row.deviation_sum += outcome.deviation
            row.deviation_count += 1
        if row.last_report_at is None or row.last_report_at < outcome.reported_at:
            row.last_report_at = outcome.reported_at
        row.updated_at = now
        db.add(row)
    db.flush()


def checksum_address(text: str) -> str:
    """``text`` as an EIP-55 address; :class:`InvalidInputError` if it is none."""
    if len(text) > _MAX_ADDRESS_CHARS or not is_address(text):
        raise InvalidInputError(f"{text[:_MAX_ADDRESS_CHARS]!r} is not an Ethereum address.")
    return str(to_checksum_address(text))


def _view(db: Session, address: str, row: ValidatorReputation | None) -> ValidatorView:
    snapshot = stakes.snapshot_of(db, address)
    decided = row.decided_reports if row is not None else 0
    agreements = row.agreements if row is not None else 0
    return ValidatorView(
        address=address,
        bonded_wei=str(snapshot.bonded_wei) if snapshot is not None else None,
        is_active=snapshot.is_active if snapshot is not None else False,
        snapshot_block=snapshot.block if snapshot is not None else None,
        decided_reports=decided,
        agreements=agreements,
        agreement_rate=agreements / decided if decided else None,
        mean_quality_deviation=(
            row.deviation_sum / row.deviation_count
            if row is not None and row.deviation_count
            else None
        ),
        last_report_at=row.last_report_at if row is not None else None,
    )


def validator_view(db: Session, *, address: str) -> ValidatorView:
    """One validator's stake and reputation; :class:`ValidatorNotFoundError` when the
    address has neither."""
    address = checksum_address(address)
    row = db.get(ValidatorReputation, address)
    if row is None and stakes.snapshot_of(db, address) is None:
        raise ValidatorNotFoundError(f"{address} has neither stake nor decided reports.")
    return _view(db, address, row)


def list_validators(db: Session, *, limit: int, after: str | None = None) -> ValidatorPage:
    """Validators with decided reports, by address; ``after`` is the previous page's
    ``next_cursor`` (an address)."""
    query = select(ValidatorReputation)
    if after is not None:
        query = query.where(col(ValidatorReputation.address) > checksum_address(after))
    rows = list(db.exec(query.order_by(col(ValidatorReputation.address)).limit(limit + 1)).all())
    page = rows[:limit]
    return ValidatorPage(
        items=[_view(db, row.address, row) for row in page],
        next_cursor=page[-1].address if len(rows) > limit else None,
    )
