"""The ingest pipeline (``backend.services.ingest``) on real clips, a real database, a real
blob store and the real probe worker.

Clips are made with PyAV (``tests/ingest/mediagen.py``); rows are written the way the
clips API writes them (a consumed upload, its bytes in the upload folder, a ``received``
clip), then claimed and processed like a worker thread does.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from tusclient.client import TusClient
from tusclient.uploader.uploader import Uploader

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.core.migrate import upgrade_to_head
from backend.main import create_app
from backend.models.clips import Clip, ClipStatus
from backend.models.media import MediaFacts
from backend.models.uploads import Upload, UploadState
from backend.services import ingest
from backend.services.uploads import upload_file
from ingest.blobstore import LocalBlobStore
from ingest.cid import digest_file
from shotbank.annotation import Annotation, annotation_hash, canonical_json
from tests.backend.conftest import SettingsFactory
from tests.backend.live import Caller, LiveServer, ServerFactory
from tests.ingest.mediagen import ClipSpec, make_clip, patch_mp4_video_size

OWNER = "0x" + "ab" * 20
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

MINIMAL: dict[str, Any] = {
    "schema_version": "1",
    "scene": {"description": "Waves roll onto an empty beach.", "setting": "exterior"},
    "camera": {"movement": "static"},
    "lighting": {"setup": "natural"},
    "rights": {
        "licence": "cc0-1.0",
        "model_release": "not_required",
        "location_release": "not_required",
    },
}
AUDIO = {"genre": "ambience", "dialogue": False, "recording": "field"}


def _keyframe(time_s: float) -> dict[str, Any]:
    return {"time_s": time_s, "position_m": [0, 0, 1.5], "orientation_wxyz": [1, 0, 0, 0]}


# --- media, made once per module ------------------------------------------------------------


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``media(name, **ClipSpec fields)``: a real clip, encoded once per module."""
    folder = tmp_path_factory.mktemp("pipeline-media")
    made: dict[str, Path] = {}

    def make(name: str, **fields: Any) -> Path:
        if name not in made:
            made[name] = make_clip(folder / name, ClipSpec(**fields))
        return made[name]

    return make


@pytest.fixture(scope="module")
def good_mp4(media: Callable[..., Path]) -> bytes:
    """3 s, 640x480, 24 fps H.264 with a -20 dBFS stereo AAC tone."""
    return media("good.mp4").read_bytes()


# --- the pipeline's world -----------------------------------------------------------------


