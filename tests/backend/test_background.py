"""backend.core.background.BackgroundRunner with real threads and real time (short)."""

from __future__ import annotations

import itertools
import logging
import threading
import time

import pytest

from backend.core.background import BackgroundRunner


def _wait_for(condition: threading.Event, timeout: float = 5.0) -> None:
    assert condition.wait(timeout), "the job did not get there in time"


def test_a_loop_runs_back_to_back_while_busy_and_waits_when_idle() -> None:
    calls: list[float] = []
    idle_seen = threading.Event()

    def step() -> bool:
        calls.append(time.monotonic())
        if len(calls) > 5:
            idle_seen.set()
            return False
        return True

    runner = BackgroundRunner()
    runner.add_loop("worker", step, idle_s=2.0)
    runner.start()
    _wait_for(idle_seen)
    assert runner.stop(timeout_s=5)
    # Five busy steps took less than one idle wait: they did not wait between them.
    assert calls[5] - calls[0] < 2.0
    assert len(calls) == 6, "the idle wait was cut short only by stop()"


def test_stop_wakes_idle_threads_at_once() -> None:
    runner = BackgroundRunner()
    runner.add_loop("idle", lambda: False, idle_s=600)
    runner.add_periodic("rare", lambda: None, interval_s=600)
    runner.start()
    time.sleep(0.05)
    started = time.monotonic()
    assert runner.stop(timeout_s=5)
    assert time.monotonic() - started < 1
    assert not any(thread.is_alive() for thread in runner.threads)


def test_a_periodic_job_runs_at_start_and_then_every_interval() -> None:
    at_start = threading.Event()
    runner = BackgroundRunner()
    runner.add_periodic("rare", at_start.set, interval_s=600)
    runner.start()
    _wait_for(at_start)  # long before the first interval is over
    assert runner.stop()

    runs: list[float] = []
    enough = threading.Event()

    def job() -> None:
        runs.append(time.monotonic())
        if len(runs) == 3:
            enough.set()

    runner = BackgroundRunner()
    runner.add_periodic("tick", job, interval_s=0.1)
    runner.start()
    _wait_for(enough)
    assert runner.stop()
    assert all(later - earlier >= 0.09 for earlier, later in itertools.pairwise(runs))


def test_a_failing_job_is_logged_and_runs_again(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    again = threading.Event()

    def flaky() -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        again.set()
        return False

    runner = BackgroundRunner()
    runner.add_loop("flaky", flaky, idle_s=0.01)
    with caplog.at_level(logging.ERROR, logger="backend.core.background"):
        runner.start()
        _wait_for(again)
        assert runner.stop()
    assert "background job flaky failed" in caplog.text
    assert "RuntimeError: boom" in caplog.text


def test_stop_reports_a_job_that_does_not_finish_in_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    entered = threading.Event()

    def stuck() -> bool:
        entered.set()
        release.wait(10)
        return False

    runner = BackgroundRunner()
    runner.add_loop("stuck", stuck, idle_s=1)
    runner.start()
    _wait_for(entered)
    with caplog.at_level(logging.WARNING, logger="backend.core.background"):
        assert runner.stop(timeout_s=0.1) is False
    assert "shotbank-stuck" in caplog.text
    release.set()
    assert runner.stop(timeout_s=5)


def test_jobs_cannot_be_added_or_started_twice() -> None:
    runner = BackgroundRunner()
    runner.add_loop("one", lambda: False, idle_s=1)
    runner.start()
    try:
        with pytest.raises(RuntimeError):
            runner.start()
        with pytest.raises(RuntimeError):
            runner.add_periodic("late", lambda: None, interval_s=1)
    finally:
        runner.stop()
