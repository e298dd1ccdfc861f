"""Consensus: a clip's reports become one decision (``docs/api/validator.md``).

The rule (``weighted-median-v1``) is pure and lives in :func:`decide`; the rest of the
module applies it to the database.

The rule
--------
Each report weighs its signer's bonded stake when it arrived (``W`` in all).

1. If reports holding more than half of ``W`` say ``failed``, the clip is **failed**,
   with their reasons (heaviest report first, each code once).
2. Otherwise, over the ``scored`` reports (``S`` their weight):

   * each component and ``quality`` is the **lower weighted median** of the reports'
     values (:func:`weighted_median`); a report that left a component unscored
     (``None``) is left out of that component's median, and a component nobody scored
     is ``None``;
   * a junk flag **holds** when reports with more than half of ``S`` raised it;
   * the clip is **accepted** when the weighted median of ``quality - pass_threshold``
     is at least 0 (the median validator, by stake, passes it under its own model's
     threshold) and no flag holds, else **rejected**.

3. The reasons a contributor reads (rejected clips): for every held flag, the reason of
   the heaviest report that raised it; for every component whose consensus value is
   below the consensus pass threshold (the weighted median of the reports'
   ``pass_threshold``), the reasons of the report whose value *is* the median ("camera
   movement declared pan-left, measured pan-right"); and ``quality.below_threshold``
   when the quality margin is negative.

"The report whose value is the median" is, among the reports with exactly that value,
the heaviest (then the smallest report id), so the choice never depends on the order in
which reports arrived.

Applying it
-----------
:func:`decide_clip` runs inside the transaction that holds the clip (report intake
when the quorum is reached; :func:`decide_due` for clips past their consensus
deadline): it stores the decision in the clip (``status``, ``scores_json``,
``reasons_json``) with a conditional ``UPDATE`` on the undecided status, marks every
report's agreement, updates the validators' reputation and, for an accepted clip,
records its embeddings for the validators' near-duplicate indexes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import exists, func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend.models.clips import Clip, ClipReason, ClipStatus
from backend.models.scoring import (
    ClipEmbedding,
    ClipScoring,
    DecisionTrigger,
    EmbeddingItem,
    EmbeddingPage,
    Report,
)
from backend.services import reputation
from backend.services.leases import LEASABLE, begin_write, expire_leases, is_postgres, utcnow
from scoring.report import ClipScores, Component, Flag, Outcome, Reason

__all__ = [
    "DUE_BATCH",
    "RULE",
    "Verdict",
    "WeightedReport",
    "decide",
    "decide_clip",
    "decide_due",
    "embeddings_page",
    "run_due",
    "weighted_median",
]

logger = logging.getLogger(__name__)

#: Name of the rule, stored with every decision.
RULE: Final = "weighted-median-v1"
#: Clips past their consensus deadline decided per call of :func:`decide_due`.
DUE_BATCH: Final = 100
#: Most reasons stored with a decision (the clip views show at most 64).
MAX_DECISION_REASONS: Final = 32
#: Namespace of the PostgreSQL advisory lock that orders embedding inserts by commit.
_EMBEDDINGS_LOCK: Final = 0x5B0F_0E3B

#: Where in the annotation each component's reasons point.
_COMPONENT_FIELD: Final = {
    Component.SCENE: "scene",
    Component.LIGHTING: "lighting",
    Component.CAMERA: "camera",
    Component.AUDIO: "audio",
}


# --- the pure rule -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WeightedReport:
    """One report as consensus sees it: its verdict and its stake weight (wei)."""

    report_id: str
    validator: str
    weight: int
    scores: ClipScores


def weighted_median(values: Iterable[tuple[float, int]]) -> float:
    """The lower weighted median of ``(value, weight)`` pairs.

    The smallest value whose own weight plus the weight of all smaller values reaches
    half of the total. Weights are integers (wei) so the comparison is exact; they must
    not be negative. If every weight is 0, each pair counts once (a staked validator
    never weighs 0, but the rule must not divide by zero). Raises ``ValueError`` for no
    values.
    """
    pairs = sorted(values, key=lambda pair: pair[0])
    if not pairs:
        raise ValueError("the weighted median of nothing")
    if any(weight < 0 for _, weight in pairs):
        raise ValueError("weights must not be negative")
    if sum(weight for _, weight in pairs) == 0:
        pairs = [(value, 1) for value, _ in pairs]
    total = sum(weight for _, weight in pairs)
    running = 0
    for value, weight in pairs:
        running += weight
        if 2 * running >= total:
            return value
    raise AssertionError("unreachable")  # pragma: no cover - the last pair reaches total


def _weights(reports: Sequence[WeightedReport]) -> dict[str, int]:
    """Each report's weight, every one counted once if all weigh 0 (see above)."""
    if sum(report.weight for report in reports) == 0:
        return {report.report_id: 1 for report in reports}
    return {report.report_id: report.weight for report in reports}


