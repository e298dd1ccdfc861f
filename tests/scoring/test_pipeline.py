"""The scoring pipeline: decode workers, batched inference, back-pressure, faults, Ray.

Everything runs on real clips (scoring.clipgen) with the in-project model. Jobs that must
stay in stage 1 until the test acts are given a named pipe (FIFO) as their file: the
decoder's open() blocks until the test opens the pipe's other end, which tells the test
exactly when a worker is busy with that job.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Full
from typing import Any

import pytest

from scoring.clipgen import (
    camera_move_frames,
    scene_frames,
    solid_frames,
    textured_canvas,
    tone,
    write_clip,
)
from scoring.models import ScoringModel
from scoring.pipeline import (
    ACCELERATOR_BATCH_TIMEOUT_S,
    CPU_BATCH_TIMEOUT_S,
    WORKER_CRASHED,
    RayScoringPipeline,
    ScoredJob,
    ScorerSpec,
    ScoringJob,
    ScoringPipeline,
)
from scoring.profiles import profile_for
from scoring.report import ClipScores, Component, Outcome
from scoring.scorer import Scorer
from scoring.synthetic import Scene
from shotbank.annotation import Annotation
from shotbank.annotation.vocabulary import LightingSetup

RIGHTS = {"licence": "cc0-1.0", "model_release": "not_required", "location_release": "not_required"}
SOUND = {"genre": "ambience", "dialogue": False, "recording": "studio"}


def annotation(description: str, movement: str = "static", lighting: str = "natural") -> Annotation:
    camera: dict[str, Any] = {"movement": movement}
    if movement == "pan":
        camera["direction"] = "left"
    return Annotation.model_validate(
        {
            "schema_version": "1",
            "scene": {"description": description, "setting": "interior"},
            "camera": camera,
            "lighting": {"setup": lighting},
            "audio": SOUND,
            "rights": RIGHTS,
        }
    )


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, Annotation]]:
    """Four small real clips: a true label, a wrong label, a pan, a black (junk) clip."""
    folder = tmp_path_factory.mktemp("pipeline-clips")
    sound = tone(300.0, seconds=1.5)
    red = write_clip(
        folder / "red-circle.mp4",
        scene_frames(Scene("red", "circle", LightingSetup.NATURAL), seconds=1.5),
        audio=sound,
    )
    blue = write_clip(
        folder / "blue-square.mp4",
        scene_frames(Scene("blue", "square", LightingSetup.LOW_KEY), seconds=1.5, seed=1),
    )
    pan = write_clip(
        folder / "pan-left.mp4",
        camera_move_frames(textured_canvas(640, 480, seed=2), "pan_left", seconds=1.5),
        audio=sound,
    )
    black = write_clip(folder / "black.mp4", solid_frames(seconds=1.5), audio=sound)
    return [
        (red, annotation("A red circle.")),
        (blue, annotation("A red circle.", lighting="low_key")),
        (pan, annotation("A textured wall.", movement="pan")),
        (black, annotation("A red circle.")),
    ]


@pytest.fixture(scope="module")
def scorer(tiny_model: ScoringModel) -> Scorer:
    return Scorer(tiny_model, profile_for(tiny_model.identity))


@pytest.fixture(scope="module")
def expected(scorer: Scorer, clips: list[tuple[Path, Annotation]]) -> dict[Path, ClipScores]:
    """The scorer's own verdict on each clip, one clip at a time."""
    return {path: scorer.score(path, note) for path, note in clips}


def jobs_for(clips: list[tuple[Path, Annotation]]) -> list[ScoringJob]:
    return [ScoringJob(key=path.name, path=path, annotation=note) for path, note in clips]


def assert_same_verdict(got: ClipScores | BaseException, want: ClipScores) -> None:
    assert isinstance(got, ClipScores), got
    assert got.outcome is want.outcome
    assert got.raised() == want.raised()
    assert [r.code for r in got.reasons] == [r.code for r in want.reasons]
    assert got.passed == want.passed
    for component in Component:
        value, reference = got.value(component), want.value(component)
        assert (value is None) == (reference is None), component
        if reference is not None:
            # A batch of several clips goes through other GEMM blockings than one clip.
            assert value == pytest.approx(reference, abs=1e-4), component
    if want.quality is not None:
        assert got.quality == pytest.approx(want.quality, abs=1e-4)


