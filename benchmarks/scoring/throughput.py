"""Scorer throughput: decode-only, encode-only and end-to-end clips/s on the same clips.

    python -m benchmarks.scoring.throughput [--model ViT-B-32] [--clips 64] [--repeat 3]
        [--workers 2] [--worker-nice 5] [--batch-clips 8] [--batch-timeout S]
        [--prefetch P] [--torch-threads T] [--device cpu|cuda]
        [--precision fp32|amp_bf16|bf16|fp16]

1. Setup (not measured): builds the scorer. ``ViT-B-32`` (the deployment architecture)
   is built by open_clip **with random weights** -- weights do not change speed -- and
   marked as such (tag ``random-init``; its numbers mean nothing, which is why this path
   exists only here); ``shotbank-tiny`` loads the in-project pinned weights. Device and
   precision are picked as the validator picks them (``scoring.device``) unless given.
   Then ``--clips`` real H.264/AAC clips are written with ``scoring.clipgen`` to a
   temporary directory: 2-4 s, ``--size`` (640x360), a mix of camera moves over textured
   pictures and held synthetic scenes, each with sound.
2. Warm-up (not measured): the pipeline's decode workers start, and one batch of each
   shape goes through the model (kernel selection, caches).
3. Measured, on the same clips, ``--repeat`` rounds of, in this order:
   - **decode-only**: stage 1 alone (decode, motion, junk, sound, preprocessing) through
     the pipeline's own worker pool and prefetch window (``ScoringPipeline.analyse_only``);
   - **encode-only**: stage 2 alone (``Scorer.embed``) on the analyses decode-only
     produced, ``--batch-clips`` clips per forward pass as the pipeline batches;
   - **end-to-end**: ``ScoringPipeline.run`` over all clips, stages 1-3.

   The pipeline is configured as a validator node configures it unless told otherwise:
   2 decode workers at nice 5 (``--workers``, ``--worker-nice``) and the batch timeout
   of the model's device (``--batch-timeout``; 5 s on a CPU, 0.05 s on a GPU).

Figures: clips/s of each (medians of the rounds; every round is in ``rounds``),
``efficiency = end_to_end / min(decode_only, encode_only)`` (goal 0.85), and, because
on a CPU-only machine decoding and inference compete for the same cores,
``shared_cpu_bound = 1 / (1/decode_only + 1/encode_only)``: what a perfect
pipeline reaches when both stages can only take turns on the cores (decode-only and
encode-only each had all of them), with ``efficiency_vs_shared_cpu_bound``. CPU seconds
used by the inference process and by the workers in each phase (``cores_busy``), and the
load average before and after, tell how much of the machine the run really had; CPU
seconds per clip (``cpu_s_per_clip``) and ``pipelining_cpu_overhead`` (what end-to-end
costs beyond decode-only + encode-only) hardly depend on other load. On a CUDA machine
the figures are per GPU (one GPU is used).

Prints human-readable lines, then one JSON line (the last line) with every figure, the
hardware and the configuration.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final, TypeVar

import torch

from scoring._openclip import open_clip
from scoring.clipgen import (
    Move,
    camera_move_frames,
    scene_frames,
    textured_canvas,
    tone,
    white_noise,
    write_clip,
)
from scoring.device import select_compute
from scoring.models import ScoringModel, _preprocessing_id, load_model
from scoring.pipeline import ScoringJob, ScoringPipeline
from scoring.profiles import load_profiles, profile_for
from scoring.report import ModelIdentity
from scoring.scorer import Analysis, Scorer
from scoring.synthetic import COLOURS, SHAPES, TEXTURES, Scene
from shotbank.annotation import Annotation
from shotbank.annotation.vocabulary import LightingSetup

GOAL: Final = 0.85
#: Tag that marks a model built with random weights (never a registry tag).
RANDOM_INIT: Final = "random-init"
_MOVES: Final[tuple[tuple[Move, str, str | None], ...]] = (
    ("pan_left", "pan", "left"),
    ("pan_right", "pan", "right"),
    ("tilt_up", "tilt", "up"),
    ("zoom_in", "zoom", "in"),
    ("zoom_out", "zoom", "out"),
    ("static", "static", None),
)
_RIGHTS: Final = {
    "licence": "cc0-1.0",
    "model_release": "not_required",
    "location_release": "not_required",
}
T = TypeVar("T")


# --- setup --------------------------------------------------------------------------------


def random_init_scorer(name: str, *, device: str | None, precision: str | None) -> Scorer:
    """A scorer over open_clip's ``name`` with random weights, for timing only.

    Its identity says ``random-init`` (with a digest of that phrase as the weights hash),
    and its profile is a copy of the model's real profile under that tag: nothing it
    produces can pass for a real verdict.
    """
    plan = select_compute(device, precision)
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=None, precision=plan.precision, device=plan.device
    )
    model.eval()
    identity = ModelIdentity(
        model=name,
        tag=RANDOM_INIT,
        weights_sha256=hashlib.sha256(f"{name}/{RANDOM_INIT}".encode()).hexdigest(),
        preprocessing=_preprocessing_id(open_clip.get_model_preprocess_cfg(model)),
    )
    scoring_model = ScoringModel(
        model=model,
        preprocess=preprocess,
        tokenizer=open_clip.get_tokenizer(name),
        identity=identity,
        plan=plan,
    )
    real = next((p for (m, _), p in load_profiles().items() if m == name), None)
    if real is None:
        raise SystemExit(f"no scoring profile for {name}: add one to scoring/profiles.json")
    return Scorer(scoring_model, real.model_copy(update={"tag": RANDOM_INIT}))


def build_scorer(name: str, *, device: str | None, precision: str | None) -> Scorer:
    """The in-project model with its pinned weights, any other architecture random."""
    if name == "shotbank-tiny":
        model = load_model(name, "synthetic-v1", device=device, precision=precision)
        return Scorer(model, profile_for(model.identity))
    return random_init_scorer(name, device=device, precision=precision)


def _annotation(description: str, movement: str, direction: str | None) -> Annotation:
    camera: dict[str, Any] = {"movement": movement}
    if direction is not None:
        camera["direction"] = direction
    return Annotation.model_validate(
        {
            "schema_version": "1",
            "scene": {"description": description, "setting": "exterior"},
            "camera": camera,
            "lighting": {"setup": "natural"},
            "audio": {"genre": "ambience", "dialogue": False, "recording": "field"},
            "rights": _RIGHTS,
        }
    )


def generate_clips(folder: Path, count: int, *, size: tuple[int, int]) -> list[ScoringJob]:
    """``count`` clips of 2-4 s at ``size``: camera moves over textured pictures and held
    synthetic scenes, alternately, each with a tone or noise; annotated truthfully."""
    colours, shapes = list(COLOURS), list(SHAPES)
    jobs = []
    for index in range(count):
        seconds = 2.0 + index % 3
        sound = (
            tone(220.0 + 40 * index, seconds=seconds)
            if index % 2
            else white_noise(seconds=seconds, seed=index)
        )
        if index % 2:
            colour, shape = colours[index % len(colours)], shapes[index % len(shapes)]
            scene = Scene(colour, shape, LightingSetup.NATURAL, TEXTURES[index % len(TEXTURES)])
            frames = scene_frames(scene, seconds=seconds, size=size, seed=index)
            note = _annotation(f"A {colour} {shape}.", "static", None)
        else:
            move, movement, direction = _MOVES[(index // 2) % len(_MOVES)]
            canvas = textured_canvas(size[0] * 2, size[1] * 2, seed=index)
            frames = camera_move_frames(canvas, move, seconds=seconds, size=size)
            note = _annotation("A textured wall.", movement, direction)
        path = write_clip(folder / f"clip-{index:03d}.mp4", frames, audio=sound)
        jobs.append(ScoringJob(key=index, path=path, annotation=note))
    return jobs


# --- measuring ----------------------------------------------------------------------------


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a live process; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def phase(pipe: ScoringPipeline, into: dict[str, Any]) -> Iterator[None]:
    """Time a phase: wall seconds, CPU seconds of this process and of the workers."""
    pids = pipe.worker_pids()
    workers_before = {pid: _process_cpu(pid) for pid in pids}
    cpu_before = time.process_time()
    started = time.perf_counter()
    yield
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    workers = sum(_process_cpu(pid) - workers_before.get(pid, 0.0) for pid in pipe.worker_pids())
    into.update(
        wall_s=round(wall, 3),
        inference_process_cpu_s=round(cpu, 2),
        workers_cpu_s=round(workers, 2),
        cores_busy=round((cpu + workers) / wall, 2) if wall else None,
    )


def _batches(items: Sequence[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def warm_up(pipe: ScoringPipeline, jobs: Sequence[ScoringJob]) -> None:
    """Start the workers and fill the caches a running validator has filled: one batch
    end to end (the scene scorer's distractor bank is encoded on first use: about a
    minute for ViT-B-32 on two CPU cores), then a forward pass of one clip."""
    results = list(pipe.run(jobs[: pipe.batch_clips]))
    errors = [r.result for r in results if isinstance(r.result, BaseException)]
    if errors:
        raise RuntimeError(f"warm-up failed: {errors[0]!r}")
    analyses = [a for _, a in pipe.analyse_only(jobs[:1]) if isinstance(a, Analysis)]
    pipe.scorer.embed(analyses)


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def measure(
    scorer: Scorer,
    jobs: Sequence[ScoringJob],
    *,
    workers: int,
    batch_clips: int,
    prefetch: int | None,
    batch_timeout_s: float | None,
    worker_nice: int,
    repeat: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The three phases on ``jobs`` with one pipeline, ``repeat`` rounds (module
    docstring); rates are the medians of the rounds."""
    rounds: list[dict[str, dict[str, Any]]] = []
    with ScoringPipeline(
        scorer,
        workers=workers,
        batch_clips=batch_clips,
        prefetch=prefetch,
        batch_timeout_s=batch_timeout_s,
        worker_nice=worker_nice,
    ) as pipe:
        warm_up(pipe, jobs)
        say(f"warm; {len(pipe.worker_pids())} worker(s), prefetch {pipe.prefetch}")
        before = pipe.stats()
        for number in range(1, repeat + 1):
            phases: dict[str, dict[str, Any]] = {
                "decode_only": {},
                "encode_only": {},
                "end_to_end": {},
            }
            with phase(pipe, phases["decode_only"]):
                decoded = list(pipe.analyse_only(jobs))
            failures = [r for _, r in decoded if not isinstance(r, Analysis) or r.failed]
            if failures:
                raise RuntimeError(f"{len(failures)} generated clip(s) failed: {failures[:1]}")
            analyses = [r for _, r in decoded if isinstance(r, Analysis)]

            with phase(pipe, phases["encode_only"]):
                for batch in _batches(analyses, batch_clips):
                    scorer.embed(batch)
            del analyses, decoded

            with phase(pipe, phases["end_to_end"]):
                results = list(pipe.run(jobs))
            errors = [r.result for r in results if isinstance(r.result, BaseException)]
            if errors or len(results) != len(jobs):
                raise RuntimeError(f"the pipeline failed on {len(errors)} clip(s): {errors[:1]}")
            for figures in phases.values():
                figures["clips_s"] = round(len(jobs) / figures["wall_s"], 3)
                figures["cpu_s_per_clip"] = round(
                    (figures["inference_process_cpu_s"] + figures["workers_cpu_s"]) / len(jobs), 3
                )
            say(
                f"round {number}: "
                + ", ".join(
                    f"{name} {f['clips_s']:.2f} clips/s ({f['cores_busy']:.2f} cores busy)"
                    for name, f in phases.items()
                )
            )
            rounds.append(phases)
        stats = pipe.stats()
        prefetch_used = pipe.prefetch
        batch_timeout_used = pipe.batch_timeout_s
    rates = {name: _median([r[name]["clips_s"] for r in rounds]) for name in rounds[0]}
    cpu = {name: _median([r[name]["cpu_s_per_clip"] for r in rounds]) for name in rounds[0]}
    decode, encode, end = rates["decode_only"], rates["encode_only"], rates["end_to_end"]
    bound = 1.0 / (1.0 / decode + 1.0 / encode)
    efficiency = end / min(decode, encode)
    measured = stats.finished - before.finished
    judge_s = stats.judge_seconds - before.judge_seconds
    return {
        "decode_only_clips_s": round(decode, 3),
        "encode_only_clips_s": round(encode, 3),
        "end_to_end_clips_s": round(end, 3),
        "efficiency": round(efficiency, 3),
        "goal": GOAL,
        "met": efficiency >= GOAL,
        "shared_cpu_bound_clips_s": round(bound, 3),
        "efficiency_vs_shared_cpu_bound": round(end / bound, 3),
        "bottleneck": "encode" if encode < decode else "decode",
        "cpu_s_per_clip": cpu,
        # CPU the pipeline spends per clip beyond what the two stages cost alone
        # (process hand-over, threads competing for cores): insensitive to other load.
        "pipelining_cpu_overhead": round(
            cpu["end_to_end"] / (cpu["decode_only"] + cpu["encode_only"]) - 1.0, 3
        ),
        "rounds": rounds,
        "pipeline": {
            "prefetch": prefetch_used,
            "batch_timeout_s": batch_timeout_used,
            "mean_batch_clips": round(
                (stats.batched_clips - before.batched_clips)
                / max(stats.batches - before.batches, 1),
                2,
            ),
            "batches": stats.batches,
            "judge_ms_per_clip": round(1000 * judge_s / max(measured, 1), 1),
            "end_to_end_clips": measured,
            "worker_crashes": stats.worker_crashes,
        },
        "stats": asdict(stats),
    }