def _majority(part: int, whole: int) -> bool:
    return 2 * part > whole


def _heaviest(reports: Iterable[WeightedReport], weights: dict[str, int]) -> WeightedReport:
    """The heaviest report (then the smallest id): the order reports came in is moot."""
    return min(reports, key=lambda r: (-weights[r.report_id], r.report_id))


@dataclass(frozen=True)
class Verdict:
    """What :func:`decide` concluded about one clip."""

    status: ClipStatus
    """``accepted``, ``rejected`` or ``failed``."""
    components: dict[Component, float | None] = field(default_factory=dict)
    quality: float | None = None
    pass_threshold: float | None = None
    margin: float | None = None
    """Weighted median of ``quality - pass_threshold`` over the scored reports."""
    flag_shares: dict[Flag, float] = field(default_factory=dict)
    """Share of the scored reports' weight that raised each flag (raised ones only)."""
    held: frozenset[Flag] = frozenset()
    reasons: tuple[ClipReason, ...] = ()
    total_weight: int = 0
    reports: int = 0

    def agrees(self, scores: ClipScores) -> bool:
        """Whether one report agrees with this verdict (counted in its reputation)."""
        if self.status == ClipStatus.FAILED:
            return scores.outcome is Outcome.FAILED
        return (
            scores.outcome is Outcome.SCORED
            and scores.passed == (self.status == ClipStatus.ACCEPTED)
            and scores.raised() == self.held
        )

    def deviation(self, scores: ClipScores) -> float | None:
        """``|quality - consensus quality|`` when both exist."""
        if scores.quality is None or self.quality is None:
            return None
        return abs(scores.quality - self.quality)

    def document(self, *, decided_at: datetime, trigger: DecisionTrigger) -> dict[str, Any]:
        """The decision as stored in the clip's ``scores`` (``docs/api/validator.md``)."""
        return {
            "rule": RULE,
            "decision": self.status.value,
            "trigger": trigger.value,
            "components": {c.value: v for c, v in self.components.items()},
            "quality": self.quality,
            "pass_threshold": self.pass_threshold,
            "margin": self.margin,
            "flags": {f.value: share for f, share in self.flag_shares.items()},
            "held_flags": sorted(f.value for f in self.held),
            "reports": self.reports,
            "stake_weight": str(self.total_weight),
            "decided_at": decided_at.isoformat(),
        }


def _reason(reason: Reason, field_path: str | None = None) -> ClipReason:
    return ClipReason(code=reason.code, message=reason.message, field=field_path)


def _failed(
    failed: Sequence[WeightedReport], weights: dict[str, int], total: int, count: int
) -> Verdict:
    reasons: list[ClipReason] = []
    seen: set[str] = set()
    for report in sorted(failed, key=lambda r: (-weights[r.report_id], r.report_id)):
        for reason in report.scores.reasons:
            if reason.code not in seen:
                seen.add(reason.code)
                reasons.append(_reason(reason))
    return Verdict(
        status=ClipStatus.FAILED,
        reasons=tuple(reasons[:MAX_DECISION_REASONS]),
        total_weight=total,
        reports=count,
    )


def _median_of(
    reports: Sequence[WeightedReport],
    weights: dict[str, int],
    value: Callable[[ClipScores], float | None],
) -> tuple[float | None, WeightedReport | None]:
    """The weighted median of ``value`` over the reports that have one, and the report
    whose value it is (see the module docstring); ``(None, None)`` if none has one."""
    having = [(r, v) for r in reports if (v := value(r.scores)) is not None]
    if not having:
        return None, None
    median = weighted_median((v, weights[r.report_id]) for r, v in having)
    return median, _heaviest((r for r, v in having if v == median), weights)


def _component(component: Component) -> Callable[[ClipScores], float | None]:
    return lambda scores: scores.value(component)