def by_key(results: list[ScoredJob]) -> dict[Any, ClipScores | BaseException]:
    keys = [r.job.key for r in results]
    assert len(keys) == len(set(keys)), "a job came back twice"
    return {r.job.key: r.result for r in results}


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def wait_for_reader(fifo: Path, timeout_s: float = 60.0) -> int:
    """Open the FIFO's writing end once a decoder has opened it for reading."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
        if time.monotonic() > deadline:
            pytest.fail(f"no decode worker opened {fifo.name} within {timeout_s} s")
        time.sleep(0.01)


def has_open(pid: int, inode: tuple[int, int]) -> bool:
    """Whether process ``pid`` has the file ``(st_dev, st_ino)`` open."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # gone (or a zombie, whose files are closed)
        return False
    for fd in fds:
        try:
            info = fd.stat()
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == inode:
            return True
    return False


def kill_holder(fifo: Path, pids: list[int], inode: tuple[int, int] | None = None) -> None:
    """SIGKILL the worker that has ``fifo`` (or the file ``inode``) open, and wait until
    its files are closed (so the FIFO has no reader left when the test waits again)."""
    if inode is None:
        info = fifo.stat()
        inode = (info.st_dev, info.st_ino)
    deadline = time.monotonic() + 30
    # The reader is counted as soon as it waits in open(); its descriptor shows a moment
    # later, when open() returns.
    while not (holders := [pid for pid in pids if has_open(pid, inode)]):
        assert time.monotonic() < deadline, f"no worker of {pids} has {fifo} open"
        time.sleep(0.01)
    assert len(holders) == 1, f"workers {holders} all have {fifo} open"
    os.kill(holders[0], signal.SIGKILL)
    while has_open(holders[0], inode):
        assert time.monotonic() < deadline, "the killed worker still holds the file"
        time.sleep(0.01)


@pytest.fixture
def pipelines() -> Iterator[list[ScoringPipeline]]:
    """Pipelines a test opened, closed even when it fails half-way."""
    opened: list[ScoringPipeline] = []
    yield opened
    for pipe in opened:
        pipe.close()


# --- verdicts -----------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [2, 0])
def test_pipeline_verdicts_equal_the_scorers_own_with_all_clips_in_one_batch(
    scorer: Scorer,
    clips: list[tuple[Path, Annotation]],
    expected: dict[Path, ClipScores],
    workers: int,
) -> None:
    # A long batch timeout: the batch waits until every clip in flight is decoded.
    with ScoringPipeline(
        scorer, workers=workers, batch_clips=len(clips), batch_timeout_s=30.0
    ) as pipe:
        results = by_key(list(pipe.run(jobs_for(clips))))
        stats = pipe.stats()
    assert set(results) == {path.name for path, _ in clips}
    for path, _ in clips:
        assert_same_verdict(results[path.name], expected[path])
    assert stats.batches == 1
    assert stats.batched_clips == len(clips)
    assert stats.batched_frames == len(clips) * scorer.frame_count
    assert stats.finished == len(clips)
    assert stats.errors == 0


def test_the_default_batch_timeout_follows_the_models_device(scorer: Scorer) -> None:
    on_cpu = scorer.model.plan.device_type == "cpu"
    with ScoringPipeline(scorer, workers=0) as pipe:
        assert pipe.batch_timeout_s == (
            CPU_BATCH_TIMEOUT_S if on_cpu else ACCELERATOR_BATCH_TIMEOUT_S
        )
    with ScoringPipeline(scorer, workers=0, batch_timeout_s=0.2) as pipe:
        assert pipe.batch_timeout_s == 0.2


@pytest.mark.parametrize(
    ("batch_timeout_s", "one_batch"), [(CPU_BATCH_TIMEOUT_S, True), (0.0, False)]
)
def test_a_batch_waits_for_clips_still_decoding_only_as_long_as_the_timeout(
    scorer: Scorer, clips: list[tuple[Path, Annotation]], batch_timeout_s: float, one_batch: bool
) -> None:
    # One worker decodes the clips one after another: the first is ready long before
    # the last. Waiting, the model makes one pass over all; not waiting, it starts on
    # the first alone (on a CPU that pass costs about as much as a full one).
    with ScoringPipeline(
        scorer, workers=1, batch_clips=len(clips), batch_timeout_s=batch_timeout_s
    ) as pipe:
        results = list(pipe.run(jobs_for(clips)))
        stats = pipe.stats()
    assert len(results) == len(clips)
    assert (stats.batches == 1) is one_batch


