"""Consensus applied to the database (``backend.services.consensus``, ``reputation``) on
SQLite and PostgreSQL: deadlines, the embeddings served to validators, reputation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from eth_account.signers.local import LocalAccount
from sqlmodel import Session

from backend.errors import InvalidInputError, ValidatorNotFoundError
from backend.models.clips import ClipStatus
from backend.models.scoring import ClipScoring, LeaseView, ReportSubmission
from backend.services import consensus, leases, reports, reputation
from backend.services.ingest import recover_stale
from scoring.report import ClipScores, Flag, ModelIdentity
from tests.backend.scoring.conftest import MODEL, STAKES, World, contributor, sign, verdict

pytestmark = pytest.mark.chain

OTHER_MODEL = ModelIdentity(
    model="ViT-B-32",
    tag=None,
    weights_sha256=hashlib.sha256(b"other weights").hexdigest(),
    preprocessing="1-abcdefabcdef",
)


def lease_one(world: World, address: str) -> LeaseView:
    with Session(world.engine) as db:
        [view] = leases.issue_leases(db, settings=world.settings, validator=address, max_jobs=1)
    return view


def scored(world: World, account: LocalAccount, scores: ClipScores) -> str:
    """Lease one clip to ``account`` and report ``scores`` on it; the clip's id."""
    view = lease_one(world, account.address)
    body = ReportSubmission.model_validate(sign(account, view, scores, registry=world.registry))
    with Session(world.engine) as db:
        reports.submit_report(db, settings=world.settings, validator=account.address, body=body)
    return view.clip_id


def test_the_deadline_decides_on_the_reports_there_are_and_waits_without_any(
    world: World,
) -> None:
    staked = world.validators()[1]
    reported = world.contribute(contributor())
    assert scored(world, staked, verdict(0.3)) == reported
    silent = world.contribute(contributor())
    with Session(world.engine) as db:
        held = leases.issue_leases(db, settings=world.settings, validator=contributor(), max_jobs=2)
    assert sorted(view.clip_id for view in held) == sorted([reported, silent])
    with Session(world.engine) as db:
        deadlines = [db.get(ClipScoring, clip_id) for clip_id in (reported, silent)]
    last = max(row.consensus_deadline for row in deadlines if row is not None)
    assert consensus.run_due(world.engine, now=last) == 1
    clip = world.clip(reported)
    assert clip.status == ClipStatus.REJECTED
    assert '"trigger": "deadline"' in (clip.scores_json or "")
    # Without a report there is nothing to decide on: it stays leasable.
    assert world.clip(silent).status == ClipStatus.SCORING
    again = lease_one(world, contributor())
    assert again.clip_id == silent


def test_accepted_embeddings_are_paged_and_polled_in_acceptance_order(
    world_for: Callable[..., World],
) -> None:
    world = world_for(consensus_quorum=1)
    staked = world.validators()[0]
    accepted = []
    for number in range(3):
        world.contribute(contributor())
        accepted.append(scored(world, staked, verdict(0.8, embedding=bytes([number]) * 4)))
    world.contribute(contributor())
    rejected = scored(world, staked, verdict(0.8, flags=(Flag.FROZEN,), embedding=b"x"))
    world.contribute(contributor())
    elsewhere = scored(world, staked, verdict(0.8, model=OTHER_MODEL, embedding=b"y"))
    assert world.clip(rejected).status == ClipStatus.REJECTED
    weights = MODEL.weights_sha256
    with Session(world.engine) as db:
        first = consensus.embeddings_page(db, weights_sha256=weights, limit=2)
        assert [item.clip_id for item in first.items] == accepted[:2]
        assert first.has_more
        assert first.next_cursor == str(first.items[-1].seq)
        second = consensus.embeddings_page(
            db, weights_sha256=weights, limit=2, after=int(first.next_cursor)
        )
        assert [item.clip_id for item in second.items] == accepted[2:]
        assert not second.has_more
        assert second.items[0].embedding == verdict(embedding=bytes([2]) * 4).embedding
        assert second.next_cursor is not None
        cursor = int(second.next_cursor)
        idle = consensus.embeddings_page(db, weights_sha256=weights, limit=2, after=cursor)
        assert (idle.items, idle.next_cursor) == ([], second.next_cursor)
        other = consensus.embeddings_page(db, weights_sha256=OTHER_MODEL.weights_sha256, limit=10)
        assert [item.clip_id for item in other.items] == [elsewhere]
        assert other.items[0].model == "ViT-B-32"
        assert consensus.embeddings_page(db, weights_sha256="0" * 64, limit=5).next_cursor is None
    world.contribute(contributor())
    later = scored(world, staked, verdict(0.9, embedding=b"z"))
    with Session(world.engine) as db:
        polled = consensus.embeddings_page(db, weights_sha256=weights, limit=2, after=cursor)
    assert [item.clip_id for item in polled.items] == [later]


