"""API read latency: ``GET /api/v1/clips`` under concurrent clients, next to a bare endpoint.

    python -m benchmarks.api.latency [--backends sqlite,postgresql] [--clients 100]
                                     [--duration 10] [--postgres-url URL]

For each database backend:

1. Setup (not measured): a fresh database (SQLite in a temporary directory; PostgreSQL: a
   throwaway database on the machine's cluster, or ``--postgres-url``) is migrated and
   seeded by direct inserts with ``--wallets`` x ``--clips-per-wallet`` clips (realistic
   rows: a validated annotation, probed media facts, scores for accepted ones; statuses
   the ingest worker leaves alone). The real backend is started as its own process
   (``python -m backend``: uvicorn, one worker, no reload, default pool and thread
   limits, access log off) and every wallet signs in (SIWE).
2. ``--clients`` concurrent clients -- asyncio tasks in this process, so the load never
   shares the server's interpreter; each with its own keep-alive connection and its own
   wallet's token -- first call the bare endpoint ``GET /api/v1/version`` (no database,
   no sign-in check: the floor of routing, a thread-pool hop and JSON) for
   ``--duration`` seconds, then ``GET /api/v1/clips?limit=20`` (session lookup, keyset
   query on the owner's index, 20 owner views serialised) for as long. A short warm-up
   precedes each (not counted). ``/api/v1/health`` is not used as the bare endpoint: it
   queries the database and the chain node.

Latency is measured per request by the client, from sending to the full body read.
Prints human-readable lines, then one JSON line (the last line) with p50/p99 (ms),
requests per second and errors per endpoint and backend, the ratios clips/bare, and the
CPU seconds the server process and this load generator used in each phase. On a machine
with few cores the load generator and the server compete for them (see the CPU figures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import create_engine, insert
from sqlalchemy.engine import Engine

from backend.core.migrate import upgrade_to_head
from backend.models.clips import Clip, ClipStatus
from backend.models.media import MediaFacts
from benchmarks.server import BackendProcess, backend_process, sign_in
from shotbank.annotation import Annotation, annotation_hash, canonical_json

BARE_PATH: Final = "/api/v1/version"
BACKENDS: Final = ("sqlite", "postgresql")
WARMUP_S: Final = 1.0
_INSERT_BATCH: Final = 1000
#: Statuses the seeded clips get (weights); never ``received``/``probing``, which the
#: server's ingest worker would pick up during the measurement.
_STATUSES: Final = (
    (ClipStatus.QUEUED, 4),
    (ClipStatus.ACCEPTED, 3),
    (ClipStatus.REJECTED, 2),
    (ClipStatus.SCORING, 1),
)
_ANNOTATION: Final[dict[str, Any]] = {
    "schema_version": "1",
    "scene": {
        "description": "A slow dolly along a rain-soaked street at dusk; neon reflections.",
        "tags": ["street", "rain", "dusk", "neon"],
        "setting": "exterior",
    },
    "camera": {
        "movement": "dolly",
        "direction": "in",
        "lens": {"focal_length_mm": 35, "sensor": "super35"},
        "path": {
            "position_scale": "metric",
            "keyframes": [
                {
                    "time_s": 0.5 * step,
                    "position_m": [0, 0, 0.4 * step],
                    "orientation_wxyz": [1, 0, 0, 0],
                }
                for step in range(12)
            ],
        },
    },
    "lighting": {"setup": "low_key", "contrast": "high"},
    "audio": {"genre": "ambience", "dialogue": False, "recording": "field"},
    "rights": {
        "licence": "cc0-1.0",
        "model_release": "not_required",
        "location_release": "not_required",
    },
}
_MEDIA: Final = MediaFacts(
    container="mp4",
    duration_s=6.0,
    width=1920,
    height=1080,
    frame_rate=24.0,
    video_codec="h264",
    audio_codec="aac",
    sample_rate_hz=48_000,
    channels=2,
    integrated_loudness_lufs=-19.5,
    true_peak_dbtp=-1.4,
    stream_count=2,
    bit_rate=12_000_000,
)


# --- setup (not measured) -----------------------------------------------------------------


def _clip_rows(
    owners: Sequence[str], per_owner: int, rng: random.Random
) -> Iterator[dict[str, Any]]:
    annotation = Annotation.model_validate(_ANNOTATION)
    annotation_json = canonical_json(annotation).decode("utf-8")
    annotation_digest = annotation_hash(annotation)
    media_json = _MEDIA.model_dump_json()
    statuses = [status for status, weight in _STATUSES for _ in range(weight)]
    start = datetime.now(UTC) - timedelta(days=30)
    for owner in owners:
        for number in range(per_owner):
            status = rng.choice(statuses)
            sha256 = hashlib.sha256(rng.randbytes(32)).hexdigest()
            moment = start + timedelta(seconds=rng.randrange(30 * 86_400))
            rejected = status == ClipStatus.REJECTED
            yield {
                "id": secrets.token_hex(16),
                "owner": owner,
                "status": status.value,
                "reasons_json": json.dumps(
                    [{"code": "media.resolution_out_of_bounds", "message": "Too small."}]
                    if rejected
                    else []
                ),
                "upload_id": secrets.token_hex(16),
                "filename": f"take-{number:03d}.mp4",
                "size_bytes": rng.randrange(5_000_000, 60_000_000),
                "sha256": sha256,
                "content_key": sha256,
                "cid": "bafybei" + secrets.token_hex(26),
                "annotation_json": annotation_json,
                "annotation_hash": annotation_digest,
                "media_json": media_json,
                "poster_cid": "bafkrei" + secrets.token_hex(26),
                "revision": 1,
                "attempts": 1,
                "created_at": moment,
                "updated_at": moment,
                "scores_json": (
                    json.dumps({"aesthetic": 0.71, "motion": 0.64, "text_match": 0.82})
                    if status == ClipStatus.ACCEPTED
                    else None
                ),
            }


def seed(engine: Engine, owners: Sequence[str], per_owner: int, *, seed_value: int) -> int:
    """Migrate the database and insert ``per_owner`` clips for each owner; returns the count."""
    upgrade_to_head(engine)
    rows = _clip_rows(owners, per_owner, random.Random(seed_value))
    count = 0
    with engine.begin() as connection:
        while batch := list(itertools.islice(rows, _INSERT_BATCH)):
            connection.execute(insert(Clip), batch)
            count += len(batch)
    return count


@contextmanager
def _database(kind: str, workdir: Path, postgres_url: str | None) -> Iterator[str]:
    """The URL of a fresh database of ``kind``, removed afterwards (unless given)."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'var' / 'shotbank.db'}"
    elif postgres_url is not None:
        yield postgres_url
    else:
        from tests import pgcluster  # the machine's PostgreSQL, as the tests use it

        with (
            pgcluster.admin_url(prefix="shotbank_bench") as admin,
            pgcluster.throwaway_database(admin, prefix="shotbank_bench") as url,
        ):
            yield url


