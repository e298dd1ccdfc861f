"""The epoch's rewards tree and its precomputed proofs, against the reference implementations."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address

from shotbank.chain.merkle import REWARD_LEAF_ENCODING, StandardMerkleTree, rewards_tree
from shotbank.rewards import (
    EpochResult,
    RewardsError,
    all_proofs,
    allocate,
    build_rewards_tree,
    proofs,
)
from tests.sdk.chain.test_merkle import run_oz

from .builders import address, large_inputs

MAX_UINT = 2**256 - 1


def random_map(rng: random.Random, n: int, amount: int | None = None) -> dict[str, int]:
    return {
        str(to_checksum_address("0x" + rng.randbytes(20).hex())): amount or rng.randrange(1, 10**24)
        for _ in range(n)
    }


def test_fast_builder_gives_rewards_tree_byte_for_byte() -> None:
    rng = random.Random(20261122)
    cases = [random_map(rng, n) for n in (1, 2, 3, 4, 5, 7, 8, 9, 100, 513)]
    cases.append(random_map(rng, 9, MAX_UINT))
    cases.append(random_map(rng, 6, 1))
    # Leaves with equal hashes cannot happen (one leaf per account), but equal amounts do.
    cases.append({address(b): 5 for b in range(1, 12)})
    for cumulative in cases:
        fast, reference = build_rewards_tree(cumulative), rewards_tree(cumulative)
        assert fast.root == reference.root
        assert fast.dump() == reference.dump()
        assert len(fast) == len(cumulative)
        fast.validate()


def test_fast_builder_refuses_what_is_not_a_rewards_map() -> None:
    a = address(0xA1)
    bad_maps: list[tuple[dict[str, int], str]] = [
        ({}, "at least one"),
        ({a: 0}, "not a rewards leaf"),
        ({a: MAX_UINT + 1}, "not a rewards leaf"),
        ({a[2:] + "00": 1}, "not a rewards leaf"),
        ({a: 1, a.lower(): 2}, "appears twice"),
    ]
    for cumulative, message in bad_maps:
        with pytest.raises(RewardsError, match=message):
            build_rewards_tree(cumulative)


def test_all_proofs_equal_get_proof_for_every_account() -> None:
    rng = random.Random(7)
    for n in (1, 2, 3, 6, 257):
        tree = rewards_tree(random_map(rng, n))
        expected = {tree.at(i)[0]: tree.get_proof(i) for i in range(len(tree))}
        assert all_proofs(tree) == expected


def test_all_proofs_refuses_a_tree_of_other_leaves() -> None:
    tree = StandardMerkleTree.of([["0x" + "ab" * 32]], ["bytes32"])
    with pytest.raises(RewardsError, match="not a rewards tree"):
        all_proofs(tree)


def test_proofs_of_a_published_result_equal_those_computed_at_close() -> None:
    result = allocate(
        large_inputs(random.Random(3), clips=300, contributors=60, previous_accounts=200)
    )
    published = EpochResult.model_validate_json(result.model_dump_json())
    at_close = proofs(result)
    assert proofs(published) == at_close
    tree = published.tree()
    assert tree is not None
    assert tree.root == result.root
    assert len(at_close) == len(result.cumulative)


def test_epoch_root_is_the_reference_root_and_every_proof_verifies() -> None:
    inputs = large_inputs(
        random.Random(11), clips=2000, contributors=400, validators=20, previous_accounts=1500
    )
    result = allocate(inputs)
    assert result.root is not None
    assert result.root == rewards_tree(result.cumulative).root
    for who, proof in proofs(result).items():
        assert StandardMerkleTree.verify_proof(
            result.root, REWARD_LEAF_ENCODING, [who, result.cumulative[who]], proof
        )


@pytest.mark.node
def test_epoch_root_and_proofs_match_openzeppelin_js(node_binary: Path, project_root: Path) -> None:
    result = allocate(
        large_inputs(
            random.Random(17), clips=400, contributors=80, validators=5, previous_accounts=150
        )
    )
    values = [[who, str(amount)] for who, amount in result.cumulative.items()]
    (reference,) = run_oz(
        node_binary,
        project_root,
        {"op": "build", "cases": [{"encoding": list(REWARD_LEAF_ENCODING), "values": values}]},
    )
    assert reference["root"] == result.root
    ours = proofs(result)
    assert [ours[who] for who, _ in values] == reference["proofs"]
    assert json.loads(json.dumps(build_rewards_tree(result.cumulative).dump())) == reference["dump"]