def test_reputation_counts_agreements_and_quality_deviation(world: World) -> None:
    first, second, third = world.validators()[:3]
    # Clip 1: everyone passes it, the median quality by stake is 0.7 (stakes 1000,
    # 2000, 3000). Clip 2: the second and the third (5000 of 6000) flag noise, so it is
    # rejected and the first, who passed it, disagrees.
    for flagged in (False, True):
        noise = (Flag.NOISE,) if flagged else ()
        world.contribute(contributor())
        scored(world, first, verdict(0.6))
        scored(world, second, verdict(0.8, flags=noise))
        scored(world, third, verdict(0.7, flags=noise))
    with Session(world.engine) as db:
        views = {
            v.address: reputation.validator_view(db, address=v.address)
            for v in (first, second, third)
        }
        page = reputation.list_validators(db, limit=2)
        rest = reputation.list_validators(db, limit=2, after=page.next_cursor)
        with pytest.raises(ValidatorNotFoundError):
            reputation.validator_view(db, address=contributor())
        with pytest.raises(InvalidInputError):
            reputation.validator_view(db, address="0xnot-an-address")
        unreported = reputation.validator_view(db, address=world.validators()[4].address)
    assert [views[v.address].agreements for v in (first, second, third)] == [1, 2, 2]
    assert all(view.decided_reports == 2 for view in views.values())
    assert views[first.address].agreement_rate == 0.5
    # |0.6 - 0.7|, |0.8 - 0.7| and |0.7 - 0.7| on both clips.
    assert views[first.address].mean_quality_deviation == pytest.approx(0.1)
    assert views[third.address].mean_quality_deviation == pytest.approx(0.0)
    assert views[third.address].bonded_wei == str(STAKES[2])
    assert views[third.address].is_active
    assert views[third.address].last_report_at is not None
    listed = [item.address for item in (*page.items, *rest.items)]
    assert sorted(listed) == listed
    assert set(listed) == {first.address, second.address, third.address}
    assert rest.next_cursor is None
    assert (unreported.decided_reports, unreported.agreement_rate) == (0, None)
    assert unreported.bonded_wei == str(STAKES[4])


def test_a_clip_most_stake_could_not_decode_fails_and_frees_its_content(
    world_for: Callable[..., World],
) -> None:
    world = world_for(consensus_quorum=2)
    light, heavy = world.validators()[0], world.validators()[2]
    clip_id = world.contribute(contributor())
    scored(world, light, verdict(0.9))
    failed = ClipScores.model_validate(
        {
            "outcome": "failed",
            "reasons": [{"code": "scoring.media.undecodable", "message": "No frame decodes."}],
            "pass_threshold": 0.5,
            "passed": False,
            "model": MODEL,
        }
    )
    scored(world, heavy, failed)
    clip = world.clip(clip_id)
    assert clip.status == ClipStatus.FAILED
    assert clip.reasons_json == (
        '[{"code": "scoring.media.undecodable", "message": "No frame decodes."}]'
    )
    # Housekeeping releases a failed clip's bytes; then its content may come again.
    recover_stale(world.engine, settings=world.settings, blobs=world.blobs)
    assert world.clip(clip_id).content_key is None
    assert not world.blobs.exists(clip.cid)
