"""The near-duplicate index benchmark still runs end to end (a few thousand vectors)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dedup_benchmark_builds_switches_to_ivf_and_prints_its_json_line() -> None:
    command = [sys.executable, "-m", "benchmarks.scoring.dedup_index"]
    options = ["--n", "3000", "--dim", "64", "--approximate-above", "1000", "--queries", "100"]
    options += ["--lists", "16", "--exact-queries", "20", "--probes", "4,16", "--threads", "1"]
    result = subprocess.run(
        [*command, *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["benchmark"] == "dedup_index"
    assert (figures["n"], figures["dim"], figures["kind"]) == (3000, 64, "ivf")
    assert [s["probes"] for s in figures["approximate"]] == [4, 16]
    for sweep in figures["approximate"]:
        assert 0 < sweep["p50_ms"] <= sweep["p99_ms"]
        assert 0.0 <= sweep["recall_at_1_random"] <= 1.0
        # A planted copy at cosine 0.95 among 3000 vectors is found.
        assert sweep["recall_at_1_duplicate"] >= 0.95
    assert figures["exact"]["queries"] == 20
    assert figures["exact_agrees_with_numpy"] == 1.0
    assert figures["duplicate_source_is_nearest"] == 1.0
    assert figures["duplicate_copy_cosine"] > 0.95
    assert figures["speedup_p50"] > 0