def test_undecodable_file_gets_a_failed_verdict_while_the_others_are_scored(
    scorer: Scorer,
    clips: list[tuple[Path, Annotation]],
    expected: dict[Path, ClipScores],
    tmp_path: Path,
) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    good = clips[:2]
    jobs = [*jobs_for(good), ScoringJob(key="garbage", path=garbage, annotation=good[0][1])]
    with ScoringPipeline(scorer, workers=2, batch_clips=2) as pipe:
        results = by_key(list(pipe.run(jobs)))
    failed = results["garbage"]
    assert isinstance(failed, ClipScores)
    assert failed.outcome is Outcome.FAILED
    assert [r.code for r in failed.reasons] == ["scoring.media.undecodable"]
    assert failed.model == scorer.model.identity
    for path, _ in good:
        assert_same_verdict(results[path.name], expected[path])


def test_a_missing_file_comes_back_as_an_exception_not_a_verdict(
    scorer: Scorer, clips: list[tuple[Path, Annotation]], tmp_path: Path
) -> None:
    path, note = clips[0]
    jobs = [
        ScoringJob(key="missing", path=tmp_path / "gone.mp4", annotation=note),
        ScoringJob(key="present", path=path, annotation=note),
    ]
    with ScoringPipeline(scorer, workers=1, batch_clips=2) as pipe:
        results = by_key(list(pipe.run(jobs)))
        stats = pipe.stats()
    assert isinstance(results["missing"], FileNotFoundError)
    assert isinstance(results["present"], ClipScores)
    assert stats.errors == 1


# --- back-pressure and closing ------------------------------------------------------------


def test_in_flight_never_exceeds_prefetch_plus_one_batch(
    scorer: Scorer, clips: list[tuple[Path, Annotation]]
) -> None:
    path, note = clips[0]
    jobs = [ScoringJob(key=n, path=path, annotation=note) for n in range(12)]
    seen: list[int] = []
    with ScoringPipeline(scorer, workers=2, batch_clips=2, prefetch=3) as pipe:
        assert pipe.window == 5
        for _ in pipe.run(jobs):
            seen.append(pipe.in_flight)
        stats = pipe.stats()
    assert len(seen) == len(jobs)
    assert max(seen) <= 5
    assert stats.peak_in_flight <= 5
    assert stats.peak_in_flight >= 3  # the window was used, not just respected
    assert stats.finished == len(jobs)


def test_submit_queues_beyond_the_window_and_refuses_beyond_max_queued(
    scorer: Scorer, clips: list[tuple[Path, Annotation]], tmp_path: Path
) -> None:
    fifo = make_fifo(tmp_path / "held.mp4")
    path, note = clips[0]
    with ScoringPipeline(scorer, workers=1, batch_clips=1, prefetch=1, max_queued=2) as pipe:
        pipe.submit(ScoringJob(key="held", path=fifo, annotation=note))
        assert pipe.free_slots == 1  # one more may start: the inference slot
        pipe.submit(ScoringJob(key="a", path=path, annotation=note))
        assert pipe.free_slots == 0
        pipe.submit(ScoringJob(key="b", path=path, annotation=note))
        assert pipe.queued == 2
        with pytest.raises(Full):
            pipe.submit(ScoringJob(key="c", path=path, annotation=note))
        with pytest.raises(ValueError, match="already pending"):
            pipe.submit(ScoringJob(key="a", path=path, annotation=note))
        assert pipe.pending == 3
        writer = wait_for_reader(fifo)
        os.close(writer)  # an empty "file": the held job fails to decode, the rest flow
        results: list[ScoredJob] = []
        while len(results) < 3:
            results += pipe.poll(timeout=30)
        verdicts = by_key(results)
        held = verdicts["held"]
        assert isinstance(held, ClipScores)
        assert held.outcome is Outcome.FAILED
        assert isinstance(verdicts["a"], ClipScores)
        assert verdicts["a"].outcome is Outcome.SCORED
        assert pipe.pending == 0
        assert pipe.free_slots == 2


def test_close_returns_the_unfinished_jobs_and_keeps_finished_results(
    scorer: Scorer, clips: list[tuple[Path, Annotation]], tmp_path: Path
) -> None:
    fifo = make_fifo(tmp_path / "stuck.mp4")
    path, note = clips[0]
    done = ScoringJob(key="done", path=path, annotation=note)
    stuck = ScoringJob(key="stuck", path=fifo, annotation=note)
    behind = ScoringJob(key="behind", path=path, annotation=note)
    pipe = ScoringPipeline(scorer, workers=1, batch_clips=1, prefetch=1)
    try:
        pipe.submit(done)
        deadline = time.monotonic() + 60
        while pipe.stats().finished < 1:
            assert time.monotonic() < deadline, "the first job never finished"
            time.sleep(0.01)
        pipe.submit(stuck)
        pipe.submit(behind)
        writer = wait_for_reader(fifo)  # the only worker is now stuck in the pipe
        started = time.monotonic()
        unfinished = pipe.close(cancel_pending=True)
        elapsed = time.monotonic() - started
        os.close(writer)
    finally:
        pipe.close()
    assert unfinished == [stuck, behind]
    assert elapsed < 10  # the stuck worker was killed, not waited for
    assert [r.job for r in pipe.poll()] == [done]
    assert pipe.poll() == []
    assert pipe.pending == 0
    assert pipe.worker_pids() == []
    assert pipe.close() == []
    with pytest.raises(RuntimeError, match="closed"):
        pipe.submit(behind)


