"""Rule ``shotbank-rewards/2``: dataset sales go to the sold versions' contributors."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shotbank.rewards import (
    MAX_SALE_VERSIONS,
    MAX_SALES,
    MAX_VERSION_CONTRIBUTORS,
    RULE_VERSION,
    EpochInputs,
    EpochResult,
    RewardsError,
    allocate,
    canonical_json,
    inputs_hash,
)

from .builders import MARKET, address, clip, inputs, sale, validator, version_id
from .test_allocation_properties import PEOPLE, check_invariants, epochs

A, B, C, D = (address(b) for b in (0xA1, 0xB2, 0xC3, 0xD4))
V1 = address(0x11)


def parts(result: EpochResult) -> dict[str, tuple[int, int, int]]:
    """address -> (contributor_amount, validator_amount, sales_amount)."""
    return {
        a.address: (a.contributor_amount, a.validator_amount, a.sales_amount)
        for a in result.allocations
    }


def test_the_backend_writes_rule_v2() -> None:
    assert RULE_VERSION == "shotbank-rewards/2"


def test_sales_are_shared_pro_rata_to_samples_and_the_rest_is_split_as_in_rule_v1() -> None:
    result = allocate(
        inputs(
            funded_total=10_000,
            share_bps=1000,
            cap_bps=10_000,
            clips=[clip(1, D, 5000), clip(2, A, 5000)],
            validators=[validator(V1, 1, 1)],
            sales=[sale(1, 1, 1001), sale(2, 1, 500), sale(3, 2, 1000)],
            versions={version_id(1): {A: 3, B: 1}, version_id(2): {C: 2, A: 1}},
        )
    )
    # Version 1 has 4 samples (A 3, B 1), version 2 has 3 (C 2, A 1).
    # Version 1 sold 1001 + 500 = 1501: A = 1501 * 3 // 4 = 4503 // 4 = 1125,
    # B = 1501 * 1 // 4 = 375 (1 left); version 2 sold 1000: C = 1000 * 2 // 3 = 666,
    # A = 1000 // 3 = 333 (1 left).
    # sales_pool = 2501, sales_allocated = 1125 + 375 + 666 + 333 = 2499.
    assert (result.sales_pool, result.sales_allocated) == (2501, 2499)
    # general = 10000 - 2499 = 7501 (the 2 left by rounding are in it);
    # contributor_pool = 7501 * 9000 // 10000 = 6750, validator_pool = 7501 * 1000 // 10000 = 750.
    assert (result.pool, result.contributor_pool, result.validator_pool) == (10_000, 6750, 750)
    # D and A weigh 5000 each: 6750 * 5000 // 10000 = 3375 each; V1 agreed alone: 750.
    assert parts(result) == {
        V1: (0, 750, 0),
        A: (3375, 0, 1125 + 333),
        B: (0, 0, 375),
        C: (0, 0, 666),
        D: (3375, 0, 0),
    }
    # allocated = 3375 + 1458 + 375 + 666 + 3375 + 750 = 9999; carry = 1.
    assert (result.allocated, result.carry) == (9999, 1)
    assert {a.address: a.amount for a in result.allocations}[A] == 3375 + 1458


def test_the_sales_of_one_version_are_added_up_before_they_are_shared() -> None:
    result = allocate(
        inputs(
            funded_total=100,
            clips=[],
            sales=[sale(1, 1, 1), sale(2, 1, 1), sale(3, 1, 1)],
            versions={version_id(1): {A: 1, B: 2}},
        )
    )
    # 3 * 1 // 3 = 1 and 3 * 2 // 3 = 2: nothing lost, where sharing each sale of 1
    # alone would have floored every share to 0.
    assert parts(result) == {A: (0, 0, 1), B: (0, 0, 2)}
    assert (result.sales_pool, result.sales_allocated) == (3, 3)


def test_sales_are_not_capped_because_the_contributors_own_the_samples() -> None:
    result = allocate(
        inputs(
            funded_total=1000,
            cap_bps=1,
            clips=[clip(1, B, 10_000)],
            sales=[sale(1, 1, 900)],
            versions={version_id(1): {A: 5}},
        )
    )
    # The sale's 900 all go to A; the general pool is 100: B gets 100 * 9000 // 10000 = 90,
    # capped at 90 * 1 // 10000 = 0.
    assert parts(result) == {A: (0, 0, 900)}
    assert (result.sales_allocated, result.contributor_pool, result.carry) == (900, 90, 100)


def test_an_epoch_of_sales_only_allocates_them_and_carries_the_rest() -> None:
    result = allocate(
        inputs(
            epoch=2,
            previous={C: 40},
            funded_total=40 + 100,
            clips=[],
            sales=[sale(1, 1, 60)],
            versions={version_id(1): {A: 1, B: 2}},
        )
    )
    # 60 * 1 // 3 = 20, 60 * 2 // 3 = 40; nothing accepted, nobody agreed: 40 carried.
    assert parts(result) == {A: (0, 0, 20), B: (0, 0, 40)}
    assert (result.allocated, result.carry, result.cumulative_total) == (60, 40, 100)
    assert result.cumulative == {A: 20, B: 40, C: 40}


def test_sales_above_the_pool_are_refused() -> None:
    with pytest.raises(RewardsError, match="more than its pool"):
        inputs(
            epoch=2,
            previous={C: 50},
            funded_total=100,
            clips=[],
            sales=[sale(1, 1, 51)],
            versions={version_id(1): {A: 1}},
        )


@pytest.mark.parametrize(
    ("sales", "versions", "message"),
    [
        ([sale(1, 1, 5)], {}, "is not in versions"),
        ([sale(1, 1, 5)], {version_id(1): {A: 1}, version_id(2): {B: 1}}, "was not sold"),
        ([sale(1, 1, 5), sale(1, 1, 6, block=60)], {version_id(1): {A: 1}}, "listed twice"),
        ([sale(1, 1, 5, block=101)], {version_id(1): {A: 1}}, "after the funding block"),
        ([sale(1, 1, 5)], {version_id(1): {}}, "no contributors"),
    ],
)
def test_inconsistent_sales_and_versions_are_refused(
    sales: list[dict[str, Any]], versions: dict[str, dict[str, int]], message: str
) -> None:
    with pytest.raises(RewardsError, match=message):
        inputs(funded_total=1000, clips=[], sales=sales, versions=versions)


def test_a_contributor_spelled_twice_in_a_version_is_refused() -> None:
    with pytest.raises(RewardsError, match="twice"):
        inputs(
            funded_total=1000,
            clips=[],
            sales=[sale(1, 1, 5)],
            versions={version_id(1): {A: 1, A.lower(): 2}},
        )


def test_sales_need_a_market() -> None:
    with pytest.raises(RewardsError, match="no market"):
        EpochInputs.model_validate(
            inputs(
                funded_total=1000, clips=[], sales=[sale(1, 1, 5)], versions={version_id(1): {A: 1}}
            ).model_dump()
            | {"market": None}
        )


def test_rule_v1_inputs_carry_no_sales() -> None:
    with pytest.raises(RewardsError, match="no market, sales"):
        inputs(
            funded_total=1000,
            clips=[],
            sales=[sale(1, 1, 5)],
            versions={version_id(1): {A: 1}},
            rule="shotbank-rewards/1",
        )


def test_malformed_sales_fields_are_refused() -> None:
    for bad in (
        {"tx_hash": "0x" + "AB" * 32},
        {"version_id": "0x" + "1" * 63},
        {"amount": -1},
        {"log_index": -1},
    ):
        with pytest.raises(ValidationError):
            inputs(
                funded_total=1000,
                clips=[],
                sales=[sale(1, 1, 5) | bad],
                versions={version_id(1): {A: 1}},
            )
    with pytest.raises(ValidationError):
        inputs(funded_total=1000, clips=[], sales=[sale(1, 1, 5)], versions={version_id(1): {A: 0}})


def test_sales_and_versions_over_their_limits_are_refused_before_validation() -> None:
    base = inputs(funded_total=1, clips=[]).model_dump() | {
        "rule": {"version": RULE_VERSION, "validator_share_bps": 1000, "contributor_cap_bps": 1}
    }
    with pytest.raises(ValidationError, match=f"at most {MAX_SALES}"):
        EpochInputs.model_validate(base | {"sales": [None] * (MAX_SALES + 1)})
    with pytest.raises(ValidationError, match=f"at most {MAX_SALE_VERSIONS}"):
        EpochInputs.model_validate(base | {"versions": {str(i): {} for i in range(10_001)}})
    many = {f"0x{i:040x}": 1 for i in range(MAX_VERSION_CONTRIBUTORS // 2 + 1)}
    with pytest.raises(ValidationError, match=f"at most {MAX_VERSION_CONTRIBUTORS}"):
        EpochInputs.model_validate(base | {"versions": {"a": many, "b": many}})


def test_v2_inputs_are_canonical_and_their_json_lists_sales_and_versions() -> None:
    sales = [sale(3, 2, 30, block=40), sale(1, 1, 10, block=60), sale(2, 1, 20, block=40)]
    versions = {version_id(2): {B: 1, A: 2}, version_id(1): {C: 1}}
    one = inputs(funded_total=1000, clips=[], sales=sales, versions=versions)
    other = inputs(
        funded_total=1000,
        clips=[],
        sales=list(reversed(sales)),
        versions={k: dict(reversed(v.items())) for k, v in reversed(versions.items())},
    )
    assert canonical_json(one) == canonical_json(other)
    assert inputs_hash(one) == inputs_hash(other)
    document = json.loads(canonical_json(one))
    # Chain order: block, then log index.
    assert [s["tx_hash"][-1] for s in document["sales"]] == ["2", "3", "1"]
    assert document["sales"][0]["amount"] == "20"
    assert list(document["versions"]) == [version_id(1), version_id(2)]
    assert list(document["versions"][version_id(2)]) == [A, B]
    assert EpochInputs.model_validate_json(canonical_json(one)) == one


def test_v2_result_json_round_trips_and_v1_results_without_sales_fields_still_parse() -> None:
    result = allocate(
        inputs(funded_total=100, clips=[], sales=[sale(1, 1, 9)], versions={version_id(1): {A: 1}})
    )
    again = EpochResult.model_validate_json(result.model_dump_json())
    assert again == result
    assert again.tree() is not None
    old = json.loads(result.model_dump_json())
    for name in ("sales_pool", "sales_allocated"):
        del old[name]
    for allocation in old["allocations"]:
        del allocation["sales_amount"]
    parsed = EpochResult.model_validate(old)
    assert (parsed.sales_pool, parsed.allocations[0].sales_amount) == (0, 0)


# --- properties ------------------------------------------------------------------------------

VERSIONS = [version_id(n) for n in range(1, 5)]


@st.composite
def sale_epochs(draw: st.DrawFn) -> EpochInputs:
    base = draw(epochs())
    pool = base.funded_total - base.previous_cumulative_total
    sold = draw(st.lists(st.sampled_from(VERSIONS), unique=True, max_size=len(VERSIONS)))
    versions = {
        version: draw(
            st.dictionaries(
                st.sampled_from(PEOPLE), st.integers(1, 1000), min_size=1, max_size=len(PEOPLE)
            )
        )
        for version in sold
    }
    sales: list[dict[str, Any]] = []
    budget = pool
    for number, version in enumerate(
        draw(st.lists(st.sampled_from(sold), max_size=12)) if sold else []
    ):
        amount = draw(st.integers(0, budget))
        budget -= amount
        sales.append(sale(number, int(version, 16), amount, block=draw(st.integers(0, 1))))
    used = {s["version_id"] for s in sales}
    data = base.model_dump(mode="json") | {
        "rule": base.rule.model_dump() | {"version": RULE_VERSION},
        "market": MARKET,
        "sales": sales,
        "versions": {v: c for v, c in versions.items() if v in used},
    }
    return EpochInputs.model_validate(data)


def check_invariants_v2(inputs: EpochInputs) -> None:
    result = allocate(inputs)
    check_invariants(inputs, result)
    assert result.sales_pool == sum(s.amount for s in inputs.sales)
    assert result.sales_allocated <= result.sales_pool
    # Each sold version loses less than one unit per contributor to rounding.
    dust = sum(len(counts) - 1 for counts in inputs.versions.values())
    assert result.sales_pool - result.sales_allocated <= dust
    assert sum(a.sales_amount for a in result.allocations) == result.sales_allocated
    general = result.pool - result.sales_allocated
    assert result.contributor_pool + result.validator_pool <= general
    # Nobody outside the sold versions gets a sales amount.
    owners = {who for counts in inputs.versions.values() for who in counts}
    assert all(a.address in owners for a in result.allocations if a.sales_amount)


@settings(max_examples=200, deadline=None)
@given(sale_epochs())
def test_every_v2_allocation_keeps_the_invariants(inputs: EpochInputs) -> None:
    check_invariants_v2(inputs)


@settings(max_examples=100, deadline=None)
@given(sale_epochs(), st.randoms(use_true_random=False))
def test_v2_allocation_does_not_depend_on_the_order_of_sales_or_versions(
    inputs: EpochInputs, rng: random.Random
) -> None:
    expected = allocate(inputs)
    sales = list(inputs.sales)
    rng.shuffle(sales)
    versions = list(inputs.versions.items())
    rng.shuffle(versions)
    shuffled = inputs.model_copy(update={"sales": tuple(sales), "versions": dict(versions)})
    assert allocate(shuffled) == expected


@settings(max_examples=100, deadline=None)
@given(epochs())
def test_v2_without_sales_allocates_exactly_what_v1_does(inputs: EpochInputs) -> None:
    v2 = inputs.model_copy(
        update={"rule": inputs.rule.model_copy(update={"version": RULE_VERSION})}
    )
    assert allocate(v2) == allocate(inputs)
    assert json.loads(canonical_json(v2))["sales"] == []
    assert "sales" not in json.loads(canonical_json(inputs))
    assert "market" not in json.loads(canonical_json(inputs))
