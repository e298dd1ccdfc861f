"""The backend epoch benchmark still runs end to end (50 clips, 20 requests), and its check
of the served claims catches a wrong proof or amount."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.rewards.backend_epoch import verify_claim
from shotbank.chain.merkle import rewards_tree

ROOT = Path(__file__).resolve().parents[2]
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20
CAROL = "0x" + "c3" * 20


@pytest.mark.slow
def test_backend_epoch_benchmark_closes_serves_verified_proofs_and_prints_its_json_line(
    tmp_path: Path,
) -> None:
    command = [sys.executable, "-m", "benchmarks.rewards.backend_epoch"]
    options = ["--clips", "50", "--contributors", "20", "--validators", "3"]
    options += ["--repeat", "1", "--requests", "20", "--warmup", "2"]
    result = subprocess.run(
        [*command, *options, "--workdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["benchmark"] == "backend_epoch"
    assert (figures["database"], figures["clips"], figures["accepted_clips"]) == ("sqlite", 50, 50)
    # The contributors who got a clip (at most 20) and the 3 validators.
    assert 3 < figures["accounts"] <= 20 + 3
    assert figures["root"].startswith("0x")
    assert figures["proofs_verified"] == 20
    for key in ("close_s", "close_cpu_s", "allocate_s", "proofs_s", "clip_entries_s"):
        assert figures[key] > 0, key
    assert figures["close_overhead_ratio"] > 1
    for endpoint in ("bare", "rewards"):
        latency = figures[endpoint]
        assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"], endpoint
    assert figures["ratio_p50"] > 0
    assert figures["cpus"] >= 1
    assert list(tmp_path.iterdir()) == []  # the temporary directory is gone


def _served(cumulative: dict[str, int], address: str) -> tuple[str, dict[str, Any]]:
    """The root of a real rewards tree, and a ``GET /rewards`` body with ``address``'s claim."""
    tree = rewards_tree(cumulative)
    index = next(i for i in range(len(tree)) if tree.at(i)[0].lower() == address.lower())
    claim = {
        "epoch": 3,
        "root": tree.root,
        "cumulative_amount": str(cumulative[address]),
        "proof": tree.get_proof(index),
    }
    return tree.root, {"claim": claim}


def test_a_served_claim_passes_only_with_its_root_amount_and_proof() -> None:
    cumulative = {ALICE: 10**18, BOB: 2 * 10**18, CAROL: 5}
    root, body = _served(cumulative, BOB)
    verify_claim(body, address=BOB, epoch=3, root=root, cumulative=2 * 10**18)

    tampered = json.loads(json.dumps(body))
    first = tampered["claim"]["proof"][0]
    tampered["claim"]["proof"][0] = first[:-1] + ("0" if first[-1] != "0" else "1")
    with pytest.raises(SystemExit, match="folds to"):
        verify_claim(tampered, address=BOB, epoch=3, root=root, cumulative=2 * 10**18)
    with pytest.raises(SystemExit, match="served cumulative"):
        verify_claim(body, address=BOB, epoch=3, root=root, cumulative=10**18)
    with pytest.raises(SystemExit, match="claim for epoch"):
        verify_claim(body, address=BOB, epoch=4, root=root, cumulative=2 * 10**18)
    with pytest.raises(SystemExit, match="no claim"):
        verify_claim({"claim": None}, address=BOB, epoch=3, root=root, cumulative=1)
    # Another account's leaf does not fold into the root with Bob's proof.
    body["claim"]["cumulative_amount"] = str(10**18)
    with pytest.raises(SystemExit, match="folds to"):
        verify_claim(body, address=ALICE, epoch=3, root=root, cumulative=10**18)
