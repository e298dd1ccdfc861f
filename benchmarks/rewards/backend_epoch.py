"""Epoch close and proof serving on the real backend: ``close_epoch`` and ``GET /rewards``.

    python -m benchmarks.rewards.backend_epoch [--clips 10000] [--contributors 2000]
                                               [--validators 5] [--repeat 3]
                                               [--requests 1000] [--postgres-url URL]

1. **Setup, not measured.** A fresh database (SQLite in a temporary directory;
   ``--database postgresql``: a throwaway database on the machine's cluster through
   ``tests/pgcluster.py``, or the empty database ``--postgres-url`` names) migrated with
   the real migrations (``upgrade_to_head``), and seeded by bulk inserts (SQLAlchemy
   core) with ``--clips`` clips decided ``accepted`` (decision document with a consensus
   quality, ``clip_scoring.decided_at``) from ``--contributors`` contributors, each
   with one lease and one report per validator (``--validators``) whose ``agreed`` is
   set, a deployment file and the reward indexer's state (source, one ``Funded`` row,
   checkpoint) written through ``backend.services.rewardsync`` as if the chain sync had
   run. The seed is fixed: every repeat gets the same rows.
2. **Measured: the close.** ``backend.services.epochs.close_epoch`` -- the real function:
   the write lock, taking the decided clips and the validators' reports, funding,
   ``allocate`` (rule and tree), every account's proof, storing the inputs and result
   documents, clip, validator and account rows with their proofs, each clip's
   ``reward_wei``, and the commit -- ``--repeat`` times, each on a freshly seeded
   database; medians of wall and CPU seconds of this process (PostgreSQL's own CPU is
   not in it), and ``close_sql_s``, the time spent inside the driver's ``execute`` calls
   (rows fetched later and the commit are not in it). **Baseline in the same run:** the
   inputs the close stored (``epoch_document``), parsed back, then
   ``shotbank.rewards.allocate`` and ``proofs`` on them, ``--repeat`` times each:
   ``close_overhead_ratio = close_s / (allocate_s + proofs_s)`` -- what the database
   and the bookkeeping around the pure computation cost; ``close_other_s`` is what is
   left of ``close_s`` after the statements, allocation and proofs. One part of it is
   measured on its own, ``clip_entries_s``: building the ``ClipEntry`` of every clip
   from its database values, as the close does (each validates its contributor's
   EIP-55 address). The run fails unless the allocation's root is the closed epoch's.
3. **Measured: serving a proof.** The closed epoch is made ``claimable`` as the
   submitter would once its root is on chain and the challenge window has passed (a
   ``reward_root`` row as the indexer writes for ``RootSubmitted``, and the epoch's
   submission fields). The real backend is started on that database
   (``benchmarks/server.py``: ``python -m backend``, uvicorn, one worker, access log
   off), then over one keep-alive ``httpx`` client, one request at a time, ``--requests``
   times: the bare endpoint ``GET /api/v1/version`` (routing, a worker-thread hop and
   JSON, no database: the floor), then ``GET /api/v1/rewards/{address}`` for a random
   contributor of the epoch. The two alternate so that both see the same load of a
   shared machine; a warm-up of ``--warmup`` pairs is not counted. ``/api/v1/health``
   is not the baseline: it queries the chain node too. p50/p95/p99 (ms, client-side,
   from sending to the full body) of each, and ``ratio_p50 = rewards / bare``.

   **Every served claim is checked** after the timing: the epoch and root must be those
   of ``GET /api/v1/epochs/{n}`` and of the close, the cumulative amount the one the
   baseline allocation computed, and the proof must fold the leaf
   ``(address, cumulative)`` into the root (``shotbank.chain.merkle.process_proof``, as
   ``MerkleProof.verify`` does on chain). Any error status or wrong claim fails the run.

Prints progress lines, then one JSON line (the last line) with the figures, the
parameters and the machine facts (CPU count, load averages before and after).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx
from eth_utils.address import to_checksum_address
from sqlalchemy import event, insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.core.migrate import upgrade_to_head
from backend.models.clips import Clip, ClipStatus
from backend.models.epochs import Epoch, EpochDocument, EpochStatus
from backend.models.rewardchain import RewardFunding, RewardRoot
from backend.models.scoring import ClipScoring, DecisionTrigger, Lease, LeaseState, Report
from backend.services import epochs, rewardsync
from backend.services.chainstore import SqlIndexerStore
from backend.services.consensus import Verdict
from benchmarks.server import BackendProcess, backend_process, free_port
from scoring.report import ClipScores, Component, ComponentScore, ModelIdentity
from shotbank.chain.contracts import RewardDistributor, ShotToken, ValidatorRegistry
from shotbank.chain.deployments import Deployment, save_deployment
from shotbank.chain.indexer import Checkpoint
from shotbank.chain.merkle import REWARD_LEAF_ENCODING, process_proof, standard_leaf_hash
from shotbank.rewards import ClipEntry, EpochInputs, allocate, proofs

T = TypeVar("T")

BARE_PATH: Final = "/api/v1/version"
DATABASES: Final = ("sqlite", "postgresql")
CHAIN_ID: Final = 31337
SHOT: Final = 10**18
#: The epoch's pool: what the distributor was funded with up to the indexed block.
FUNDED_TOTAL: Final = 50_000 * SHOT
#: Block of the indexed ``Funded`` event and the indexer's checkpoint.
FUNDING_BLOCK: Final = 1_000
#: Each validator's stake as its reports record it.
STAKE_WEI: Final = 1_000 * SHOT
#: Share of reports that agreed with the consensus.
AGREE_RATE: Final = 0.9
#: Consensus threshold of the seeded decisions (every clip passed it).
PASS_THRESHOLD: Final = 0.5
#: Upper bounds of the command line (seeding and requests are held in memory).
MAX_CLIPS: Final = 1_000_000
MAX_CONTRIBUTORS: Final = 1_000_000
MAX_VALIDATORS: Final = 1_000
MAX_REQUESTS: Final = 1_000_000
MAX_REPEAT: Final = 100
_INSERT_BATCH: Final = 5_000
_MODEL: Final = ModelIdentity(
    model="bench-model",
    weights_sha256="ab" * 32,
    preprocessing="1-0123456789ab",
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


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (``fraction`` in (0, 1])."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# --- setup (not measured) -------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """The people and contracts of the seeded epoch (the same in every repeat)."""

    contributors: tuple[str, ...]
    validators: tuple[str, ...]
    deployment: Deployment

    @property
    def distributor(self) -> str:
        """The deployment's RewardDistributor."""
        return self.deployment.address(RewardDistributor.NAME)


