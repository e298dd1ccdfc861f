"""StandardMerkleTree against the real ``@openzeppelin/merkle-tree`` (run by Node 22)."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shotbank.chain.errors import MerkleError
from shotbank.chain.merkle import (
    REWARD_LEAF_ENCODING,
    StandardMerkleTree,
    rewards_tree,
    standard_leaf_hash,
)

SCRIPT = Path(__file__).with_name("oz_merkle.mjs")
MAX_UINT = 2**256 - 1
ENCODING = list(REWARD_LEAF_ENCODING)


def run_oz(node_binary: Path, project_root: Path, request: dict[str, Any]) -> Any:
    """Run the JS reference with ``request`` on stdin and return its JSON answer."""
    done = subprocess.run(
        [str(node_binary), str(SCRIPT)],
        input=json.dumps(request).encode(),
        capture_output=True,
        cwd=project_root,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def random_address(rng: random.Random) -> str:
    return "0x" + rng.randbytes(20).hex()


def reward_cases() -> dict[str, list[list[str]]]:
    """Value sets with the edge cases: sizes 1, 2, 3, odd, 1000; duplicates; extreme amounts."""
    rng = random.Random(20261121)

    def values(n: int, amount: Any = None) -> list[list[str]]:
        return [
            [random_address(rng), str(amount(i) if amount else rng.randrange(0, 10**24))]
            for i in range(n)
        ]

    dup = values(4)
    return {
        "one_leaf": values(1),
        "two_leaves": values(2),
        "three_leaves": values(3),
        "seven_leaves": values(7),
        "duplicates": [*dup, dup[1], dup[1], dup[3]],
        "amounts_near_max": values(9, lambda i: MAX_UINT - i),
        "amounts_zero_and_one": values(5, lambda i: i % 2),
        "mixed_case_addresses": [[a.upper().replace("0X", "0x"), v] for a, v in values(6)],
        "thousand_leaves": values(1000),
    }


@pytest.mark.node
def test_roots_and_every_proof_match_openzeppelin_js(node_binary: Path, project_root: Path) -> None:
    cases = reward_cases()
    answer = run_oz(
        node_binary,
        project_root,
        {"op": "build", "cases": [{"encoding": ENCODING, "values": v} for v in cases.values()]},
    )
    for (name, values), reference in zip(cases.items(), answer, strict=True):
        tree = StandardMerkleTree.of(values, ENCODING)
        assert tree.root == reference["root"], name
        assert [tree.get_proof(i) for i in range(len(values))] == reference["proofs"], name
        assert [node for node in tree.dump()["tree"]] == reference["dump"]["tree"], name
        assert [v["treeIndex"] for v in tree.dump()["values"]] == [
            v["treeIndex"] for v in reference["dump"]["values"]
        ], name


@pytest.mark.node
def test_tree_dumped_by_openzeppelin_js_loads_and_proves(
    node_binary: Path, project_root: Path
) -> None:
    values = reward_cases()["seven_leaves"]
    (reference,) = run_oz(
        node_binary,
        project_root,
        {"op": "build", "cases": [{"encoding": ENCODING, "values": values}]},
    )
    loaded = StandardMerkleTree.load(reference["dump"])
    assert loaded.root == reference["root"]
    assert len(loaded) == len(values)
    for i, (address, amount) in enumerate(values):
        assert loaded.at(i)[1] == int(amount)
        assert loaded.get_proof(i) == reference["proofs"][i]
        assert loaded.get_proof([address, int(amount)]) == reference["proofs"][i]
        assert StandardMerkleTree.verify_proof(
            reference["root"], ENCODING, [address, amount], reference["proofs"][i]
        )


@pytest.mark.node
def test_python_dump_loads_and_verifies_in_openzeppelin_js(
    node_binary: Path, project_root: Path
) -> None:
    trees = [
        StandardMerkleTree.of(values, ENCODING)
        for values in (reward_cases()["one_leaf"], reward_cases()["amounts_near_max"])
    ]
    other = StandardMerkleTree.of(
        [["0x" + "ab" * 32, True, "shot"], ["0x" + "cd" * 32, False, "bank"]],
        ["bytes32", "bool", "string"],
    )
    trees.append(other)
    answer = run_oz(
        node_binary,
        project_root,
        {
            "op": "check",
            "cases": [
                {"dump": t.dump(), "proofs": [t.get_proof(i) for i in range(len(t))]} for t in trees
            ],
        },
    )
    for tree, reference in zip(trees, answer, strict=True):
        assert reference["root"] == tree.root
        assert all(reference["valid"])


def test_rewards_tree_is_independent_of_input_order() -> None:
    rng = random.Random(7)
    amounts = {random_address(rng): rng.randrange(1, 10**20) for _ in range(20)}
    shuffled = dict(sorted(amounts.items(), key=lambda _: rng.random()))
    assert rewards_tree(amounts).root == rewards_tree(shuffled).root
    tree = rewards_tree(amounts)
    for address, amount in amounts.items():
        proof = tree.get_proof([address, amount])
        assert tree.verify([address, amount], proof)
        assert not tree.verify([address, amount + 1], proof)


def test_single_leaf_root_is_the_leaf_and_proof_is_empty() -> None:
    tree = StandardMerkleTree.of([["0x" + "11" * 20, 5]], ENCODING)
    assert tree.get_proof(0) == []
    assert tree.root == "0x" + standard_leaf_hash(ENCODING, ["0x" + "11" * 20, 5]).hex()


def test_tampered_dump_is_rejected_on_load() -> None:
    dump = rewards_tree({"0x" + "11" * 20: 1, "0x" + "22" * 20: 2}).dump()
    dump["values"][0]["value"][1] = "3"
    with pytest.raises(MerkleError, match="expected value"):
        StandardMerkleTree.load(dump)
    dump = rewards_tree({"0x" + "11" * 20: 1, "0x" + "22" * 20: 2}).dump()
    dump["tree"][0] = "0x" + "00" * 32
    with pytest.raises(MerkleError, match="invalid"):
        StandardMerkleTree.load(dump)
    with pytest.raises(MerkleError, match="format"):
        StandardMerkleTree.load({**dump, "format": "simple-v1"})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "at least one"),
        ([["0x" + "11" * 20, -1]], "ABI-encode"),
        ([["0x" + "11" * 20, 2**256]], "ABI-encode"),
        ([["not-an-address", 1]], "not an address"),
        ([["0x" + "11" * 20]], "does not match"),
        ([["0x" + "11" * 20, "12abc"]], "not an integer"),
    ],
)
def test_invalid_values_are_refused(values: list[list[Any]], message: str) -> None:
    with pytest.raises(MerkleError, match=message):
        StandardMerkleTree.of(values, ENCODING)


def test_unknown_leaf_has_no_proof() -> None:
    tree = rewards_tree({"0x" + "11" * 20: 1})
    with pytest.raises(MerkleError, match="not in tree"):
        tree.get_proof(["0x" + "22" * 20, 1])


def test_rewards_tree_refuses_same_account_twice_in_different_case() -> None:
    address = "0x" + "ab" * 20
    with pytest.raises(MerkleError, match="twice"):
        rewards_tree({address: 1, address.upper().replace("0X", "0x"): 2})
