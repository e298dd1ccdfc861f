"""The consensus rule on its own (``backend.services.consensus.decide``): hand-computed
cases and properties that must hold for any reports."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.models.clips import ClipStatus
from backend.models.scoring import DecisionTrigger
from backend.services.consensus import RULE, Verdict, WeightedReport, decide, weighted_median
from scoring.report import ClipScores, Component, Flag
from tests.backend.scoring.conftest import SHOT, failed_verdict, reason, verdict

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def reports(*pairs: tuple[int, ClipScores]) -> list[WeightedReport]:
    """Weighted reports r0, r1, ... of these (weight in SHOT, verdict) pairs."""
    return [
        WeightedReport(report_id=f"r{i}", validator=f"v{i}", weight=w * SHOT, scores=s)
        for i, (w, s) in enumerate(pairs)
    ]


# --- the weighted median ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([(0.2, 1), (0.5, 1), (0.9, 1)], 0.5),
        # Lower median: the first value reaching half of the weight.
        ([(0.2, 1), (0.9, 1)], 0.2),
        ([(0.2, 1), (0.5, 1), (0.9, 5)], 0.9),
        ([(0.9, 3), (0.1, 1), (0.5, 2)], 0.5),
        ([(0.7, 10**30), (0.1, 10**30 - 1)], 0.7),
        # No weight anywhere: every value counts once.
        ([(0.3, 0), (0.1, 0), (0.6, 0)], 0.3),
    ],
)
def test_weighted_median_hand_computed(pairs: list[tuple[float, int]], expected: float) -> None:
    assert weighted_median(pairs) == expected


def test_weighted_median_refuses_nothing_and_negative_weights() -> None:
    with pytest.raises(ValueError, match="nothing"):
        weighted_median([])
    with pytest.raises(ValueError, match="negative"):
        weighted_median([(0.5, -1), (0.4, 3)])


values = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
weights = st.integers(min_value=0, max_value=10**24)


@given(st.lists(st.tuples(values, weights), min_size=1, max_size=12))
def test_weighted_median_is_one_of_the_values_within_their_range(
    pairs: list[tuple[float, int]],
) -> None:
    median = weighted_median(pairs)
    assert min(v for v, _ in pairs) <= median <= max(v for v, _ in pairs)
    assert median in [v for v, _ in pairs]


@given(st.lists(st.tuples(values, weights), min_size=1, max_size=12), st.randoms())
def test_weighted_median_ignores_the_order(
    pairs: list[tuple[float, int]], rng: random.Random
) -> None:
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    assert weighted_median(shuffled) == weighted_median(pairs)


# --- decisions, by hand -------------------------------------------------------------------------


def test_the_median_validator_by_stake_decides_acceptance() -> None:
    # Margins -0.1 (1000), +0.1 (2000), +0.2 (3000): half of 6000 is reached at +0.1.
    verdict_ = decide(reports((1000, verdict(0.4)), (2000, verdict(0.6)), (3000, verdict(0.7))))
    assert verdict_.status == ClipStatus.ACCEPTED
    assert verdict_.quality == 0.6
    assert verdict_.margin == pytest.approx(0.1)
    assert verdict_.reasons == ()
    assert verdict_.total_weight == 6000 * SHOT


def test_a_heavy_low_score_outweighs_two_light_passes() -> None:
    verdict_ = decide(reports((1000, verdict(0.9)), (1000, verdict(0.8)), (3000, verdict(0.3))))
    assert verdict_.status == ClipStatus.REJECTED
    assert verdict_.quality == 0.3
    assert [r.code for r in verdict_.reasons] == ["quality.below_threshold"]
    assert "0.30 is below the pass threshold 0.50" in verdict_.reasons[0].message


def test_each_threshold_is_the_reports_own_model_threshold() -> None:
    # The same quality passes a lenient model and fails a strict one; the median by
    # stake (the lenient 3000) decides.
    verdict_ = decide(
        reports((1000, verdict(0.6, threshold=0.7)), (3000, verdict(0.6, threshold=0.4)))
    )
    assert verdict_.status == ClipStatus.ACCEPTED
    assert verdict_.margin == pytest.approx(0.2)


def test_a_flag_needs_more_than_half_of_the_stake() -> None:
    half = decide(
        reports((3000, verdict(flags=(Flag.BLACK,))), (2000, verdict()), (1000, verdict()))
    )
    assert half.held == frozenset()
    assert half.status == ClipStatus.ACCEPTED
    assert half.flag_shares == {Flag.BLACK: 0.5}
    more = decide(
        reports(
            (3000, verdict(flags=(Flag.BLACK,))),
            (2000, verdict()),
            (1000, verdict(flags=(Flag.BLACK, Flag.FROZEN))),
        )
    )
    assert more.held == frozenset({Flag.BLACK})
    assert more.status == ClipStatus.REJECTED
    assert more.flag_shares == {Flag.BLACK: 4000 / 6000, Flag.FROZEN: 1000 / 6000}
    assert [(r.code, r.message) for r in more.reasons] == [("junk.black", "the clip is black")]


def test_failed_by_a_stake_majority_carries_their_reasons() -> None:
    verdict_ = decide(
        reports(
            (1000, failed_verdict("scoring.media.truncated")),
            (2000, verdict()),
            (3000, failed_verdict("scoring.media.undecodable")),
        )
    )
    assert verdict_.status == ClipStatus.FAILED
    # Heaviest first, each code once.
    assert [r.code for r in verdict_.reasons] == [
        "scoring.media.undecodable",
        "scoring.media.truncated",
    ]
    assert verdict_.quality is None


def test_half_the_stake_failing_is_no_failure_and_the_scored_half_decides() -> None:
    verdict_ = decide(reports((3000, failed_verdict()), (1000, verdict(0.2)), (2000, verdict())))
    # Over the scored reports only: qualities 0.2 (1000) and 0.8 (2000) of 3000.
    assert verdict_.status == ClipStatus.ACCEPTED
    assert verdict_.quality == 0.8
    assert verdict_.margin == pytest.approx(0.3)


def test_reasons_of_a_low_component_come_from_the_report_holding_the_median() -> None:
    mismatch = reason(
        "camera.direction_mismatch", "camera movement declared pan-left, measured pan-right"
    )
    verdict_ = decide(
        reports(
            (1000, verdict(0.4, camera=0.1, camera_reasons=(reason("camera.other", "x"),))),
            (3000, verdict(0.45, camera=0.2, camera_reasons=(mismatch,))),
            (1000, verdict(0.6, camera=0.9)),
        )
    )
    assert verdict_.status == ClipStatus.REJECTED
    assert verdict_.components[Component.CAMERA] == 0.2
    codes = [(r.code, r.field, r.message) for r in verdict_.reasons]
    assert codes[0] == ("camera.direction_mismatch", "camera", mismatch.message)
    assert codes[-1][0] == "quality.below_threshold"
    assert all(code != "camera.other" for code, _, _ in codes)


def test_unscored_components_are_left_out_of_their_median() -> None:
    verdict_ = decide(
        reports(
            (3000, verdict(audio=None, lighting=None)),
            (1000, verdict(audio=0.3, lighting=None)),
            (1000, verdict(audio=0.9, lighting=None)),
        )
    )
    assert verdict_.components[Component.AUDIO] == 0.3
    assert verdict_.components[Component.LIGHTING] is None


def test_agreement_and_deviation_of_each_report() -> None:
    rs = reports(
        (1000, verdict(0.4)), (2000, verdict(0.6)), (3000, verdict(0.7, flags=(Flag.BLUR,)))
    )
    verdict_ = decide(rs)
    assert verdict_.status == ClipStatus.ACCEPTED
    assert [verdict_.agrees(r.scores) for r in rs] == [False, True, False]
    assert verdict_.deviation(rs[0].scores) == pytest.approx(0.2)
    assert verdict_.deviation(failed_verdict()) is None
    failed = decide(reports((1000, failed_verdict()), (1000, failed_verdict()), (1, verdict())))
    assert failed.agrees(failed_verdict())
    assert not failed.agrees(verdict())


def test_the_stored_document_names_rule_numbers_and_flag_shares() -> None:
    verdict_ = decide(reports((1000, verdict(0.7, flags=(Flag.NOISE,))), (3000, verdict(0.6))))
    document = verdict_.document(decided_at=NOW, trigger=DecisionTrigger.QUORUM)
    assert document == {
        "rule": RULE,
        "decision": "accepted",
        "trigger": "quorum",
        "components": {"scene": 0.8, "lighting": 0.8, "camera": 0.8, "audio": 0.8},
        "quality": 0.6,
        "pass_threshold": 0.5,
        "margin": pytest.approx(0.1),
        "flags": {"noise": 0.25},
        "held_flags": [],
        "reports": 2,
        "stake_weight": str(4000 * SHOT),
        "decided_at": NOW.isoformat(),
    }


def test_no_reports_cannot_be_decided() -> None:
    with pytest.raises(ValueError, match="without reports"):
        decide([])


# --- properties -----------------------------------------------------------------------------

scores_ = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def scored_verdicts(draw: st.DrawFn) -> ClipScores:
    quality = draw(scores_)
    threshold = draw(scores_)
    flags = tuple(draw(st.sets(st.sampled_from(list(Flag)), max_size=3)))
    return verdict(
        quality,
        threshold=threshold,
        scene=draw(st.none() | scores_),
        lighting=draw(st.none() | scores_),
        camera=draw(st.none() | scores_),
        audio=draw(st.none() | scores_),
        flags=flags,
    )


any_verdicts = st.one_of(scored_verdicts(), scored_verdicts(), st.just(failed_verdict()))
weighted = st.lists(
    st.tuples(st.integers(min_value=1, max_value=10**6), any_verdicts), min_size=1, max_size=8
)


def _everything(verdict_: Verdict) -> object:
    return (verdict_.document(decided_at=NOW, trigger=DecisionTrigger.QUORUM), verdict_.reasons)


@settings(max_examples=60, deadline=None)
@given(weighted, st.randoms())
def test_decisions_ignore_the_order_reports_arrived_in(
    pairs: list[tuple[int, ClipScores]], rng: random.Random
) -> None:
    rs = reports(*pairs)
    shuffled = list(rs)
    rng.shuffle(shuffled)
    assert _everything(decide(shuffled)) == _everything(decide(rs))


@settings(max_examples=60, deadline=None)
@given(weighted)
def test_every_consensus_value_lies_within_the_reports_values(
    pairs: list[tuple[int, ClipScores]],
) -> None:
    verdict_ = decide(reports(*pairs))
    if verdict_.status == ClipStatus.FAILED:
        return
    scored = [s for _, s in pairs if s.quality is not None]
    qualities = [s.quality for s in scored if s.quality is not None]
    assert verdict_.quality is not None
    assert min(qualities) <= verdict_.quality <= max(qualities)
    for component, value in verdict_.components.items():
        given_values = [v for s in scored if (v := s.value(component)) is not None]
        if value is None:
            assert given_values == []
        else:
            assert min(given_values) <= value <= max(given_values)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 1000), scored_verdicts()), min_size=0, max_size=5),
    st.lists(st.integers(1, 1000), min_size=1, max_size=5),
    st.sampled_from(list(Flag)),
    st.booleans(),
)
def test_a_block_holding_most_of_the_stake_decides_a_flag(
    others: list[tuple[int, ClipScores]],
    block: list[int],
    flag: Flag,
    raise_it: bool,
) -> None:
    # The block outweighs everyone else together, and all of it does the same.
    scale = sum(w for w, _ in others) + 1
    block_verdicts = [(w * scale, verdict(0.8, flags=(flag,) if raise_it else ())) for w in block]
    verdict_ = decide(reports(*others, *block_verdicts))
    assert (flag in verdict_.held) is raise_it
    if raise_it:
        assert verdict_.status == ClipStatus.REJECTED
        assert f"junk.{flag.value}" in [r.code for r in verdict_.reasons]