def _address(rng: random.Random) -> str:
    created: str = to_checksum_address("0x" + rng.randbytes(20).hex())
    return created


def make_world(seed: int, *, contributors: int, validators: int) -> World:
    """Seeded addresses of the contributors, the validators and the contracts."""
    rng = random.Random(f"world-{seed}")
    deployment = Deployment(
        chain_id=CHAIN_ID,
        start_block=1,
        contracts={
            name: _address(rng)
            for name in (
                ShotToken.NAME,
                ValidatorRegistry.NAME,
                RewardDistributor.NAME,
                "DatasetMarket",
            )
        },
    )
    return World(
        contributors=tuple(_address(rng) for _ in range(contributors)),
        validators=tuple(_address(rng) for _ in range(validators)),
        deployment=deployment,
    )


def _report_scores(quality: float) -> str:
    """A validator's scored verdict of ``quality``, as a report stores it."""
    scores = ClipScores(
        scores={component: ComponentScore(value=quality) for component in Component},
        quality=quality,
        pass_threshold=PASS_THRESHOLD,
        passed=quality >= PASS_THRESHOLD,
        model=_MODEL,
    )
    return scores.canonical_json().decode()


def _rows(
    world: World, clips: int, *, seed: int, now: datetime
) -> Iterator[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]:
    """``(clip, clip_scoring, leases, reports)`` rows of each decided clip."""
    rng = random.Random(f"clips-{seed}")
    # Reports carry one of 51 quality levels: their JSON is built once per level.
    verdicts = {level: _report_scores(level / 100) for level in range(50, 101)}
    stake_weight = STAKE_WEI * len(world.validators)
    for _ in range(clips):
        clip_id = rng.randbytes(16).hex()
        digest = rng.randbytes(32).hex()
        quality = round(rng.uniform(PASS_THRESHOLD, 1.0), 4)
        decided = now - timedelta(minutes=1, seconds=rng.randrange(86_400))
        created = decided - timedelta(minutes=10)
        decision = Verdict(
            status=ClipStatus.ACCEPTED,
            components=dict.fromkeys(Component, quality),
            quality=quality,
            pass_threshold=PASS_THRESHOLD,
            margin=quality - PASS_THRESHOLD,
            total_weight=stake_weight,
            reports=len(world.validators),
        ).document(decided_at=decided, trigger=DecisionTrigger.QUORUM)
        clip = {
            "id": clip_id,
            "owner": rng.choice(world.contributors),
            "status": ClipStatus.ACCEPTED.value,
            "reasons_json": "[]",
            "upload_id": rng.randbytes(16).hex(),
            "filename": "take.mp4",
            "size_bytes": rng.randrange(5_000_000, 60_000_000),
            "sha256": digest,
            "content_key": digest,
            "cid": "bafkrei" + rng.randbytes(26).hex(),
            "annotation_json": "{}",
            "annotation_hash": "0x" + rng.randbytes(32).hex(),
            "revision": 1,
            "attempts": 1,
            "created_at": created,
            "updated_at": decided,
            "scores_json": json.dumps(decision),
        }
        scoring = {
            "clip_id": clip_id,
            "first_leased_at": created,
            "consensus_deadline": created + timedelta(hours=1),
            "decided_at": decided,
            "trigger": DecisionTrigger.QUORUM.value,
        }
        leases: list[dict[str, Any]] = []
        reports: list[dict[str, Any]] = []
        for validator in world.validators:
            lease_id = rng.randbytes(16).hex()
            level = min(100, max(50, round(quality * 100) + rng.randint(-3, 3)))
            deadline = int((created + timedelta(minutes=10)).timestamp())
            leases.append(
                {
                    "id": lease_id,
                    "clip_id": clip_id,
                    "validator": validator,
                    "state": LeaseState.REPORTED.value,
                    "annotation_hash": clip["annotation_hash"],
                    "issued_at": created,
                    "expires_at": created + timedelta(minutes=10),
                    "deadline": deadline,
                    "ended_at": decided,
                }
            )
            reports.append(
                {
                    "id": rng.randbytes(16).hex(),
                    "lease_id": lease_id,
                    "clip_id": clip_id,
                    "validator": validator,
                    "outcome": "scored",
                    "quality": level / 100,
                    "passed": True,
                    "flags": 0,
                    "weights_sha256": _MODEL.weights_sha256,
                    "scores_json": verdicts[level],
                    "signature": "0x" + "11" * 65,
                    "stake_wei": STAKE_WEI,
                    "snapshot_block": FUNDING_BLOCK - 10,
                    "deadline": deadline,
                    "created_at": decided,
                    "agreed": rng.random() < AGREE_RATE,
                    "quality_deviation": abs(level / 100 - quality),
                }
            )
        yield clip, scoring, leases, reports


