"""Hostile and broken media, end to end: tus upload -> ``POST /api/v1/clips`` -> the ingest
worker -> a ``rejected`` clip whose owner reads why, with nothing lost and nothing kept.

One live server (real uvicorn, real ingest worker thread, real probe subprocess) takes
every case of the contributor issue's bad-input list that concerns the bytes of a clip.
The cases that are refused before a clip exists (wrong tus checksum, offset mismatch,
over-limit size, unsafe file names, another wallet's upload id, replayed or expired
SIWE, unknown vocabulary terms, keyframes out of order, page size 10^6) are pinned next
to their endpoints in ``test_uploads.py``, ``test_auth.py`` and ``clips/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backend.services.uploads import upload_file
from ingest.blobstore import LocalBlobStore
from tests.backend.live import Caller, LiveServer, ServerFactory
from tests.ingest.mediagen import ClipSpec, make_clip, remux_with_size

MINIMAL: dict[str, Any] = {
    "schema_version": "1",
    "scene": {"description": "A grey gradient slides across the frame.", "setting": "interior"},
    "camera": {"movement": "static"},
    "lighting": {"setup": "high_key"},
    "rights": {
        "licence": "cc0-1.0",
        "model_release": "not_required",
        "location_release": "not_required",
    },
}
SOUND = {"genre": "ambience", "dialogue": False, "recording": "studio"}


def _good(folder: Path) -> bytes:
    path = folder / "good.mp4"
    if not path.exists():
        make_clip(path, ClipSpec())
    return path.read_bytes()


def _truncated(folder: Path) -> bytes:
    whole = _good(folder)
    return whole[: len(whole) // 2]


def _not_video(_folder: Path) -> bytes:
    return b"%PDF-1.7\n" + bytes(range(256)) * 64  # any bytes, named shot.mp4


def _hls_polyglot(folder: Path) -> bytes:
    # A playlist pointing at a network URL, with a real MP4 appended: a demuxer that
    # probes by content could pick either. Never opened as a playlist, never fetched.
    return b"#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1:9/evil.ts\n" + _good(folder)


def _zero_length(_folder: Path) -> bytes:
    return b""


def _huge_header(folder: Path) -> bytes:
    webm = make_clip(
        folder / "vp9.webm",
        ClipSpec(format="webm", video_codec="libvpx-vp9", video_options={}, audio_codec=None),
    )
    return remux_with_size(webm, folder / "liar.mkv", 100_000, 100_000).read_bytes()


def _hundreds_of_streams(folder: Path) -> bytes:
    spec = ClipSpec(
        format="mov",
        audio_codec="pcm_s16le",
        audio_streams=300,
        layout="mono",
        sample_rate=8000,
        audio_chunk=4800,
        seconds=2.2,
    )
    return make_clip(folder / "many.mov", spec).read_bytes()


CASES: dict[str, tuple[Callable[[Path], bytes], dict[str, Any], str]] = {
    "truncated MP4": (_truncated, {**MINIMAL, "audio": SOUND}, "media.truncated"),
    "non-video bytes named .mp4": (_not_video, MINIMAL, "media.unsupported_container"),
    "HLS playlist polyglot": (_hls_polyglot, MINIMAL, "media.playlist"),
    "zero-length file": (_zero_length, MINIMAL, "media.empty"),
    "header claiming 100000 x 100000": (_huge_header, MINIMAL, "media.resolution_out_of_bounds"),
    "three hundred streams": (_hundreds_of_streams, MINIMAL, "media.too_many_streams"),
    "camera keyframe after the end of the clip": (
        _good,
        {
            **MINIMAL,
            "audio": SOUND,
            "camera": {
                "movement": "static",
                "path": {
                    "position_scale": "metric",
                    "keyframes": [
                        {"time_s": 0, "position_m": [0, 0, 1], "orientation_wxyz": [1, 0, 0, 0]},
                        {"time_s": 9, "position_m": [0, 0, 1], "orientation_wxyz": [1, 0, 0, 0]},
                    ],
                },
            },
        },
        "annotation.outside_clip",
    ),
}


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad-media")


@pytest.fixture
def server(live: ServerFactory) -> LiveServer:
    return live(ingest_workers=1, ingest_poll_s=0.05)


def _upload(caller: Caller, data: bytes) -> str:
    created = caller.create(len(data), "filename c2hvdC5tcDQ=")  # "shot.mp4"
    assert created.status_code == 201, created.text
    location: str = created.headers["location"]
    if data:
        assert caller.patch(location, 0, data).status_code == 204
    return location.rsplit("/", 1)[1]


def _decided(caller: Caller, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (clip := caller.http.get(location).json())["status"] in ("received", "probing"):
        assert time.monotonic() < deadline, f"still {clip['status']}"
        time.sleep(0.05)
    return clip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_media_is_rejected_with_its_reason_and_leaves_nothing_behind(
    case: str,
    media_dir: Path,
    server: LiveServer,
    caller_for: Callable[[LiveServer], Caller],
) -> None:
    make, document, code = CASES[case]
    data = make(media_dir)
    alice, bob = caller_for(server), caller_for(server)

    upload_id = _upload(alice, data)
    response = alice.http.post(
        "/api/v1/clips", json={"upload_id": upload_id, "annotation": document}
    )
    assert response.status_code == 202, response.text
    clip = _decided(alice, response.headers["location"])

    assert clip["status"] == "rejected", clip
    assert [reason["code"] for reason in clip["reasons"]] == [code]
    assert all(reason["message"] for reason in clip["reasons"])
    # Nothing kept: the upload's bytes are deleted and nothing entered the blob store.
    assert not upload_file(server.settings, upload_id).exists()
    assert list(LocalBlobStore(server.settings.blob_path).iter_cids()) == []
    # Nothing lost: the verdict stays readable, and the same bytes sent again by anyone
    # are answered with the clip that already holds the verdict.
    again = bob.http.post(
        "/api/v1/clips", json={"upload_id": _upload(bob, data), "annotation": document}
    )
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "clip_duplicate"
    assert again.json()["error"]["existing_clip_id"] == clip["id"]
