"""Scoring a stream of clips: decoding in worker processes, inference batched across clips.

The scorer's three stages (``docs/decisions/0004-scorer-stages.md``) placed for
throughput:

- **stage 1** (:func:`scoring.scorer.analyse_clip`: decode, motion, junk, sound,
  preprocessing) runs in a :class:`~concurrent.futures.ProcessPoolExecutor` of
  ``workers`` processes started with ``forkserver`` (``spawn`` where there is none: torch
  and ``fork`` do not mix), each with one torch, one OpenCV and one video-decoder thread;
- **stage 2** (:meth:`Scorer.embed`) runs in one inference thread of the calling process,
  on the analyses that are ready: up to ``batch_clips`` clips (and ``max_batch_frames``
  frames) per forward pass, waiting at most ``batch_timeout_s`` for a batch to fill while
  more clips are still decoding (by default :data:`ACCELERATOR_BATCH_TIMEOUT_S` when the
  model runs on an accelerator, :data:`CPU_BATCH_TIMEOUT_S` on a CPU);
- **stage 3** (:meth:`Scorer.judge`) runs right after, in the same thread.

At most ``prefetch`` clips are in stage 1 at once (decoding, or decoded and waiting for
the inference thread) and at most ``batch_clips`` in stages 2-3, so memory stays bounded
(a ViT-B-32 analysis holds 1.2 MB of frames) while the model never waits for a decode.
Jobs submitted beyond that wait in a queue (paths only) of at most ``max_queued``.

Use::

    with ScoringPipeline(scorer, workers=2, batch_clips=8) as pipe:
        for job, result in pipe.run(jobs):  # completion order, not submission order
            ...

or, for a node that receives work over time, :meth:`~ScoringPipeline.submit` (never
blocks; :attr:`~ScoringPipeline.free_slots` says how many more jobs start at once) and
:meth:`~ScoringPipeline.poll` (finished results, waiting up to ``timeout`` for the
first), then :meth:`~ScoringPipeline.close`, which returns the jobs never finished so
their leases can be handed back.

What comes back for each job (a :class:`ScoredJob`) is its :class:`ClipScores`, or an
exception when the *scorer* failed on it:

- media that cannot be decoded (any :class:`scoring.errors.MediaError`) is a verdict:
  ``ClipScores(outcome=failed)`` with the error's code, never an exception;
- a clip whose decode worker dies (a decoder crash, the kernel's OOM killer, a ``kill``)
  is **retried once**: every job that was in the pool when a worker died is re-run
  alone, one at a time, and a job whose solo re-run kills a worker again gets a failed
  verdict with code :data:`WORKER_CRASHED` (so a crash is pinned on the clip that
  causes it, never on the clips decoded beside it). After :data:`MAX_CRASH_VERDICTS`
  such verdicts in a row without a clip decoded between them, the pipeline stops
  instead: the workers are broken, not the clips;
- anything else -- a missing file (the caller's fault, not the clip's), a bug, the model
  failing -- is returned as the exception in place of the verdict, so the node hands
  that lease back instead of signing a verdict the clip did not earn. When a batched
  forward pass fails, its clips are re-run one by one so only the culprit gets it.

:class:`RayScoringPipeline` has the same interface for a Ray cluster (``--ray ADDRESS``):
one actor per GPU (or ``actors`` CPU actors) each holding a scorer built from a
picklable :class:`ScorerSpec`, stage 1 as Ray tasks, dispatch with ``ray.wait``.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import signal
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Full, SimpleQueue
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Self

import cv2
import numpy as np
import numpy.typing as npt
import torch
from pydantic import BaseModel, ConfigDict, Field

from scoring.device import Precision
from scoring.errors import WorkerCrashedError
from scoring.models import load_model
from scoring.profiles import profile_for
from scoring.report import ClipScores, ModelIdentity, Outcome, Reason
from scoring.scorer import Analysis, Scorer, analyse_clip
from shotbank.annotation import Annotation
from shotbank.annotation.vocabulary import LightingSetup

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

__all__ = [
    "ACCELERATOR_BATCH_TIMEOUT_S",
    "CPU_BATCH_TIMEOUT_S",
    "MAX_CRASH_VERDICTS",
    "WORKER_CRASHED",
    "PipelineStats",
    "RayScoringPipeline",
    "ScoredJob",
    "ScorerSpec",
    "ScoringJob",
    "ScoringPipeline",
    "analysis_task",
]

#: Reason code of the failed verdict on a clip whose decode killed a worker twice.
WORKER_CRASHED: Final = WorkerCrashedError.code
#: Crash verdicts in a row (no clip decoded between them) after which the pipeline stops.
MAX_CRASH_VERDICTS: Final = 3
#: Upper bounds on the knobs (a typo should not start 10,000 processes).
MAX_WORKERS: Final = 256
MAX_BATCH_CLIPS: Final = 1024
MAX_PREFETCH: Final = 8192
MAX_QUEUED: Final = 1_000_000
#: Seconds running decodes get to finish when a pipeline closes, before they are killed.
_WORKER_GRACE_S: Final = 0.5
#: Most bytes of one clip shipped through Ray's object store (``ship_media``).
MAX_SHIPPED_BYTES: Final = 2 << 30
#: How long a batch waits to fill while clips are still decoding, by default, when the
#: model runs on an accelerator: an idle accelerator is throughput lost, so it takes what
#: is ready almost at once.
ACCELERATOR_BATCH_TIMEOUT_S: Final = 0.05
#: The same on a CPU, where waiting is cheap and small batches are dear: the cores a
#: waiting model leaves are the ones stage 1 decodes on, and a forward pass has a fixed
#: cost a small batch pays in full (ViT-B-32 under bf16 autocast on two cores: a pass over
#: 8 frames costs about half the CPU of one over 64). So it waits for a full batch while
#: more clips are coming.
CPU_BATCH_TIMEOUT_S: Final = 5.0


# --- jobs and results ---------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringJob:
    """One clip to score: a readable file, its annotation, and a key of the caller's.

    ``key`` is opaque to the pipeline (a lease id, say) and unique among the jobs not yet
    returned; ``clip_id``, when the clip may already be in the scorer's duplicate index,
    keeps it from being flagged as a duplicate of itself.
    """

    key: Hashable
    path: Path
    annotation: Annotation
    clip_id: str | None = None


class ScoredJob(NamedTuple):
    """A finished job: its :class:`ClipScores`, or the exception the scorer failed with."""

    job: ScoringJob
    result: ClipScores | BaseException


@dataclass(frozen=True)
class PipelineStats:
    """Counters since the pipeline started (for status lines, metrics and benchmarks)."""

    submitted: int
    #: Jobs with a result (verdict or exception).
    finished: int
    #: Verdicts with ``outcome=failed`` (undecodable media, crash verdicts).
    failed_outcomes: int
    #: Results that are exceptions.
    errors: int
    #: Times a decode worker died (each breaks the pool, which is replaced).
    worker_crashes: int
    #: Jobs re-run after a worker died under them.
    retries: int
    batches: int
    batched_clips: int
    batched_frames: int
    #: Most jobs in stages 1-3 at once (never above ``prefetch`` + inference capacity).
    peak_in_flight: int
    #: Time spent in stage 2 (forward passes) and stage 3 (verdicts).
    embed_seconds: float
    judge_seconds: float

    @property
    def mean_batch_clips(self) -> float:
        """Clips per forward pass, on average."""
        return self.batched_clips / self.batches if self.batches else 0.0


@dataclass
class _Counters:
    submitted: int = 0
    finished: int = 0
    failed_outcomes: int = 0
    errors: int = 0
    worker_crashes: int = 0
    retries: int = 0
    batches: int = 0
    batched_clips: int = 0
    batched_frames: int = 0
    peak_in_flight: int = 0
    embed_seconds: float = 0.0
    judge_seconds: float = 0.0


@dataclass(eq=False)
class _Entry:
    """A job inside the pipeline."""

    job: ScoringJob
    seq: int
    crashes: int = 0
    #: Re-run alone after a crash.
    solo: bool = False
    #: The worker pool it was given to (pools are replaced when a worker dies).
    generation: int = 0
    analysis: Analysis | None = field(default=None, repr=False)


def analysis_task(scorer: Scorer) -> Callable[..., Analysis]:
    """The scorer's stage 1 as a picklable callable for worker processes: called with a
    path and ``lighting=`` the declared setup, it does what :meth:`Scorer.analyse` does."""
    return functools.partial(
        analyse_clip,
        preprocess=scorer.preprocess,
        frame_count=scorer.frame_count,
        junk_thresholds=scorer.profile.junk,
        camera_thresholds=scorer.profile.camera,
        audio_thresholds=scorer.profile.audio,
        audio_excerpt_s=scorer.audio_excerpt_s if scorer.audio_model is not None else None,
        limits=scorer.limits,
    )


def _crash_verdict(identity: ModelIdentity, pass_threshold: float, attempts: int) -> ClipScores:
    return ClipScores(
        outcome=Outcome.FAILED,
        pass_threshold=pass_threshold,
        passed=False,
        reasons=(
            Reason(
                code=WORKER_CRASHED,
                message=(
                    f"decoding the clip killed its worker process {attempts} times, the last "
                    "time with no other clip beside it"
                ),
            ),
        ),
        model=identity,
    )


def _default_batch_timeout(device_type: str) -> float:
    return CPU_BATCH_TIMEOUT_S if device_type == "cpu" else ACCELERATOR_BATCH_TIMEOUT_S


def _check_knobs(batch_clips: int, prefetch: int, max_queued: int, batch_timeout_s: float) -> None:
    if not 1 <= batch_clips <= MAX_BATCH_CLIPS:
        raise ValueError(f"batch_clips must be 1-{MAX_BATCH_CLIPS}")
    if not 1 <= prefetch <= MAX_PREFETCH:
        raise ValueError(f"prefetch must be 1-{MAX_PREFETCH}")
    if not 0 <= max_queued <= MAX_QUEUED:
        raise ValueError(f"max_queued must be 0-{MAX_QUEUED}")
    if not 0.0 <= batch_timeout_s <= 60.0:
        raise ValueError("batch_timeout_s must be 0-60 seconds")


# --- what both pipelines share ------------------------------------------------------------


class _Pipeline(ABC):
    """Job bookkeeping, back-pressure, results and closing; subclasses run the stages in
    their serving thread."""

    def __init__(
        self, *, batch_clips: int, prefetch: int, max_queued: int, batch_timeout_s: float
    ) -> None:
        _check_knobs(batch_clips, prefetch, max_queued, batch_timeout_s)
        self.batch_clips = batch_clips
        self.prefetch = prefetch
        self.max_queued = max_queued
        self.batch_timeout_s = batch_timeout_s
        # One re-entrant lock for all bookkeeping: future callbacks may run at once in the
        # thread that registers them, which already holds it.
        self._cond = threading.Condition(threading.RLock())
        self._seq = itertools.count()
        #: Accepted jobs without a result yet, by sequence number.
        self._live: dict[int, _Entry] = {}
        #: Waiting for a stage-1 slot.
        self._queued: deque[_Entry] = deque()
        #: In stage 1 (given to a decoder, its analysis not yet taken for inference).
        self._stage1: set[int] = set()
        #: Taken for inference (gathered into a batch, or in stages 2-3).
        self._inferring: set[int] = set()
        self._results: deque[ScoredJob] = deque()
        #: Keys of jobs not yet returned by poll().
        self._keys: set[Hashable] = set()
        self._counters = _Counters()
        self._closed = False
        self._stopping = False
        self._fatal: BaseException | None = None
        self._thread: threading.Thread | None = None

    # -- capacity --------------------------------------------------------------------------

    @property
    @abstractmethod
    def inference_capacity(self) -> int:
        """Most clips in stages 2-3 at once."""

    @property
    @abstractmethod
    def identity(self) -> ModelIdentity:
        """The model every verdict is made with."""

    @property
    def window(self) -> int:
        """Most jobs in stages 1-3 at once: ``prefetch`` + :attr:`inference_capacity`."""
        return self.prefetch + self.inference_capacity

    def _in_flight_locked(self) -> int:
        return len(self._stage1) + len(self._inferring)

    @property
    def in_flight(self) -> int:
        """Jobs in stages 1-3 now."""
        with self._cond:
            return self._in_flight_locked()

    @property
    def queued(self) -> int:
        """Jobs accepted and waiting for a stage-1 slot."""
        with self._cond:
            return self._waiting_locked()

    def _waiting_locked(self) -> int:
        return len(self._queued)

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet returned by :meth:`poll` (whatever their stage)."""
        with self._cond:
            return len(self._keys)

    @property
    def free_slots(self) -> int:
        """How many more jobs fit in the :attr:`window` (stages 1-3) beside those in it and
        those queued: what a node should lease at most right now. 0 once closed."""
        with self._cond:
            if self._closed or self._fatal is not None:
                return 0
            busy = self._in_flight_locked() + self._waiting_locked()
            return max(0, self.window - busy)

    def stats(self) -> PipelineStats:
        """The counters so far."""
        with self._cond:
            c = self._counters
            return PipelineStats(
                submitted=c.submitted,
                finished=c.finished,
                failed_outcomes=c.failed_outcomes,
                errors=c.errors,
                worker_crashes=c.worker_crashes,
                retries=c.retries,
                batches=c.batches,
                batched_clips=c.batched_clips,
                batched_frames=c.batched_frames,
                peak_in_flight=c.peak_in_flight,
                embed_seconds=c.embed_seconds,
                judge_seconds=c.judge_seconds,
            )

    # -- the caller's side -----------------------------------------------------------------

    def submit(self, job: ScoringJob) -> None:
        """Accept ``job``; never blocks. It starts at once when stage 1 has room, else it
        waits in the queue (:attr:`free_slots` says how many fit the window).

        Raises :class:`queue.Full` when ``max_queued`` jobs already wait,
        :class:`ValueError` for a key already pending, :class:`RuntimeError` once the
        pipeline is closed or has stopped on an error.
        """
        with self._cond:
            if self._fatal is not None:
                raise RuntimeError(f"the scoring pipeline stopped: {self._fatal!r}") from (
                    self._fatal
                )
            if self._closed:
                raise RuntimeError("the scoring pipeline is closed")
            if job.key in self._keys:
                raise ValueError(f"a job with key {job.key!r} is already pending")
            if self._waiting_locked() >= self.max_queued:
                raise Full(f"{self.max_queued} jobs already wait for the scoring pipeline")
            entry = _Entry(job=job, seq=next(self._seq))
            self._live[entry.seq] = entry
            self._keys.add(job.key)
            self._queued.append(entry)
            self._counters.submitted += 1
            self._pump_locked()
            self._cond.notify_all()

    def poll(self, timeout: float | None = 0.0) -> list[ScoredJob]:
        """The results finished since the last call, in completion order. Waits up to
        ``timeout`` seconds (``None``: as long as it takes) for the first when there is
        none yet and jobs are pending; returns ``[]`` at once when nothing is pending."""
        with self._cond:
            if not self._results and self._live and (timeout is None or timeout > 0):
                self._cond.wait_for(lambda: bool(self._results) or not self._live, timeout)
            out = list(self._results)
            self._results.clear()
            for scored in out:
                self._keys.discard(scored.job.key)
            return out

    def run(self, jobs: Iterable[ScoringJob]) -> Iterator[ScoredJob]:
        """Score ``jobs`` (read lazily, as slots free up) and yield every result as it
        finishes (completion order), until the pipeline is empty."""
        source = iter(jobs)
        more = True
        while True:
            while more and self.free_slots > 0:
                job = next(source, None)
                if job is None:
                    more = False
                else:
                    self.submit(job)
            if not more and not self.pending:
                return
            yield from self.poll(timeout=None)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold off stages 2-3 while the block runs (for changing the scorer's state,
        e.g. its model's caches, between batches). Waits for the batch in progress."""
        with self._scorer_lock:
            yield

    def close(
        self, *, cancel_pending: bool = True, timeout: float | None = None
    ) -> list[ScoringJob]:
        """Stop and return the jobs that will never get a result, in submission order.

        ``cancel_pending``: stop as soon as the batch in progress is done (decodes under
        way are abandoned); otherwise first wait for every accepted job to finish (at most
        ``timeout`` seconds). Results already finished stay available to :meth:`poll`.
        Closing twice returns ``[]`` the second time.
        """
        with self._cond:
            if self._closed:
                return []
            self._closed = True
            if not cancel_pending:
                self._cond.wait_for(lambda: not self._live or self._fatal is not None, timeout)
            self._stopping = True
            self._cond.notify_all()
        self._wake()
        if self._thread is not None:
            self._thread.join()
        with self._cond:
            unfinished = sorted(self._live.values(), key=lambda e: e.seq)
            self._live.clear()
            self._queued.clear()
            self._stage1.clear()
            self._inferring.clear()
            for entry in unfinished:
                self._keys.discard(entry.job.key)
            self._cond.notify_all()
        self._shutdown()
        return [entry.job for entry in unfinished]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(cancel_pending=True)

    # -- for the serving thread ------------------------------------------------------------

    _scorer_lock: threading.RLock

    @abstractmethod
    def _pump_locked(self) -> None:
        """Start queued jobs while stage 1 has room (lock held)."""

    @abstractmethod
    def _wake(self) -> None:
        """Wake the serving thread (to notice new work or a stop)."""

    @abstractmethod
    def _shutdown(self) -> None:
        """Release workers, actors, processes (after the serving thread ended)."""

    def _start_thread(self, target: Callable[[], None], name: str) -> None:
        def guarded() -> None:
            try:
                target()
            except BaseException as exc:  # a bug or a broken backend: no job may hang on it
                self._fail_all(exc)
                raise

        self._thread = threading.Thread(target=guarded, name=name, daemon=True)
        self._thread.start()

    def _note_in_flight_locked(self) -> None:
        self._counters.peak_in_flight = max(self._counters.peak_in_flight, self._in_flight_locked())

    def _finish(self, entry: _Entry, result: ClipScores | BaseException) -> None:
        """Record ``entry``'s result (dropped when the job was already given up)."""
        with self._cond:
            entry.analysis = None
            self._stage1.discard(entry.seq)
            self._inferring.discard(entry.seq)
            if self._live.pop(entry.seq, None) is None:
                return
            self._results.append(ScoredJob(entry.job, result))
            self._counters.finished += 1
            if isinstance(result, BaseException):
                self._counters.errors += 1
            elif result.outcome is Outcome.FAILED:
                self._counters.failed_outcomes += 1
            self._pump_locked()
            self._cond.notify_all()

    def _fail_all(self, exc: BaseException) -> None:
        """Stop on an error that is not any one clip's: every unfinished job gets it."""
        with self._cond:
            if self._fatal is None:
                self._fatal = exc
            for entry in sorted(self._live.values(), key=lambda e: e.seq):
                self._finish(entry, exc)
            self._queued.clear()
            self._cond.notify_all()

    def _stop_requested(self) -> bool:
        with self._cond:
            return self._stopping or self._fatal is not None


# --- the local pipeline -------------------------------------------------------------------


def _init_worker(threads: int, nice: int) -> None:
    """Runs first in every decode worker."""
    # The parent decides when to stop (close() hands the leases back); Ctrl-C in a
    # terminal reaches the whole process group and must not kill decodes under way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    if nice > 0:
        os.nice(nice)


def _worker_context() -> BaseContext:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        # Workers fork from a server that has imported the scorer once (torch, PyAV,
        # OpenCV), so a new or replacement worker is ready in milliseconds, not seconds.
        # No torch op ever runs in that server, so forking from it is safe.
        context.set_forkserver_preload(["scoring.scorer"])
    return context


_Event = tuple[_Entry, "Future[Analysis]"] | None


class ScoringPipeline(_Pipeline):
    """Stage 1 in worker processes, stages 2-3 batched across clips in an inference
    thread of this process (module docstring).

    ``workers``: decode processes (0: decode in a thread of this process instead);
    ``batch_clips``: most clips per forward pass; ``max_batch_frames``: most frames per
    forward pass (default ``batch_clips`` x the scorer's frames per clip);
    ``prefetch``: most clips in stage 1 at once (default ``batch_clips`` + 2 x
    ``workers``, so a full batch is ready when the last one finishes);
    ``batch_timeout_s``: how long a batch waits to fill while clips are still decoding
    (default: by the model's device, :data:`CPU_BATCH_TIMEOUT_S` or
    :data:`ACCELERATOR_BATCH_TIMEOUT_S`);
    ``worker_threads``: torch, OpenCV and video decoder threads per worker;
    ``worker_nice``: added to the workers' niceness, so inference is served first when
    they compete for cores.
    The inference thread uses torch's intra-op threads as the caller set them
    (``torch.set_num_threads``). Results come back in completion order.
    """

    def __init__(
        self,
        scorer: Scorer,
        *,
        workers: int = 2,
        batch_clips: int = 8,
        prefetch: int | None = None,
        max_batch_frames: int | None = None,
        batch_timeout_s: float | None = None,
        max_queued: int = 10_000,
        worker_threads: int = 1,
        worker_nice: int = 0,
    ) -> None:
        if not 0 <= workers <= MAX_WORKERS:
            raise ValueError(f"workers must be 0-{MAX_WORKERS}")
        if not 1 <= worker_threads <= 64 or not 0 <= worker_nice <= 19:
            raise ValueError("worker_threads must be 1-64 and worker_nice 0-19")
        super().__init__(
            batch_clips=batch_clips,
            prefetch=prefetch if prefetch is not None else batch_clips + 2 * max(workers, 1),
            max_queued=max_queued,
            batch_timeout_s=(
                batch_timeout_s
                if batch_timeout_s is not None
                else _default_batch_timeout(scorer.model.plan.device_type)
            ),
        )
        self.scorer = scorer
        self.workers = workers
        self.max_batch_frames = max_batch_frames or batch_clips * scorer.frame_count
        if self.max_batch_frames < 1:
            raise ValueError("max_batch_frames must be at least 1")
        self.worker_threads = worker_threads
        self.worker_nice = worker_nice
        self._analyse = analysis_task(scorer)
        if workers:
            # FFmpeg would start cores + 1 slice threads per decode: on a machine whose
            # cores the inference already keeps busy they only add switching (about 2 %
            # more CPU per decode measured on two cores). The pool is the parallelism.
            self._analyse = functools.partial(self._analyse, decode_threads=worker_threads)
        self._scorer_lock = threading.RLock()
        self._context = _worker_context() if workers else None
        self._generation = 0
        self._executor: Executor = self._new_executor()
        #: Given to the executor and not done yet.
        self._decoding: set[int] = set()
        #: Waiting to be re-run alone after a worker died under them.
        self._suspects: deque[_Entry] = deque()
        #: The suspect being re-run alone, if any.
        self._solo: _Entry | None = None
        self._crash_verdicts_in_a_row = 0
        self._events: SimpleQueue[_Event] = SimpleQueue()
        self._start_thread(self._serve, "scoring-inference")

    @property
    def inference_capacity(self) -> int:
        """``batch_clips``: one batch is gathered or inferred at a time."""
        return self.batch_clips

    @property
    def identity(self) -> ModelIdentity:
        """The scorer's model identity."""
        return self.scorer.model.identity

    def worker_pids(self) -> list[int]:
        """Process ids of the live decode workers (for status lines; empty with
        ``workers=0``)."""
        with self._cond:
            executor = self._executor
        processes = getattr(executor, "_processes", None) or {}
        return sorted(p.pid for p in list(processes.values()) if p.pid is not None and p.is_alive())

    def analyse_only(
        self, jobs: Iterable[ScoringJob]
    ) -> Iterator[tuple[ScoringJob, Analysis | BaseException]]:
        """Stage 1 alone, through this pipeline's workers with at most ``prefetch`` clips
        in flight, in completion order: what decoding costs without inference (for
        benchmarks; also starts the workers). Use it only while no job is submitted."""
        with self._cond:
            if self._live or self._closed:
                raise RuntimeError("analyse_only needs an idle, open pipeline")
            executor = self._executor
        source = iter(jobs)
        running: dict[Future[Analysis], ScoringJob] = {}
        more = True
        while more or running:
            while more and len(running) < self.prefetch:
                job = next(source, None)
                if job is None:
                    more = False
                    break
                future = executor.submit(
                    self._analyse, str(job.path), lighting=job.annotation.lighting.setup
                )
                running[future] = job
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                error = future.exception()
                yield job, (future.result() if error is None else error)

    # -- stage 1 ---------------------------------------------------------------------------

    def _new_executor(self) -> Executor:
        if not self.workers:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoring-decode")
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._context,
            initializer=_init_worker,
            initargs=(self.worker_threads, self.worker_nice),
        )

    def _replace_executor_locked(self) -> None:
        """A worker died, so the pool is broken for good: start a fresh one."""
        self._counters.worker_crashes += 1
        old = self._executor
        self._generation += 1
        self._executor = self._new_executor()
        old.shutdown(wait=False, cancel_futures=True)

    def _waiting_locked(self) -> int:
        return len(self._queued) + len(self._suspects)

    def _pump_locked(self) -> None:
        if self._stopping or self._fatal is not None:
            return
        if self._suspects or self._solo is not None:
            # After a crash, suspects run alone, one at a time, and nothing runs beside
            # them: a second crash then names its clip.
            if self._solo is None and not self._decoding:
                entry = self._suspects.popleft()
                entry.solo = True
                if self._launch_locked(entry):
                    self._solo = entry
                else:
                    entry.solo = False
                    self._suspects.appendleft(entry)
            return
        while self._queued and len(self._stage1) < self.prefetch:
            entry = self._queued.popleft()
            if not self._launch_locked(entry):
                self._queued.appendleft(entry)
                return

    def _launch_locked(self, entry: _Entry) -> bool:
        job = entry.job
        for attempt in range(2):
            try:
                future = self._executor.submit(
                    self._analyse, str(job.path), lighting=job.annotation.lighting.setup
                )
                break
            except BrokenProcessPool:
                # A worker died while the pool was idle: no job saw it, so no event will
                # replace the pool. Replace it here, once.
                if attempt:
                    raise
                self._replace_executor_locked()
        entry.generation = self._generation
        self._stage1.add(entry.seq)
        self._decoding.add(entry.seq)
        self._note_in_flight_locked()
        future.add_done_callback(functools.partial(self._decoded, entry))
        return True

    def _decoded(self, entry: _Entry, future: Future[Analysis]) -> None:
        """Done callback (the executor's thread, or this one): hand it to inference."""
        with self._cond:
            self._decoding.discard(entry.seq)
            if self._solo is entry:
                self._solo = None  # whatever came of it, the next suspect may go
        self._events.put((entry, future))

    def _wake(self) -> None:
        self._events.put(None)

    def _crashed_locked(self, entry: _Entry) -> None:
        self._stage1.discard(entry.seq)
        if entry.generation == self._generation:
            self._replace_executor_locked()
        entry.crashes += 1
        alone = entry.solo
        entry.solo = False
        if alone and entry.crashes >= 2:
            self._crash_verdicts_in_a_row += 1
            self._finish(
                entry,
                _crash_verdict(self.identity, self.scorer.profile.pass_threshold, entry.crashes),
            )
            if self._crash_verdicts_in_a_row >= MAX_CRASH_VERDICTS:
                self._fail_all(
                    RuntimeError(
                        f"{MAX_CRASH_VERDICTS} clips in a row killed their decode worker "
                        "twice: the workers are broken, not the clips"
                    )
                )
        else:
            self._counters.retries += 1
            self._suspects.append(entry)
        self._pump_locked()

    def _take(self, event: _Event) -> _Entry | None:
        """An event from stage 1 -> the entry, ready for inference; ``None`` when the
        event needs no inference (handled here) or is a wake-up."""
        if event is None:
            return None
        entry, future = event
        with self._cond:
            if entry.seq not in self._live or future.cancelled():
                return None
            error = future.exception()
            if isinstance(error, BrokenProcessPool):
                self._crashed_locked(entry)
                return None
            self._stage1.discard(entry.seq)
            if error is None:
                self._crash_verdicts_in_a_row = 0
                self._inferring.add(entry.seq)
            self._pump_locked()
        if error is not None:
            self._finish(entry, error)
            return None
        analysis = future.result()
        if analysis.failed:
            # Undecodable: the verdict needs no forward pass.
            dim = self.scorer.profile.embedding_dim
            self._finish(
                entry, self.scorer.judge(analysis, torch.zeros(0, dim), entry.job.annotation)
            )
            return None
        entry.analysis = analysis
        return entry

    # -- stages 2-3 ------------------------------------------------------------------------

    def _serve(self) -> None:
        carry: _Entry | None = None
        while True:
            gathered = self._gather(carry)
            if gathered is None:
                return
            batch, carry = gathered
            if batch:
                self._infer(batch)

    def _more_coming(self) -> bool:
        with self._cond:
            return bool(self._decoding or self._queued or self._suspects)

    def _gather(self, carry: _Entry | None) -> tuple[list[_Entry], _Entry | None] | None:
        """Ready analyses for one forward pass; ``None`` when stopping."""
        batch: list[_Entry] = []
        frames = 0
        deadline: float | None = None
        pending = carry
        while len(batch) < self.batch_clips:
            if self._stop_requested():
                return None
            if pending is None:
                if deadline is None:
                    event = self._events.get()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        event = self._events.get(timeout=remaining if self._more_coming() else 0)
                    except Empty:
                        break
                pending = self._take(event)
                if pending is None:
                    continue
            assert pending.analysis is not None
            count = int(pending.analysis.frames.shape[0])
            if batch and frames + count > self.max_batch_frames:
                return batch, pending
            batch.append(pending)
            frames += count
            pending = None
            if deadline is None:
                deadline = time.monotonic() + self.batch_timeout_s
        return batch, None

    def _infer(self, batch: list[_Entry]) -> None:
        scorer = self.scorer
        with self._scorer_lock:
            started = time.perf_counter()
            try:
                embeddings = scorer.embed([e.analysis for e in batch if e.analysis is not None])
            except Exception as exc:
                if len(batch) == 1:
                    self._finish(batch[0], exc)
                    return
                for entry in batch:  # find the culprit: the others still get verdicts
                    self._infer([entry])
                return
            embedded = time.perf_counter()
            results: list[tuple[_Entry, ClipScores | BaseException]] = []
            for entry, frame_embeddings in zip(batch, embeddings, strict=True):
                assert entry.analysis is not None
                try:
                    verdict: ClipScores | BaseException = scorer.judge(
                        entry.analysis,
                        frame_embeddings,
                        entry.job.annotation,
                        clip_id=entry.job.clip_id,
                    )
                except Exception as exc:
                    verdict = exc
                results.append((entry, verdict))
            judged = time.perf_counter()
        with self._cond:
            c = self._counters
            c.batches += 1
            c.batched_clips += len(batch)
            c.batched_frames += sum(
                int(e.analysis.frames.shape[0]) for e in batch if e.analysis is not None
            )
            c.embed_seconds += embedded - started
            c.judge_seconds += judged - embedded
        for entry, verdict in results:
            self._finish(entry, verdict)

    # -- closing ---------------------------------------------------------------------------

    def _shutdown(self) -> None:
        with self._cond:
            executor = self._executor
            self._suspects.clear()
            self._solo = None
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + _WORKER_GRACE_S
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():  # stuck in a decode nobody waits for any more
                process.kill()
                process.join(5)
        executor.shutdown(wait=True)


