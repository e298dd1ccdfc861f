"""Invariants of the allocation rule on generated epochs (hypothesis)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shotbank.chain.merkle import (
    REWARD_LEAF_ENCODING,
    StandardMerkleTree,
    process_proof,
    rewards_tree,
    standard_leaf_hash,
)
from shotbank.rewards import BPS, EpochInputs, EpochResult, allocate, proofs, water_fill

from .builders import DISTRIBUTOR, address

PEOPLE = [address(b) for b in (0x01, 0x10, 0x2F, 0x5A, 0x77, 0x9C, 0xC0, 0xEE)]
#: Few distinct weights so that ties (broken by address) happen often.
QUALITIES = st.one_of(st.integers(0, BPS), st.sampled_from([0, 1, 2500, 5000, BPS]))
AMOUNTS = st.one_of(st.integers(0, 10**6), st.integers(0, 10**30), st.just(2**200))


@st.composite
def epochs(draw: st.DrawFn) -> EpochInputs:
    previous = draw(st.dictionaries(st.sampled_from(PEOPLE), AMOUNTS, max_size=len(PEOPLE)))
    clips = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "contributor": st.sampled_from(PEOPLE),
                    "accepted": st.booleans(),
                    "quality_bps": QUALITIES,
                }
            ),
            max_size=40,
        )
    )
    validators = draw(
        st.lists(
            st.tuples(st.integers(0, 50), st.integers(0, 50)),
            max_size=len(PEOPLE),
        )
    )
    data: dict[str, Any] = {
        "chain_id": 31337,
        "distributor": DISTRIBUTOR,
        "epoch": 9,
        "rule": {
            "version": "shotbank-rewards/1",
            "validator_share_bps": draw(st.one_of(st.integers(0, BPS), st.just(1000))),
            "contributor_cap_bps": draw(st.one_of(st.integers(1, BPS), st.just(2500))),
        },
        "funding_block": 1,
        "funded_total": sum(previous.values()) + draw(AMOUNTS),
        "previous_epoch": 8 if previous else None,
        "previous_cumulative": previous,
        "clips": [{"clip_id": f"{i:032x}", **c} for i, c in enumerate(clips)],
        "validators": [
            {"address": PEOPLE[i], "reports": max(r, a), "agreed_reports": min(r, a)}
            for i, (r, a) in enumerate(validators)
        ],
    }
    return EpochInputs.model_validate(data)


def check_invariants(inputs: EpochInputs, result: EpochResult) -> None:
    previous_total = sum(inputs.previous_cumulative.values())
    assert result.pool == inputs.funded_total - previous_total
    assert result.allocated + result.carry == result.pool
    assert result.carry >= 0
    assert result.contributor_pool + result.validator_pool <= result.pool
    cap = result.contributor_pool * inputs.rule.contributor_cap_bps // BPS
    by_address = {a.address: a for a in result.allocations}
    for allocation in result.allocations:
        assert allocation.contributor_amount <= cap
        assert (
            allocation.amount
            == allocation.contributor_amount + allocation.validator_amount + allocation.sales_amount
            > 0
        )
        assert (
            allocation.cumulative
            == inputs.previous_cumulative.get(allocation.address, 0) + allocation.amount
        )
    assert sum(a.contributor_amount for a in result.allocations) <= result.contributor_pool
    assert sum(a.validator_amount for a in result.allocations) <= result.validator_pool
    assert result.allocated == sum(a.amount for a in result.allocations)
    # Each contributor's amount is the sum of their clips' amounts; rejected clips earn 0.
    per_contributor: dict[str, int] = {}
    for clip in inputs.clips:
        amount = result.clip_amounts[clip.clip_id]
        assert clip.accepted or amount == 0
        per_contributor[clip.contributor] = per_contributor.get(clip.contributor, 0) + amount
    for who, total in per_contributor.items():
        assert total == (by_address[who].contributor_amount if who in by_address else 0)
    assert set(result.clip_amounts) == {c.clip_id for c in inputs.clips}
    # Cumulative: every account, earlier amounts kept, zeros left out of the tree.
    assert (
        result.cumulative_total
        == previous_total + result.allocated
        == sum(result.cumulative.values())
    )
    assert result.cumulative_total <= inputs.funded_total
    for who in set(inputs.previous_cumulative) | set(by_address):
        expected = inputs.previous_cumulative.get(who, 0) + (
            by_address[who].amount if who in by_address else 0
        )
        assert result.cumulative.get(who, 0) == expected
    assert 0 not in result.cumulative.values()
    # Root: present exactly when something was allocated, the reference tree's, every proof valid.
    assert (result.root is None) == (result.allocated == 0)
    if result.root is not None:
        assert result.root == rewards_tree(result.cumulative).root
        all_proofs = proofs(result)
        assert set(all_proofs) == set(result.cumulative)
        root = bytes.fromhex(result.root[2:])
        for who, proof in all_proofs.items():
            value = [who, result.cumulative[who]]
            assert StandardMerkleTree.verify_proof(result.root, REWARD_LEAF_ENCODING, value, proof)
            assert process_proof(standard_leaf_hash(REWARD_LEAF_ENCODING, value), proof) == root


@settings(max_examples=300, deadline=None)
@given(epochs())
def test_every_allocation_keeps_the_invariants(inputs: EpochInputs) -> None:
    check_invariants(inputs, allocate(inputs))


@settings(max_examples=100, deadline=None)
@given(epochs(), st.randoms(use_true_random=False))
def test_allocation_does_not_depend_on_the_order_of_clips_validators_or_accounts(
    inputs: EpochInputs, rng: random.Random
) -> None:
    expected = allocate(inputs)
    clips, validators = list(inputs.clips), list(inputs.validators)
    previous = list(inputs.previous_cumulative.items())
    rng.shuffle(clips)
    rng.shuffle(validators)
    rng.shuffle(previous)
    # model_construct keeps the shuffled order (validation would sort it back): this
    # checks that allocate itself is order-independent, not only the canonical model.
    shuffled = inputs.model_copy(
        update={
            "clips": tuple(clips),
            "validators": tuple(validators),
            "previous_cumulative": dict(previous),
        }
    )
    result = allocate(shuffled)
    assert result == expected
    assert result.model_dump_json() == expected.model_dump_json()


WEIGHTS = st.dictionaries(st.sampled_from(PEOPLE), st.integers(0, 10**6), max_size=len(PEOPLE))


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 10**30), WEIGHTS, st.integers(1, BPS))
def test_water_filling_caps_shares_and_wastes_only_rounding_dust(
    pool: int, weights: dict[str, int], cap_bps: int
) -> None:
    cap = pool * cap_bps // BPS
    budgets = water_fill(pool, weights, cap)
    assert set(budgets) == set(weights)
    assert sum(budgets.values()) <= pool
    assert all(0 <= b <= cap for b in budgets.values())
    # Heavier never gets less: the cap flattens the top, it does not reorder.
    for a in weights:
        for b in weights:
            if weights[a] > weights[b]:
                assert budgets[a] >= budgets[b]
    positive = [a for a, w in weights.items() if w > 0]
    if positive and any(budgets[a] < cap for a in positive):
        # Someone is below the cap, so the excess went to them: at most 1 per account lost.
        assert pool - sum(budgets.values()) < len(weights)
    if positive and all(pool * w <= cap * sum(weights.values()) for w in weights.values()):
        # Nobody above the cap: plain pro rata.
        total = sum(weights.values())
        assert budgets == {a: pool * w // total for a, w in weights.items()}