@dataclass
class World:
    settings: Settings
    engine: Engine
    blobs: LocalBlobStore

    def submit(
        self,
        data: bytes,
        *,
        annotation: dict[str, Any] | None = None,
        created_at: datetime = NOW,
        sha256: str | None = None,
    ) -> Clip:
        """Bind ``data`` to a new ``received`` clip, as ``POST /clips`` leaves it."""
        upload_id = secrets.token_hex(16)
        path = upload_file(self.settings, upload_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digest = digest_file(path)
        doc = Annotation.model_validate(annotation or MINIMAL)
        with Session(self.engine) as db:
            db.add(
                Upload(
                    id=upload_id,
                    owner=OWNER,
                    length=len(data),
                    offset=len(data),
                    state=UploadState.CONSUMED,
                    filename="clip.mp4",
                    created_at=created_at,
                    expires_at=created_at + timedelta(days=1),
                    completed_at=created_at,
                    sha256=digest.sha256,
                    cid=digest.cid,
                )
            )
            clip = Clip(
                owner=OWNER,
                upload_id=upload_id,
                filename="clip.mp4",
                size_bytes=len(data),
                sha256=sha256 or digest.sha256,
                content_key=sha256 or digest.sha256,
                cid=digest.cid,
                annotation_json=canonical_json(doc).decode(),
                annotation_hash=annotation_hash(doc),
                created_at=created_at,
                updated_at=created_at,
            )
            db.add(clip)
            db.commit()
            db.refresh(clip)
            db.expunge(clip)
            return clip

    def get(self, clip_id: str) -> Clip:
        with Session(self.engine) as db:
            clip = db.get(Clip, clip_id)
            assert clip is not None
            db.expunge(clip)
            return clip

    def claim(self, now: datetime = NOW) -> str:
        clip_id = ingest.claim_next(self.engine, now=now)
        assert clip_id is not None
        return clip_id

    def run(self, clip_id: str | None = None, now: datetime = NOW) -> Clip:
        """Claim (the next or the given clip must be next) and process it."""
        claimed = self.claim(now)
        if clip_id is not None:
            assert claimed == clip_id
        ingest.process_clip(
            self.engine, settings=self.settings, blobs=self.blobs, clip_id=claimed, now=now
        )
        return self.get(claimed)


@pytest.fixture
def world_for(make_settings: SettingsFactory) -> Iterator[Callable[..., World]]:
    engines: list[Engine] = []

    def factory(**overrides: Any) -> World:
        settings = make_settings(ingest_workers=0, **overrides)
        engine = create_db_engine(settings)
        engines.append(engine)
        upgrade_to_head(engine)
        return World(settings, engine, LocalBlobStore(settings.blob_path, fsync=False))

    yield factory
    for engine in engines:
        engine.dispose()


@pytest.fixture
def world(world_for: Callable[..., World]) -> World:
    return world_for()


def _reasons(clip: Clip) -> list[dict[str, str]]:
    reasons: list[dict[str, str]] = json.loads(clip.reasons_json)
    return reasons


def _rejected_with(world: World, clip: Clip, code: str) -> dict[str, str]:
    done = world.run(clip.id)
    assert done.status == ClipStatus.REJECTED, done.reasons_json
    reasons = _reasons(done)
    assert [reason["code"] for reason in reasons] == [code]
    assert reasons[0]["message"]
    assert done.content_key == clip.sha256, "a rejected clip keeps its content key"
    assert not upload_file(world.settings, clip.upload_id).exists()
    assert list(world.blobs.iter_cids()) == []
    assert done.media_json is None
    assert done.poster_cid is None
    return reasons[0]


# --- the happy path --------------------------------------------------------------------------


def test_a_good_clip_is_moved_into_the_store_and_queued_with_its_facts_and_poster(
    world: World, good_mp4: bytes
) -> None:
    clip = world.submit(good_mp4, annotation={**MINIMAL, "audio": AUDIO})
    source = upload_file(world.settings, clip.upload_id)
    inode = source.stat().st_ino
    done = world.run(clip.id)
    assert done.status == ClipStatus.QUEUED
    assert _reasons(done) == []
    assert done.attempts == 1
    assert done.content_key == clip.sha256
    assert done.annotation_json == clip.annotation_json, "ingest never edits the annotation"
    # The upload file itself became the blob: no copy, nothing left in the upload folder.
    assert not source.exists()
    assert world.blobs.path_for(clip.cid).stat().st_ino == inode
    with world.blobs.open(clip.cid) as stored:
        assert stored.read() == good_mp4
    assert [p.name for p in world.settings.upload_path.iterdir()] == []
    assert done.media_json is not None
    media = MediaFacts.model_validate_json(done.media_json)
    assert (media.container, media.width, media.height) == ("mp4", 640, 480)
    assert media.duration_s == pytest.approx(3.0, abs=0.05)
    assert (media.frame_rate, media.video_codec, media.stream_count) == (24.0, "h264", 2)
    assert (media.audio_codec, media.sample_rate_hz, media.channels) == ("aac", 48_000, 2)
    assert media.integrated_loudness_lufs is not None
    assert media.true_peak_dbtp == pytest.approx(-20.0, abs=1.0)
    assert media.bit_rate is not None
    assert media.bit_rate > 0
    assert set(json.loads(done.media_json)) == set(MediaFacts.model_fields)
    # The poster is a blob of its own: a real JPEG of the clip's picture.
    assert done.poster_cid is not None
    assert done.poster_cid != clip.cid
    with world.blobs.open(done.poster_cid) as poster:
        jpeg = poster.read()
    assert jpeg.startswith(b"\xff\xd8\xff")
    with av.open(io.BytesIO(jpeg)) as image:
        frame = next(image.decode(video=0))
    assert (frame.width, frame.height) == (640, 480)
    world.blobs.verify(done.poster_cid)
    world.blobs.verify(clip.cid)


def test_a_clip_that_is_not_claimed_is_left_alone(world: World, good_mp4: bytes) -> None:
    clip = world.submit(good_mp4)
    status = ingest.process_clip(
        world.engine, settings=world.settings, blobs=world.blobs, clip_id=clip.id
    )
    assert status == ClipStatus.RECEIVED
    assert world.get(clip.id).status == ClipStatus.RECEIVED
    assert upload_file(world.settings, clip.upload_id).exists()
    assert (
        ingest.process_clip(
            world.engine, settings=world.settings, blobs=world.blobs, clip_id="0" * 32
        )
        is None
    )


# --- verdicts on the bytes --------------------------------------------------------------------


def test_a_truncated_mp4_is_rejected_as_truncated(world: World, good_mp4: bytes) -> None:
    clip = world.submit(good_mp4[: len(good_mp4) // 2])
    _rejected_with(world, clip, "media.truncated")


def test_non_video_bytes_named_mp4_are_rejected(world: World) -> None:
    clip = world.submit(b"PK\x03\x04" + bytes(500))
    _rejected_with(world, clip, "media.unsupported_container")


def test_an_hls_playlist_is_rejected_as_a_playlist(world: World) -> None:
    clip = world.submit(b"#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1:9/evil.ts\n")
    reason = _rejected_with(world, clip, "media.playlist")
    assert "playlist" in reason["message"]


def test_a_header_claiming_65535_square_is_rejected_as_out_of_bounds(
    world: World, good_mp4: bytes
) -> None:
    clip = world.submit(patch_mp4_video_size(good_mp4, 65_535, 65_535))
    reason = _rejected_with(world, clip, "media.resolution_out_of_bounds")
    assert "65535x65535" in reason["message"]


def test_more_streams_than_the_settings_allow_is_rejected(
    world_for: Callable[..., World], good_mp4: bytes
) -> None:
    world = world_for(ingest_max_streams=1)
    clip = world.submit(good_mp4)
    reason = _rejected_with(world, clip, "media.too_many_streams")
    assert "2 streams" in reason["message"]


# --- verdicts on the annotation against the media ----------------------------------------------


def test_keyframes_after_the_end_are_rejected_with_their_field(
    world: World, good_mp4: bytes
) -> None:
    doc = copy.deepcopy(MINIMAL)
    doc["camera"] = {
        "movement": "dolly",
        "direction": "in",
        "path": {"keyframes": [_keyframe(0.0), _keyframe(2.0), _keyframe(7.5), _keyframe(9)]},
    }
    clip = world.submit(good_mp4, annotation=doc)
    reason = _rejected_with(world, clip, "annotation.outside_clip")
    assert reason["field"] == "camera.path.keyframes.2.time_s"
    assert "7.5 s" in reason["message"]


def test_an_audio_section_on_a_silent_clip_is_rejected(
    world: World, media: Callable[..., Path]
) -> None:
    silent = media("silent.mp4", audio_codec=None).read_bytes()
    clip = world.submit(silent, annotation={**MINIMAL, "audio": AUDIO})
    reason = _rejected_with(world, clip, "annotation.no_audio_track")
    assert reason["field"] == "audio"


def test_a_silent_clip_without_an_audio_section_is_queued(
    world: World, media: Callable[..., Path]
) -> None:
    clip = world.submit(media("silent.mp4", audio_codec=None).read_bytes())
    done = world.run(clip.id)
    assert done.status == ClipStatus.QUEUED
    assert done.media_json is not None
    media_facts = MediaFacts.model_validate_json(done.media_json)
    assert (media_facts.audio_codec, media_facts.channels, media_facts.stream_count) == (
        None,
        None,
        1,
    )


# --- no verdict: retries, failures ---------------------------------------------------------------


def test_a_probe_timeout_is_retried_then_failed_freeing_the_content_key(
    world_for: Callable[..., World], good_mp4: bytes
) -> None:
    world = world_for(ingest_wall_seconds=0.01, ingest_max_attempts=2)
    clip = world.submit(good_mp4)
    first = world.run(clip.id)
    assert (first.status, first.attempts, first.claimed_at) == (ClipStatus.RECEIVED, 1, None)
    assert first.content_key == clip.sha256
    assert upload_file(world.settings, clip.upload_id).exists()
    second = world.run(clip.id)
    assert (second.status, second.attempts) == (ClipStatus.FAILED, 2)
    assert [reason["code"] for reason in _reasons(second)] == ["media.probe_timeout"]
    assert second.content_key is None
    assert not upload_file(world.settings, clip.upload_id).exists()
    assert list(world.blobs.iter_cids()) == []
    assert ingest.claim_next(world.engine, now=NOW) is None


def test_bytes_that_no_longer_match_their_digest_fail_at_once(
    world: World, good_mp4: bytes
) -> None:
    clip = world.submit(good_mp4, sha256="0" * 64)
    done = world.run(clip.id)
    assert (done.status, done.attempts) == (ClipStatus.FAILED, 1)
    assert [reason["code"] for reason in _reasons(done)] == ["blob.integrity_mismatch"]
    assert done.content_key is None
    assert list(world.blobs.iter_cids()) == []
    assert not upload_file(world.settings, clip.upload_id).exists()


def test_an_unexpected_error_is_logged_retried_and_never_leaves_the_clip_probing(
    world: World, good_mp4: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    clip = world.submit(good_mp4)
    with Session(world.engine) as db:  # a row no current code would write
        db.execute(update(Clip).where(col(Clip.id) == clip.id).values(annotation_json="{"))
        db.commit()
    with caplog.at_level(logging.ERROR, logger="backend.services.ingest"):
        first = world.run(clip.id)
    assert (first.status, first.attempts) == (ClipStatus.RECEIVED, 1)
    assert "ingest failed unexpectedly" in caplog.text
    assert "Traceback" in caplog.text
    second = world.run(clip.id)
    assert (second.status, second.content_key) == (ClipStatus.FAILED, None)
    reasons = _reasons(second)
    assert [reason["code"] for reason in reasons] == [ingest.UNEXPECTED_CODE]
    assert "Traceback" not in reasons[0]["message"]


def test_lost_bytes_fail_at_once(world: World, good_mp4: bytes) -> None:
    clip = world.submit(good_mp4)
    upload_file(world.settings, clip.upload_id).unlink()
    done = world.run(clip.id)
    assert done.status == ClipStatus.FAILED
    assert [reason["code"] for reason in _reasons(done)] == ["blob.not_found"]


def test_an_annotation_changed_while_probing_sends_the_clip_round_again(
    world: World, good_mp4: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = world.submit(good_mp4)
    claimed = world.claim()
    real_probe = ingest.probe_file

    def probe_during_an_edit(*args: Any, **kwargs: Any) -> Any:
        # An edit that ignored the claim commits while the real probe runs.
        with Session(world.engine) as db:
            db.execute(update(Clip).where(col(Clip.id) == claimed).values(revision=2))
            db.commit()
        return real_probe(*args, **kwargs)

    monkeypatch.setattr(ingest, "probe_file", probe_during_an_edit)
    status = ingest.process_clip(
        world.engine, settings=world.settings, blobs=world.blobs, clip_id=claimed, now=NOW
    )
    assert status == ClipStatus.RECEIVED
    monkeypatch.setattr(ingest, "probe_file", real_probe)
    # The bytes were already moved; the next round resumes from the store.
    again = world.run(clip.id)
    assert again.status == ClipStatus.QUEUED
    assert again.poster_cid is not None
    assert world.blobs.exists(again.poster_cid)


# --- crash safety -------------------------------------------------------------------------------


def test_a_crash_after_the_move_before_the_update_is_recovered_to_queued(
    world: World, good_mp4: bytes
) -> None:
    clip = world.submit(good_mp4)
    assert world.claim(NOW) == clip.id
    # The worker moved the bytes into the store, then the process died.
    world.blobs.put_file(
        upload_file(world.settings, clip.upload_id),
        cid=clip.cid,
        sha256=clip.sha256,
        size=clip.size_bytes,
        move=True,
    )
    assert world.get(clip.id).status == ClipStatus.PROBING
    early = NOW + timedelta(seconds=world.settings.ingest_stale_s - 1)
    assert ingest.recover_stale(world.engine, settings=world.settings, now=early) == 0
    later = NOW + timedelta(seconds=world.settings.ingest_stale_s + 1)
    assert ingest.recover_stale(world.engine, settings=world.settings, now=later) == 1
    assert world.get(clip.id).status == ClipStatus.RECEIVED
    done = world.run(clip.id, now=later)
    assert (done.status, done.attempts) == (ClipStatus.QUEUED, 2)
    assert done.media_json is not None
    assert MediaFacts.model_validate_json(done.media_json).video_codec == "h264"
    assert done.poster_cid is not None
    assert world.blobs.exists(done.poster_cid)
    world.blobs.verify(clip.cid)


def test_stale_claims_go_back_to_received_or_fail_when_attempts_are_spent(
    world_for: Callable[..., World],
) -> None:
    world = world_for(ingest_max_attempts=2, ingest_stale_s=600)
    # Rows only: nothing here is probed.
    fresh, once, twice = (
        world.submit(f"clip {n}".encode(), created_at=NOW + timedelta(seconds=n)) for n in range(3)
    )
    for clip, attempts in ((once, 1), (twice, 2)):
        with Session(world.engine) as db:
            db.execute(
                update(Clip)
                .where(col(Clip.id) == clip.id)
                .values(status=ClipStatus.PROBING, attempts=attempts, claimed_at=NOW)
            )
            db.commit()
    recent = world.claim(NOW + timedelta(seconds=500))
    assert recent == fresh.id
    moment = NOW + timedelta(seconds=601)
    assert ingest.recover_stale(world.engine, settings=world.settings, now=moment) == 2
    assert world.get(fresh.id).status == ClipStatus.PROBING, "a live claim is left alone"
    back = world.get(once.id)
    assert (back.status, back.claimed_at, back.content_key) == (
        ClipStatus.RECEIVED,
        None,
        once.sha256,
    )
    failed = world.get(twice.id)
    assert (failed.status, failed.content_key) == (ClipStatus.FAILED, None)
    assert [reason["code"] for reason in _reasons(failed)] == [ingest.INTERRUPTED_CODE]
    assert not upload_file(world.settings, twice.upload_id).exists()
    assert upload_file(world.settings, once.upload_id).exists()


def test_a_clip_whose_workers_keep_dying_fails_and_its_stored_blob_is_released(
    world: World, good_mp4: bytes
) -> None:
    clip = world.submit(good_mp4)
    stale = timedelta(seconds=world.settings.ingest_stale_s + 1)
    world.claim(NOW)
    world.blobs.put_file(  # moved into the store; then the process died
        upload_file(world.settings, clip.upload_id), cid=clip.cid, move=True
    )
    assert ingest.recover_stale(world.engine, settings=world.settings, now=NOW + stale) == 1
    world.claim(NOW + stale)  # the second worker dies too
    moment = NOW + 2 * stale
    assert (
        ingest.recover_stale(world.engine, settings=world.settings, now=moment, blobs=world.blobs)
        == 1
    )
    failed = world.get(clip.id)
    assert (failed.status, failed.attempts, failed.content_key) == (ClipStatus.FAILED, 2, None)
    assert not world.blobs.exists(clip.cid)


def test_recovery_finishes_the_release_of_a_failed_clip_a_crash_interrupted(
    world: World,
) -> None:
    clip = world.submit(b"bytes of a clip that failed")
    with Session(world.engine) as db:  # failed, but the process died before the release
        db.execute(update(Clip).where(col(Clip.id) == clip.id).values(status=ClipStatus.FAILED))
        db.commit()
    assert world.get(clip.id).content_key == clip.sha256
    assert ingest.recover_stale(world.engine, settings=world.settings, now=NOW) == 1
    assert world.get(clip.id).content_key is None
    assert not upload_file(world.settings, clip.upload_id).exists()
    assert ingest.recover_stale(world.engine, settings=world.settings, now=NOW) == 0


def _claim_all_concurrently(engine: Engine, workers: int) -> list[str]:
    claimed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            start.wait()
            while (clip_id := ingest.claim_next(engine, now=NOW)) is not None:
                with lock:
                    claimed.append(clip_id)
        except BaseException as exc:  # reported by the test, not swallowed by the thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return claimed


def test_concurrent_workers_never_claim_the_same_clip(world: World) -> None:
    ids = {
        world.submit(f"clip {n}".encode(), created_at=NOW + timedelta(seconds=n)).id
        for n in range(40)
    }
    claimed = _claim_all_concurrently(world.engine, workers=8)
    assert len(claimed) == len(set(claimed)), "a clip was claimed twice"
    assert set(claimed) == ids
    with Session(world.engine) as db:
        rows = db.exec(select(Clip)).all()
    assert {(row.status, row.attempts) for row in rows} == {(ClipStatus.PROBING, 1)}


@pytest.mark.postgres
def test_concurrent_workers_never_claim_the_same_clip_on_postgresql(
    world_for: Callable[..., World], postgres_url: str
) -> None:
    world = world_for(database_url=postgres_url)
    ids = {
        world.submit(f"pg clip {n}".encode(), created_at=NOW + timedelta(seconds=n)).id
        for n in range(40)
    }
    try:
        claimed = _claim_all_concurrently(world.engine, workers=8)
        assert len(claimed) == len(set(claimed)), "a clip was claimed twice"
        assert ids <= set(claimed)
    finally:
        with Session(world.engine) as db:
            db.execute(delete(Clip).where(col(Clip.id).in_(ids)))
            db.commit()


# --- housekeeping and the background runner -------------------------------------------------


def test_leftover_files_are_swept_and_needed_ones_kept(world: World) -> None:
    waiting = world.submit(b"waiting clip")
    settled = world.submit(b"settled clip")
    with Session(world.engine) as db:
        db.execute(
            update(Clip).where(col(Clip.id) == settled.id).values(status=ClipStatus.REJECTED)
        )
        db.commit()
    folder = world.settings.upload_path
    old_orphan, new_orphan = folder / ("e" * 32), folder / ("f" * 32)
    old_temp = folder / f"{ingest.TEMP_PREFIX}poster-x"
    for path in (old_orphan, new_orphan, old_temp):
        path.write_bytes(b"left behind")
    old = time.time() - ingest.LEFTOVER_AGE_S - 10
    for path in (old_orphan, old_temp):
        os.utime(path, (old, old))
    assert ingest.sweep_leftovers(world.engine, settings=world.settings) == 3
    assert sorted(p.name for p in folder.iterdir()) == sorted([waiting.upload_id, new_orphan.name])


def test_the_app_runs_upload_expiry_in_the_background(make_settings: SettingsFactory) -> None:
    settings = make_settings(ingest_workers=0, housekeeping_interval_s=0.2)
    engine = create_db_engine(settings)
    upgrade_to_head(engine)
    past = datetime.now(UTC) - timedelta(hours=2)
    settings.upload_path.mkdir(parents=True, exist_ok=True)
    with Session(engine) as db:
        for upload_id, expires in (("a" * 32, past), ("b" * 32, past + timedelta(days=1))):
            upload_file(settings, upload_id).write_bytes(b"partial")
            db.add(
                Upload(
                    id=upload_id,
                    owner=OWNER,
                    length=100,
                    offset=7,
                    created_at=past - timedelta(days=1),
                    expires_at=expires,
                )
            )
        db.commit()
    app = create_app(settings)
    with TestClient(app):
        deadline = time.monotonic() + 10
        while upload_file(settings, "a" * 32).exists():
            assert time.monotonic() < deadline, "housekeeping did not expire the upload"
            time.sleep(0.05)
        threads = app.state.background.threads
        names = sorted(thread.name for thread in threads)
        assert names == [
            "shotbank-chain-sync",
            "shotbank-consensus",
            "shotbank-dataset-listing",
            "shotbank-datasets",
            "shotbank-epochs",
            "shotbank-housekeeping",
            "shotbank-submitter",
        ]
    assert upload_file(settings, "b" * 32).exists()
    with Session(engine) as db:
        expired = db.get(Upload, "a" * 32)
        assert expired is not None
        assert expired.state == UploadState.EXPIRED
    assert not any(thread.is_alive() for thread in threads), "shutdown stops the jobs"
    engine.dispose()


def test_the_app_ingests_received_clips_with_its_worker_threads(
    make_settings: SettingsFactory, good_mp4: bytes
) -> None:
    settings = make_settings(ingest_workers=2, ingest_poll_s=0.05)
    engine = create_db_engine(settings)
    upgrade_to_head(engine)
    world = World(settings, engine, LocalBlobStore(settings.blob_path))
    clip = world.submit(good_mp4)
    app = create_app(settings)
    with TestClient(app):
        deadline = time.monotonic() + 30
        while world.get(clip.id).status in (ClipStatus.RECEIVED, ClipStatus.PROBING):
            assert time.monotonic() < deadline, "the workers did not take the clip"
            time.sleep(0.05)
        names = sorted(thread.name for thread in app.state.background.threads)
    assert names == [
        "shotbank-chain-sync",
        "shotbank-consensus",
        "shotbank-dataset-listing",
        "shotbank-datasets",
        "shotbank-epochs",
        "shotbank-housekeeping",
        "shotbank-ingest-0",
        "shotbank-ingest-1",
        "shotbank-submitter",
    ]
    done = world.get(clip.id)
    assert (done.status, done.attempts) == (ClipStatus.QUEUED, 1)
    assert world.blobs.exists(clip.cid)
    engine.dispose()


# --- end to end, through the HTTP API ----------------------------------------------------------


def test_a_clip_uploaded_with_tus_and_submitted_is_queued_and_served_by_cid(
    live: ServerFactory,
    caller_for: Callable[[LiveServer], Caller],
    good_mp4: bytes,
) -> None:
    server = live(ingest_workers=1, ingest_poll_s=0.05)
    caller = caller_for(server)
    client = TusClient(server.uploads_url, headers={"Authorization": f"Bearer {caller.token}"})
    uploader = Uploader(
        file_stream=io.BytesIO(good_mp4),
        client=client,
        chunk_size=64 * 1024,
        metadata={"filename": "gradient.mp4"},
    )
    uploader.upload()
    upload_id = str(uploader.url).rsplit("/", 1)[1]
    response = caller.http.post(
        "/api/v1/clips",
        json={"upload_id": upload_id, "annotation": {**MINIMAL, "audio": AUDIO}},
    )
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    deadline = time.monotonic() + 30
    while (clip := caller.http.get(location).json())["status"] in ("received", "probing"):
        assert time.monotonic() < deadline, f"still {clip['status']}"
        time.sleep(0.05)
    assert clip["status"] == "queued", clip
    assert clip["reasons"] == []
    assert (clip["media"]["width"], clip["media"]["video_codec"]) == (640, "h264")
    assert not upload_file(server.settings, upload_id).exists()

    served = caller.http.get(f"/ipfs/{clip['cid']}")
    assert served.status_code == 200
    assert served.content == good_mp4
    poster = caller.http.get(f"{location}/poster")
    assert poster.status_code == 200, poster.text
    assert poster.headers["content-type"] == "image/jpeg"
    assert poster.content.startswith(b"\xff\xd8\xff")
    assert caller.http.get(f"/ipfs/{clip['poster_cid']}").content == poster.content


def test_a_rejected_clip_tells_its_owner_why_through_the_api(
    live: ServerFactory, caller_for: Callable[[LiveServer], Caller]
) -> None:
    server = live(ingest_workers=1, ingest_poll_s=0.05)
    caller = caller_for(server)
    playlist = b"#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1:9/evil.ts\n"
    created = caller.create(len(playlist))
    assert created.status_code == 201, created.text
    upload_location = created.headers["location"]
    assert caller.patch(upload_location, 0, playlist).status_code == 204
    response = caller.http.post(
        "/api/v1/clips",
        json={"upload_id": upload_location.rsplit("/", 1)[1], "annotation": MINIMAL},
    )
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 30
    location = response.headers["location"]
    while (clip := caller.http.get(location).json())["status"] in ("received", "probing"):
        assert time.monotonic() < deadline, f"still {clip['status']}"
        time.sleep(0.05)
    assert clip["status"] == "rejected"
    assert [reason["code"] for reason in clip["reasons"]] == ["media.playlist"]
    assert caller.http.get(f"{location}/poster").json()["error"]["code"] == "poster_not_found"
