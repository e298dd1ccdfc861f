"""``PATCH``/``DELETE /api/v1/clips/{id}`` and ``GET /api/v1/clips/{id}/poster``.

Where a clip must be ``queued`` with media facts and a poster, the test does what the
ingest pipeline does, for real: it probes the uploaded file with ``ingest.probe`` (which
also makes the poster), moves the bytes into the app's blob store, stores the poster as
a blob and writes the row.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from backend.core.config import Settings
from backend.models.clips import ClipStatus
from backend.models.media import MediaFacts
from backend.services.uploads import upload_file
from ingest.blobstore import LocalBlobStore
from ingest.cid import StreamingDigest
from ingest.probe import probe_file
from shotbank.annotation import Annotation, annotation_hash
from tests.backend.clips.conftest import (
    Contributor,
    MediaFactory,
    annotation,
    api_error,
    camera_path_text,
    set_clip,
    stored_clip,
)
from tests.backend.live import TUS


def _patch(who: Contributor, clip_id: str, body: Any, **headers: str) -> Any:
    return who.request("PATCH", f"/api/v1/clips/{clip_id}", json=body, headers=headers)


def _queue_like_ingest(settings: Settings, engine: Engine, clip: dict[str, Any]) -> str:
    """Probe, store bytes and poster, set ``queued`` with the media facts; the poster CID."""
    source = upload_file(settings, clip["upload_id"])
    result = probe_file(source)
    assert result.thumbnail is not None
    audio = result.primary_audio
    facts = MediaFacts(
        container=result.container.value,
        duration_s=result.duration_s,
        width=result.video.width,
        height=result.video.height,
        frame_rate=result.video.frame_rate,
        video_codec=result.video.codec,
        audio_codec=audio.codec if audio else None,
        sample_rate_hz=audio.sample_rate if audio else None,
        channels=audio.channels if audio else None,
        stream_count=result.stream_count,
    )
    store = LocalBlobStore(settings.blob_path)
    store.put_file(source, cid=clip["cid"], sha256=clip["sha256"], move=True)
    poster = Path(str(source) + ".poster")
    poster.write_bytes(result.thumbnail.data)
    digest = StreamingDigest()
    digest.update(result.thumbnail.data)
    poster_cid = digest.finalize().cid
    store.put_file(poster, cid=poster_cid, move=True)
    set_clip(
        engine,
        clip["id"],
        status=ClipStatus.QUEUED,
        media_json=facts.model_dump_json(),
        poster_cid=poster_cid,
        attempts=1,
    )
    return poster_cid


# --- PATCH --------------------------------------------------------------------------------


def test_a_merge_patch_changes_the_annotation_rehashes_it_and_bumps_the_revision(
    alice: Contributor, media: MediaFactory
) -> None:
    clip = alice.submitted(media(40))
    patch = {
        "annotation": {
            "scene": {"description": "A grey gradient slides by; a steady tone plays."},
            "lighting": {"contrast": None, "colour_temperature_k": 5600},
        }
    }
    response = _patch(alice, clip["id"], patch)

    assert response.status_code == 200, response.text
    changed = response.json()
    expected = annotation(
        scene={**clip["annotation"]["scene"], **patch["annotation"]["scene"]},
        lighting={"setup": "high_key", "colour_temperature_k": 5600},
    )
    assert changed["annotation"]["scene"]["description"].startswith("A grey gradient slides by")
    assert "contrast" not in changed["annotation"]["lighting"]
    assert changed["annotation_hash"] == annotation_hash(Annotation.model_validate(expected))
    assert changed["annotation_hash"] != clip["annotation_hash"]
    assert changed["revision"] == 2
    assert changed["updated_at"] > clip["updated_at"]
    assert alice.request("GET", f"/api/v1/clips/{clip['id']}").json() == changed


def test_a_patch_that_changes_nothing_keeps_the_revision(
    alice: Contributor, media: MediaFactory
) -> None:
    clip = alice.submitted(media(41))
    for body in ({}, {"annotation": {}}, {"annotation": {"lighting": {"setup": "high_key"}}}):
        response = _patch(alice, clip["id"], body)
        assert response.status_code == 200, response.text
        assert response.json()["revision"] == 1


def test_if_match_guards_against_a_lost_update_with_412(
    alice: Contributor, media: MediaFactory
) -> None:
    clip = alice.submitted(media(42))
    first = _patch(
        alice, clip["id"], {"annotation": {"lighting": {"setup": "low_key"}}}, **{"If-Match": '"1"'}
    )
    assert first.status_code == 200
    assert first.json()["revision"] == 2

    stale = _patch(
        alice, clip["id"], {"annotation": {"lighting": {"setup": "natural"}}}, **{"If-Match": '"1"'}
    )
    error = api_error(stale, 412, "revision_mismatch")
    assert "revision 2" in error["message"]
    current = alice.request("GET", f"/api/v1/clips/{clip['id']}").json()
    assert current["annotation"]["lighting"]["setup"] == "low_key"

    for number, current in enumerate(('"2"', "3", 'W/"4"', "*")):
        patch = {"annotation": {"scene": {"tags": [f"take {number}"]}}}
        response = _patch(alice, clip["id"], patch, **{"If-Match": current})
        assert response.status_code == 200, (current, response.text)
        assert response.json()["revision"] == 3 + number
    api_error(_patch(alice, clip["id"], {}, **{"If-Match": '"two"'}), 422, "invalid_input")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "accepted"),
        ("scores", {"scene": 1.0}),
        ("reward_wei", "1000"),
        ("sha256", "0" * 64),
        ("revision", 9),
        ("upload_id", "0" * 32),
    ],
)
def test_a_patch_of_anything_but_the_annotation_is_422(
    alice: Contributor, media: MediaFactory, engine: Engine, field: str, value: Any
) -> None:
    clip = alice.submitted(media(43))
    error = api_error(_patch(alice, clip["id"], {field: value}), 422, "validation_error")
    assert error["details"][0]["loc"] == ["body", field]
    row = stored_clip(engine, clip["id"])
    assert (row.status, row.revision, row.sha256) == ("received", 1, clip["sha256"])


def test_an_invalid_merged_annotation_is_422_and_nothing_changes(
    alice: Contributor, media: MediaFactory
) -> None:
    clip = alice.submitted(media(44))
    bad = _patch(alice, clip["id"], {"annotation": {"camera": {"movement": "warp"}}})
    error = api_error(bad, 422, "validation_error")
    assert ["body", "annotation", "camera", "movement"] in [d["loc"] for d in error["details"]]
    removed = _patch(alice, clip["id"], {"annotation": {"rights": None}})
    assert api_error(removed, 422, "validation_error")["details"][0]["loc"] == [
        "body",
        "annotation",
        "rights",
    ]
    api_error(_patch(alice, clip["id"], {"annotation": None}), 422, "validation_error")
    assert alice.request("GET", f"/api/v1/clips/{clip['id']}").json() == clip


def test_a_camera_path_text_in_a_patch_replaces_the_stored_path(
    alice: Contributor, media: MediaFactory
) -> None:
    clip = alice.submitted(media(45))
    text = camera_path_text(0, 1_000_000, 2_000_000)
    response = _patch(alice, clip["id"], {"camera_path_text": text})

    assert response.status_code == 200, response.text
    path = response.json()["annotation"]["camera"]["path"]
    assert [k["time_s"] for k in path["keyframes"]] == [0, 1, 2]
    stored_path = clip["annotation"]["camera"]["path"]
    both = {"camera_path_text": text, "annotation": {"camera": {"path": stored_path}}}
    api_error(_patch(alice, clip["id"], both), 422, "camera_path_invalid")
    broken = _patch(alice, clip["id"], {"camera_path_text": "1 2 3\n"})
    assert api_error(broken, 422, "camera_path_invalid")["line"] == 1


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (ClipStatus.PROBING, "clip_busy"),
        (ClipStatus.SCORING, "clip_not_editable"),
        (ClipStatus.ACCEPTED, "clip_not_editable"),
        (ClipStatus.REJECTED, "clip_not_editable"),
        (ClipStatus.FAILED, "clip_not_editable"),
        (ClipStatus.WITHDRAWN, "clip_not_editable"),
    ],
)
def test_a_clip_is_editable_only_while_received_or_queued(
    alice: Contributor, media: MediaFactory, engine: Engine, status: ClipStatus, code: str
) -> None:
    clip = alice.submitted(media(46))
    set_clip(engine, clip["id"], status=status, claimed_at=datetime.now(UTC))
    patch = {"annotation": {"lighting": {"setup": "low_key"}}}
    api_error(_patch(alice, clip["id"], patch), 409, code)
    assert stored_clip(engine, clip["id"]).revision == 1


def test_another_wallet_cannot_patch_or_withdraw_a_clip(
    alice: Contributor, bob: Contributor, media: MediaFactory, engine: Engine
) -> None:
    clip = alice.submitted(media(47))
    api_error(_patch(bob, clip["id"], {"annotation": {}}), 404, "clip_not_found")
    api_error(bob.request("DELETE", f"/api/v1/clips/{clip['id']}"), 404, "clip_not_found")
    assert stored_clip(engine, clip["id"]).status == "received"


def test_a_queued_clip_is_rechecked_against_its_probed_media(
    alice: Contributor, media: MediaFactory, clip_settings: Settings, engine: Engine
) -> None:
    clip = alice.submitted(media(48))
    _queue_like_ingest(clip_settings, engine, clip)
    keyframes = [dict(k) for k in clip["annotation"]["camera"]["path"]["keyframes"]]
    keyframes[1]["time_s"] = 9.0  # the clip is 3 s long

    late = _patch(alice, clip["id"], {"annotation": {"camera": {"path": {"keyframes": keyframes}}}})
    error = api_error(late, 422, "validation_error")
    assert error["details"][0]["loc"] == [
        "body",
        "annotation",
        "camera",
        "path",
        "keyframes",
        1,
        "time_s",
    ]
    assert error["details"][0]["type"] == "outside_clip"

    keyframes[1]["time_s"] = 2.9
    fine = _patch(alice, clip["id"], {"annotation": {"camera": {"path": {"keyframes": keyframes}}}})
    assert fine.status_code == 200, fine.text
    assert fine.json()["status"] == "queued"
    assert fine.json()["revision"] == 2
    assert fine.json()["media"]["duration_s"] == pytest.approx(3.0, abs=0.1)


def test_an_audio_section_on_a_silent_queued_clip_is_422(
    alice: Contributor, media: MediaFactory, clip_settings: Settings, engine: Engine
) -> None:
    clip = alice.submitted(media(49))
    _queue_like_ingest(clip_settings, engine, clip)
    row = stored_clip(engine, clip["id"])
    facts = MediaFacts.model_validate_json(row.media_json or "")
    set_clip(
        engine,
        clip["id"],
        media_json=facts.model_copy(update={"audio_codec": None}).model_dump_json(),
    )
    response = _patch(alice, clip["id"], {"annotation": {"audio": {"mood": "calm"}}})
    assert api_error(response, 422, "validation_error")["details"][0]["loc"] == [
        "body",
        "annotation",
        "audio",
    ]


# --- DELETE -------------------------------------------------------------------------------


def test_withdrawing_a_received_clip_deletes_its_upload_and_frees_the_hash(
    alice: Contributor,
    bob: Contributor,
    media: MediaFactory,
    clip_settings: Settings,
    engine: Engine,
) -> None:
    clip = alice.submitted(media(50))
    location = f"/api/v1/clips/{clip['id']}"
    assert alice.request("DELETE", location).status_code == 204

    row = stored_clip(engine, clip["id"])
    assert (row.status, row.content_key) == ("withdrawn", None)
    assert not upload_file(clip_settings, clip["upload_id"]).exists()
    assert alice.request("GET", location).json()["status"] == "withdrawn"
    assert alice.request("DELETE", location).status_code == 204  # idempotent
    # The same bytes may now be submitted again, by anyone.
    again = bob.submit(bob.upload(media(50)))
    assert again.status_code == 202, again.text
    assert again.json()["sha256"] == clip["sha256"]


def test_withdrawing_a_queued_clip_deletes_its_blob_and_poster(
    alice: Contributor, media: MediaFactory, clip_settings: Settings, engine: Engine
) -> None:
    clip = alice.submitted(media(51))
    poster_cid = _queue_like_ingest(clip_settings, engine, clip)
    store = LocalBlobStore(clip_settings.blob_path)
    assert store.exists(clip["cid"])
    assert store.exists(poster_cid)

    assert alice.request("DELETE", f"/api/v1/clips/{clip['id']}").status_code == 204
    assert not store.exists(clip["cid"])
    assert not store.exists(poster_cid)
    assert stored_clip(engine, clip["id"]).content_key is None


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (ClipStatus.PROBING, "clip_busy"),
        (ClipStatus.SCORING, "clip_not_editable"),
        (ClipStatus.ACCEPTED, "clip_not_editable"),
        (ClipStatus.REJECTED, "clip_not_editable"),
    ],
)
def test_a_clip_past_queued_cannot_be_withdrawn(
    alice: Contributor,
    media: MediaFactory,
    clip_settings: Settings,
    engine: Engine,
    status: ClipStatus,
    code: str,
) -> None:
    clip = alice.submitted(media(52))
    set_clip(engine, clip["id"], status=status, claimed_at=datetime.now(UTC))
    api_error(alice.request("DELETE", f"/api/v1/clips/{clip['id']}"), 409, code)
    row = stored_clip(engine, clip["id"])
    assert (row.status, row.content_key) == (status, clip["sha256"])
    assert upload_file(clip_settings, clip["upload_id"]).exists()


# --- the poster -----------------------------------------------------------------------------


def test_the_poster_is_404_poster_not_found_before_probing(
    alice: Contributor, media: MediaFactory
) -> None:
    clip = alice.submitted(media(53))
    response = alice.request("GET", f"/api/v1/clips/{clip['id']}/poster")
    api_error(response, 404, "poster_not_found")


def test_the_poster_is_a_jpeg_with_the_clips_visibility(
    api: TestClient,
    alice: Contributor,
    bob: Contributor,
    media: MediaFactory,
    clip_settings: Settings,
    engine: Engine,
) -> None:
    clip = alice.submitted(media(54))
    poster_cid = _queue_like_ingest(clip_settings, engine, clip)
    location = f"/api/v1/clips/{clip['id']}/poster"

    response = alice.request("GET", location)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content[:3] == b"\xff\xd8\xff"
    assert response.headers["etag"] == f'"{poster_cid}"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert alice.request("GET", f"/api/v1/clips/{clip['id']}").json()["poster_cid"] == poster_cid
    cached = alice.request("GET", location, headers={"If-None-Match": f'"{poster_cid}"'})
    assert cached.status_code == 304

    api_error(bob.request("GET", location), 404, "clip_not_found")
    api_error(api.get(location), 404, "clip_not_found")
    set_clip(engine, clip["id"], status=ClipStatus.ACCEPTED)
    public = api.get(location)
    assert public.status_code == 200
    assert hashlib.sha256(public.content).digest() == hashlib.sha256(response.content).digest()


def test_a_damaged_poster_is_503_blob_damaged(
    alice: Contributor, media: MediaFactory, clip_settings: Settings, engine: Engine
) -> None:
    clip = alice.submitted(media(55))
    poster_cid = _queue_like_ingest(clip_settings, engine, clip)
    path = LocalBlobStore(clip_settings.blob_path).path_for(poster_cid)
    damaged = bytearray(path.read_bytes())
    damaged[-10] ^= 0xFF
    path.write_bytes(bytes(damaged))
    response = alice.request("GET", f"/api/v1/clips/{clip['id']}/poster")
    api_error(response, 503, "blob_damaged")


def test_the_upload_of_a_withdrawn_clip_is_still_shown_as_consumed(
    alice: Contributor, media: MediaFactory
) -> None:
    clip = alice.submitted(media(56))
    assert alice.request("DELETE", f"/api/v1/clips/{clip['id']}").status_code == 204
    info = alice.request("GET", f"/api/v1/uploads/{clip['upload_id']}", headers=TUS)
    assert info.json()["state"] == "consumed"
