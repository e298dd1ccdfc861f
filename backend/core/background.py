"""A small runner for the backend's background jobs: worker loops and periodic tasks.

Jobs run in daemon threads of the serving process (started in the app's lifespan).
Threads suffice: the heavy part of ingest, probing, already runs in a subprocess, and
the rest is file and database I/O. Each job is either

* a **loop** (``add_loop``): ``step()`` is called again at once while it reports that it
  did some work, and after ``idle_s`` when it did none (an ingest worker polling for
  clips); or
* a **periodic** job (``add_periodic``): called once at start, then every
  ``interval_s`` (housekeeping).

An exception in a job is logged with its traceback and the job carries on at its next
turn; a job never takes its thread down. :meth:`BackgroundRunner.stop` sets one
:class:`threading.Event` that every wait listens to, so idle threads stop at once; a
thread in the middle of a step finishes that step first, and ``stop`` waits at most
``timeout_s`` for all of them. Work a thread abandons that way (the process exits
under it) is picked up again by the job's own crash recovery, e.g. stale ingest claims.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BackgroundRunner"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    name: str
    target: Callable[[], None]


class BackgroundRunner:
    """Threads running background jobs until :meth:`stop`; see the module docstring."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._jobs: list[_Job] = []
        self._threads: list[threading.Thread] = []

    @property
    def stopping(self) -> threading.Event:
        """Set once :meth:`stop` was called (jobs may check it between long steps)."""
        return self._stopping

    @property
    def threads(self) -> list[threading.Thread]:
        """The started threads (empty before :meth:`start`)."""
        return list(self._threads)

    def add_loop(self, name: str, step: Callable[[], bool], *, idle_s: float) -> None:
        """Call ``step`` over and over; wait ``idle_s`` whenever it returns False."""

        def run() -> None:
            while not self._stopping.is_set():
                if not self._call(name, step):
                    self._stopping.wait(idle_s)

        self._add(name, run)

    def add_periodic(self, name: str, job: Callable[[], object], *, interval_s: float) -> None:
        """Call ``job`` now and then every ``interval_s`` (measured start to start)."""

        def run() -> None:
            while not self._stopping.is_set():
                started = time.monotonic()
                self._call(name, job)
                self._stopping.wait(max(0.0, interval_s - (time.monotonic() - started)))

        self._add(name, run)

    def _add(self, name: str, target: Callable[[], None]) -> None:
        if self._threads:
            raise RuntimeError("jobs must be added before start()")
        self._jobs.append(_Job(name=name, target=target))

    @staticmethod
    def _call(name: str, job: Callable[[], object]) -> bool:
        try:
            return bool(job())
        except Exception:
            logger.exception("background job %s failed; it runs again at its next turn", name)
            return False

    def start(self) -> None:
        """Start one daemon thread per job."""
        if self._threads:
            raise RuntimeError("the runner was already started")
        for job in self._jobs:
            thread = threading.Thread(target=job.target, name=f"shotbank-{job.name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Ask every job to stop and wait up to ``timeout_s`` in all; True if all ended."""
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        if alive:
            logger.warning("background jobs still running at shutdown: %s", ", ".join(alive))
        return not alive
