"""Report intake: a validator's signed verdict on a leased clip (``docs/api/validator.md``).

The backend rebuilds the EIP-712 ``ScoreReport`` from the lease and the submitted
``ClipScores`` with :func:`scoring.signing.score_report_message` (the very function the
validator node signs with), recovers the signer and accepts the report only if every
check holds, in this order (the first failure wins):

1. the lease exists and belongs to the signed-in validator — :class:`LeaseNotFoundError`;
2. the signature recovers to the signed-in address — :class:`ReportSignatureInvalidError`
   (a forged report, or a report signed for another lease, recovers to someone else);
3. the signer is staked in the current snapshot — ``validator_not_staked`` (403);
4. the ``deadline`` is the lease's (:class:`ReportDeadlineMismatchError`), it has not
   passed and the lease was neither returned nor expired — :class:`LeaseExpiredError`,
   :class:`LeaseReturnedError`;
5. the clip's current annotation hash is the leased one — :class:`AnnotationChangedError`;
6. this validator has not reported on this clip yet (a replayed report is such a
   second report) — :class:`ReportDuplicateError`;
7. the clip is still undecided — :class:`ClipDecidedError`.

Checks 1-3 depend on nothing that changes; 4-7 are made again after the clip is held
(PostgreSQL: its row ``FOR UPDATE``; SQLite: ``BEGIN IMMEDIATE``), and the report is
inserted, the lease marked ``reported`` and, when the clip now has the quorum, the clip
decided, all in that one transaction: two reports arriving together both count, and
exactly one of them decides. ``UNIQUE (clip_id, validator)`` backs up check 6.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Final

from pydantic import ValidationError
from sqlalchemy import and_, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.errors import (
    AnnotationChangedError,
    ClipDecidedError,
    ClipUndecidedError,
    ConfigurationError,
    InvalidCursorError,
    LeaseExpiredError,
    LeaseReturnedError,
    ReportDeadlineMismatchError,
    ReportDuplicateError,
    ReportSignatureInvalidError,
)
from backend.models.clips import Clip, ClipReason, ClipStatus
from backend.models.scoring import (
    MAX_REPORTS_PER_CLIP,
    ClipReportsView,
    DecisionTrigger,
    Lease,
    LeaseState,
    OwnReportPage,
    OwnReportView,
    Report,
    ReportReceipt,
    ReportSubmission,
    ReportView,
)
from backend.services import clips, consensus, stakes, system
from backend.services.leases import LEASABLE, begin_write, is_postgres, live_lease, utcnow
from scoring.report import ClipScores, flags_mask
from scoring.signing import score_report_message
from shotbank.chain.eip712 import recover_score_report_signer
from shotbank.chain.errors import SignatureError

__all__ = [
    "DECIDED",
    "clip_reports",
    "own_reports",
    "registry_address",
    "submit_report",
]

#: Statuses of decided clips (their reports are shown).
DECIDED: Final = (ClipStatus.ACCEPTED, ClipStatus.REJECTED, ClipStatus.FAILED)
_REGISTRY: Final = "ValidatorRegistry"


def registry_address(settings: Settings) -> str:
    """The ValidatorRegistry of ``settings.chain_id`` (the reports' verifying contract)."""
    deployment = system.read_deployment(path=settings.deployments_path, chain_id=settings.chain_id)
    address = deployment.contracts.get(_REGISTRY) if deployment is not None else None
    if address is None:
        raise ConfigurationError(
            f"No {_REGISTRY} is deployed on chain {settings.chain_id} per the deployments "
            "file; reports cannot be verified."
        )
    return str(address)


def _check_signature(
    settings: Settings, *, lease: Lease, clip: Clip, body: ReportSubmission, validator: str
) -> None:
    try:
        message = score_report_message(
            lease_id=lease.id,
            clip_id=clip.id,
            content_cid=clip.cid,
            annotation_hash=lease.annotation_hash,
            scores=body.scores,
            deadline=body.deadline,
        )
        signer = recover_score_report_signer(
            message,
            bytes.fromhex(body.signature[2:]),
            chain_id=settings.chain_id,
            verifying_contract=registry_address(settings),
        )
    except (SignatureError, ValidationError) as exc:
        raise ReportSignatureInvalidError(f"The report's signature is invalid: {exc}") from None
    if not secrets.compare_digest(signer, validator):
        raise ReportSignatureInvalidError(
            f"The report rebuilt from lease {lease.id} was not signed by {validator} (it "
            f"recovers to {signer}): sign the ScoreReport of this lease with the key you "
            "signed in with."
        )


def _check_lease_state(lease: Lease, body: ReportSubmission, now: datetime) -> None:
    if body.deadline != lease.deadline:
        raise ReportDeadlineMismatchError(
            f"The report's deadline {body.deadline} is not its lease's ({lease.deadline})."
        )
    if lease.state == LeaseState.RETURNED:
        raise LeaseReturnedError(f"Lease {lease.id} was returned; its report is refused.")
    if lease.state == LeaseState.EXPIRED or (
        lease.state == LeaseState.ACTIVE and now >= lease.expires_at
    ):
        raise LeaseExpiredError(
            f"Lease {lease.id} expired at {lease.expires_at.isoformat()}; lease the clip "
            "again if it still needs reports."
        )


def _hold_clip(db: Session, clip_id: str) -> Clip:
    begin_write(db)
    query = select(Clip).where(col(Clip.id) == clip_id).execution_options(populate_existing=True)
    if is_postgres(db):
        query = query.with_for_update()
    return db.exec(query).one()


def submit_report(
    db: Session,
    *,
    settings: Settings,
    validator: str,
    body: ReportSubmission,
    now: datetime | None = None,
) -> ReportReceipt:
    """Check and store a report (see the module docstring); decide its clip when it
    completes the quorum."""
    moment = now or utcnow()
    lease = live_lease(db, validator=validator, lease_id=body.lease_id)
    clip = db.get(Clip, lease.clip_id)
    assert clip is not None, "a lease always has its clip"
    _check_signature(settings, lease=lease, clip=clip, body=body, validator=validator)
    snapshot = stakes.require_validator(db, validator)
    try:
        clip = _hold_clip(db, lease.clip_id)
        db.refresh(lease)
        _check_lease_state(lease, body, moment)
        if clip.annotation_hash != lease.annotation_hash:
            raise AnnotationChangedError(
                "The clip's annotation changed after it was leased; the report is refused."
            )
        earlier = db.exec(
            select(Report.id).where(
                col(Report.clip_id) == clip.id, col(Report.validator) == validator
            )
        ).first()
        if earlier is not None or lease.state == LeaseState.REPORTED:
            raise ReportDuplicateError(
                f"You reported on clip {clip.id} already (report {earlier}); a report is "
                "taken once."
            )
        if clip.status not in LEASABLE:
            raise ClipDecidedError(f"Clip {clip.id} was decided already ({clip.status}).")
        report = _stored(
            body,
            lease=lease,
            validator=validator,
            stake_wei=snapshot.bonded_wei,
            snapshot_block=snapshot.block,
            now=moment,
        )
        db.add(report)
        lease.state, lease.ended_at = LeaseState.REPORTED, moment
        db.add(lease)
        db.flush()
        count = db.exec(select(func.count()).where(col(Report.clip_id) == clip.id)).one()
        status = ClipStatus(clip.status)
        if count >= settings.consensus_quorum:
            decided = consensus.decide_clip(
                db, clip=clip, trigger=DecisionTrigger.QUORUM, now=moment
            )
            status = decided or status
        receipt = ReportReceipt(report_id=report.id, clip_id=clip.id, clip_status=status)
        db.commit()
    except IntegrityError:
        db.rollback()
        raise ReportDuplicateError(
            f"You reported on clip {lease.clip_id} already; a report is taken once."
        ) from None
    except BaseException:
        db.rollback()
        raise
    return receipt


def _stored(
    body: ReportSubmission,
    *,
    lease: Lease,
    validator: str,
    stake_wei: int,
    snapshot_block: int,
    now: datetime,
) -> Report:
    scores = body.scores
    return Report(
        lease_id=lease.id,
        clip_id=lease.clip_id,
        validator=validator,
        outcome=scores.outcome.value,
        quality=scores.quality,
        passed=scores.passed,
        flags=flags_mask(scores.raised()),
        weights_sha256=scores.model.weights_sha256,
        scores_json=scores.canonical_json().decode("utf-8"),
        signature=body.signature.lower(),
        stake_wei=stake_wei,
        snapshot_block=snapshot_block,
        deadline=lease.deadline,
        created_at=now,
    )


# --- reading ---------------------------------------------------------------------------------


def report_view(report: Report) -> ReportView:
    """A stored report as the API shows it."""
    return ReportView(
        report_id=report.id,
        lease_id=report.lease_id,
        clip_id=report.clip_id,
        validator=report.validator,
        stake_wei=str(report.stake_wei),
        snapshot_block=report.snapshot_block,
        scores=ClipScores.model_validate_json(report.scores_json),
        deadline=report.deadline,
        signature=report.signature,
        created_at=report.created_at,
        agreed=report.agreed,
        quality_deviation=report.quality_deviation,
    )


def own_reports(
    db: Session, *, validator: str, limit: int, cursor: str | None = None
) -> OwnReportPage:
    """``validator``'s reports, newest first; ``cursor`` is the previous page's
    ``next_cursor`` (the id of its last report)."""
    query = (
        select(Report, Clip.status)
        .join(Clip, col(Clip.id) == col(Report.clip_id))
        .where(col(Report.validator) == validator)
    )
    if cursor is not None:
        last = db.get(Report, cursor) if len(cursor) == 32 else None
        if last is None or not secrets.compare_digest(last.validator, validator):
            raise InvalidCursorError("The cursor is not one of your reports.")
        query = query.where(
            or_(
                col(Report.created_at) < last.created_at,
                and_(col(Report.created_at) == last.created_at, col(Report.id) < last.id),
            )
        )
    rows = db.exec(
        query.order_by(col(Report.created_at).desc(), col(Report.id).desc()).limit(limit + 1)
    ).all()
    page = rows[:limit]
    items = [
        OwnReportView(**report_view(report).model_dump(), clip_status=status)
        for report, status in page
    ]
    return OwnReportPage(items=items, next_cursor=page[-1][0].id if len(rows) > limit else None)


def clip_reports(db: Session, *, viewer: str | None, clip_id: str) -> ClipReportsView:
    """Every report on a decided clip ``viewer`` may see (``clips.visible_clip``), with
    the decision; :class:`ClipUndecidedError` before the decision (reports stay hidden
    from everyone, validators included, until then)."""
    clip, _owned = clips.visible_clip(db, viewer=viewer, clip_id=clip_id)
    if clip.status not in DECIDED:
        raise ClipUndecidedError(
            f"Clip {clip.id} is {clip.status}; its reports are shown once it is decided."
        )
    rows = db.exec(
        select(Report)
        .where(col(Report.clip_id) == clip.id)
        .order_by(col(Report.created_at), col(Report.id))
        .limit(MAX_REPORTS_PER_CLIP)
    ).all()
    return ClipReportsView(
        clip_id=clip.id,
        status=ClipStatus(clip.status),
        decision=json.loads(clip.scores_json) if clip.scores_json else None,
        reasons=[ClipReason.model_validate(r) for r in json.loads(clip.reasons_json)],
        reports=[report_view(row) for row in rows],
    )