def _index_funding(engine: Engine, world: World) -> None:
    """The reward indexer's state after reading one ``Funded`` event (its own stores)."""
    store = SqlIndexerStore(engine)
    name = rewardsync.use_source(
        store,
        chain_id=CHAIN_ID,
        distributor=world.distributor,
        start_block=world.deployment.start_block,
        confirmations=0,
    )
    with store.transaction():
        store.session.add(
            RewardFunding(
                block_number=FUNDING_BLOCK,
                log_index=0,
                source=world.deployment.address(ShotToken.NAME),
                amount=FUNDED_TOTAL,
                total_funded=FUNDED_TOTAL,
                block_hash="0x" + "0b" * 32,
                tx_hash="0x" + "0c" * 32,
            )
        )
        store.set_checkpoint(
            name, Checkpoint(block_number=FUNDING_BLOCK, block_hash="0x" + "0d" * 32)
        )


def seed_database(engine: Engine, world: World, clips: int, *, seed: int, now: datetime) -> None:
    """Migrate the database, insert the decided clips with their reports, index funding."""
    upgrade_to_head(engine)
    batches: dict[Any, list[dict[str, Any]]] = {Clip: [], ClipScoring: [], Lease: [], Report: []}
    with engine.begin() as connection:

        def flush() -> None:
            # Parents first: leases and reports reference their clip, reports their lease.
            for model, rows in batches.items():
                if rows:
                    connection.execute(insert(model), rows)
                    rows.clear()

        for clip, scoring, leases, reports in _rows(world, clips, seed=seed, now=now):
            batches[Clip].append(clip)
            batches[ClipScoring].append(scoring)
            batches[Lease].extend(leases)
            batches[Report].extend(reports)
            if len(batches[Clip]) >= _INSERT_BATCH // max(1, len(world.validators)):
                flush()
        flush()
    _index_funding(engine, world)