def decide(reports: Sequence[WeightedReport]) -> Verdict:
    """The decision of ``weighted-median-v1`` on a clip's reports (module docstring).

    Pure: the same reports in any order give the same verdict. Raises ``ValueError``
    for no reports.
    """
    if not reports:
        raise ValueError("a clip cannot be decided without reports")
    weights = _weights(reports)
    total = sum(weights.values())
    failed = [r for r in reports if r.scores.outcome is Outcome.FAILED]
    if _majority(sum(weights[r.report_id] for r in failed), total):
        return _failed(failed, weights, sum(r.weight for r in reports), len(reports))
    scored = [r for r in reports if r.scores.outcome is Outcome.SCORED]
    # More than half of a positive total is not failed, so ``scored`` weighs > 0.
    scored_weight = sum(weights[r.report_id] for r in scored)

    components: dict[Component, float | None] = {}
    median_reports: dict[Component, WeightedReport | None] = {}
    for component in Component:
        components[component], median_reports[component] = _median_of(
            scored, weights, _component(component)
        )
    quality, _ = _median_of(scored, weights, lambda s: s.quality)
    threshold, _ = _median_of(scored, weights, lambda s: s.pass_threshold)
    margin, _ = _median_of(
        scored, weights, lambda s: None if s.quality is None else s.quality - s.pass_threshold
    )

    shares: dict[Flag, float] = {}
    held: set[Flag] = set()
    raisers: dict[Flag, list[WeightedReport]] = {}
    for report in scored:
        for flag in report.scores.raised():
            raisers.setdefault(flag, []).append(report)
    for flag in Flag:
        if flag not in raisers:
            continue
        weight = sum(weights[r.report_id] for r in raisers[flag])
        shares[flag] = weight / scored_weight
        if _majority(weight, scored_weight):
            held.add(flag)

    accepted = margin is not None and margin >= 0 and not held
    reasons: list[ClipReason] = []
    if not accepted:
        for flag in Flag:
            if flag in held:
                heaviest = _heaviest(raisers[flag], weights)
                result = next(f for f in heaviest.scores.flags if f.flag is flag)
                reasons.append(_reason(result.reason))
        for component in Component:
            value, median_report = components[component], median_reports[component]
            if value is None or median_report is None or threshold is None:
                continue
            if value < threshold:
                score = median_report.scores.scores[component]
                path = _COMPONENT_FIELD[component]
                reasons.extend(_reason(reason, path) for reason in score.reasons)
                if not score.reasons:
                    reasons.append(
                        ClipReason(
                            code=f"{component.value}.low",
                            message=(
                                f"The {component.value} score {value:.2f} is below the pass "
                                f"threshold {threshold:.2f}."
                            ),
                            field=path,
                        )
                    )
        if margin is not None and margin < 0 and quality is not None and threshold is not None:
            reasons.append(
                ClipReason(
                    code="quality.below_threshold",
                    message=(
                        f"The overall quality {quality:.2f} is below the pass threshold "
                        f"{threshold:.2f} (stake-weighted median of {len(scored)} "
                        f"validator report{'s' if len(scored) != 1 else ''})."
                    ),
                )
            )
    return Verdict(
        status=ClipStatus.ACCEPTED if accepted else ClipStatus.REJECTED,
        components=components,
        quality=quality,
        pass_threshold=threshold,
        margin=margin,
        flag_shares=shares,
        held=frozenset(held),
        reasons=tuple(_dedupe(reasons)[:MAX_DECISION_REASONS]),
        total_weight=sum(r.weight for r in reports),
        reports=len(reports),
    )


def _dedupe(reasons: Iterable[ClipReason]) -> list[ClipReason]:
    seen: set[tuple[str, str | None]] = set()
    unique = []
    for reason in reasons:
        key = (reason.code, reason.field)
        if key not in seen:
            seen.add(key)
            unique.append(reason)
    return unique


# --- applying it ---------------------------------------------------------------------------


def _weighted(rows: Sequence[Report]) -> list[WeightedReport]:
    return [
        WeightedReport(
            report_id=row.id,
            validator=row.validator,
            weight=row.stake_wei,
            scores=ClipScores.model_validate_json(row.scores_json),
        )
        for row in rows
    ]


