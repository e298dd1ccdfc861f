"""Epoch close at scale: allocation, rewards tree, all proofs, and serving one proof.

    python -m benchmarks.rewards.epoch_close [--clips 10000] [--contributors 2000]
                                             [--validators 50] [--previous-accounts 20000]
                                             [--repeat 5] [--samples 500] [--seed 0]

1. **Setup, not measured.** Random epoch inputs (seeded): ``--clips`` accepted clips of
   random quality from ``--contributors`` contributors (a quarter of whom earned in an
   earlier epoch), ``--validators`` validators with random agreed reports, and
   ``--previous-accounts`` other accounts in ``previous_cumulative``, so the tree holds
   about ``previous_accounts + 3/4 contributors + validators`` leaves (22,050 by default).
2. **Measured**, ``--repeat`` times each, medians reported (wall seconds, and CPU seconds
   of this process, which a busy machine inflates less):
   - ``parse_inputs``: ``EpochInputs.model_validate_json`` of the published JSON (what a
     validator node does before it recomputes), and ``inputs_hash``;
   - ``allocate``: ``shotbank.rewards.allocate`` (the rule *and* the tree);
   - ``tree``: ``build_rewards_tree`` alone on the epoch's cumulative map, and
     ``rule_cpu = allocate_cpu - tree_cpu`` (the rule without the tree); baseline
     ``reference_tree``: ``shotbank.chain.merkle.rewards_tree`` on the same map
     (``tree_speedup = reference_tree / tree``);
   - ``all_proofs``: ``shotbank.rewards.proofs`` for every account (one pass over the
     tree); ``epoch_close = allocate + all_proofs``, what the backend does at close;
   - one proof served: a lookup in the precomputed proofs (mean over ``--samples``
     accounts) against the baseline ``StandardMerkleTree.get_proof`` for one account
     (mean over the same accounts): ``lookup_speedup = get_proof_us / lookup_us``, and
     ``get_proof_all_estimate_s`` (``get_proof_us`` x accounts: all proofs one by one)
     against ``all_proofs`` (``all_proofs_speedup``).

The run fails unless the root equals ``rewards_tree``'s and every sampled proof equals
``get_proof``'s. Prints progress lines, then one JSON line (the last line). ``goal_s`` is
the target for ``allocate`` (1 s); ``met`` says whether it was reached.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from shotbank.chain.merkle import rewards_tree
from shotbank.rewards import (
    EpochInputs,
    allocate,
    build_rewards_tree,
    inputs_hash,
    proofs,
)

T = TypeVar("T")

#: The target for one allocation of the default epoch (rule and tree).
GOAL_ALLOCATE_S: Final = 1.0


def make_inputs(
    rng: random.Random,
    *,
    clips: int,
    contributors: int,
    validators: int,
    previous_accounts: int,
    sales: int = 0,
    sold_versions: int = 1,
    version_contributors: int = 1,
) -> EpochInputs:
    """Seeded random epoch inputs of the requested size, every clip accepted; with
    ``sales``, rule /2 inputs whose sales spread over ``sold_versions`` versions of
    ``version_contributors`` contributors each (half of them also epoch contributors)."""
    people = ["0x" + rng.randbytes(20).hex() for _ in range(contributors)]
    versions: dict[str, dict[str, int]] = {}
    for _ in range(sold_versions if sales else 0):
        owners = {rng.choice(people) for _ in range(version_contributors // 2)}
        while len(owners) < version_contributors:
            owners.add("0x" + rng.randbytes(20).hex())
        versions["0x" + rng.randbytes(32).hex()] = {a: rng.randrange(1, 500) for a in owners}
    sold = [
        {
            "tx_hash": "0x" + rng.randbytes(32).hex(),
            "log_index": rng.randrange(8),
            "block_number": rng.randrange(1, 1001),
            "version_id": rng.choice(sorted(versions)),
            "amount": rng.randrange(1, 10**21),
        }
        for _ in range(sales)
    ]
    previous = {
        "0x" + rng.randbytes(20).hex(): rng.randrange(1, 10**22) for _ in range(previous_accounts)
    }
    for person in people[: contributors // 4]:
        previous[person] = rng.randrange(1, 10**22)
    return EpochInputs.model_validate(
        {
            "chain_id": 31337,
            "distributor": "0x" + "d1" * 20,
            "epoch": 2,
            "rule": {
                "version": "shotbank-rewards/2" if sales else "shotbank-rewards/1",
                "validator_share_bps": 1000,
                "contributor_cap_bps": 2500,
            },
            "funding_block": 1000,
            "funded_total": sum(previous.values())
            + 50_000 * 10**18
            + sum(sale["amount"] for sale in sold),
            "previous_epoch": 1 if previous else None,
            "previous_cumulative": previous,
            "clips": [
                {
                    "clip_id": rng.randbytes(16).hex(),
                    "contributor": rng.choice(people),
                    "accepted": True,
                    "quality_bps": rng.randrange(1, 10_001),
                }
                for _ in range(clips)
            ],
            "validators": [
                {
                    "address": "0x" + rng.randbytes(20).hex(),
                    "reports": clips,
                    "agreed_reports": rng.randrange(clips + 1),
                }
                for _ in range(validators)
            ],
            **({"market": "0x" + "5e" * 20, "sales": sold, "versions": versions} if sales else {}),
        }
    )


def timed(repeat: int, action: Callable[[], T]) -> tuple[float, float, T]:
    """Median wall and CPU seconds of ``repeat`` calls, and the last call's value."""
    walls: list[float] = []
    cpus: list[float] = []
    values: list[T] = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        values.append(action())
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), values[-1]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every phase; returns the figures."""
    rng = random.Random(args.seed)
    inputs = make_inputs(
        rng,
        clips=args.clips,
        contributors=args.contributors,
        validators=args.validators,
        previous_accounts=args.previous_accounts,
        sales=args.sales,
        sold_versions=args.sold_versions,
        version_contributors=args.version_contributors,
    )
    published = inputs.model_dump_json()
    print(f"inputs: {args.clips} clips, {len(published) / 1e6:.1f} MB of JSON", flush=True)
    repeat = args.repeat

    parse_s, parse_cpu_s, parsed = timed(repeat, lambda: EpochInputs.model_validate_json(published))
    if parsed != inputs:
        raise SystemExit("the published inputs do not parse back to the same inputs")
    hash_s, _, _ = timed(repeat, lambda: inputs_hash(inputs))
    allocate_s, allocate_cpu_s, result = timed(repeat, lambda: allocate(inputs))
    sales_figures: dict[str, Any] = {}
    if args.sales:
        # Baseline in the same run: the same epoch under rule /1, without its sales.
        without = inputs.model_copy(
            update={
                "rule": inputs.rule.model_copy(update={"version": "shotbank-rewards/1"}),
                "market": None,
                "sales": (),
                "versions": {},
            }
        )
        no_sales_s, _, _ = timed(repeat, lambda: allocate(without))
        sales_figures = {
            "sales": args.sales,
            "sold_versions": args.sold_versions,
            "version_contributors": args.version_contributors,
            "sales_allocated": str(result.sales_allocated),
            "allocate_without_sales_s": round(no_sales_s, 4),
            "sales_allocate_ratio": round(allocate_s / no_sales_s, 3),
        }
        print(
            f"allocate with {args.sales} sales: {allocate_s:.3f} s, without: {no_sales_s:.3f} s "
            f"({allocate_s / no_sales_s:.2f}x)",
            flush=True,
        )
    accounts = len(result.cumulative)
    print(f"allocate: {allocate_s:.3f} s for {accounts} accounts", flush=True)
    tree_s, tree_cpu_s, tree = timed(repeat, lambda: build_rewards_tree(result.cumulative))
    reference_s, reference_cpu_s, reference = timed(repeat, lambda: rewards_tree(result.cumulative))
    if not (reference.root == tree.root == result.root):
        raise SystemExit(f"roots differ: {reference.root}, {tree.root}, {result.root}")
    print(f"tree: {tree_s:.3f} s; rewards_tree: {reference_s:.3f} s", flush=True)
    proofs_s, proofs_cpu_s, all_proofs = timed(repeat, lambda: proofs(result))
    print(f"all proofs: {proofs_s:.3f} s", flush=True)

    sample = rng.sample(sorted(result.cumulative), min(args.samples, accounts))
    indexes = {reference.at(i)[0]: i for i in range(len(reference))}

    def lookups() -> int:
        return sum(len(all_proofs[account]) for account in sample)

    def get_proofs() -> list[list[str]]:
        return [reference.get_proof(indexes[account]) for account in sample]

    lookup_s, _, _ = timed(repeat, lookups)
    get_proof_s, _, baseline = timed(repeat, get_proofs)
    if baseline != [all_proofs[account] for account in sample]:
        raise SystemExit("a precomputed proof differs from StandardMerkleTree.get_proof")
    lookup_us = lookup_s / len(sample) * 1e6
    get_proof_us = get_proof_s / len(sample) * 1e6
    print(f"one proof: lookup {lookup_us:.3f} us, get_proof {get_proof_us:.1f} us", flush=True)
    get_proof_all_estimate_s = get_proof_us * accounts / 1e6
    return {
        "benchmark": "epoch_close",
        "clips": args.clips,
        "contributors": args.contributors,
        "validators": args.validators,
        "previous_accounts": args.previous_accounts,
        "accounts": accounts,
        "repeat": repeat,
        "inputs_json_mb": round(len(published) / 1e6, 2),
        "parse_inputs_s": round(parse_s, 4),
        "parse_inputs_cpu_s": round(parse_cpu_s, 4),
        "inputs_hash_s": round(hash_s, 4),
        "allocate_s": round(allocate_s, 4),
        "allocate_cpu_s": round(allocate_cpu_s, 4),
        "tree_s": round(tree_s, 4),
        "tree_cpu_s": round(tree_cpu_s, 4),
        "rule_cpu_s": round(max(allocate_cpu_s - tree_cpu_s, 0.0), 4),
        "reference_tree_s": round(reference_s, 4),
        "reference_tree_cpu_s": round(reference_cpu_s, 4),
        "tree_speedup": round(reference_s / tree_s, 2),
        "all_proofs_s": round(proofs_s, 4),
        "all_proofs_cpu_s": round(proofs_cpu_s, 4),
        "epoch_close_s": round(allocate_s + proofs_s, 4),
        "lookup_us": round(lookup_us, 4),
        "get_proof_us": round(get_proof_us, 2),
        "lookup_speedup": round(get_proof_us / lookup_us, 1),
        "get_proof_all_estimate_s": round(get_proof_all_estimate_s, 3),
        "all_proofs_speedup": round(get_proof_all_estimate_s / proofs_s, 2),
        "root": result.root,
        **sales_figures,
        "goal_s": GOAL_ALLOCATE_S,
        "met": allocate_s < GOAL_ALLOCATE_S,
    }


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; the last line printed is the JSON of figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clips", type=_positive, default=10_000, help="accepted clips (10000)")
    parser.add_argument("--contributors", type=_positive, default=2_000, help="(2000)")
    parser.add_argument("--validators", type=_count, default=50, help="(50)")
    parser.add_argument(
        "--previous-accounts", type=_count, default=20_000, help="earlier accounts (20000)"
    )
    parser.add_argument("--repeat", type=_positive, default=5, help="runs per phase (5)")
    parser.add_argument("--samples", type=_positive, default=500, help="accounts for one proof")
    parser.add_argument("--sales", type=_count, default=0, help="dataset sales: rule /2 (0)")
    parser.add_argument("--sold-versions", type=_positive, default=100, help="(100)")
    parser.add_argument(
        "--version-contributors", type=_positive, default=1_000, help="per sold version (1000)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    figures = run(args)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