# --- Ray ----------------------------------------------------------------------------------


class ScorerSpec(BaseModel):
    """How to build a :class:`Scorer` anywhere: what a Ray actor receives instead of a
    model. ``pretrained`` is a registry tag or a weights file readable where it is built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, max_length=100)
    pretrained: str = Field(min_length=1, max_length=4096)
    expected_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    weights_dirs: tuple[str, ...] = Field(default=(), max_length=16)
    #: ``(model, tag)`` of the profile; default: the one of the loaded model's identity.
    profile: tuple[str, str] | None = None
    device: str | None = Field(default=None, max_length=16)
    precision: Precision | None = None
    frame_count: int = Field(default=8, ge=1, le=64)
    #: A saved :class:`scoring.dedup.DuplicateIndex` to check near-duplicates against.
    duplicates_path: str | None = Field(default=None, max_length=4096)

    def build(self) -> Scorer:
        """Load the model (verifying its weights) and its profile into a scorer."""
        model = load_model(
            self.model,
            self.pretrained,
            device=self.device,
            precision=self.precision,
            weights_dirs=[Path(d) for d in self.weights_dirs],
            expected_sha256=self.expected_sha256,
        )
        profile = profile_for(*self.profile) if self.profile else profile_for(model.identity)
        duplicates = None
        if self.duplicates_path is not None:
            from scoring.dedup import DuplicateIndex  # faiss is loaded only when asked for

            duplicates = DuplicateIndex.load(self.duplicates_path)
        return Scorer(model, profile, duplicates=duplicates, frame_count=self.frame_count)


@dataclass(frozen=True)
class _ActorInfo:
    identity: ModelIdentity
    pass_threshold: float
    analyse: Callable[..., Analysis]


class _ScorerActor:
    """Holds one scorer (one GPU's, or some CPUs'); runs stages 2-3 on batches."""

    def __init__(self, spec: ScorerSpec, threads: int | None) -> None:
        if threads:
            torch.set_num_threads(threads)
        self._scorer = spec.build()

    def info(self) -> _ActorInfo:
        scorer = self._scorer
        return _ActorInfo(
            identity=scorer.model.identity,
            pass_threshold=scorer.profile.pass_threshold,
            analyse=analysis_task(scorer),
        )

    def score(
        self, jobs: list[tuple[Annotation, str | None]], *analyses: Analysis
    ) -> tuple[list[ClipScores | BaseException], int, float, float]:
        """Verdicts for a batch (Ray resolves the analyses' object refs), the frames
        embedded and the seconds of stages 2 and 3."""
        scorer = self._scorer
        started = time.perf_counter()
        try:
            embeddings = scorer.embed(analyses)
        except Exception:
            if len(analyses) == 1:
                raise
            results: list[ClipScores | BaseException] = []
            for job, analysis in zip(jobs, analyses, strict=True):
                try:
                    results.extend(self.score([job], analysis)[0])
                except Exception as exc:
                    results.append(exc)
            return results, 0, time.perf_counter() - started, 0.0
        embedded = time.perf_counter()
        results = []
        for (annotation, clip_id), analysis, frame_embeddings in zip(
            jobs, analyses, embeddings, strict=True
        ):
            try:
                results.append(
                    scorer.judge(analysis, frame_embeddings, annotation, clip_id=clip_id)
                )
            except Exception as exc:
                results.append(exc)
        frames = sum(int(e.shape[0]) for e in embeddings)
        return results, frames, embedded - started, time.perf_counter() - embedded

    def add_duplicates(self, items: list[tuple[str, npt.NDArray[np.float32]]]) -> int:
        if self._scorer.duplicates is None:
            raise RuntimeError("this scorer has no duplicate index (ScorerSpec.duplicates_path)")
        return self._scorer.duplicates.add_many(items)


def _analyse_remote(
    analyse: Callable[..., Analysis],
    source: str | bytes,
    lighting: LightingSetup | None,
) -> tuple[BaseException | None, Analysis | None]:
    """Stage 1 as a Ray task. Returns (error, analysis) as two objects, so the driver
    reads the small one and the analysis goes straight from the object store to the
    actor. Exceptions are returned, not raised: Ray retries only a dead worker."""
    try:
        if isinstance(source, bytes):
            with tempfile.NamedTemporaryFile(suffix=".clip") as file:
                file.write(source)
                file.flush()
                return None, analyse(file.name, lighting=lighting)
        return None, analyse(source, lighting=lighting)
    except Exception as exc:
        return exc, None


@dataclass(eq=False)
class _RayBatch:
    actor: Any
    entries: list[_Entry]


class RayScoringPipeline(_Pipeline):
    """The pipeline on a Ray cluster: same interface as :class:`ScoringPipeline`.

    ``address``: a cluster (``"auto"``, ``"ray://head:10001"``) or ``"local"`` for a Ray
    instance started here (``local_cpus`` CPUs); an already initialised Ray is used as it
    is. One actor per GPU of the cluster (``num_gpus=1``), or ``actors`` CPU actors of
    ``actor_cpus`` CPUs each when it has none; each builds its scorer from ``spec``.
    Stage 1 runs as Ray tasks of ``decode_cpus`` CPUs, retried once if their worker dies
    (Ray's ``max_retries``; then :data:`WORKER_CRASHED`); batches go to the actor with
    the fewest outstanding (two at most each: one running, one ready behind it).
    ``ship_media``: send each file's bytes through the object store, for clusters whose
    nodes cannot read the driver's paths (at most :data:`MAX_SHIPPED_BYTES` a clip).
    ``batch_timeout_s`` defaults as :class:`ScoringPipeline`'s, by whether the actors
    have GPUs.
    """

    def __init__(
        self,
        spec: ScorerSpec,
        *,
        address: str = "auto",
        actors: int | None = None,
        actor_cpus: float = 1.0,
        decode_cpus: float = 1.0,
        batch_clips: int = 8,
        prefetch: int | None = None,
        batch_timeout_s: float | None = None,
        max_queued: int = 10_000,
        ship_media: bool = False,
        local_cpus: int | None = None,
    ) -> None:
        import ray as ray_module  # a second of imports, paid only in this mode

        # Ray's typing of remote handles is partial: its objects are Any here.
        ray: Any = ray_module
        if actors is not None and not 1 <= actors <= MAX_WORKERS:
            raise ValueError(f"actors must be 1-{MAX_WORKERS}")
        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            if address == "local":
                ray.init(num_cpus=local_cpus, include_dashboard=False)
            else:
                ray.init(address=address)
            self._owns_ray = True
        gpus = int(ray.cluster_resources().get("GPU", 0)) if spec.device != "cpu" else 0
        count = actors or gpus or 1
        options: dict[str, Any] = {"num_gpus": 1} if gpus else {"num_cpus": actor_cpus}
        # Ray restarts a dead actor once and re-sends its batch (scoring is idempotent).
        actor_class = ray.remote(_ScorerActor).options(
            max_restarts=1, max_task_retries=1, **options
        )
        threads = None if gpus else max(1, int(actor_cpus))
        self._actors = [actor_class.remote(spec, threads) for _ in range(count)]
        try:
            info: _ActorInfo = ray.get(self._actors[0].info.remote())
            ray.get([a.info.remote() for a in self._actors[1:]])
        except BaseException:
            self._release()
            raise
        self._info = info
        # As many decoder threads as CPUs the task reserves (ScoringPipeline's reasoning).
        self._analyse = functools.partial(info.analyse, decode_threads=max(1, int(decode_cpus)))
        self._decode = ray.remote(_analyse_remote).options(
            num_cpus=decode_cpus, num_returns=2, max_retries=1, retry_exceptions=False
        )
        self.ship_media = ship_media
        super().__init__(
            batch_clips=batch_clips,
            prefetch=prefetch if prefetch is not None else 2 * batch_clips * count,
            max_queued=max_queued,
            batch_timeout_s=(
                batch_timeout_s
                if batch_timeout_s is not None
                else _default_batch_timeout("cuda" if gpus else "cpu")
            ),
        )
        self._scorer_lock = threading.RLock()
        self._start_thread(self._serve, "scoring-ray")

    @property
    def actors(self) -> int:
        """How many scorer actors there are."""
        return len(self._actors)

    @property
    def inference_capacity(self) -> int:
        """Two batches per actor (one running, one queued behind it)."""
        return 2 * self.batch_clips * len(self._actors)

    @property
    def identity(self) -> ModelIdentity:
        """The actors' model identity."""
        return self._info.identity

    def add_duplicates(self, items: Sequence[tuple[str, npt.NDArray[np.float32]]]) -> int:
        """Add accepted clips' embeddings to every actor's duplicate index; returns how
        many were new (to each)."""
        counts: list[int] = self._ray.get(
            [a.add_duplicates.remote(list(items)) for a in self._actors]
        )
        return counts[0] if counts else 0

    def _pump_locked(self) -> None:
        self._cond.notify_all()  # the serving thread launches tasks (one thread talks to Ray)

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _source(self, path: Path) -> str | bytes:
        if not self.ship_media:
            return str(path)
        size = path.stat().st_size
        if size > MAX_SHIPPED_BYTES:
            raise ValueError(f"{path} is {size} bytes, over the {MAX_SHIPPED_BYTES} shipped")
        return path.read_bytes()

    def _serve(self) -> None:
        ray = self._ray
        decoding: dict[Any, tuple[_Entry, Any]] = {}  # error ref -> (entry, analysis ref)
        ready: deque[tuple[_Entry, Any]] = deque()
        ready_since = 0.0
        batches: dict[Any, _RayBatch] = {}
        load = {id(a): 0 for a in self._actors}
        while not self._stop_requested():
            with self._cond:
                starting: list[_Entry] = []
                while self._queued and len(self._stage1) + len(starting) < self.prefetch:
                    starting.append(self._queued.popleft())
                self._stage1.update(e.seq for e in starting)
                self._note_in_flight_locked()
            for entry in starting:  # outside the lock: shipping reads the file
                try:
                    source = self._source(entry.job.path)
                except (OSError, ValueError) as exc:
                    self._finish(entry, exc)
                    continue
                error_ref, analysis_ref = self._decode.remote(
                    self._analyse, source, entry.job.annotation.lighting.setup
                )
                decoding[error_ref] = (entry, analysis_ref)
            now = time.monotonic()
            while ready and (
                len(ready) >= self.batch_clips
                or not decoding
                or now - ready_since >= self.batch_timeout_s
            ):
                actor = min(self._actors, key=lambda a: load[id(a)])
                if load[id(actor)] >= 2:
                    break
                taken = [ready.popleft() for _ in range(min(self.batch_clips, len(ready)))]
                ready_since = now
                entries = [e for e, _ in taken]
                ref = actor.score.remote(
                    [(e.job.annotation, e.job.clip_id) for e in entries], *[r for _, r in taken]
                )
                batches[ref] = _RayBatch(actor, entries)
                load[id(actor)] += 1
                with self._cond:
                    for e in entries:
                        self._stage1.discard(e.seq)
                        self._inferring.add(e.seq)
            refs = [*decoding, *batches]
            if not refs:
                with self._cond:
                    self._cond.wait_for(lambda: bool(self._queued) or self._stopping, 0.5)
                continue
            done, _ = ray.wait(refs, num_returns=1, timeout=0.05)
            if done:
                done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in done:
                if ref in decoding:
                    entry, analysis_ref = decoding.pop(ref)
                    outcome = self._decoded(entry, ref)
                    if outcome is None:
                        if not ready:
                            ready_since = time.monotonic()
                        ready.append((entry, analysis_ref))
                else:
                    batch = batches.pop(ref)
                    load[id(batch.actor)] -= 1
                    self._batch_done(batch, ref)

    def _decoded(self, entry: _Entry, error_ref: Any) -> BaseException | ClipScores | None:
        """Read a stage-1 task's small result: ``None`` when the analysis is ready for a
        batch, else what the job ends with (already recorded)."""
        ray = self._ray
        result: BaseException | ClipScores
        try:
            error = ray.get(error_ref)
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError):
            with self._cond:
                self._counters.worker_crashes += 1
            result = _crash_verdict(self._info.identity, self._info.pass_threshold, 2)
        except ray.exceptions.RayError as exc:
            result = exc
        else:
            if error is None:
                return None
            result = error
        self._finish(entry, result)
        return result

    def _batch_done(self, batch: _RayBatch, ref: Any) -> None:
        ray = self._ray
        try:
            results, frames, embed_s, judge_s = ray.get(ref)
        except ray.exceptions.RayError as exc:
            for entry in batch.entries:
                self._finish(entry, exc)
            return
        with self._cond:
            c = self._counters
            c.batches += 1
            c.batched_clips += len(batch.entries)
            c.batched_frames += frames
            c.embed_seconds += embed_s
            c.judge_seconds += judge_s
        for entry, result in zip(batch.entries, results, strict=True):
            self._finish(entry, result)

    def _shutdown(self) -> None:
        self._release()

    def _release(self) -> None:
        ray = self._ray
        for actor in getattr(self, "_actors", []):
            ray.kill(actor)
        self._actors = []
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False
