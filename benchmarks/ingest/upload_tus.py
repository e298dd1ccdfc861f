"""Upload throughput: a generated file through tus over loopback, against ``sha256sum``.

    python -m benchmarks.ingest.upload_tus [--size 1GiB] [--chunk-size 64MiB] [--repeat 3]

1. Writes ``--size`` random bytes (not zeros: nothing downstream may shortcut them) to a
   temporary directory, then reads the file once -- computing its SHA-256 and CID
   locally -- so that ``sha256sum`` and the upload both start from the page cache.
2. Starts the real backend (``python -m backend``, SQLite, its own var dir in the same
   temporary directory) as a separate process and signs a fresh wallet in (SIWE).
3. ``--repeat`` times: times ``sha256sum FILE``, then times one upload of the file with
   the real tus client (``tuspy``; creation, then ``PATCH``es of ``--chunk-size`` bytes,
   each with ``Upload-Checksum: sha256 ...``), from the creation request to the last
   response. The server's reported SHA-256 and CID must equal the local ones; the upload
   is then deleted (outside the timing).

The upload's time includes everything a real upload does on this machine: the client
reading and checksumming each chunk, HTTP over loopback, and the server streaming the
bytes to disk, hashing SHA-256, the CID leaves and the chunk checksum, and ``fsync``-ing
each chunk before it records the new offset. Client and server share the machine's cores.

Prints human-readable lines, then one JSON line (the last line) with the medians of the
runs: ``upload_mb_s``, ``sha256sum_mb_s`` and ``ratio = upload_mb_s / sha256sum_mb_s``
(MB = 10^6 bytes), the goal (0.6) and whether it was met, and every run's figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import httpx
from eth_account import Account
from tusclient.client import TusClient
from tusclient.uploader.uploader import Uploader

from benchmarks.server import backend_process, parse_size, sign_in
from ingest.cid import ContentDigest, digest_file

GOAL: Final = 0.6
TUS: Final = {"Tus-Resumable": "1.0.0"}
_GENERATE_BLOCK: Final = 8 << 20


class Sha256Uploader(Uploader):  # type: ignore[misc]  # tuspy ships no type hints for it
    """tuspy's uploader sending ``Upload-Checksum: sha256 ...`` (its default is sha1)."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def generate(path: Path, size: int, *, seed: int) -> None:
    """Write ``size`` pseudo-random bytes (reproducible from ``seed``) to ``path``."""
    rng = random.Random(seed)
    with open(path, "wb") as handle:
        remaining = size
        while remaining:
            block = rng.randbytes(min(_GENERATE_BLOCK, remaining))
            handle.write(block)
            remaining -= len(block)


def time_sha256sum(path: Path, expected: str) -> float:
    """Seconds ``sha256sum`` takes over ``path`` (checked against ``expected``)."""
    started = time.perf_counter()
    result = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.stdout.split()[0] != expected:
        raise RuntimeError("sha256sum disagrees with the local SHA-256")
    return elapsed


def time_upload(
    base_url: str, token: str, path: Path, *, chunk_size: int, expected: ContentDigest
) -> float:
    """Seconds one tus upload of ``path`` takes; verifies the server's digest, then deletes."""
    auth = {"Authorization": f"Bearer {token}"}
    client = TusClient(f"{base_url}/api/v1/uploads/", headers=auth)
    started = time.perf_counter()
    uploader = Sha256Uploader(
        file_path=str(path),
        client=client,
        chunk_size=chunk_size,
        metadata={"filename": path.name},
        upload_checksum=True,
    )
    uploader.upload()
    elapsed = time.perf_counter() - started
    location = str(uploader.url)
    with httpx.Client(headers={**TUS, **auth}, timeout=60) as http:
        info = http.get(location).json()
        if (info["state"], info["sha256"], info["cid"]) != (
            "complete",
            expected.sha256,
            expected.cid,
        ):
            raise RuntimeError(f"the server's digest differs from the local one: {info}")
        http.delete(location).raise_for_status()
    return elapsed


