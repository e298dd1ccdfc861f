"""Leasing (``backend.services.leases``) on SQLite and PostgreSQL, with real queued clips.

The concurrency tests release their requests together (a barrier) from threads with
their own sessions and then check the invariants in the database: no clip leased beyond
the quorum, no validator holding two leases of one clip.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

import pytest
from eth_account import Account
from sqlmodel import Session, col, select

from backend.errors import (
    ClipNotEditableError,
    LeaseExpiredError,
    LeaseNotFoundError,
    LeaseReportedError,
)
from backend.models.clips import ClipStatus, ClipUpdate
from backend.models.scoring import ClipScoring, Lease, LeaseState, LeaseView, ReportSubmission
from backend.services import clips, leases, reports
from backend.services.leases import utcnow
from tests.backend.scoring.conftest import World, contributor, sign, verdict

pytestmark = pytest.mark.chain

#: For checks that read no differently on PostgreSQL (no locking involved).
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

T = TypeVar("T")


def lease(
    world: World, validator: str, max_jobs: int = 1, now: datetime | None = None
) -> list[LeaseView]:
    with Session(world.engine) as db:
        return leases.issue_leases(
            db, settings=world.settings, validator=validator, max_jobs=max_jobs, now=now
        )


def validator() -> str:
    """A validator address for the leasing service (which leaves stake to the route)."""
    address: str = Account.create().address
    return address


def leases_of(world: World, clip_id: str) -> list[Lease]:
    with Session(world.engine) as db:
        return list(db.exec(select(Lease).where(col(Lease.clip_id) == clip_id)).all())


def at_once(calls: list[Callable[[], T]]) -> list[T]:
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


# --- what a lease is ------------------------------------------------------------------------


def test_the_first_lease_starts_scoring_and_freezes_the_annotation(world: World) -> None:
    owner = contributor()
    clip_id = world.contribute(owner)
    before = utcnow()
    [view] = lease(world, validator(), max_jobs=4)
    clip = world.clip(clip_id)
    assert view.clip_id == clip_id
    assert (view.content_cid, view.content_url) == (clip.cid, f"/ipfs/{clip.cid}")
    assert (view.sha256, view.size_bytes) == (clip.sha256, clip.size_bytes)
    assert view.annotation_hash == clip.annotation_hash
    assert view.annotation["camera"] == {"movement": "pan", "direction": "left"}
    assert view.media is not None
    assert view.deadline == int(view.expires_at.timestamp())
    ttl = world.settings.lease_ttl_s
    assert timedelta(seconds=ttl - 1) <= view.expires_at - view.issued_at <= timedelta(seconds=ttl)
    assert clip.status == ClipStatus.SCORING
    with Session(world.engine) as db:
        scoring = db.get(ClipScoring, clip_id)
        assert scoring is not None
        assert scoring.decided_at is None
        assert scoring.first_leased_at >= before
        assert scoring.consensus_deadline == scoring.first_leased_at + timedelta(
            seconds=world.settings.consensus_deadline_s
        )
        with pytest.raises(ClipNotEditableError):
            clips.update_clip(
                db,
                owner=owner,
                clip_id=clip_id,
                changes=ClipUpdate(annotation={"scene": {"description": "Something else."}}),
            )


def test_a_validator_never_gets_its_own_clips(world: World) -> None:
    owner = validator()
    world.contribute(owner)
    assert lease(world, owner, max_jobs=4) == []
    assert world.clip(world.contribute(contributor())).status == ClipStatus.QUEUED
    [view] = lease(world, owner, max_jobs=4)
    assert world.clip(view.clip_id).owner != owner


def test_a_clip_goes_to_at_most_quorum_validators_one_lease_each(world: World) -> None:
    clip_id = world.contribute(contributor())
    first, second, third, fourth = (validator() for _ in range(4))
    for holder in (first, second, third):
        assert [v.clip_id for v in lease(world, holder)] == [clip_id]
        assert lease(world, holder) == [], "a holder never gets the same clip twice"
    assert lease(world, fourth) == []
    assert sorted(x.validator for x in leases_of(world, clip_id)) == sorted([first, second, third])


def test_a_validator_never_gets_a_clip_it_reported_on(world: World) -> None:
    staked = world.validators()[0]
    clip_id = world.contribute(contributor())
    [view] = lease(world, staked.address)
    body = ReportSubmission.model_validate(sign(staked, view, verdict(), registry=world.registry))
    with Session(world.engine) as db:
        receipt = reports.submit_report(
            db, settings=world.settings, validator=staked.address, body=body
        )
    assert receipt.clip_status == ClipStatus.SCORING
    # Still two reports short of the quorum, and later too: never again for this one.
    later = utcnow() + timedelta(seconds=world.settings.lease_ttl_s * 2)
    assert lease(world, staked.address, now=later) == []
    assert [v.clip_id for v in lease(world, validator(), now=later)] == [clip_id]


@SQLITE_ONLY
def test_max_jobs_is_capped_by_the_setting(world_for: Callable[..., World]) -> None:
    world = world_for(lease_max_jobs=2)
    for _ in range(3):
        world.contribute(contributor())
    assert len(lease(world, validator(), max_jobs=16)) == 2


# --- expiry, returns, and who gets what again ------------------------------------------------


def test_an_expired_lease_is_issued_again_and_its_report_refused(
    world_for: Callable[..., World],
) -> None:
    world = world_for(consensus_quorum=1)
    staked, other = world.validators()[:2]
    clip_id = world.contribute(contributor())
    [held] = lease(world, staked.address)
    ttl = world.settings.lease_ttl_s
    assert lease(world, other.address, now=held.expires_at - timedelta(seconds=1)) == []
    [again] = lease(world, other.address, now=held.expires_at)
    assert again.clip_id == clip_id
    states = {x.id: x.state for x in leases_of(world, clip_id)}
    assert states == {held.lease_id: LeaseState.EXPIRED, again.lease_id: LeaseState.ACTIVE}
    body = ReportSubmission.model_validate(sign(staked, held, verdict(), registry=world.registry))
    with Session(world.engine) as db, pytest.raises(LeaseExpiredError):
        reports.submit_report(
            db,
            settings=world.settings,
            validator=staked.address,
            body=body,
            now=held.expires_at + timedelta(seconds=ttl // 2),
        )


def test_a_lone_validator_gets_its_clip_again_after_a_crash(
    world_for: Callable[..., World],
) -> None:
    world = world_for(consensus_quorum=1)
    lone = validator()
    clip_id = world.contribute(contributor())
    [first] = lease(world, lone)
    assert lease(world, lone) == []
    # The node died: its lease runs out, and the clip comes back to it.
    [second] = lease(world, lone, now=first.expires_at)
    assert second.clip_id == clip_id
    assert second.lease_id != first.lease_id
    assert {x.id: x.state for x in leases_of(world, clip_id)} == {
        first.lease_id: LeaseState.EXPIRED,
        second.lease_id: LeaseState.ACTIVE,
    }


def test_a_returned_lease_is_issued_again_and_returning_is_idempotent(world: World) -> None:
    holder, other = validator(), validator()
    world.contribute(contributor())
    [held] = lease(world, holder)
    with Session(world.engine) as db:
        leases.return_lease(db, validator=holder, lease_id=held.lease_id)
        leases.return_lease(db, validator=holder, lease_id=held.lease_id)
        with pytest.raises(LeaseNotFoundError):
            leases.return_lease(db, validator=other, lease_id=held.lease_id)
        with pytest.raises(LeaseNotFoundError):
            leases.return_lease(db, validator=holder, lease_id="0" * 32)
    assert [v.clip_id for v in lease(world, other)] == [held.clip_id]
    assert [x.state for x in leases_of(world, held.clip_id) if x.id == held.lease_id] == [
        LeaseState.RETURNED
    ]


def test_a_reported_lease_cannot_be_returned(world: World) -> None:
    staked = world.validators()[2]
    world.contribute(contributor())
    [view] = lease(world, staked.address)
    body = ReportSubmission.model_validate(sign(staked, view, verdict(), registry=world.registry))
    with Session(world.engine) as db:
        reports.submit_report(db, settings=world.settings, validator=staked.address, body=body)
        with pytest.raises(LeaseReportedError):
            leases.return_lease(db, validator=staked.address, lease_id=view.lease_id)


def test_clips_held_before_come_after_every_clip_not_held(world: World) -> None:
    holder = validator()
    first_clip, second_clip = world.contribute(contributor()), world.contribute(contributor())
    [first] = lease(world, holder)
    with Session(world.engine) as db:
        leases.return_lease(db, validator=holder, lease_id=first.lease_id)
    [second] = lease(world, holder)
    assert {first.clip_id, second.clip_id} == {first_clip, second_clip}
    with Session(world.engine) as db:
        leases.return_lease(db, validator=holder, lease_id=second.lease_id)
    # Both held before now: the draw falls back to them.
    assert len(lease(world, holder, max_jobs=2)) == 2


@SQLITE_ONLY
def test_jobs_are_drawn_at_random_not_oldest_first(world: World) -> None:
    made = [world.contribute(contributor()) for _ in range(5)]
    picks = Counter(
        view.clip_id
        for _ in range(12)
        for view in lease(world, validator())
        # Every pick is returned at once, so every draw sees all five clips.
        if _returned(world, view)
    )
    assert set(picks) <= set(made)
    # All twelve on one clip would happen with probability 5**-11 at random.
    assert len(picks) > 1, picks


def _returned(world: World, view: LeaseView) -> bool:
    with Session(world.engine) as db:
        holder = db.get(Lease, view.lease_id)
        assert holder is not None
        leases.return_lease(db, validator=holder.validator, lease_id=view.lease_id)
    return True


def test_active_leases_lists_live_leases_of_undecided_clips(world: World) -> None:
    holder = validator()
    for _ in range(2):
        world.contribute(contributor())
    held = lease(world, holder, max_jobs=2)
    with Session(world.engine) as db:
        listed = leases.active_leases(db, validator=holder, limit=16)
        assert sorted(v.lease_id for v in listed) == sorted(v.lease_id for v in held)
        assert leases.active_leases(db, validator=validator(), limit=16) == []
        later = held[0].expires_at
        assert leases.active_leases(db, validator=holder, limit=16, now=later) == []


# --- concurrency ---------------------------------------------------------------------------------


def test_concurrent_lease_requests_never_lease_a_clip_beyond_the_quorum(
    world_for: Callable[..., World],
) -> None:
    world = world_for(consensus_quorum=2)
    made = [world.contribute(contributor()) for _ in range(4)]
    racers = [validator() for _ in range(8)]
    results = at_once([partial(lease, world, v, max_jobs=4) for v in racers])
    # PostgreSQL's SKIP LOCKED may leave a request with less than it could have had
    # (the rest was locked by others then); asking again afterwards gets it.
    settle = [lease(world, v, max_jobs=4) for v in racers]
    issued = [view for views in results for view in views]
    per_clip = Counter(view.clip_id for view in issued)
    assert all(count <= 2 for count in per_clip.values()), per_clip
    total = Counter(view.clip_id for views in (*results, *settle) for view in views)
    # 4 clips x quorum 2 = 8 jobs, and 8 validators asked for 32: all handed out, none twice.
    assert total == dict.fromkeys(made, 2), total
    for racer, first, again in zip(racers, results, settle, strict=True):
        held = [v.clip_id for v in (*first, *again)]
        assert len(set(held)) == len(held), racer
    rows = [x for clip_id in made for x in leases_of(world, clip_id)]
    assert len(rows) == 8
    assert all(x.state == LeaseState.ACTIVE for x in rows)


def test_one_validators_concurrent_requests_never_hold_two_leases_of_a_clip(
    world: World,
) -> None:
    made = [world.contribute(contributor()) for _ in range(3)]
    racer = validator()
    results = at_once([lambda: lease(world, racer, max_jobs=2) for _ in range(6)])
    settle = lease(world, racer, max_jobs=3)
    issued = [view.clip_id for views in (*results, settle) for view in views]
    assert sorted(issued) == sorted(made)
