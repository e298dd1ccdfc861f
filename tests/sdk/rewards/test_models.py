"""Epoch inputs and results: validation, canonical order, JSON form and inputs hash."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest
from pydantic import ValidationError

from shotbank.rewards import (
    MAX_CLIPS,
    MAX_VALIDATORS,
    RULE_VERSION,
    ClipEntry,
    EpochInputs,
    EpochResult,
    RewardRule,
    RewardsError,
    ValidatorEntry,
    allocate,
    canonical_json,
    inputs_hash,
)

from .builders import address, clip, inputs, validator

A, B, C = address(0xA1), address(0xB2), address(0xC3)
V1, V2 = address(0x11), address(0x22)


def example() -> EpochInputs:
    return inputs(
        epoch=2,
        previous={A: 10**24, C: 5},
        funded_total=10**24 + 5 + 2**200,
        clips=[clip(3, B, 4000), clip(1, A, 7000), clip(2, C, 9000, accepted=False)],
        validators=[validator(V2, 3, 2), validator(V1, 3, 3)],
    )


def as_json(model: EpochInputs) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(model.model_dump_json())
    return data


def test_default_rule_is_the_documented_one() -> None:
    assert RewardRule().model_dump() == {
        "version": RULE_VERSION,
        "validator_share_bps": 1000,
        "contributor_cap_bps": 2500,
    }


def test_inputs_json_round_trip_is_exact_and_amounts_are_decimal_strings() -> None:
    original = example()
    text = original.model_dump_json()
    again = EpochInputs.model_validate_json(text)
    assert again == original
    assert again.model_dump_json() == text
    data = json.loads(text)
    assert data["funded_total"] == str(10**24 + 5 + 2**200)
    assert data["previous_cumulative"] == {A: str(10**24), C: "5"}
    assert isinstance(again.funded_total, int)
    assert original.model_dump()["funded_total"] == 10**24 + 5 + 2**200  # int in Python mode


def test_amounts_accept_int_and_decimal_string_only() -> None:
    data = as_json(example())
    data["funded_total"] = str(2**256 - 1)
    for good, value in (("12", 12), (12, 12), ("0", 0), (str(2**256 - 1), 2**256 - 1)):
        data["previous_cumulative"] = {A: good}
        assert EpochInputs.model_validate(data).previous_cumulative == {A: value}
    for bad in (
        "1_000",
        " 12",
        "+3",
        "-1",
        "0x10",
        "1e3",
        "",
        1.0,
        True,
        -1,
        2**256,
        str(2**256),
        None,
    ):
        data["previous_cumulative"] = {A: bad}
        with pytest.raises(ValidationError, match="amount"):
            EpochInputs.model_validate(data)


def test_addresses_are_normalised_to_checksum_form_and_invalid_ones_refused() -> None:
    data = as_json(example())
    data["distributor"] = data["distributor"].lower()
    data["clips"][0]["contributor"] = A.lower()
    data["validators"][0]["address"] = V1.upper().replace("0X", "0x")
    model = EpochInputs.model_validate(data)
    assert model.distributor == address(0xD1)
    assert A in {c.contributor for c in model.clips}
    assert V1 in {v.address for v in model.validators}
    wrong_checksum = "0x" + A[2:].swapcase()  # mixed case, but not A's checksum
    for bad in ("0x1234", "0x" + "zz" * 20, "a1" * 20, "0X" + A[2:], A + "00", wrong_checksum):
        broken = as_json(example())
        broken["clips"][0]["contributor"] = bad
        with pytest.raises(ValidationError, match=r"address|at most 42") as raised:
            EpochInputs.model_validate(broken)
        assert "checksum" in str(raised.value) or bad != wrong_checksum


def test_clip_and_rule_fields_are_range_checked() -> None:
    with pytest.raises(ValidationError):
        ClipEntry(clip_id="A" * 32, contributor=A, accepted=True, quality_bps=1)
    with pytest.raises(ValidationError):
        ClipEntry(clip_id="a" * 31, contributor=A, accepted=True, quality_bps=1)
    with pytest.raises(ValidationError):
        ClipEntry(clip_id="a" * 32, contributor=A, accepted=True, quality_bps=10_001)
    with pytest.raises(ValidationError):
        RewardRule(contributor_cap_bps=0)
    with pytest.raises(ValidationError):
        RewardRule(validator_share_bps=10_001)
    with pytest.raises(ValidationError):
        RewardRule.model_validate({"version": "shotbank-rewards/3"})
    with pytest.raises(ValidationError, match="extra"):
        ClipEntry.model_validate({**clip(1, A, 1), "bonus": 1})


def test_models_are_frozen() -> None:
    model = example()
    with pytest.raises(ValidationError, match="frozen"):
        model.epoch = 3  # type: ignore[misc]


def test_inputs_are_canonical_whatever_order_they_were_gathered_in() -> None:
    data = as_json(example())
    rng = random.Random(5)
    for _ in range(5):
        rng.shuffle(data["clips"])
        rng.shuffle(data["validators"])
        data["previous_cumulative"] = dict(reversed(list(data["previous_cumulative"].items())))
        model = EpochInputs.model_validate(data)
        assert model == example()
        assert inputs_hash(model) == inputs_hash(example())
    model = example()
    assert [c.clip_id for c in model.clips] == sorted(c.clip_id for c in model.clips)
    assert [v.address for v in model.validators] == [V1, V2]  # 0x1111.. < 0x2222..
    assert list(model.previous_cumulative) == [A, C]


def test_inputs_hash_is_sha256_of_sorted_compact_json_with_string_amounts() -> None:
    model = example()
    expected = json.dumps(
        json.loads(model.model_dump_json()), sort_keys=True, separators=(",", ":")
    ).encode()
    assert canonical_json(model) == expected
    assert b" " not in canonical_json(model)
    assert inputs_hash(model) == hashlib.sha256(expected).hexdigest()
    # Pinned: a change in the canonical form would make nodes disagree with old epochs.
    assert inputs_hash(model) == PINNED_HASH
    changed = as_json(model)
    changed["funded_total"] = str(int(changed["funded_total"]) + 1)
    assert inputs_hash(EpochInputs.model_validate(changed)) != inputs_hash(model)


PINNED_HASH = "1747f50daf69e5cf5668375448efdeda24d2f7b42ba2fa1cf2deadeb8ba8ca14"


def test_result_json_round_trip_is_exact_and_compares_equal() -> None:
    result = allocate(example())
    text = result.model_dump_json()
    again = EpochResult.model_validate_json(text)
    assert again == result
    assert again.model_dump_json() == text
    data = json.loads(text)
    assert data["pool"] == str(2**200)
    assert all(isinstance(v, str) for v in data["cumulative"].values())
    assert all(isinstance(v, str) for v in data["clip_amounts"].values())
    assert isinstance(data["allocations"][0]["amount"], str)


def test_funded_total_below_the_previous_total_is_refused() -> None:
    with pytest.raises(RewardsError, match="below the previous cumulative total"):
        inputs(epoch=2, previous={A: 100, B: 1}, funded_total=100, clips=[])


def test_duplicate_clip_id_is_refused() -> None:
    with pytest.raises(RewardsError, match=f"clip {1:032x} is listed twice"):
        inputs(funded_total=1, clips=[clip(1, A, 1), clip(1, B, 2)])


def test_validator_listed_twice_is_refused_even_in_another_case() -> None:
    with pytest.raises(RewardsError, match="listed twice"):
        inputs(
            funded_total=1, clips=[], validators=[validator(V1, 1, 1), validator(V1.lower(), 2, 0)]
        )


def test_one_previous_account_spelled_twice_is_refused() -> None:
    with pytest.raises(RewardsError, match="twice"):
        inputs(epoch=2, previous={A: 1, A.lower(): 2}, funded_total=10, clips=[])


def test_more_agreed_reports_than_reports_is_refused() -> None:
    with pytest.raises(RewardsError, match="3 agreed reports but only 2 reports"):
        ValidatorEntry(address=V1, reports=2, agreed_reports=3)
    with pytest.raises(RewardsError, match="agreed reports"):
        inputs(funded_total=1, clips=[], validators=[validator(V1, 2, 3)])


def test_previous_epoch_must_precede_and_come_with_the_previous_map() -> None:
    data = as_json(example())
    data["previous_epoch"] = 2
    with pytest.raises(RewardsError, match="not before epoch"):
        EpochInputs.model_validate(data)
    data["previous_epoch"] = None
    with pytest.raises(RewardsError, match="previous_epoch is None"):
        EpochInputs.model_validate(data)


def test_allocate_checks_inputs_built_without_validation() -> None:
    good = example()
    entry = ValidatorEntry.model_construct(address=V1, reports=1, agreed_reports=2)
    cases = {
        "below the previous": good.model_copy(update={"funded_total": 3}),
        "clip is listed twice": good.model_copy(update={"clips": good.clips + good.clips[:1]}),
        "validator is listed twice": good.model_copy(
            update={"validators": good.validators + good.validators[:1]}
        ),
        "agreed reports": good.model_copy(update={"validators": (entry,)}),
        "more than": good.model_copy(update={"validators": (entry,) * (MAX_VALIDATORS + 1)}),
    }
    for message, bad in cases.items():
        with pytest.raises(RewardsError, match=message):
            allocate(bad)


@pytest.mark.parametrize(
    ("field", "limit", "entry"),
    [("validators", MAX_VALIDATORS, validator(V1, 1, 1)), ("clips", MAX_CLIPS, clip(1, A, 1))],
)
def test_lists_over_their_limit_are_refused_before_their_items_are_validated(
    field: str, limit: int, entry: dict[str, Any]
) -> None:
    data = as_json(example())
    data[field] = [entry] * (limit + 1)
    with pytest.raises(ValidationError, match=f"at most {limit} entries"):
        EpochInputs.model_validate(data)
    data[field] = [entry] * 2  # within the limit the items are validated: a duplicate
    with pytest.raises(RewardsError, match="twice"):
        EpochInputs.model_validate(data)


def test_result_tree_refuses_a_root_that_its_cumulative_map_does_not_give() -> None:
    data = json.loads(allocate(example()).model_dump_json())
    data["root"] = "0x" + "ab" * 32
    with pytest.raises(RewardsError, match="the result says"):
        EpochResult.model_validate(data).tree()
