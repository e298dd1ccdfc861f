"""The upload benchmark still runs end to end (tiny size; the figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_upload_benchmark_uploads_verifies_and_prints_its_json_line(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "benchmarks.ingest.upload_tus"]
    options = ["--size", "8MiB", "--chunk-size", "3MiB", "--repeat", "2"]
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
    assert figures["benchmark"] == "ingest_upload_tus"
    assert (figures["bytes"], figures["chunk_size"], len(figures["runs"])) == (8 << 20, 3 << 20, 2)
    assert figures["upload_mb_s"] > 0
    assert figures["ratio"] == pytest.approx(
        figures["upload_mb_s"] / figures["sha256sum_mb_s"], rel=0.02
    )
    assert figures["met"] == (figures["ratio"] >= figures["goal"] == 0.6)
    assert list(tmp_path.iterdir()) == []  # the temporary directory is gone
