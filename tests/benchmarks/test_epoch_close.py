"""The epoch-close benchmark still runs end to end (a few hundred clips)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_epoch_close_benchmark_checks_its_root_and_proofs_and_prints_its_json_line() -> None:
    command = [sys.executable, "-m", "benchmarks.rewards.epoch_close"]
    options = ["--clips", "300", "--contributors", "40", "--validators", "4"]
    options += ["--previous-accounts", "100", "--repeat", "2", "--samples", "20"]
    result = subprocess.run(
        [*command, *options], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["benchmark"] == "epoch_close"
    # 100 earlier accounts, 40 contributors (10 of them earned before), 4 validators.
    assert figures["accounts"] == 100 + 40 + 4
    assert figures["root"].startswith("0x")
    for key in ("allocate_s", "tree_s", "reference_tree_s", "all_proofs_s", "lookup_us"):
        assert figures[key] > 0, key
    assert figures["lookup_speedup"] > 1


def test_epoch_close_benchmark_with_sales_measures_rule_2_against_the_same_epoch_without() -> None:
    command = [sys.executable, "-m", "benchmarks.rewards.epoch_close"]
    options = ["--clips", "300", "--contributors", "40", "--validators", "4"]
    options += ["--previous-accounts", "100", "--repeat", "2", "--samples", "20"]
    options += ["--sales", "50", "--sold-versions", "5", "--version-contributors", "30"]
    result = subprocess.run(
        [*command, *options], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert (figures["sales"], figures["sold_versions"]) == (50, 5)
    assert int(figures["sales_allocated"]) > 0
    assert figures["allocate_without_sales_s"] > 0
    ratio = figures["allocate_s"] / figures["allocate_without_sales_s"]
    assert figures["sales_allocate_ratio"] == pytest.approx(ratio, rel=0.1)  # inputs rounded
