"""The shared report types: consistency rules, basis points, flag masks, the details hash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from scoring.report import (
    FLAG_BITS,
    NOT_SCORED_BPS,
    ClipScores,
    Component,
    ComponentScore,
    Flag,
    FlagResult,
    ModelIdentity,
    Outcome,
    Reason,
    flags_from_mask,
    flags_mask,
    from_bps,
    to_bps,
)

MODEL = ModelIdentity(model="shotbank-tiny", tag="synthetic-v1", weights_sha256="ab" * 32,
                      preprocessing="1-0123456789ab")  # fmt: skip


def scored(**overrides: object) -> ClipScores:
    fields: dict[str, object] = {
        "scores": {Component.SCENE: ComponentScore(value=0.9)},
        "quality": 0.9,
        "pass_threshold": 0.5,
        "passed": True,
        "model": MODEL,
    }
    fields.update(overrides)
    return ClipScores.model_validate(fields)


def test_passed_must_agree_with_quality_and_flags() -> None:
    assert scored().passed
    with pytest.raises(ValidationError, match="passed must be"):
        scored(passed=False)
    with pytest.raises(ValidationError, match="passed must be"):
        scored(quality=0.4)
    frozen = FlagResult(flag=Flag.FROZEN, reason=Reason(code="junk.frozen", message="frozen"))
    assert not scored(flags=(frozen,), passed=False).passed
    with pytest.raises(ValidationError, match="passed must be"):
        scored(flags=(frozen,))


def test_a_flag_cannot_be_listed_twice() -> None:
    black = FlagResult(flag=Flag.BLACK, reason=Reason(code="junk.black", message="black"))
    with pytest.raises(ValidationError, match="twice"):
        scored(flags=(black, black), passed=False)


def test_failed_outcome_carries_only_reasons() -> None:
    reason = Reason(code="scoring.media.undecodable", message="cannot be decoded")
    failed = ClipScores(
        outcome=Outcome.FAILED, reasons=(reason,), pass_threshold=0.5, passed=False, model=MODEL
    )
    assert failed.quality is None
    with pytest.raises(ValidationError, match="reasons only"):
        ClipScores(outcome=Outcome.FAILED, reasons=(reason,), quality=0.1, pass_threshold=0.5,
                   passed=False, model=MODEL)  # fmt: skip
    with pytest.raises(ValidationError, match="needs a reason"):
        ClipScores(outcome=Outcome.FAILED, pass_threshold=0.5, passed=False, model=MODEL)


def test_scores_and_reason_codes_are_bounded() -> None:
    with pytest.raises(ValidationError):
        ComponentScore(value=1.5)
    with pytest.raises(ValidationError):
        Reason(code="Camera Mismatch", message="x")
    with pytest.raises(ValidationError):
        Reason(code="camera.mismatch", message="x" * 501)
    with pytest.raises(ValidationError):
        scored(embedding="not base64!")


def test_details_hash_is_stable_and_covers_reasons() -> None:
    first = scored()
    again = ClipScores.model_validate_json(first.model_dump_json())
    assert again.details_hash() == first.details_hash()
    with_reason = scored(
        scores={
            Component.SCENE: ComponentScore(
                value=0.9, reasons=(Reason(code="scene.aligned", message="fits"),)
            )
        }
    )
    assert with_reason.details_hash() != first.details_hash()
    assert first.details_hash().startswith("0x")
    assert len(first.details_hash()) == 66


@given(st.floats(min_value=0.0, max_value=1.0))
def test_bps_round_trip_is_within_half_a_basis_point(value: float) -> None:
    bps = to_bps(value)
    assert 0 <= bps <= 10_000
    back = from_bps(bps)
    assert back is not None
    assert abs(back - value) <= 0.00005 + 1e-12


def test_bps_edges() -> None:
    assert to_bps(None) == NOT_SCORED_BPS
    assert from_bps(NOT_SCORED_BPS) is None
    assert to_bps(1.0) == 10_000
    assert to_bps(0.0) == 0
    with pytest.raises(ValueError, match="outside"):
        to_bps(1.0001)
    with pytest.raises(ValueError, match="basis-point"):
        from_bps(10_001)


@given(st.sets(st.sampled_from(list(Flag))))
def test_flag_mask_round_trip(flags: set[Flag]) -> None:
    assert flags_from_mask(flags_mask(flags)) == frozenset(flags)


def test_flag_bits_are_distinct_and_unknown_bits_refused() -> None:
    assert len(set(FLAG_BITS.values())) == len(FLAG_BITS) == len(Flag)
    with pytest.raises(ValueError, match="unknown bits"):
        flags_from_mask(1 << 31)