# --- load ---------------------------------------------------------------------------------


@dataclass
class Phase:
    """What one endpoint did under load."""

    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    """Failed requests by HTTP status (or exception name); their latency is not counted."""
    elapsed_s: float = 0.0
    server_cpu_s: float | None = None
    loadgen_cpu_s: float = 0.0
    warmup_errors: int = 0

    def figures(self) -> dict[str, Any]:
        """p50/p99 in ms, throughput, errors and CPU seconds."""
        ordered = sorted(self.latencies_s)
        p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] if ordered else math.nan
        return {
            "requests": len(ordered),
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "warmup_errors": self.warmup_errors,
            "p50_ms": round(statistics.median(ordered) * 1000, 2) if ordered else None,
            "p99_ms": round(p99 * 1000, 2) if ordered else None,
            "rps": round(len(ordered) / self.elapsed_s, 1),
            "server_cpu_s": None if self.server_cpu_s is None else round(self.server_cpu_s, 2),
            "loadgen_cpu_s": round(self.loadgen_cpu_s, 2),
        }


async def _client_loop(
    client: httpx.AsyncClient, path: str, stop_at: float, requests: int | None, phase: Phase
) -> None:
    done = 0
    while done < requests if requests is not None else time.perf_counter() < stop_at:
        started = time.perf_counter()
        try:
            response = await client.get(path)
            outcome = str(response.status_code)
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        if outcome == "200":
            phase.latencies_s.append(time.perf_counter() - started)
        else:
            phase.errors[outcome] += 1
        done += 1


async def _load(
    clients: Sequence[httpx.AsyncClient],
    server: BackendProcess,
    path: str,
    *,
    duration_s: float,
    requests: int | None,
) -> Phase:
    warm = Phase()
    warm_until = time.perf_counter() + WARMUP_S
    await asyncio.gather(*(_client_loop(c, path, warm_until, None, warm) for c in clients))
    phase = Phase(warmup_errors=sum(warm.errors.values()))
    cpu_before, loadgen_before = server.cpu_seconds(), time.process_time()
    started = time.perf_counter()
    stop_at = started + duration_s
    await asyncio.gather(*(_client_loop(c, path, stop_at, requests, phase) for c in clients))
    phase.elapsed_s = time.perf_counter() - started
    cpu_after = server.cpu_seconds()
    if cpu_before is not None and cpu_after is not None:
        phase.server_cpu_s = cpu_after - cpu_before
    phase.loadgen_cpu_s = time.process_time() - loadgen_before
    return phase


async def _measure(
    server: BackendProcess,
    tokens: Sequence[str],
    *,
    limit: int,
    duration_s: float,
    requests: int | None,
) -> dict[str, Phase]:
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=server.url,
                    headers={"Authorization": f"Bearer {token}"},
                    limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                    timeout=60,
                )
            )
            for token in tokens
        ]
        page = (await clients[0].get(f"/api/v1/clips?limit={limit}")).json()
        if len(page.get("items", ())) != limit:
            raise RuntimeError(f"GET /api/v1/clips did not return a full page: {page}")
        bare = await _load(clients, server, BARE_PATH, duration_s=duration_s, requests=requests)
        clips = await _load(
            clients,
            server,
            f"/api/v1/clips?limit={limit}",
            duration_s=duration_s,
            requests=requests,
        )
    return {"bare": bare, "clips": clips}