def test_close_without_cancelling_finishes_every_job_first(
    scorer: Scorer, clips: list[tuple[Path, Annotation]]
) -> None:
    pipe = ScoringPipeline(scorer, workers=1, batch_clips=2)
    for job in jobs_for(clips):
        pipe.submit(job)
    assert pipe.close(cancel_pending=False, timeout=120) == []
    assert len(pipe.poll()) == len(clips)


# --- worker crashes -----------------------------------------------------------------------


def test_a_killed_worker_is_replaced_and_its_clip_retried_once(
    scorer: Scorer,
    clips: list[tuple[Path, Annotation]],
    expected: dict[Path, ClipScores],
    tmp_path: Path,
    pipelines: list[ScoringPipeline],
) -> None:
    path, note = clips[0]
    clip = tmp_path / "clip.mp4"
    fifo = make_fifo(tmp_path / "victim.mp4")
    pipe = ScoringPipeline(scorer, workers=1, batch_clips=1)
    pipelines.append(pipe)
    pipe.submit(ScoringJob(key="victim", path=fifo, annotation=note))
    writer = wait_for_reader(fifo)
    (pid,) = pipe.worker_pids()
    info = fifo.stat()
    shutil.copy(path, clip)
    os.replace(clip, fifo)  # the retry will open a real clip at that path
    kill_holder(fifo, [pid], inode=(info.st_dev, info.st_ino))
    os.close(writer)
    results = pipe.poll(timeout=60)
    assert [r.job.key for r in results] == ["victim"]
    assert_same_verdict(results[0].result, expected[path])
    stats = pipe.stats()
    assert (stats.worker_crashes, stats.retries) == (1, 1)
    assert pipe.worker_pids() != [pid]


def test_a_clip_that_kills_its_worker_twice_gets_a_crash_verdict_and_the_others_are_scored(
    scorer: Scorer,
    clips: list[tuple[Path, Annotation]],
    expected: dict[Path, ClipScores],
    tmp_path: Path,
    pipelines: list[ScoringPipeline],
) -> None:
    fifo = make_fifo(tmp_path / "poison.mp4")
    pipe = ScoringPipeline(scorer, workers=2, batch_clips=2)
    pipelines.append(pipe)
    pipe.submit(ScoringJob(key="poison", path=fifo, annotation=clips[0][1]))
    for job in jobs_for(clips[:3]):
        pipe.submit(job)
    for _ in range(2):  # once among the others, once alone
        writer = wait_for_reader(fifo)
        kill_holder(fifo, pipe.worker_pids())
        os.close(writer)
    results: list[ScoredJob] = []
    while len(results) < 4:
        got = pipe.poll(timeout=60)
        assert got, "the pipeline hung after a worker crash"
        results += got
    verdicts = by_key(results)
    poison = verdicts["poison"]
    assert isinstance(poison, ClipScores)
    assert poison.outcome is Outcome.FAILED
    assert [r.code for r in poison.reasons] == [WORKER_CRASHED]
    for path, _ in clips[:3]:
        assert_same_verdict(verdicts[path.name], expected[path])
    assert pipe.stats().worker_crashes == 2


# --- Ray ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_ray_pipeline_gives_the_scorers_verdicts_from_an_actor(
    clips: list[tuple[Path, Annotation]],
    expected: dict[Path, ClipScores],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ray

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(2048))
    good = clips[:2]
    jobs = [*jobs_for(good), ScoringJob(key="garbage", path=garbage, annotation=good[0][1])]
    spec = ScorerSpec(
        model="shotbank-tiny", pretrained="synthetic-v1", device="cpu", precision="fp32"
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with RayScoringPipeline(spec, actors=1, batch_clips=2, ship_media=True) as pipe:
            assert pipe.identity == expected[good[0][0]].model
            results = by_key(list(pipe.run(jobs)))
            stats = pipe.stats()
    finally:
        ray.shutdown()
    for path, _ in good:
        assert_same_verdict(results[path.name], expected[path])
    failed = results["garbage"]
    assert isinstance(failed, ClipScores)
    assert failed.outcome is Outcome.FAILED
    assert stats.batched_clips == 3
