"""Leases: which validator scores which clip, until when (``docs/api/validator.md``).

A **job** is a clip in ``queued`` or ``scoring`` whose reports plus live leases are
fewer than the quorum. A lease is *live* while ``state = 'active'`` and its
``expires_at`` is in the future; an active lease past its expiry is dead already (it
counts for nothing and its report is refused) and is marked ``expired`` lazily: by the
lease transaction of its clip and by the periodic job (:func:`expire_leases`).

Eligibility and assignment
--------------------------
A validator never gets its own clips, a clip it reported on, or a clip it holds a live
lease of. Clips it held before (an expired or returned lease) come after every clip it
has not held: with several validators someone else takes them first, and a lone
validator (the ``make up`` stack) still makes progress after a crash. The backend takes
the first :data:`LEASE_WINDOW` eligible clips in that order (never held first, then
oldest first) and draws the jobs at random among them, the never-held ones before the
others, so a validator cannot choose which clips it scores.

Why concurrent requests cannot over-lease
-----------------------------------------
Every change of a clip's leases or reports happens with the clip's row locked, and the
need is counted again under that lock:

* PostgreSQL: the drawn candidates are locked ``FOR UPDATE SKIP LOCKED`` (a concurrent
  request skips them and draws others instead of waiting); report intake locks its
  clip ``FOR UPDATE``. Under READ COMMITTED the recount after the lock sees everything
  committed before the lock was granted.
* SQLite: the transaction is begun ``BEGIN IMMEDIATE`` before the window is read, which
  serialises every writer (readers are not blocked in WAL mode).

A partial UNIQUE index on active leases ``(clip_id, validator)`` backs up "one
validator never holds two leases of one clip".
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import and_, exists, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.errors import LeaseNotFoundError, LeaseReportedError
from backend.models.clips import Clip, ClipStatus, clip_media
from backend.models.scoring import ClipScoring, Lease, LeaseState, LeaseView, Report

__all__ = [
    "LEASABLE",
    "LEASE_WINDOW",
    "active_leases",
    "begin_write",
    "expire_leases",
    "issue_leases",
    "lease_view",
    "live_lease",
    "return_lease",
    "utcnow",
]

#: Statuses of clips that may still need reports.
LEASABLE: Final = (ClipStatus.QUEUED, ClipStatus.SCORING)
#: How many of the oldest eligible clips the random draw chooses from.
LEASE_WINDOW: Final = 256
#: Most leases one call of :func:`expire_leases` marks (the job runs again soon).
EXPIRE_BATCH: Final = 1000

_random = secrets.SystemRandom()


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def begin_write(db: Session) -> None:
    """On SQLite, begin ``db``'s transaction as a write transaction now (``BEGIN
    IMMEDIATE``), so that what it reads next stays true until it commits.

    pysqlite begins a transaction only right before the first data-changing statement,
    so reads before it could be outdated by another writer by then; one that is already
    open has written and holds SQLite's write lock. A waiting writer waits up to
    ``db_connect_timeout_s`` (the busy timeout). On PostgreSQL this does nothing: there
    the callers lock the rows they depend on.
    """
    connection = db.connection()
    if connection.dialect.name != "sqlite":
        return
    driver: object = connection.connection.dbapi_connection
    if isinstance(driver, sqlite3.Connection) and not driver.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(db: Session) -> bool:
    """Whether ``db`` talks to PostgreSQL."""
    return db.get_bind().dialect.name == "postgresql"


def _live(now: datetime) -> ColumnElement[bool]:
    return and_(col(Lease.state) == LeaseState.ACTIVE, col(Lease.expires_at) > now)


def _eligible(validator: str, quorum: int, now: datetime) -> list[ColumnElement[bool]]:
    """Conditions on ``clip`` for being a job ``validator`` may lease now."""
    reports = (
        sa_select(func.count())
        .select_from(Report)
        .where(col(Report.clip_id) == col(Clip.id))
        .scalar_subquery()
    )
    live = (
        sa_select(func.count())
        .select_from(Lease)
        .where(col(Lease.clip_id) == col(Clip.id), _live(now))
        .scalar_subquery()
    )
    return [
        col(Clip.status).in_(LEASABLE),
        col(Clip.owner) != validator,
        ~exists().where(col(Report.clip_id) == col(Clip.id), col(Report.validator) == validator),
        ~exists().where(
            col(Lease.clip_id) == col(Clip.id), col(Lease.validator) == validator, _live(now)
        ),
        reports + live < quorum,
    ]


def _window(db: Session, *, validator: str, quorum: int, now: datetime) -> list[str]:
    """The ids of the first :data:`LEASE_WINDOW` jobs of ``validator`` in draw order: the
    clips it never held shuffled, then the ones it held before shuffled."""
    held_before = exists().where(
        col(Lease.clip_id) == col(Clip.id), col(Lease.validator) == validator
    )
    rows = db.execute(
        sa_select(col(Clip.id), held_before)
        .where(*_eligible(validator, quorum, now))
        .order_by(held_before, col(Clip.created_at), col(Clip.id))
        .limit(LEASE_WINDOW)
    ).all()
    fresh = [clip_id for clip_id, held in rows if not held]
    again = [clip_id for clip_id, held in rows if held]
    _random.shuffle(fresh)
    _random.shuffle(again)
    return fresh + again


def _lock(
    db: Session, clip_ids: Sequence[str], *, validator: str, quorum: int, now: datetime
) -> list[Clip]:
    """The clips of ``clip_ids`` that are still jobs of ``validator``, locked until the
    transaction ends.

    PostgreSQL: the rows are locked first (``SKIP LOCKED``: a clip another request is
    leasing is left to it) and checked in a *second* statement, whose snapshot is taken
    after the locks were granted: a check in the locking statement itself would count
    leases and reports as of that statement's start, missing those committed by the
    request that held the lock just before. SQLite: the write transaction holds
    everything still.
    """
    if is_postgres(db):
        locked = db.exec(
            select(Clip.id)
            .where(col(Clip.id).in_(clip_ids), col(Clip.status).in_(LEASABLE))
            .with_for_update(skip_locked=True)
        ).all()
        clip_ids = list(locked)
        if not clip_ids:
            return []
    query = (
        select(Clip)
        .where(col(Clip.id).in_(clip_ids), *_eligible(validator, quorum, now))
        .order_by(col(Clip.id))
        .execution_options(populate_existing=True)
    )
    return list(db.exec(query).all())


def issue_leases(
    db: Session,
    *,
    settings: Settings,
    validator: str,
    max_jobs: int,
    now: datetime | None = None,
) -> list[LeaseView]:
    """Lease up to ``max_jobs`` (at most ``settings.lease_max_jobs``) jobs to ``validator``.

    See the module docstring for eligibility, the random draw and why concurrent calls
    never lease a clip beyond the quorum. The first lease of a clip moves it ``queued →
    scoring`` (its annotation can no longer be edited) and starts its consensus
    deadline. An empty list means there is nothing to do now.
    """
    moment = now or utcnow()
    wanted = max(0, min(max_jobs, settings.lease_max_jobs))
    quorum = settings.consensus_quorum
    expires_at = (moment + timedelta(seconds=settings.lease_ttl_s)).replace(microsecond=0)
    issued: list[LeaseView] = []
    try:
        begin_write(db)
        pool = _window(db, validator=validator, quorum=quorum, now=moment)
        while pool and len(issued) < wanted:
            draw, pool = pool[: wanted - len(issued)], pool[wanted - len(issued) :]
            for clip in _lock(db, draw, validator=validator, quorum=quorum, now=moment):
                lease = _lease_one(
                    db,
                    settings=settings,
                    clip=clip,
                    validator=validator,
                    now=moment,
                    expires_at=expires_at,
                )
                issued.append(lease_view(lease, clip))
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return issued


def _lease_one(
    db: Session,
    *,
    settings: Settings,
    clip: Clip,
    validator: str,
    now: datetime,
    expires_at: datetime,
) -> Lease:
    # A dead lease of this validator on this clip would collide with the new one in the
    # partial unique index; every dead lease of the clip is marked while it is locked.
    db.execute(
        update(Lease)
        .where(
            col(Lease.clip_id) == clip.id,
            col(Lease.state) == LeaseState.ACTIVE,
            col(Lease.expires_at) <= now,
        )
        .values(state=LeaseState.EXPIRED, ended_at=now)
        .execution_options(synchronize_session=False)
    )
    lease = Lease(
        clip_id=clip.id,
        validator=validator,
        state=LeaseState.ACTIVE,
        annotation_hash=clip.annotation_hash,
        issued_at=now,
        expires_at=expires_at,
        deadline=int(expires_at.timestamp()),
    )
    db.add(lease)
    if clip.status == ClipStatus.QUEUED:
        started = db.execute(
            update(Clip)
            .where(col(Clip.id) == clip.id, col(Clip.status) == ClipStatus.QUEUED)
            .values(status=ClipStatus.SCORING, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(started, "rowcount", 0) == 1:
            db.add(
                ClipScoring(
                    clip_id=clip.id,
                    first_leased_at=now,
                    consensus_deadline=now + timedelta(seconds=settings.consensus_deadline_s),
                )
            )
            clip.status = ClipStatus.SCORING
    db.flush()
    return lease


def lease_view(lease: Lease, clip: Clip) -> LeaseView:
    """What a validator is told about a lease of ``clip``."""
    return LeaseView(
        lease_id=lease.id,
        clip_id=clip.id,
        content_cid=clip.cid,
        content_url=f"/ipfs/{clip.cid}",
        sha256=clip.sha256,
        size_bytes=clip.size_bytes,
        annotation=json.loads(clip.annotation_json),
        annotation_hash=lease.annotation_hash,
        media=clip_media(clip),
        issued_at=lease.issued_at,
        expires_at=lease.expires_at,
        deadline=lease.deadline,
    )


def active_leases(
    db: Session, *, validator: str, limit: int, now: datetime | None = None
) -> list[LeaseView]:
    """``validator``'s live leases of undecided clips, oldest first (for a restarted node)."""
    moment = now or utcnow()
    rows = db.exec(
        select(Lease, Clip)
        .join(Clip, col(Clip.id) == col(Lease.clip_id))
        .where(
            col(Lease.validator) == validator,
            _live(moment),
            col(Clip.status).in_(LEASABLE),
        )
        .order_by(col(Lease.issued_at), col(Lease.id))
        .limit(limit)
    ).all()
    return [lease_view(lease, clip) for lease, clip in rows]


