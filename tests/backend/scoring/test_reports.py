"""Report intake (``backend.services.reports``) on SQLite and PostgreSQL: signatures made
the way a validator node makes them, stakes indexed from a real chain, real clips."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlmodel import Session, col, select

from backend.errors import (
    BackendError,
    ClipDecidedError,
    LeaseNotFoundError,
    LeaseReturnedError,
    ReportDeadlineMismatchError,
    ReportDuplicateError,
    ReportSignatureInvalidError,
    ValidatorNotStakedError,
)
from backend.models.clips import ClipStatus
from backend.models.scoring import (
    ClipScoring,
    DecisionTrigger,
    LeaseView,
    Report,
    ReportReceipt,
    ReportSubmission,
    ValidatorReputation,
)
from backend.services import consensus, leases, reports
from backend.services.leases import utcnow
from scoring.report import Flag
from tests.backend.scoring.conftest import STAKES, World, contributor, reason, sign, verdict

pytestmark = pytest.mark.chain

#: For checks that read no differently on PostgreSQL (no locking involved).
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

T = TypeVar("T")


def lease_one(world: World, account: LocalAccount | str, **kwargs: Any) -> LeaseView:
    address = account if isinstance(account, str) else account.address
    with Session(world.engine) as db:
        [view] = leases.issue_leases(
            db, settings=world.settings, validator=address, max_jobs=1, **kwargs
        )
    return view


def submit(
    world: World, account: LocalAccount | str, body: dict[str, Any], **kwargs: Any
) -> ReportReceipt:
    address = account if isinstance(account, str) else account.address
    with Session(world.engine) as db:
        return reports.submit_report(
            db,
            settings=world.settings,
            validator=address,
            body=ReportSubmission.model_validate(body),
            **kwargs,
        )


def stored_reports(world: World, clip_id: str) -> list[Report]:
    with Session(world.engine) as db:
        query = select(Report).where(col(Report.clip_id) == clip_id).order_by(col(Report.id))
        return list(db.exec(query).all())


def at_once(calls: list[Callable[[], T]]) -> list[T | BackendError]:
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T | BackendError:
        barrier.wait()
        try:
            return call()
        except BackendError as exc:
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


# --- the happy path --------------------------------------------------------------------------


def test_the_report_completing_the_quorum_decides_the_clip(world: World) -> None:
    validators = world.validators()[:3]
    clip_id = world.contribute(contributor())
    views = [lease_one(world, v) for v in validators]
    qualities = (0.55, 0.75, 0.65)
    receipts = [
        submit(
            world, v, sign(v, view, verdict(q, embedding=bytes([i]) * 8), registry=world.registry)
        )
        for i, (v, view, q) in enumerate(zip(validators, views, qualities, strict=True))
    ]
    assert [r.clip_status for r in receipts] == ["scoring", "scoring", "accepted"]
    clip = world.clip(clip_id)
    assert clip.status == ClipStatus.ACCEPTED
    assert json.loads(clip.reasons_json) == []
    assert clip.scores_json is not None
    decision = json.loads(clip.scores_json)
    # Stakes 1000, 2000, 3000 SHOT: qualities 0.55, 0.65 (3000), 0.75 -> 0.65 holds half.
    assert decision["quality"] == 0.65
    assert decision["rule"] == "weighted-median-v1"
    assert decision["trigger"] == "quorum"
    assert decision["reports"] == 3
    assert decision["stake_weight"] == str(sum(STAKES[:3]))
    rows = stored_reports(world, clip_id)
    assert {row.validator: row.stake_wei for row in rows} == {
        v.address: stake for v, stake in zip(validators, STAKES, strict=False)
    }
    assert all(row.agreed for row in rows)
    assert sorted(row.quality_deviation or 0.0 for row in rows) == pytest.approx([0.0, 0.1, 0.1])
    assert all(row.signature.startswith("0x") and len(row.signature) == 132 for row in rows)
    with Session(world.engine) as db:
        scoring = db.get(ClipScoring, clip_id)
        assert scoring is not None
        assert scoring.trigger == DecisionTrigger.QUORUM
        assert scoring.decided_at is not None
        page = consensus.embeddings_page(
            db, weights_sha256=verdict().model.weights_sha256, limit=10
        )
    # One embedding per model weights: the heaviest report's (the third validator's).
    assert [(item.clip_id, item.embedding) for item in page.items] == [
        (clip_id, verdict(embedding=bytes([2]) * 8).embedding)
    ]


def test_a_stored_report_keeps_the_verdict_exactly_as_signed(world: World) -> None:
    staked = world.validators()[0]
    world.contribute(contributor())
    view = lease_one(world, staked)
    scores = verdict(0.7, camera_reasons=(reason("camera.matched", "pan-left as declared"),))
    receipt = submit(world, staked, sign(staked, view, scores, registry=world.registry))
    [row] = stored_reports(world, receipt.clip_id)
    assert row.scores_json.encode() == scores.canonical_json()
    assert row.deadline == view.deadline
    assert row.snapshot_block >= 1
    with Session(world.engine) as db:
        page = reports.own_reports(db, validator=staked.address, limit=10)
        assert [item.report_id for item in page.items] == [receipt.report_id]
        assert page.items[0].scores == scores
        assert page.items[0].clip_status == ClipStatus.SCORING
        assert (
            reports.own_reports(db, validator=world.validators()[1].address, limit=10).items == []
        )


# --- refusals, in the contract's order ---------------------------------------------------------


@SQLITE_ONLY
def test_unknown_and_foreign_leases_are_not_found(world: World) -> None:
    owner_of_lease, other = world.validators()[:2]
    world.contribute(contributor())
    view = lease_one(world, owner_of_lease)
    body = sign(owner_of_lease, view, verdict(), registry=world.registry)
    with pytest.raises(LeaseNotFoundError):
        submit(world, other, body)
    with pytest.raises(LeaseNotFoundError):
        submit(world, owner_of_lease, {**body, "lease_id": "f" * 32})


@SQLITE_ONLY
def test_forged_tampered_and_misdirected_reports_fail_the_signature_check(world: World) -> None:
    staked = world.validators()[0]
    world.contribute(contributor())
    world.contribute(contributor())
    with Session(world.engine) as db:
        first, second = leases.issue_leases(
            db, settings=world.settings, validator=staked.address, max_jobs=2
        )
    scores = verdict(0.4)
    # Signed by someone else (a forgery in the validator's name).
    forged = sign(Account.create(), first, scores, registry=world.registry)
    # Signed properly, then the numbers were changed.
    tampered = sign(staked, first, scores, registry=world.registry)
    tampered["scores"] = verdict(0.9).model_dump(mode="json")
    # Signed for one lease, submitted for the other.
    misdirected = {
        **sign(staked, first, scores, registry=world.registry),
        "lease_id": second.lease_id,
    }
    # Signed for another deployment (another verifying contract).
    elsewhere = sign(staked, first, scores, registry=Account.create().address)
    # Not a valid secp256k1 signature at all.
    garbage = {
        **sign(staked, first, scores, registry=world.registry),
        "signature": "0x" + "ff" * 65,
    }
    for body in (forged, tampered, misdirected, elsewhere, garbage):
        with pytest.raises(ReportSignatureInvalidError):
            submit(world, staked, body)
    assert stored_reports(world, first.clip_id) == []
    submit(world, staked, sign(staked, first, scores, registry=world.registry))


@SQLITE_ONLY
def test_an_unstaked_signer_is_refused_after_its_signature_checks_out(world: World) -> None:
    world.validators()
    unstaked = world.chain.unstaked
    world.contribute(contributor())
    view = lease_one(world, unstaked)
    forged = sign(Account.create(), view, verdict(), registry=world.registry)
    with pytest.raises(ReportSignatureInvalidError):
        submit(world, unstaked, forged)
    with pytest.raises(ValidatorNotStakedError, match="no active stake"):
        submit(world, unstaked, sign(unstaked, view, verdict(), registry=world.registry))


@SQLITE_ONLY
def test_a_deadline_other_than_the_leases_is_refused(world: World) -> None:
    staked = world.validators()[0]
    world.contribute(contributor())
    view = lease_one(world, staked)
    later = sign(staked, view, verdict(), registry=world.registry, deadline=view.deadline + 3600)
    with pytest.raises(ReportDeadlineMismatchError):
        submit(world, staked, later)


@SQLITE_ONLY
def test_a_returned_lease_takes_no_report(world: World) -> None:
    staked = world.validators()[0]
    world.contribute(contributor())
    view = lease_one(world, staked)
    with Session(world.engine) as db:
        leases.return_lease(db, validator=staked.address, lease_id=view.lease_id)
    with pytest.raises(LeaseReturnedError):
        submit(world, staked, sign(staked, view, verdict(), registry=world.registry))


def test_a_replayed_report_is_a_duplicate(world: World) -> None:
    staked = world.validators()[0]
    world.contribute(contributor())
    view = lease_one(world, staked)
    body = sign(staked, view, verdict(), registry=world.registry)
    submit(world, staked, body)
    with pytest.raises(ReportDuplicateError):
        submit(world, staked, body)
    # A differently worded second opinion on the same lease is one, too.
    with pytest.raises(ReportDuplicateError):
        submit(world, staked, sign(staked, view, verdict(0.1), registry=world.registry))


def test_a_report_on_a_clip_decided_meanwhile_is_refused(
    world_for: Callable[..., World],
) -> None:
    world = world_for(lease_ttl_s=600, consensus_deadline_s=700)
    early, late = world.validators()[:2]
    clip_id = world.contribute(contributor())
    early_view = lease_one(world, early)
    submit(world, early, sign(early, early_view, verdict(), registry=world.registry))
    with Session(world.engine) as db:
        scoring = db.get(ClipScoring, clip_id)
        assert scoring is not None
        deadline = scoring.consensus_deadline
    # The late validator leases shortly before the consensus deadline and is still
    # working when it passes.
    late_view = lease_one(world, late, now=deadline - timedelta(seconds=60))
    assert consensus.decide_due(world.engine, now=deadline - timedelta(seconds=1)) == 0
    assert consensus.decide_due(world.engine, now=deadline) == 1
    assert world.clip(clip_id).status == ClipStatus.ACCEPTED
    with Session(world.engine) as db:
        decided = db.get(ClipScoring, clip_id)
        assert decided is not None
        assert decided.trigger == DecisionTrigger.DEADLINE
    with pytest.raises(ClipDecidedError):
        submit(
            world,
            late,
            sign(late, late_view, verdict(), registry=world.registry),
            now=deadline + timedelta(seconds=1),
        )


# --- concurrency ---------------------------------------------------------------------------------


def test_reports_arriving_together_all_count_and_decide_once(world: World) -> None:
    validators = world.validators()[:3]
    clip_id = world.contribute(contributor())
    views = [lease_one(world, v) for v in validators]
    bodies = [
        sign(v, view, verdict(0.7), registry=world.registry)
        for v, view in zip(validators, views, strict=True)
    ]
    results = at_once(
        [partial(submit, world, v, b) for v, b in zip(validators, bodies, strict=True)]
    )
    assert all(isinstance(r, ReportReceipt) for r in results), results
    statuses = sorted(r.clip_status for r in results if isinstance(r, ReportReceipt))
    assert statuses == ["accepted", "scoring", "scoring"]
    assert world.clip(clip_id).status == ClipStatus.ACCEPTED
    with Session(world.engine) as db:
        rows = db.exec(select(ValidatorReputation)).all()
    assert {row.address: row.decided_reports for row in rows} == {v.address: 1 for v in validators}


def test_a_report_replayed_concurrently_is_stored_once(world: World) -> None:
    staked = world.validators()[0]
    clip_id = world.contribute(contributor())
    view = lease_one(world, staked)
    body = sign(staked, view, verdict(), registry=world.registry)
    results = at_once([lambda: submit(world, staked, body) for _ in range(4)])
    assert sum(isinstance(r, ReportReceipt) for r in results) == 1, results
    assert all(isinstance(r, ReportReceipt | ReportDuplicateError) for r in results), results
    assert len(stored_reports(world, clip_id)) == 1


# --- decisions from reports -------------------------------------------------------------------


def test_a_rejected_clip_tells_its_contributor_why(world_for: Callable[..., World]) -> None:
    world = world_for(consensus_quorum=2)
    light, heavy = world.validators()[0], world.validators()[2]
    clip_id = world.contribute(contributor())
    mismatch = reason(
        "camera.direction_mismatch", "camera movement declared pan-left, measured pan-right"
    )
    for account, scores in (
        (light, verdict(0.6, camera=0.7)),
        (heavy, verdict(0.3, camera=0.1, camera_reasons=(mismatch,), flags=(Flag.BLUR,))),
    ):
        submit(
            world,
            account,
            sign(account, lease_one(world, account), scores, registry=world.registry),
        )
    clip = world.clip(clip_id)
    assert clip.status == ClipStatus.REJECTED
    reasons = json.loads(clip.reasons_json)
    assert reasons[0] == {"code": "junk.blur", "message": "the clip is blur"}
    assert {
        "code": "camera.direction_mismatch",
        "message": "camera movement declared pan-left, measured pan-right",
        "field": "camera",
    } in reasons
    assert reasons[-1]["code"] == "quality.below_threshold"
    assert json.loads(clip.scores_json or "{}")["held_flags"] == ["blur"]
    with Session(world.engine) as db:
        heavy_rep = db.get(ValidatorReputation, heavy.address)
        light_rep = db.get(ValidatorReputation, light.address)
        assert heavy_rep is not None
        assert light_rep is not None
        assert (heavy_rep.agreements, light_rep.agreements) == (1, 0)


def test_expired_leases_are_marked_by_the_periodic_job(world: World) -> None:
    holder = Account.create().address
    world.contribute(contributor())
    view = lease_one(world, holder)
    assert consensus.run_due(world.engine, now=view.expires_at - timedelta(seconds=1)) == 0
    with Session(world.engine) as db:
        assert len(leases.active_leases(db, validator=holder, limit=5)) == 1
    consensus.run_due(world.engine, now=view.expires_at)
    with Session(world.engine) as db:
        assert leases.active_leases(db, validator=holder, limit=5, now=utcnow()) == []