def settings_for(var_dir: Path, database_url: str) -> Settings:
    """The backend's settings for the close (no chain node: the close needs none)."""
    return Settings(
        environment="development",
        var_dir=var_dir,
        database_url=database_url,
        chain_id=CHAIN_ID,
        chain_rpc_url=f"http://127.0.0.1:{free_port()}",
        chain_rpc_timeout_s=1.0,
    )


@contextmanager
def _postgres_admin(database: str, postgres_url: str | None) -> Iterator[Any]:
    """An admin URL of the machine's cluster when throwaway databases are needed."""
    if database != "postgresql" or postgres_url is not None:
        yield None
        return
    from tests import pgcluster  # the machine's PostgreSQL, as the tests use it

    with pgcluster.admin_url(prefix="shotbank_bench") as admin:
        yield admin


@contextmanager
def _fresh_database(
    database: str, directory: Path, admin: Any, postgres_url: str | None
) -> Iterator[str]:
    """The URL of an empty database of ``database`` (a throwaway one is dropped after)."""
    if database == "sqlite":
        yield f"sqlite:///{directory / 'shotbank.db'}"
    elif postgres_url is not None:
        yield postgres_url
    else:
        from tests import pgcluster

        with pgcluster.throwaway_database(admin, prefix="shotbank_bench") as url:
            yield url


# --- the close --------------------------------------------------------------------------------


class StatementClock:
    """Seconds spent inside the driver's ``execute`` calls of an engine while on."""

    def __init__(self, engine: Engine) -> None:
        """Listen to ``engine``'s statements (counted only while :attr:`on`)."""
        self.on = False
        self.seconds = 0.0
        self.statements = 0
        self._started: list[float] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_args: Any) -> None:
        self._started.append(time.perf_counter())

    def _after(self, *_args: Any) -> None:
        elapsed = time.perf_counter() - self._started.pop()
        if self.on:
            self.seconds += elapsed
            self.statements += 1


@dataclass(frozen=True)
class CloseRun:
    """One timed close."""

    wall_s: float
    cpu_s: float
    sql_s: float
    statements: int
    epoch: Epoch


def time_close(engine: Engine, settings: Settings) -> CloseRun:
    """``close_epoch`` once, timed."""
    clock = StatementClock(engine)
    clock.on = True
    wall, cpu = time.perf_counter(), time.process_time()
    closed = epochs.close_epoch(engine, settings=settings)
    wall_s, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    clock.on = False
    return CloseRun(wall_s, cpu_s, clock.seconds, clock.statements, closed)


def stored_inputs(engine: Engine, number: int) -> EpochInputs:
    """The inputs the close of epoch ``number`` stored, parsed back."""
    with Session(engine) as db:
        document = db.get(EpochDocument, number)
        if document is None:
            raise SystemExit(f"epoch {number} has no stored inputs after its close")
        return EpochInputs.model_validate_json(document.inputs_json)


