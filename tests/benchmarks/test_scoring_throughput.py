"""The scoring throughput benchmark still runs end to end (the in-project model, a few
tiny clips; the figures are checked for consistency, not for speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_scoring_throughput_benchmark_measures_three_phases_and_prints_its_json_line(
    tmp_path: Path,
) -> None:
    command = [sys.executable, "-m", "benchmarks.scoring.throughput", "--model", "shotbank-tiny"]
    options = ["--clips", "4", "--size", "160x96", "--workers", "1", "--batch-clips", "2"]
    result = subprocess.run(
        [*command, *options, "--torch-threads", "1", "--repeat", "1", "--workdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["benchmark"] == "scoring_throughput"
    assert figures["clips"] == 4
    assert figures["model"]["model"] == "shotbank-tiny"
    assert figures["config"]["workers"] == 1
    assert figures["config"]["batch_clips"] == 2
    assert figures["hardware"]["torch_threads"] == 1
    rates = [figures[f"{name}_clips_s"] for name in ("decode_only", "encode_only", "end_to_end")]
    assert all(rate > 0 for rate in rates)
    assert figures["efficiency"] == pytest.approx(rates[2] / min(rates[:2]), rel=0.01)
    assert figures["met"] == (figures["efficiency"] >= figures["goal"] == 0.85)
    assert figures["stats"]["finished"] == 4 + 2  # the measured clips and the warm-up batch
    assert figures["stats"]["errors"] == 0
    assert len(figures["rounds"]) == 1
    assert list(tmp_path.iterdir()) == []  # the clips are gone