def decide_clip(
    db: Session, *, clip: Clip, trigger: DecisionTrigger, now: datetime
) -> ClipStatus | None:
    """Decide ``clip`` on its reports within ``db``'s transaction; the new status.

    The caller holds the clip (locked on PostgreSQL, a write transaction on SQLite) and
    commits. Returns None, changing nothing, when the clip has no reports or was decided
    meanwhile.
    """
    rows = list(db.exec(select(Report).where(col(Report.clip_id) == clip.id)).all())
    if not rows:
        return None
    weighted = _weighted(rows)
    verdict = decide(weighted)
    done = db.execute(
        update(Clip)
        .where(col(Clip.id) == clip.id, col(Clip.status).in_(LEASABLE))
        .values(
            status=verdict.status,
            scores_json=json.dumps(verdict.document(decided_at=now, trigger=trigger)),
            reasons_json=json.dumps(
                [reason.model_dump(mode="json", exclude_none=True) for reason in verdict.reasons]
            ),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        return None
    db.execute(
        update(ClipScoring)
        .where(col(ClipScoring.clip_id) == clip.id)
        .values(decided_at=now, trigger=trigger)
        .execution_options(synchronize_session=False)
    )
    outcomes: list[reputation.Outcome] = []
    for row, report in zip(rows, weighted, strict=True):
        row.agreed = verdict.agrees(report.scores)
        row.quality_deviation = verdict.deviation(report.scores)
        db.add(row)
        outcomes.append(
            reputation.Outcome(
                validator=row.validator,
                agreed=row.agreed,
                deviation=row.quality_deviation,
                reported_at=row.created_at,
            )
        )
    db.flush()
    reputation.record(db, outcomes, now=now)
    if verdict.status == ClipStatus.ACCEPTED:
        _record_embeddings(db, clip_id=clip.id, reports=weighted, now=now)
    logger.info(
        "clip %s %s by %s (%d reports)", clip.id, verdict.status.value, trigger.value, len(rows)
    )
    return verdict.status


def _record_embeddings(
    db: Session, *, clip_id: str, reports: Sequence[WeightedReport], now: datetime
) -> None:
    """One embedding per model weights of an accepted clip: the heaviest report's."""
    by_weights: dict[str, WeightedReport] = {}
    for report in sorted(reports, key=lambda r: (-r.weight, r.report_id)):
        scores = report.scores
        if scores.outcome is Outcome.SCORED and scores.embedding:
            by_weights.setdefault(scores.model.weights_sha256, report)
    if not by_weights:
        return
    if is_postgres(db):
        # Sequence numbers are drawn before commit; holding this lock until commit makes
        # rows commit in ``seq`` order, so a reader paging by ``seq`` never skips one that
        # commits late. SQLite has one writer at a time anyway.
        db.execute(select(func.pg_advisory_xact_lock(_EMBEDDINGS_LOCK)))
    for weights_sha256, report in sorted(by_weights.items()):
        assert report.scores.embedding is not None
        db.add(
            ClipEmbedding(
                clip_id=clip_id,
                weights_sha256=weights_sha256,
                model=report.scores.model.model,
                embedding=report.scores.embedding,
                report_id=report.report_id,
                created_at=now,
            )
        )
    db.flush()


def embeddings_page(
    db: Session, *, weights_sha256: str, limit: int, after: int | None = None
) -> EmbeddingPage:
    """Accepted clips' embeddings under ``weights_sha256`` after position ``after``, in
    acceptance order (``EmbeddingPage`` says how to page and poll)."""
    query = select(ClipEmbedding).where(col(ClipEmbedding.weights_sha256) == weights_sha256)
    if after is not None:
        query = query.where(col(ClipEmbedding.seq) > after)
    rows = list(db.exec(query.order_by(col(ClipEmbedding.seq)).limit(limit + 1)).all())
    page = rows[:limit]
    items = [
        EmbeddingItem(seq=row.seq, clip_id=row.clip_id, model=row.model, embedding=row.embedding)
        for row in page
        if row.seq is not None
    ]
    position = items[-1].seq if items else after
    return EmbeddingPage(
        items=items,
        next_cursor=str(position) if position is not None else None,
        has_more=len(rows) > limit,
    )


def _lock_undecided(db: Session, clip_id: str) -> Clip | None:
    """The clip, locked, if it is still undecided; None if it is taken or decided."""
    query = (
        select(Clip)
        .where(col(Clip.id) == clip_id, col(Clip.status).in_(LEASABLE))
        .execution_options(populate_existing=True)
    )
    if is_postgres(db):
        # Another process deciding it, or a report arriving for it, has it: skip it.
        query = query.with_for_update(skip_locked=True)
    return db.exec(query).first()


def decide_due(engine: Engine, *, now: datetime | None = None) -> int:
    """Decide clips past their consensus deadline that have at least one report (at
    most :data:`DUE_BATCH`), each in its own transaction; how many were decided."""
    moment = now or utcnow()
    with Session(engine) as db:
        due = db.exec(
            select(ClipScoring.clip_id)
            .where(
                col(ClipScoring.decided_at).is_(None),
                col(ClipScoring.consensus_deadline) <= moment,
                exists().where(col(Report.clip_id) == col(ClipScoring.clip_id)),
            )
            .order_by(col(ClipScoring.consensus_deadline))
            .limit(DUE_BATCH)
        ).all()
    decided = 0
    for clip_id in due:
        with Session(engine) as db:
            try:
                begin_write(db)
                clip = _lock_undecided(db, clip_id)
                status = None
                if clip is not None:
                    status = decide_clip(
                        db, clip=clip, trigger=DecisionTrigger.DEADLINE, now=moment
                    )
                db.commit()
            except BaseException:
                db.rollback()
                raise
        if status is not None:
            decided += 1
    return decided


def run_due(engine: Engine, *, now: datetime | None = None) -> int:
    """The periodic scoring chores: mark expired leases, decide clips past their
    consensus deadline. Returns how many clips were decided. Safe in several processes
    at once."""
    moment = now or utcnow()
    expired = expire_leases(engine, now=moment)
    if expired:
        logger.info("%d leases expired", expired)
    return decide_due(engine, now=moment)