def make_claimable(engine: Engine, number: int, *, now: datetime) -> None:
    """Epoch ``number`` as the submitter leaves it once its root is on chain and the
    challenge window has passed: the indexed ``RootSubmitted`` row and the epoch's
    submission fields, status ``claimable``."""
    claimable_at = now - timedelta(minutes=1)
    with Session(engine) as db:
        epoch = db.get(Epoch, number)
        if epoch is None or epoch.root is None or epoch.cumulative_total is None:
            raise SystemExit(f"epoch {number} has no root to make claimable")
        tx_hash = "0x" + "e1" * 32
        db.add(
            RewardRoot(
                epoch=number,
                root=epoch.root,
                cumulative_total=epoch.cumulative_total,
                snapshot_block=FUNDING_BLOCK + 1,
                claimable_at=int(claimable_at.timestamp()),
                signed_stake=STAKE_WEI,
                total_stake=STAKE_WEI,
                block_number=FUNDING_BLOCK + 2,
                log_index=0,
                block_hash="0x" + "e2" * 32,
                tx_hash=tx_hash,
            )
        )
        epoch.status = EpochStatus.CLAIMABLE
        epoch.snapshot_block = FUNDING_BLOCK + 1
        epoch.signed_stake = epoch.total_stake = STAKE_WEI
        epoch.tx_hash, epoch.block_number = tx_hash, FUNDING_BLOCK + 2
        epoch.claimable_at, epoch.updated_at = claimable_at, now
        db.add(epoch)
        db.commit()


# --- serving proofs ---------------------------------------------------------------------------


def verify_claim(
    body: Mapping[str, Any], *, address: str, epoch: int, root: str, cumulative: int
) -> None:
    """Fail loudly unless ``body`` (a ``GET /rewards/{address}`` answer) carries the claim
    of ``address`` in ``epoch``: its root, its cumulative amount and a proof that folds
    the leaf ``(address, cumulative)`` into ``root``."""
    claim = body.get("claim")
    if not isinstance(claim, dict):
        raise SystemExit(f"{address}: no claim served: {body}")
    if (claim.get("epoch"), str(claim.get("root")).lower()) != (epoch, root.lower()):
        raise SystemExit(
            f"{address}: claim for epoch {claim.get('epoch')} root {claim.get('root')}"
        )
    if claim.get("cumulative_amount") != str(cumulative):
        raise SystemExit(
            f"{address}: served cumulative {claim.get('cumulative_amount')}, computed {cumulative}"
        )
    leaf = standard_leaf_hash(REWARD_LEAF_ENCODING, [address, cumulative])
    folded = "0x" + process_proof(leaf, claim.get("proof") or []).hex()
    if folded != root.lower():
        raise SystemExit(f"{address}: the served proof folds to {folded}, not the root {root}")


@dataclass
class Served:
    """Client-side latencies of the interleaved requests, and the rewards answers."""

    bare_s: list[float]
    rewards_s: list[float]
    answers: list[tuple[str, dict[str, Any]]]
    server_cpu_s: float | None
    client_cpu_s: float


def _get(client: httpx.Client, path: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"GET {path}: {response.status_code} {response.text[:500]}")
    return elapsed, response


