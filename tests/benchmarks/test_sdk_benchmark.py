"""The SDK download/stream benchmark still runs end to end (a tiny version), and what it
cached is reused instead of being generated again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.sdk.download_stream import ensure_version

ROOT = Path(__file__).resolve().parents[2]


def _must_not_build(line: str) -> None:
    pytest.fail(f"the cached version was built again: {line}")


@pytest.mark.slow
def test_sdk_benchmark_downloads_streams_and_caches_its_version(tmp_path: Path) -> None:
    options = ["--gb", "0.015", "--shard-size", "4MiB", "--rounds", "2", "--workers", "2"]
    options += ["--decode-samples", "2", "--frames", "2", "--work", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.sdk.download_stream", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["benchmark"] == "sdk_download_stream"
    assert figures["access"] == "operator"
    assert figures["setup_reused"] is False
    assert figures["bytes"] >= 0.015e9
    # Clips of a few MB in 4 MiB shard targets: several shards of one clip each.
    assert figures["shards"] == figures["samples"] >= 2
    assert (figures["workers"], figures["rounds"]) == (2, 2)
    for key in ("sdk_mb_s", "plain_mb_s", "ratio", "stream_raw_samples_s"):
        assert figures[key] > 0, key
    assert figures["stream_decode_samples_s"] > 0
    assert figures["ratio"] == pytest.approx(figures["sdk_mb_s"] / figures["plain_mb_s"], rel=0.02)
    assert figures["met"] == (figures["ratio"] >= figures["goal"] == 0.9)
    assert figures["stream_raw_samples"] == figures["samples"]
    assert (figures["stream_decode_samples"], figures["stream_decode_frames"]) == (2, 2)
    # Each round starts with the next kind.
    assert [run["kind"] for run in figures["runs"]] == [
        *("sdk", "sdk_cid", "plain", "plain_sha256"),
        *("sdk_cid", "plain", "plain_sha256", "sdk"),
    ]
    assert figures["plain_sha256_mb_s"] > 0
    assert figures["sdk_cid_mb_s"] > 0
    assert set(figures["cpu_s_per_gb"]) == {"sdk", "sdk_cid", "plain", "plain_sha256"}
    assert all(run["s"] > 0 and run["mb_s"] > 0 for run in figures["runs"])

    # Only the cached version stays (the downloads are gone), and it is found again.
    (folder,) = tmp_path.iterdir()
    found, state, reused = ensure_version(
        tmp_path, target_bytes=15_000_000, shard_bytes=4 << 20, seed=1, log=_must_not_build
    )
    assert (found, reused) == (folder, True)
    assert (state.version_hash, state.total_bytes) == (figures["version_hash"], figures["bytes"])
