"""SDK download and streaming throughput: a >= 2 GB dataset version served by the backend.

    python -m benchmarks.sdk.download_stream [--gb 2.0] [--shard-size 256MiB] [--workers 4]
        [--rounds 3] [--decode-samples 48] [--frames 8] [--seed 1] [--progress]
        [--work DIR] [--quick]

``--quick`` is a smoke size: 0.1 GB in 16 MiB shards, 8 decoded samples.

1. **Setup, cached, not measured.** Real H.264 MP4 clips made with PyAV (640x480, 24 fps,
   2.3-3.5 s of a moving gradient under per-pixel noise, noise level and quantiser drawn
   per clip, so every clip has its own bytes: 0.1-12 MB, 6 MB on average) until their
   bytes reach ``--gb`` (10^9 bytes). Each is taken through the real ingest (probe, blob
   store, media facts) and decided ``accepted`` by the real consensus on one validator
   report, exactly as the dataset tests do (``tests/backend/datasets_world.py``). A
   dataset matching every clip is created, a version frozen with ``--shard-size`` shards
   and packed by the backend's own services (``backend.services.datasets``: ``create_dataset``,
   ``freeze_version``, ``pack_next``). All of it lives in ``--work`` (default: a folder
   in the system's temporary directory), keyed by size, shard size and seed: a re-run
   with the same options reuses it and skips the generation.
2. **Serving.** The real backend (``benchmarks/server.py``: ``python -m backend``,
   uvicorn, one worker, access log off) on that var dir, with a fresh wallet as its only
   operator (``SHOTBANK_OPERATORS``): operators download without a licence, so no chain
   is needed; a licence holder goes through the same route and the same file streaming,
   after one more indexed lookup. The benchmark signs in with SIWE through the SDK
   (``ShotbankClient.sign_in``).
3. **Measured: downloads**, ``--rounds`` rounds, each into fresh empty folders, of:
   - **sdk**: ``client.version(id, n).download(folder, workers=N, progress=False)`` --
     the whole call: ``index.json``, ``manifest.jsonl`` (checked against the version
     hash), every shard streamed to ``.part``, verified as the SDK verifies and renamed;
   - **sdk_cid**: the same with ``verify_cid=True`` (each shard's CID checked too);
   - **plain** (the baseline): the same shard URLs with plain ``httpx`` -- a thread pool
     of N, one keep-alive pool, the same ``Authorization: Bearer`` header, each body
     written to its file as it arrives (``iter_raw``), nothing verified during the timing
     (sizes and SHA-256 are checked afterwards, outside it);
   - **plain_sha256**: the plain client also feeding each body to SHA-256 as it arrives
     and checking it: what verification alone costs, the floor of a verifying client.
   Each round starts with the next kind, so none always runs on a warmer machine.
   MB/s = shard bytes / seconds (MB = 10^6 bytes), medians over the rounds;
   ``ratio = sdk_mb_s / plain_mb_s`` (goal >= 0.9). Client and server share the cores,
   so the CPU seconds per GB of each kind, client and server (medians), are reported
   too: on a busy machine they say more than the MB/s.
4. **Measured: streaming** over the shards the last sdk round downloaded
   (``ShardStream.from_directory``, default order options, in this process):
   - **raw**: ``decode=False`` -- each sample's tar span read, parsed, its clip's SHA-256
     verified against its row, clip bytes + annotation + conditioning text -- over the
     whole epoch;
   - **decode**: ``frames=K`` (``--frames``) decoded into a ``uint8`` tensor per sample,
     the first ``--decode-samples`` samples of the same epoch order.
   samples/s of each and ``decode_slowdown = raw / decode``.

Prints human-readable lines, then one JSON line (the last line) with the figures, the
setup facts and the machine's (CPU count, load averages before and after).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import av
import httpx
import numpy as np
from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.core.migrate import upgrade_to_head
from backend.models.datasets import DatasetCreate, DatasetVersionStatus
from backend.services import datasets
from benchmarks.server import BackendProcess, backend_process, free_port, parse_size
from ingest.blobstore import LocalBlobStore
from shotbank.client.api import API_PREFIX, ShotbankClient
from shotbank.datasets.format import ShardEntry, ShardIndex
from tests.backend.datasets_world import DatasetWorld, annotation

GOAL: Final = 0.9
#: Bumped when the cached state's layout or the clips change, so old caches are rebuilt.
STATE_FORMAT: Final = 1
STATE_FILE: Final = "state.json"
DEFAULT_WORK: Final = Path(tempfile.gettempdir()) / "shotbank-bench-sdk"
#: Largest version the benchmark builds (the disk holds blobs, shards and two downloads).
MAX_GB: Final = 64.0
#: The same ceiling the SDK puts on download threads.
MAX_WORKERS: Final = 64
#: What each round downloads: the SDK, the plain baseline, and the baseline hashing SHA-256.
KINDS: Final = ("sdk", "sdk_cid", "plain", "plain_sha256")
#: Most clips one version may take (6 MB each on average; the cap stops a runaway loop).
MAX_CLIPS: Final = 100_000

WIDTH: Final = 640
HEIGHT: Final = 480
FPS: Final = 24
#: Contributors the clips are spread over (the manifest and lineage see several).
CONTRIBUTORS: Final = tuple("0x" + f"{n:02x}" * 20 for n in range(0xC1, 0xC9))
#: Who the dataset is recorded as created by (any operator address would do).
CREATOR: Final = "0x" + "0b" * 20
#: Camera sections the clips' annotations cycle through (conditioning text varies).
CAMERAS: Final[tuple[dict[str, str], ...]] = (
    {"movement": "static"},
    {"movement": "pan", "direction": "left"},
    {"movement": "tilt", "direction": "up"},
    {"movement": "dolly", "direction": "in"},
    {"movement": "handheld"},
)

_PROFILES: Final[dict[str, dict[str, Any]]] = {
    "full": {"gb": 2.0, "shard_size": 256 << 20, "decode_samples": 48},
    "quick": {"gb": 0.1, "shard_size": 16 << 20, "decode_samples": 8},
}


# --- the clips --------------------------------------------------------------------------------


def make_clip(index: int, *, seed: int) -> bytes:
    """A real H.264 MP4 of up to ~12 MB, the same bytes for the same ``(seed, index)``.

    A luma gradient moving at a drawn speed and angle under per-pixel noise of a drawn
    amplitude, coded at a drawn fixed quantiser: noise keeps the bitrate high (the point
    is a few MB per clip, so that 2 GB is a few hundred clips) and the draws keep every
    clip's size and content its own.
    """
    rng = np.random.default_rng([seed, index])
    amplitude = int(rng.integers(4, 20))
    qp = int(rng.integers(17, 25))
    count = int(rng.integers(round(2.3 * FPS), round(3.5 * FPS)))
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(2, 9)
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    ramp = (np.cos(angle) * cols + np.sin(angle) * rows).astype(np.float32)
    chroma = rng.integers(64, 192, size=2).astype(np.uint8)
    planes_uv = np.concatenate(
        [
            np.full((HEIGHT // 4, WIDTH), chroma[0], np.uint8),
            np.full((HEIGHT // 4, WIDTH), chroma[1], np.uint8),
        ]
    )
    output = io.BytesIO()
    with av.open(output, "w", format="mp4") as container:
        stream = container.add_stream(
            "libx264", rate=FPS, options={"preset": "ultrafast", "qp": str(qp)}
        )
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for number in range(count):
            luma = (ramp + speed * number).astype(np.int32) & 0xFF
            luma += rng.integers(-amplitude, amplitude + 1, size=luma.shape, dtype=np.int32)
            picture = np.concatenate([np.clip(luma, 0, 255).astype(np.uint8), planes_uv])
            frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
            frame.pts = number
            frame.time_base = Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return output.getvalue()


# --- the cached version -------------------------------------------------------------------------


class CachedVersion(BaseModel):
    """``state.json``: a packed version in ``<state>/var`` and how it was made."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = Field(ge=1)
    target_bytes: int = Field(ge=1)
    shard_bytes: int = Field(ge=1)
    seed: int = Field(ge=0)
    dataset_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    number: int = Field(ge=1)
    version_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    clips: int = Field(ge=1, le=MAX_CLIPS)
    clip_bytes: int = Field(ge=1)
    shards: int = Field(ge=1)
    total_bytes: int = Field(ge=1)
    generate_s: float = Field(ge=0)
    ingest_s: float = Field(ge=0)
    pack_s: float = Field(ge=0)