def serve(server: BackendProcess, addresses: Sequence[str], *, warmup: Sequence[str]) -> Served:
    """The interleaved requests for ``addresses`` (see the module docstring) over one
    keep-alive client, after the same requests for ``warmup`` (not counted)."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=server.url, limits=limits, timeout=60) as client:
        for address in warmup:
            _get(client, BARE_PATH)
            _get(client, f"/api/v1/rewards/{address}")
        bare: list[float] = []
        rewards: list[float] = []
        answers: list[tuple[str, dict[str, Any]]] = []
        cpu_before, client_before = server.cpu_seconds(), time.process_time()
        for address in addresses:
            elapsed, _ = _get(client, BARE_PATH)
            bare.append(elapsed)
            elapsed, response = _get(client, f"/api/v1/rewards/{address}")
            rewards.append(elapsed)
            answers.append((address, response.json()))
        cpu_after = server.cpu_seconds()
        client_cpu = time.process_time() - client_before
    server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Served(bare, rewards, answers, server_cpu, client_cpu)


def _latency(values: Sequence[float]) -> dict[str, float]:
    return {
        name: round(percentile(values, fraction) * 1000, 3)
        for name, fraction in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99))
    }


# --- the run ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, close ``--repeat`` times, serve proofs after the last close; the figures."""
    loadavg_start = os.getloadavg()
    world = make_world(args.seed, contributors=args.contributors, validators=args.validators)
    runs: list[CloseRun] = []
    seed_s: list[float] = []
    figures: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="shotbank-bench-", dir=args.workdir) as tmp,
        _postgres_admin(args.database, args.postgres_url) as admin,
    ):
        for attempt in range(args.repeat):
            last = attempt == args.repeat - 1
            var_dir = Path(tmp) / f"close-{attempt}"
            var_dir.mkdir()
            with _fresh_database(args.database, var_dir, admin, args.postgres_url) as url:
                settings = settings_for(var_dir, url)
                save_deployment(settings.deployments_path, world.deployment)
                engine = create_db_engine(settings)
                try:
                    started = time.perf_counter()
                    now = datetime.now(UTC)
                    seed_database(engine, world, args.clips, seed=args.seed, now=now)
                    seed_s.append(time.perf_counter() - started)
                    print(f"seeded {args.clips} decided clips in {seed_s[-1]:.1f} s", flush=True)
                    close = time_close(engine, settings)
                    runs.append(close)
                    print(
                        f"close_epoch: {close.wall_s:.3f} s (CPU {close.cpu_s:.3f} s, "
                        f"{close.statements} statements {close.sql_s:.3f} s)",
                        flush=True,
                    )
                    if last:
                        figures = _baseline_and_serve(args, engine, var_dir, url, close)
                finally:
                    engine.dispose()
    closed = runs[-1].epoch
    close_s = statistics.median(run.wall_s for run in runs)
    computed_s = figures["allocate_s"] + figures["proofs_s"]
    sql_s = statistics.median(run.sql_s for run in runs)
    return {
        "benchmark": "backend_epoch",
        "database": args.database,
        "clips": args.clips,
        "contributors": args.contributors,
        "validators": args.validators,
        "repeat": args.repeat,
        "requests": args.requests,
        "warmup": args.warmup,
        "seed": args.seed,
        "epoch": closed.number,
        "accepted_clips": closed.accepted_clips,
        "accounts": closed.accounts,
        "root": closed.root,
        "seed_s": round(statistics.median(seed_s), 2),
        "close_s": round(close_s, 4),
        "close_cpu_s": round(statistics.median(run.cpu_s for run in runs), 4),
        "close_runs_s": [round(run.wall_s, 4) for run in runs],
        "close_sql_s": round(sql_s, 4),
        "close_statements": runs[-1].statements,
        "allocate_s": round(figures["allocate_s"], 4),
        "allocate_cpu_s": round(figures["allocate_cpu_s"], 4),
        "proofs_s": round(figures["proofs_s"], 4),
        "proofs_cpu_s": round(figures["proofs_cpu_s"], 4),
        "close_other_s": round(max(close_s - sql_s - computed_s, 0.0), 4),
        "clip_entries_s": round(figures["clip_entries_s"], 4),
        "close_overhead_ratio": round(close_s / computed_s, 2),
        "bare_endpoint": BARE_PATH,
        "bare": figures["bare"],
        "rewards": figures["rewards"],
        "ratio_p50": round(figures["rewards"]["p50_ms"] / figures["bare"]["p50_ms"], 2),
        "proofs_verified": figures["proofs_verified"],
        "server_cpu_s": figures["server_cpu_s"],
        "client_cpu_s": figures["client_cpu_s"],
        "cpus": os.cpu_count(),
        "loadavg_start": [round(value, 2) for value in loadavg_start],
        "loadavg_end": [round(value, 2) for value in os.getloadavg()],
    }