def live_lease(db: Session, *, validator: str, lease_id: str) -> Lease:
    """``validator``'s lease ``lease_id``; another's or an unknown one is
    :class:`LeaseNotFoundError` (existence is not leaked)."""
    lease = db.get(Lease, lease_id) if len(lease_id) == 32 else None
    if lease is None or not secrets.compare_digest(lease.validator, validator):
        raise LeaseNotFoundError("No such lease of yours.")
    return lease


def return_lease(
    db: Session, *, validator: str, lease_id: str, now: datetime | None = None
) -> None:
    """Give an unfinished lease back, so its clip can be leased again at once.

    Idempotent for a lease that is returned or expired already; a reported lease is
    :class:`LeaseReportedError`; another validator's is :class:`LeaseNotFoundError`.
    """
    moment = now or utcnow()
    lease = live_lease(db, validator=validator, lease_id=lease_id)
    done = db.execute(
        update(Lease)
        .where(col(Lease.id) == lease.id, col(Lease.state) == LeaseState.ACTIVE)
        .values(state=LeaseState.RETURNED, ended_at=moment)
        .execution_options(synchronize_session=False)
    )
    db.commit()
    if getattr(done, "rowcount", 0) == 1:
        return
    db.refresh(lease)
    if lease.state == LeaseState.REPORTED:
        raise LeaseReportedError("The lease was reported on already; there is nothing to return.")


def expire_leases(engine: Engine, *, now: datetime | None = None) -> int:
    """Mark active leases past their expiry ``expired`` (at most :data:`EXPIRE_BATCH`);
    how many. Safe at any time: a dead lease counts for nothing either way."""
    moment = now or utcnow()
    with Session(engine) as db:
        due = (
            sa_select(col(Lease.id))
            .where(col(Lease.state) == LeaseState.ACTIVE, col(Lease.expires_at) <= moment)
            .limit(EXPIRE_BATCH)
            # Rows a lease or report transaction holds are left to it (it marks them
            # itself, or the next run does): this job never waits on a request.
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        done = db.execute(
            update(Lease)
            .where(
                col(Lease.id).in_(due),
                col(Lease.state) == LeaseState.ACTIVE,
                col(Lease.expires_at) <= moment,
            )
            .values(state=LeaseState.EXPIRED, ended_at=moment)
            .execution_options(synchronize_session=False)
        )
        db.commit()
        count: int = getattr(done, "rowcount", 0)
        return count