def state_dir(work: Path, *, target_bytes: int, shard_bytes: int, seed: int) -> Path:
    """Where the version of these options is cached under ``work``."""
    return work / f"state-v{STATE_FORMAT}-{target_bytes}-{shard_bytes}-{seed}"


def settings_for(var_dir: Path) -> Settings:
    """The backend's settings for building the version (SQLite under ``var_dir``, no chain).

    The caller's own ``SHOTBANK_*`` variables are ignored, as ``benchmarks/server.py``
    keeps them from the server: a database or blob directory set there must not receive
    the version the server is then started without.
    """
    saved = {
        name: os.environ.pop(name) for name in list(os.environ) if name.startswith("SHOTBANK_")
    }
    try:
        return Settings(
            environment="development",
            var_dir=var_dir,
            chain_rpc_url=f"http://127.0.0.1:{free_port()}",
            chain_rpc_timeout_s=1.0,
        )
    finally:
        os.environ.update(saved)


def _cached(
    folder: Path, *, target_bytes: int, shard_bytes: int, seed: int
) -> CachedVersion | None:
    """The cached version in ``folder`` if it is complete and of these options."""
    try:
        state = CachedVersion.model_validate_json((folder / STATE_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    wanted = (STATE_FORMAT, target_bytes, shard_bytes, seed)
    if (state.format, state.target_bytes, state.shard_bytes, state.seed) != wanted:
        return None
    if not (folder / "var" / "datasets" / state.version_hash / "index.json").is_file():
        return None
    return state


def build_version(
    folder: Path, *, target_bytes: int, shard_bytes: int, seed: int, log: Callable[[str], None]
) -> CachedVersion:
    """Generate, ingest, decide, freeze and pack a version into ``folder`` (emptied first)."""
    shutil.rmtree(folder, ignore_errors=True)
    settings = settings_for(folder / "var")
    engine = create_db_engine(settings)
    try:
        upgrade_to_head(engine)
        # fsync off: the setup is not measured, and the version is rebuilt if it is lost.
        world = DatasetWorld(settings, engine, LocalBlobStore(settings.blob_path, fsync=False))
        clips = clip_bytes = 0
        generate_s = ingest_s = 0.0
        while clip_bytes < target_bytes:
            if clips >= MAX_CLIPS:
                raise RuntimeError(f"{MAX_CLIPS} clips did not reach {target_bytes} bytes")
            started = time.perf_counter()
            data = make_clip(clips, seed=seed)
            generated = time.perf_counter()
            doc = annotation(
                scene={"description": f"Noise drifts over a gradient, take {clips}."},
                camera=CAMERAS[clips % len(CAMERAS)],
            )
            del doc["audio"]  # the clips are silent: ingest refuses a sound description
            owner = CONTRIBUTORS[clips % len(CONTRIBUTORS)]
            world.accepted(data, owner=owner, doc=doc, now=datetime.now(UTC))
            generate_s += generated - started
            ingest_s += time.perf_counter() - generated
            clips += 1
            clip_bytes += len(data)
            if clips % 25 == 0:
                log(
                    f"  {clips} clips, {clip_bytes / 1e9:.2f} of {target_bytes / 1e9:.2f} GB "
                    f"(generate {generate_s:.0f} s, ingest + consensus {ingest_s:.0f} s)"
                )
        started = time.perf_counter()
        with Session(engine) as db:
            dataset = datasets.create_dataset(
                db,
                request=DatasetCreate(
                    slug=f"bench-sdk-{seed}", title="SDK benchmark: every accepted clip"
                ),
                created_by=CREATOR,
                now=datetime.now(UTC),
            )
        frozen = datasets.freeze_version(
            engine,
            settings=settings,
            dataset_id=dataset.id,
            created_by=CREATOR,
            now=datetime.now(UTC),
            shard_bytes=shard_bytes,
        )
        if not datasets.pack_next(engine, settings=settings, blobs=world.blobs):
            raise RuntimeError("the packer found no version to pack")
        with Session(engine) as db:
            view = datasets.version_view(db, dataset_id=dataset.id, number=frozen.number)
        pack_s = time.perf_counter() - started
    finally:
        engine.dispose()
    if view.status != DatasetVersionStatus.READY or view.version_hash is None:
        raise RuntimeError(f"the version was not packed: {view.status} {view.error}")
    state = CachedVersion(
        format=STATE_FORMAT,
        target_bytes=target_bytes,
        shard_bytes=shard_bytes,
        seed=seed,
        dataset_id=dataset.id,
        number=view.number,
        version_hash=view.version_hash,
        clips=clips,
        clip_bytes=clip_bytes,
        shards=view.shards or 0,
        total_bytes=view.total_bytes or 0,
        generate_s=round(generate_s, 2),
        ingest_s=round(ingest_s, 2),
        pack_s=round(pack_s, 2),
    )
    # Written last: a folder without it is an interrupted build and is built again.
    (folder / STATE_FILE).write_text(state.model_dump_json(indent=1))
    return state


def ensure_version(
    work: Path, *, target_bytes: int, shard_bytes: int, seed: int, log: Callable[[str], None]
) -> tuple[Path, CachedVersion, bool]:
    """The state folder and its version, built unless cached; True when it was reused."""
    folder = state_dir(work, target_bytes=target_bytes, shard_bytes=shard_bytes, seed=seed)
    state = _cached(folder, target_bytes=target_bytes, shard_bytes=shard_bytes, seed=seed)
    if state is not None:
        return folder, state, True
    log(f"building the version in {folder} (cached for later runs)")
    state = build_version(
        folder, target_bytes=target_bytes, shard_bytes=shard_bytes, seed=seed, log=log
    )
    return folder, state, False


# --- downloads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One timed download of every shard."""

    kind: str
    seconds: float
    shard_bytes: int
    client_cpu_s: float
    server_cpu_s: float | None

    @property
    def mb_s(self) -> float:
        """Shard bytes per second, in MB (10^6 bytes)."""
        return self.shard_bytes / self.seconds / 1e6

    def figures(self) -> dict[str, Any]:
        """The run as JSON values."""
        return {
            "kind": self.kind,
            "s": round(self.seconds, 3),
            "mb_s": round(self.mb_s, 1),
            "client_cpu_s": round(self.client_cpu_s, 2),
            "server_cpu_s": None if self.server_cpu_s is None else round(self.server_cpu_s, 2),
        }


def sdk_download(
    client: ShotbankClient,
    state: CachedVersion,
    folder: Path,
    *,
    workers: int,
    progress: bool,
    verify_cid: bool = False,
) -> int:
    """``version.download`` into ``folder``; the shard bytes it received."""
    report = client.version(state.dataset_id, state.number).download(
        folder, workers=workers, progress=progress, verify_cid=verify_cid
    )
    if report.shards != state.shards or report.skipped or report.refetched:
        raise RuntimeError(f"the SDK did not fetch every shard once: {report}")
    return report.bytes_downloaded


def plain_download(
    base_url: str,
    token: str,
    state: CachedVersion,
    index: ShardIndex,
    folder: Path,
    *,
    workers: int,
    sha256: bool = False,
) -> int:
    """Every shard with plain ``httpx`` on ``workers`` threads, bodies written as received
    (``iter_raw``); with ``sha256``, each body also hashed as it arrives and checked."""
    folder.mkdir(parents=True)
    prefix = f"{API_PREFIX}/datasets/{state.dataset_id}/versions/{state.number}/shards/"

    def fetch(shard: ShardEntry) -> int:
        received = 0
        digest = hashlib.sha256()
        with (
            http.stream("GET", prefix + quote(shard.name, safe="")) as response,
            open(folder / shard.name, "wb") as out,
        ):
            response.raise_for_status()
            for chunk in response.iter_raw():
                out.write(chunk)
                if sha256:
                    digest.update(chunk)
                received += len(chunk)
        if sha256 and digest.hexdigest() != shard.sha256:
            raise RuntimeError(f"{shard.name}: the body does not hash to the index's SHA-256")
        return received

    with (
        httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
            limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
        ) as http,
        ThreadPoolExecutor(workers) as pool,
    ):
        return sum(pool.map(fetch, index.shards))


def check_plain(index: ShardIndex, folder: Path) -> None:
    """Every shard the plain client wrote has the index's size and SHA-256."""
    for shard in index.shards:
        path = folder / shard.name
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(8 << 20):
                digest.update(chunk)
        if path.stat().st_size != shard.size or digest.hexdigest() != shard.sha256:
            raise RuntimeError(f"the plain download of {shard.name} differs from the index")


def timed(kind: str, server: BackendProcess, download: Callable[[], int], expected: int) -> Run:
    """Time ``download`` with this process's and the server's CPU seconds."""
    server_before = server.cpu_seconds()
    cpu_before = time.process_time()
    started = time.perf_counter()
    received = download()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    server_after = server.cpu_seconds()
    if received != expected:
        raise RuntimeError(f"{kind}: received {received} shard bytes, the index has {expected}")
    server_cpu = (
        None if server_before is None or server_after is None else server_after - server_before
    )
    return Run(kind, seconds, received, cpu, server_cpu)


# --- streaming --------------------------------------------------------------------------------


def stream_rates(folder: Path, *, decode_samples: int, frames: int) -> dict[str, Any]:
    """Samples/s of a ``ShardStream`` over ``folder``: raw over the epoch, decoded over the
    first ``decode_samples`` of the same order."""
    from shotbank.datasets.stream import ShardStream  # torch: imported only when needed

    raw = ShardStream.from_directory(folder, decode=False)
    started = time.perf_counter()
    count = clip_bytes = 0
    for sample in raw:
        count += 1
        clip_bytes += len(sample["video"])
    raw_s = time.perf_counter() - started
    if count != raw.num_samples:
        raise RuntimeError(f"the raw stream gave {count} of {raw.num_samples} samples")
    decoded = ShardStream.from_directory(folder, frames=frames)
    wanted = min(decode_samples, decoded.num_samples)
    started = time.perf_counter()
    shapes = {tuple(sample["frames"].shape) for sample in itertools.islice(decoded, wanted)}
    decode_s = time.perf_counter() - started
    if shapes != {(frames, 3, HEIGHT, WIDTH)}:
        raise RuntimeError(f"decoded frames of unexpected shapes: {sorted(shapes)}")
    raw_rate = count / raw_s
    decode_rate = wanted / decode_s
    return {
        "stream_raw_samples": count,
        "stream_raw_s": round(raw_s, 3),
        "stream_raw_samples_s": round(raw_rate, 2),
        "stream_raw_mb_s": round(clip_bytes / raw_s / 1e6, 1),
        "stream_decode_samples": wanted,
        "stream_decode_frames": frames,
        "stream_decode_s": round(decode_s, 3),
        "stream_decode_samples_s": round(decode_rate, 2),
        "decode_slowdown": round(raw_rate / decode_rate, 1),
    }


# --- the run ----------------------------------------------------------------------------------


def _say(line: str) -> None:
    print(line, flush=True)


def _describe(run: Run) -> str:
    server = "?" if run.server_cpu_s is None else f"{run.server_cpu_s:.1f}"
    return (
        f"{run.kind} {run.mb_s:.0f} MB/s ({run.seconds:.2f} s, client CPU "
        f"{run.client_cpu_s:.1f} s, server CPU {server} s)"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build or reuse the version, serve it, measure; the figures (module docstring)."""
    loadavg_start = os.getloadavg()
    work: Path = args.work
    folder, state, reused = ensure_version(
        work,
        target_bytes=round(args.gb * 1e9),
        shard_bytes=args.shard_size,
        seed=args.seed,
        log=_say,
    )
    verb = "reused" if reused else "built"
    _say(
        f"version {state.version_hash[:12]} {verb}: {state.clips} clips "
        f"({state.clip_bytes / 1e9:.2f} GB), {state.shards} shards, "
        f"{state.total_bytes / 1e9:.2f} GB of shards"
    )
    if not reused:
        _say(
            f"setup: generate {state.generate_s:.0f} s, ingest + consensus "
            f"{state.ingest_s:.0f} s, freeze + pack {state.pack_s:.0f} s"
        )
    downloads = work / "downloads"
    shutil.rmtree(downloads, ignore_errors=True)
    operator: LocalAccount = Account.create()
    runs: list[Run] = []  # in the order they ran
    try:
        with (
            backend_process(
                folder / "var", settings={"SHOTBANK_OPERATORS": json.dumps([operator.address])}
            ) as server,
            ShotbankClient(server.url, timeout=60) as client,
        ):
            client.sign_in(operator)
            token = client.token
            assert token is not None
            index = client.version(state.dataset_id, state.number).index()
            if index.version_hash != state.version_hash:
                raise RuntimeError("the server serves another version than the cached one")
            kept = downloads / "stream"
            for number in range(args.rounds):
                # Each round starts with the next kind, so none always runs first.
                order = KINDS[number % len(KINDS) :] + KINDS[: number % len(KINDS)]
                for kind in order:
                    target = downloads / f"{kind}-{number}"
                    download: Callable[[], int]
                    if kind in ("sdk", "sdk_cid"):
                        download = partial(
                            sdk_download,
                            client,
                            state,
                            target,
                            workers=args.workers,
                            progress=args.progress,
                            verify_cid=kind == "sdk_cid",
                        )
                    else:
                        download = partial(
                            plain_download,
                            server.url,
                            token,
                            state,
                            index,
                            target,
                            workers=args.workers,
                            sha256=kind == "plain_sha256",
                        )
                    runs.append(timed(kind, server, download, state.total_bytes))
                    if kind == "sdk":
                        # The newest sdk download is what the streaming part reads.
                        shutil.rmtree(kept, ignore_errors=True)
                        target.rename(kept)
                    else:
                        if kind == "plain":
                            check_plain(index, target)
                        shutil.rmtree(target, ignore_errors=True)
                _say(
                    f"round {number + 1}/{args.rounds}: "
                    + ", ".join(_describe(r) for r in runs[-len(KINDS) :])
                )
        streaming = stream_rates(kept, decode_samples=args.decode_samples, frames=args.frames)
    finally:
        shutil.rmtree(downloads, ignore_errors=True)
    _say(
        f"streaming: raw {streaming['stream_raw_samples_s']:.1f} samples/s "
        f"({streaming['stream_raw_mb_s']:.0f} MB/s), decoded ({args.frames} frames) "
        f"{streaming['stream_decode_samples_s']:.2f} samples/s"
    )
    mb_s = {kind: statistics.median(r.mb_s for r in runs if r.kind == kind) for kind in KINDS}
    ratio = mb_s["sdk"] / mb_s["plain"]
    gb = state.total_bytes / 1e9
    cpu_s_per_gb = {
        kind: {
            "client": round(
                statistics.median(r.client_cpu_s for r in runs if r.kind == kind) / gb, 3
            ),
            "server": round(
                statistics.median(r.server_cpu_s or 0.0 for r in runs if r.kind == kind) / gb, 3
            ),
        }
        for kind in KINDS
    }
    return {
        "benchmark": "sdk_download_stream",
        "access": "operator",
        "version_hash": state.version_hash,
        "bytes": state.total_bytes,
        "shards": state.shards,
        "samples": state.clips,
        "shard_target_bytes": state.shard_bytes,
        "workers": args.workers,
        "rounds": args.rounds,
        "progress_bar": args.progress,
        "sdk_mb_s": round(mb_s["sdk"], 1),
        "plain_mb_s": round(mb_s["plain"], 1),
        "ratio": round(ratio, 3),
        "goal": GOAL,
        "met": ratio >= GOAL,
        "sdk_cid_mb_s": round(mb_s["sdk_cid"], 1),
        "plain_sha256_mb_s": round(mb_s["plain_sha256"], 1),
        "ratio_sdk_vs_plain_sha256": round(mb_s["sdk"] / mb_s["plain_sha256"], 3),
        "cpu_s_per_gb": cpu_s_per_gb,
        **streaming,
        "runs": [r.figures() for r in runs],
        "setup_reused": reused,
        "setup_generate_s": state.generate_s,
        "setup_ingest_s": state.ingest_s,
        "setup_pack_s": state.pack_s,
        "cpus": os.cpu_count(),
        "loadavg_start": [round(value, 2) for value in loadavg_start],
        "loadavg_end": [round(value, 2) for value in os.getloadavg()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; the last line printed is the JSON of figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a small smoke size: 0.1 GB in 16 MiB shards"
    )
    parser.add_argument("--gb", type=float, default=None, help="clip bytes, 10^9 (2.0)")
    parser.add_argument("--shard-size", type=parse_size, default=None, help="shard target (256MiB)")
    parser.add_argument("--workers", type=int, default=4, help="parallel downloads (4)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of sdk, plain, plain_sha256; medians (3)"
    )
    parser.add_argument(
        "--decode-samples", type=int, default=None, help="samples decoded when streaming (48)"
    )
    parser.add_argument("--frames", type=int, default=8, help="frames decoded per sample (8)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated clips (1)")
    parser.add_argument(
        "--progress", action="store_true", help="let version.download draw its progress bar"
    )
    parser.add_argument(
        "--work", type=Path, default=DEFAULT_WORK, help=f"cache of the version ({DEFAULT_WORK})"
    )
    args = parser.parse_args(argv)
    for name, value in _PROFILES["quick" if args.quick else "full"].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if not 0 < args.gb <= MAX_GB:
        parser.error(f"--gb must be in (0, {MAX_GB}]")
    if not 16 * 1024 <= args.shard_size <= 64 * 1024**3:
        parser.error("--shard-size must be within 16KiB..64GiB")
    if not 1 <= args.workers <= MAX_WORKERS:
        parser.error(f"--workers must be within 1..{MAX_WORKERS}")
    for name in ("rounds", "decode_samples", "frames"):
        if not 1 <= getattr(args, name) <= 10_000:
            parser.error(f"--{name.replace('_', '-')} must be within 1..10000")
    if args.seed < 0:
        parser.error("--seed must not be negative")
    figures = run(args)
    verdict = "met" if figures["met"] else "NOT met"
    _say(
        f"median: sdk {figures['sdk_mb_s']:.0f} MB/s, plain httpx {figures['plain_mb_s']:.0f} "
        f"MB/s, ratio {figures['ratio']:.2f} (goal >= {GOAL}: {verdict}); plain httpx + "
        f"SHA-256 {figures['plain_sha256_mb_s']:.0f} MB/s"
    )
    cpu = figures["cpu_s_per_gb"]
    _say(
        "CPU s per GB (client + server): "
        + ", ".join(
            f"{kind} {cpu[kind]['client']:.2f} + {cpu[kind]['server']:.2f}" for kind in KINDS
        )
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