def _baseline_and_serve(
    args: argparse.Namespace, engine: Engine, var_dir: Path, url: str, close: CloseRun
) -> dict[str, Any]:
    """The in-run baseline on the close's own inputs, then proofs served by the backend."""
    closed = close.epoch
    if closed.root is None:
        raise SystemExit("the close allocated nothing: no root")
    inputs = stored_inputs(engine, closed.number)
    allocate_s, allocate_cpu_s, result = timed(args.repeat, lambda: allocate(inputs))
    if result.root != closed.root:
        raise SystemExit(
            f"allocate on the stored inputs gives root {result.root}, not {closed.root}"
        )

    # proofs() reuses the tree allocate built, as the close does.
    proofs_s, proofs_cpu_s, _ = timed(args.repeat, lambda: proofs(result))
    values = [(c.clip_id, c.contributor, c.accepted, c.quality_bps) for c in inputs.clips]
    entries_s, _, _ = timed(
        args.repeat,
        lambda: [
            ClipEntry(clip_id=clip_id, contributor=owner, accepted=accepted, quality_bps=bps)
            for clip_id, owner, accepted, bps in values
        ],
    )
    print(
        f"baseline: allocate {allocate_s:.3f} s, all proofs {proofs_s:.3f} s; "
        f"clip entries {entries_s:.3f} s",
        flush=True,
    )

    make_claimable(engine, closed.number, now=datetime.now(UTC))
    earners = sorted(
        address for address in inputs_contributors(inputs) if address in result.cumulative
    )
    rng = random.Random(f"requests-{args.seed}")
    count = args.requests + args.warmup
    addresses = (
        rng.sample(earners, count) if count <= len(earners) else rng.choices(earners, k=count)
    )
    warm, measured = addresses[: args.warmup], addresses[args.warmup :]
    with backend_process(var_dir, database_url=url) as server:
        summary = httpx.get(f"{server.url}/api/v1/epochs/{closed.number}", timeout=60)
        if summary.status_code != 200 or summary.json().get("root") != closed.root:
            raise SystemExit(
                f"GET /api/v1/epochs/{closed.number}: {summary.status_code} {summary.text}"
            )
        served = serve(server, measured, warmup=warm)
    for address, body in served.answers:
        verify_claim(
            body,
            address=address,
            epoch=closed.number,
            root=closed.root,
            cumulative=result.cumulative[address],
        )
    bare, rewards = _latency(served.bare_s), _latency(served.rewards_s)
    print(
        f"GET {BARE_PATH}: p50 {bare['p50_ms']} ms, p95 {bare['p95_ms']} ms, "
        f"p99 {bare['p99_ms']} ms",
        flush=True,
    )
    print(
        f"GET /api/v1/rewards/{{address}}: p50 {rewards['p50_ms']} ms, p95 "
        f"{rewards['p95_ms']} ms, p99 {rewards['p99_ms']} ms; {len(served.answers)} "
        "proofs verified against the root",
        flush=True,
    )
    return {
        "allocate_s": allocate_s,
        "allocate_cpu_s": allocate_cpu_s,
        "proofs_s": proofs_s,
        "proofs_cpu_s": proofs_cpu_s,
        "clip_entries_s": entries_s,
        "bare": bare,
        "rewards": rewards,
        "proofs_verified": len(served.answers),
        "server_cpu_s": None if served.server_cpu_s is None else round(served.server_cpu_s, 2),
        "client_cpu_s": round(served.client_cpu_s, 2),
    }


def inputs_contributors(inputs: EpochInputs) -> set[str]:
    """The contributors of the epoch's accepted clips."""
    return {clip.contributor for clip in inputs.clips if clip.accepted}


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; the last line printed is the JSON of figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clips", type=_bounded(1, MAX_CLIPS), default=10_000, help="(10000)")
    parser.add_argument(
        "--contributors", type=_bounded(1, MAX_CONTRIBUTORS), default=2_000, help="(2000)"
    )
    parser.add_argument("--validators", type=_bounded(1, MAX_VALIDATORS), default=5, help="(5)")
    parser.add_argument(
        "--repeat",
        type=_bounded(1, MAX_REPEAT),
        default=None,
        help="closes, each on a freshly seeded database (3; 1 with --postgres-url)",
    )
    parser.add_argument(
        "--requests", type=_bounded(1, MAX_REQUESTS), default=1_000, help="per endpoint (1000)"
    )
    parser.add_argument("--warmup", type=_bounded(0, MAX_REQUESTS), default=20, help="(20)")
    parser.add_argument("--database", choices=DATABASES, default="sqlite", help="(sqlite)")
    parser.add_argument(
        "--postgres-url",
        "--postgres",
        dest="postgres_url",
        default=None,
        help="an empty PostgreSQL database to use (implies --database postgresql)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="temporary directory root")
    args = parser.parse_args(argv)
    if args.postgres_url is not None:
        args.database = "postgresql"
        if args.repeat not in (None, 1):
            parser.error("--postgres-url holds one database: one close (--repeat 1)")
        args.repeat = 1
    args.repeat = args.repeat or 3
    figures = run(args)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
