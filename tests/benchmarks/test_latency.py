"""The API latency benchmark still runs end to end (SQLite, a few clients and requests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_latency_benchmark_measures_both_endpoints_and_prints_its_json_line(
    tmp_path: Path,
) -> None:
    command = [sys.executable, "-m", "benchmarks.api.latency", "--backends", "sqlite"]
    options = ["--clients", "5", "--wallets", "5", "--clips-per-wallet", "25", "--requests", "3"]
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
    assert figures["benchmark"] == "api_latency"
    assert figures["bare_endpoint"] == "/api/v1/version"
    assert list(figures["results"]) == ["sqlite"]
    sqlite = figures["results"]["sqlite"]
    for endpoint in ("bare", "clips"):
        assert sqlite[endpoint]["requests"] == 5 * 3
        assert sqlite[endpoint]["errors"] == 0
        assert 0 < sqlite[endpoint]["p50_ms"] <= sqlite[endpoint]["p99_ms"]
    assert sqlite["ratio_p50"] > 0
    assert list(tmp_path.iterdir()) == []  # the temporary directory is gone