# --- reporting ----------------------------------------------------------------------------


def hardware(scorer: Scorer) -> dict[str, Any]:
    """What the figures were measured on."""
    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    plan = scorer.model.plan
    figures: dict[str, Any] = {
        "cpu": cpu_model,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "device": plan.device,
        "precision": plan.precision,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if plan.device_type == "cuda":
        figures["gpu"] = torch.cuda.get_device_name(plan.device)
        figures["gpus_used"] = 1
    return figures


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 640x360)") from None
    if not (16 <= size[0] <= 3840 and 16 <= size[1] <= 2160) or size[0] % 2 or size[1] % 2:
        raise argparse.ArgumentTypeError("width and height must be even, 16x16 to 3840x2160")
    return size


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; the last line printed is the JSON of figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ViT-B-32", help="ViT-B-32 (random) or shotbank-tiny")
    parser.add_argument("--clips", type=int, default=64, help="clips generated and scored (64)")
    parser.add_argument("--size", type=_size, default=(640, 360), help="clip size (640x360)")
    # Workers and their niceness default to what a validator node runs with
    # (SHOTBANK_VALIDATOR_WORKERS=2, workers at nice 5), so the figures are the node's.
    parser.add_argument("--workers", type=int, default=2, help="decode worker processes (2)")
    parser.add_argument("--batch-clips", type=int, default=8, help="clips per forward pass (8)")
    parser.add_argument("--prefetch", type=int, default=None, help="clips in stage 1 at most")
    parser.add_argument(
        "--batch-timeout", type=float, default=None, help="seconds (the pipeline's, by device)"
    )
    parser.add_argument(
        "--torch-threads", type=int, default=None, help="inference threads (torch's default)"
    )
    parser.add_argument("--worker-nice", type=int, default=5, help="added to workers' nice (5)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (auto)")
    parser.add_argument("--precision", default=None, help="fp32, amp_bf16, bf16, fp16 (auto)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians reported (3)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the clips are written")
    args = parser.parse_args(argv)
    if not 1 <= args.clips <= 10_000 or not 1 <= args.repeat <= 100:
        parser.error("--clips must be 1-10000 and --repeat 1-100")
    if not 0 <= args.workers <= 256 or not 1 <= args.batch_clips <= 1024:
        parser.error("--workers must be 0-256 and --batch-clips 1-1024")
    if args.torch_threads is not None:
        if not 1 <= args.torch_threads <= 256:
            parser.error("--torch-threads must be 1-256")
        torch.set_num_threads(args.torch_threads)

    def say(line: str) -> None:
        print(line, flush=True)

    scorer = build_scorer(args.model, device=args.device, precision=args.precision)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-scoring-", dir=args.workdir) as folder:
        started = time.perf_counter()
        jobs = generate_clips(Path(folder), args.clips, size=args.size)
        say(f"{len(jobs)} clips written in {time.perf_counter() - started:.1f} s")
        figures = measure(
            scorer,
            jobs,
            workers=args.workers,
            batch_clips=args.batch_clips,
            prefetch=args.prefetch,
            batch_timeout_s=args.batch_timeout,
            worker_nice=args.worker_nice,
            repeat=args.repeat,
            say=say,
        )
    result = {
        "benchmark": "scoring_throughput",
        **figures,
        "clips": args.clips,
        "model": scorer.model.identity.model_dump(),
        "config": {
            "clip_size": list(args.size),
            "clip_seconds": [2, 4],
            "frames_per_clip": scorer.frame_count,
            "workers": args.workers,
            "batch_clips": args.batch_clips,
            "batch_timeout_s": figures["pipeline"]["batch_timeout_s"],
            "worker_nice": args.worker_nice,
            "repeat": args.repeat,
        },
        "hardware": hardware(scorer),
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
    }
    if scorer.model.plan.device_type == "cuda":
        result["end_to_end_clips_s_per_gpu"] = figures["end_to_end_clips_s"]
    verdict = "met" if figures["met"] else "NOT met"
    say(
        f"decode-only {figures['decode_only_clips_s']:.2f}, encode-only "
        f"{figures['encode_only_clips_s']:.2f}, end-to-end {figures['end_to_end_clips_s']:.2f} "
        f"clips/s; efficiency {figures['efficiency']:.2f} (goal >= {GOAL}: {verdict}); "
        f"shared-CPU bound {figures['shared_cpu_bound_clips_s']:.2f} clips/s"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