def run_backend(
    kind: str,
    *,
    workdir: Path,
    postgres_url: str | None,
    accounts: Sequence[LocalAccount],
    clients: int,
    clips_per_wallet: int,
    limit: int,
    duration_s: float,
    requests: int | None,
    seed_value: int,
    server_settings: dict[str, str],
) -> dict[str, Any]:
    """Set one backend up, measure both endpoints, and return its figures."""
    workdir.mkdir(parents=True)
    with _database(kind, workdir, postgres_url) as url:
        (workdir / "var").mkdir(exist_ok=True)
        engine = create_engine(url)
        try:
            started = time.perf_counter()
            owners = [account.address for account in accounts]
            count = seed(engine, owners, clips_per_wallet, seed_value=seed_value)
            print(f"[{kind}] seeded {count} clips in {time.perf_counter() - started:.1f} s")
        finally:
            engine.dispose()
        with backend_process(workdir / "var", database_url=url, settings=server_settings) as server:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                tokens = [sign_in(http, account) for account in accounts]
            tokens = [tokens[index % len(tokens)] for index in range(clients)]
            phases = asyncio.run(
                _measure(server, tokens, limit=limit, duration_s=duration_s, requests=requests)
            )
    result: dict[str, Any] = {name: phase.figures() for name, phase in phases.items()}
    bare, clips = result["bare"], result["clips"]
    if bare["requests"] and clips["requests"]:
        result["ratio_p50"] = round(clips["p50_ms"] / bare["p50_ms"], 2)
        result["ratio_p99"] = round(clips["p99_ms"] / bare["p99_ms"], 2)
        result["ratio_rps"] = round(clips["rps"] / bare["rps"], 3)
    for name, figures in (
        ("bare  " + BARE_PATH, bare),
        (f"clips /api/v1/clips?limit={limit}", clips),
    ):
        print(
            f"[{kind}] {name}: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, "
            f"{figures['rps']} req/s, {figures['errors']} errors {figures['error_kinds']} "
            f"(server CPU {figures['server_cpu_s']} s, load generator CPU "
            f"{figures['loadgen_cpu_s']} s)"
        )
    if "ratio_p50" in result:
        print(
            f"[{kind}] clips/bare: p50 x{result['ratio_p50']}, p99 x{result['ratio_p99']}, "
            f"throughput x{result['ratio_rps']}"
        )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; the last line printed is the JSON of figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="sqlite,postgresql")
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients (100)")
    parser.add_argument("--wallets", type=int, default=100, help="signed-in wallets (100)")
    parser.add_argument("--clips-per-wallet", type=int, default=100, help="seeded (100)")
    parser.add_argument("--limit", type=int, default=20, help="page size of GET /clips (20)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per endpoint")
    parser.add_argument(
        "--requests", type=int, default=None, help="requests per client instead of --duration"
    )
    parser.add_argument("--postgres-url", default=None, help="use this PostgreSQL database")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated rows")
    parser.add_argument(
        "--server-setting",
        action="append",
        default=[],
        metavar="SHOTBANK_NAME=VALUE",
        help="a further setting of the server (repeatable); the defaults are measured otherwise",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="temporary directory root")
    args = parser.parse_args(argv)
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if not backends or any(name not in BACKENDS for name in backends):
        parser.error(f"--backends takes a comma-separated subset of {', '.join(BACKENDS)}")
    if min(args.clients, args.wallets, args.clips_per_wallet, args.limit) < 1:
        parser.error("--clients, --wallets, --clips-per-wallet and --limit must be positive")
    if args.clips_per_wallet < args.limit:
        parser.error("--clips-per-wallet must be at least --limit (full pages are measured)")
    server_settings = dict(item.split("=", 1) for item in args.server_setting)
    if any(not name.startswith("SHOTBANK_") for name in server_settings):
        parser.error("--server-setting takes SHOTBANK_NAME=VALUE")
    accounts = [Account.create() for _ in range(args.wallets)]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="shotbank-bench-", dir=args.workdir) as tmp:
        for kind in backends:
            results[kind] = run_backend(
                kind,
                workdir=Path(tmp) / kind,
                postgres_url=args.postgres_url,
                accounts=accounts,
                clients=args.clients,
                clips_per_wallet=args.clips_per_wallet,
                limit=args.limit,
                duration_s=args.duration,
                requests=args.requests,
                seed_value=args.seed,
                server_settings=server_settings,
            )
    print(
        json.dumps(
            {
                "benchmark": "api_latency",
                "bare_endpoint": BARE_PATH,
                "clips_endpoint": f"/api/v1/clips?limit={args.limit}",
                "clients": args.clients,
                "wallets": args.wallets,
                "clips_per_wallet": args.clips_per_wallet,
                "duration_s": None if args.requests is not None else args.duration,
                "requests_per_client": args.requests,
                "server_settings": server_settings,
                "cpus": os.cpu_count(),
                "results": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