def _mb_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def run(
    *, size: int, chunk_size: int, repeat: int, seed: int, workdir: Path | None
) -> dict[str, Any]:
    """Generate, measure and return the figures (see the module docstring)."""
    if shutil.which("sha256sum") is None:
        raise RuntimeError("sha256sum (coreutils) is not on PATH")
    with tempfile.TemporaryDirectory(prefix="shotbank-bench-", dir=workdir) as tmp:
        path = Path(tmp) / "clip.bin"
        generate(path, size, seed=seed)
        started = time.perf_counter()
        expected = digest_file(path)  # also the warm read: the file is in the page cache
        local_s = time.perf_counter() - started
        print(f"file: {size} bytes, sha256 {expected.sha256}, cid {expected.cid}")
        print(f"local one-pass SHA-256 + CID (digest_file): {_mb_s(size, local_s):.0f} MB/s")
        runs: list[dict[str, float]] = []
        daily = str(max(20 * 1024**3, size * repeat))
        with (
            backend_process(
                Path(tmp) / "var", settings={"SHOTBANK_UPLOAD_DAILY_BYTES_PER_WALLET": daily}
            ) as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            token = sign_in(http, Account.create())
            for index in range(repeat):
                sha_s = time_sha256sum(path, expected.sha256)
                upload_s = time_upload(
                    server.url, token, path, chunk_size=chunk_size, expected=expected
                )
                figures = {
                    "sha256sum_s": round(sha_s, 3),
                    "upload_s": round(upload_s, 3),
                    "sha256sum_mb_s": round(_mb_s(size, sha_s), 1),
                    "upload_mb_s": round(_mb_s(size, upload_s), 1),
                }
                runs.append(figures)
                print(
                    f"run {index + 1}/{repeat}: sha256sum {figures['sha256sum_mb_s']:.0f} MB/s, "
                    f"tus upload {figures['upload_mb_s']:.0f} MB/s "
                    f"(ratio {figures['upload_mb_s'] / figures['sha256sum_mb_s']:.2f})"
                )
    upload_mb_s = statistics.median(entry["upload_mb_s"] for entry in runs)
    sha256sum_mb_s = statistics.median(entry["sha256sum_mb_s"] for entry in runs)
    ratio = upload_mb_s / sha256sum_mb_s
    return {
        "benchmark": "ingest_upload_tus",
        "bytes": size,
        "chunk_size": chunk_size,
        "repeat": repeat,
        "upload_mb_s": round(upload_mb_s, 1),
        "sha256sum_mb_s": round(sha256sum_mb_s, 1),
        "ratio": round(ratio, 3),
        "goal": GOAL,
        "met": ratio >= GOAL,
        "local_digest_mb_s": round(_mb_s(size, local_s), 1),
        "cpus": os.cpu_count(),
        "runs": runs,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; the last line printed is the JSON of figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=1 << 30, help="file size (1GiB)")
    parser.add_argument(
        "--chunk-size", type=parse_size, default=64 << 20, help="bytes per PATCH (64MiB)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs; medians are reported (3)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated bytes")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the temporary directory goes"
    )
    args = parser.parse_args(argv)
    if args.size < 1 or args.chunk_size < 1 or args.repeat < 1:
        parser.error("--size, --chunk-size and --repeat must be positive")
    figures = run(
        size=args.size,
        chunk_size=args.chunk_size,
        repeat=args.repeat,
        seed=args.seed,
        workdir=args.workdir,
    )
    verdict = "met" if figures["met"] else "NOT met"
    print(
        f"median: tus upload {figures['upload_mb_s']:.0f} MB/s, sha256sum "
        f"{figures['sha256sum_mb_s']:.0f} MB/s, ratio {figures['ratio']:.2f} "
        f"(goal >= {GOAL}: {verdict})"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
