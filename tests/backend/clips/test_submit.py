"""``POST /api/v1/clips``: a real tus upload of a real clip becomes a ``received`` clip."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from backend.core.config import Settings
from backend.models.uploads import Upload
from backend.services.uploads import upload_file
from ingest.cid import StreamingDigest
from shotbank.annotation import Annotation, annotation_hash, canonical_json
from tests.backend.clips.conftest import (
    ANNOTATION,
    Contributor,
    MediaFactory,
    annotation,
    api_error,
    camera_path_text,
    stored_clip,
)
from tests.backend.live import TUS


def test_a_complete_upload_becomes_a_received_clip_with_202_location_and_the_owner_view(
    alice: Contributor, media: MediaFactory, clip_settings: Settings, engine: Engine
) -> None:
    data = media(0)
    upload_id = alice.upload(data, filename="gradient-truck.mp4")
    response = alice.submit(upload_id)

    assert response.status_code == 202, response.text
    clip = response.json()
    assert response.headers["location"] == f"/api/v1/clips/{clip['id']}"
    digest = StreamingDigest()
    digest.update(data)
    expected = Annotation.model_validate(ANNOTATION)
    assert clip["status"] == "received"
    assert clip["upload_id"] == upload_id
    assert clip["filename"] == "gradient-truck.mp4"
    assert clip["size_bytes"] == len(data)
    assert clip["sha256"] == hashlib.sha256(data).hexdigest()
    assert clip["cid"] == digest.finalize().cid
    assert clip["annotation"] == json.loads(canonical_json(expected))
    assert clip["annotation"]["scene"]["tags"] == ["test", "gradient"]  # normalised
    assert clip["annotation_hash"] == annotation_hash(expected)
    assert (clip["revision"], clip["reasons"], clip["media"]) == (1, [], None)
    assert (clip["poster_cid"], clip["scores"], clip["reward_wei"]) == (None, None, None)

    assert alice.request("GET", response.headers["location"]).json() == clip
    row = stored_clip(engine, clip["id"])
    assert row.content_key == row.sha256
    assert row.owner == alice.address
    # The upload is bound: still visible to its owner, its bytes kept for ingest.
    upload = alice.request("GET", f"/api/v1/uploads/{upload_id}", headers=TUS).json()
    assert upload["state"] == "consumed"
    assert upload_file(clip_settings, upload_id).read_bytes() == data


def test_an_idempotent_retry_replays_the_clip_with_200(
    alice: Contributor, media: MediaFactory
) -> None:
    upload_id = alice.upload(media(1))
    first = alice.submit(upload_id, key="retry-me 1")
    again = alice.submit(upload_id, key="retry-me 1")

    assert first.status_code == 202
    assert "idempotent-replayed" not in first.headers
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert again.json() == first.json()


def test_the_same_idempotency_key_with_another_body_is_422_idempotency_key_reused(
    alice: Contributor, media: MediaFactory
) -> None:
    upload_id = alice.upload(media(2))
    assert alice.submit(upload_id, key="k").status_code == 202
    changed = annotation(lighting={"setup": "low_key"})

    error = api_error(alice.submit(upload_id, changed, key="k"), 422, "idempotency_key_reused")
    assert "another request" in error["message"]


def test_an_idempotency_key_belongs_to_its_wallet(
    alice: Contributor, bob: Contributor, media: MediaFactory
) -> None:
    assert alice.submit(alice.upload(media(3)), key="shared").status_code == 202
    assert bob.submit(bob.upload(media(4)), key="shared").status_code == 202


@pytest.mark.parametrize("key", ["", "x" * 129, "caf\u00e9", "tab\there"])
def test_a_malformed_idempotency_key_is_422(
    alice: Contributor, media: MediaFactory, key: str
) -> None:
    upload_id = alice.upload(media(5))
    response = alice.request(
        "POST",
        "/api/v1/clips",
        json={"upload_id": upload_id, "annotation": ANNOTATION},
        headers={"Idempotency-Key": key.encode("utf-8")},
    )
    api_error(response, 422, "validation_error")


def test_the_same_content_from_another_wallet_is_409_naming_the_existing_clip(
    alice: Contributor, bob: Contributor, media: MediaFactory
) -> None:
    first = alice.submitted(media(6))
    response = bob.submit(bob.upload(media(6)))

    error = api_error(response, 409, "clip_duplicate")
    assert error["existing_clip_id"] == first["id"]
    assert first["id"] in error["message"]


def test_the_same_content_twice_from_one_wallet_is_a_duplicate_too(
    alice: Contributor, media: MediaFactory
) -> None:
    first = alice.submitted(media(7))
    error = api_error(alice.submit(alice.upload(media(7))), 409, "clip_duplicate")
    assert error["existing_clip_id"] == first["id"]


def test_another_wallets_upload_is_404_upload_not_found(
    alice: Contributor, bob: Contributor, media: MediaFactory
) -> None:
    upload_id = alice.upload(media(8))
    api_error(bob.submit(upload_id), 404, "upload_not_found")
    api_error(bob.submit("0" * 32), 404, "upload_not_found")
    assert alice.submit(upload_id).status_code == 202  # untouched by bob's attempt


def test_an_incomplete_upload_is_409_upload_incomplete(
    alice: Contributor, media: MediaFactory
) -> None:
    data = media(9)
    upload_id = alice.start_upload(len(data), data[:1000])
    error = api_error(alice.submit(upload_id), 409, "upload_incomplete")
    assert f"1000 of its {len(data)} bytes" in error["message"]


def test_an_expired_upload_is_410_upload_expired(
    alice: Contributor, media: MediaFactory, engine: Engine
) -> None:
    data = media(9)
    upload_id = alice.start_upload(len(data), data[:1000])
    with Session(engine) as db:
        db.execute(
            update(Upload)
            .where(col(Upload.id) == upload_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        db.commit()
    api_error(alice.submit(upload_id), 410, "upload_expired")


def test_an_upload_already_bound_is_409_upload_already_used_naming_its_clip(
    alice: Contributor, media: MediaFactory
) -> None:
    upload_id = alice.upload(media(10))
    clip = alice.submit(upload_id).json()
    error = api_error(
        alice.submit(upload_id, annotation(lighting={"setup": "low_key"})),
        409,
        "upload_already_used",
    )
    assert error["clip_id"] == clip["id"]
    assert clip["id"] in error["message"]


def test_a_consumed_upload_can_be_neither_terminated_nor_appended_to(
    alice: Contributor, media: MediaFactory, clip_settings: Settings
) -> None:
    data = media(11)
    upload_id = alice.upload(data)
    assert alice.submit(upload_id).status_code == 202
    location = f"/api/v1/uploads/{upload_id}"

    api_error(alice.request("DELETE", location, headers=TUS), 409, "upload_already_used")
    appended = alice.request(
        "PATCH",
        location,
        headers={
            **TUS,
            "Upload-Offset": str(len(data)),
            "Content-Type": "application/offset+octet-stream",
        },
        content=b"more",
    )
    assert appended.status_code == 409
    assert upload_file(clip_settings, upload_id).read_bytes() == data
    assert alice.request("GET", location, headers=TUS).json()["state"] == "consumed"


def test_a_terminated_upload_cannot_be_submitted(alice: Contributor, media: MediaFactory) -> None:
    upload_id = alice.upload(media(12))
    assert alice.request("DELETE", f"/api/v1/uploads/{upload_id}", headers=TUS).status_code == 204
    api_error(alice.submit(upload_id), 404, "upload_not_found")


# --- the annotation ---------------------------------------------------------------------


def test_an_unknown_vocabulary_term_is_422_with_the_field_path(
    alice: Contributor, media: MediaFactory
) -> None:
    upload_id = alice.upload(media(13))
    document = annotation(lighting={"setup": "moonbeams"})
    error = api_error(alice.submit(upload_id, document), 422, "validation_error")

    [detail] = error["details"]
    assert detail["loc"] == ["body", "annotation", "lighting", "setup"]
    assert "moonbeams" in detail["msg"]
    # Nothing was bound: the same upload goes through once the annotation is fixed.
    assert alice.submit(upload_id).status_code == 202


def test_keyframes_out_of_order_are_422_at_the_path(
    alice: Contributor, media: MediaFactory
) -> None:
    document = annotation()
    keyframes = document["camera"]["path"]["keyframes"]
    keyframes.reverse()
    error = api_error(alice.submit(alice.upload(media(14)), document), 422, "validation_error")

    [detail] = error["details"]
    assert detail["loc"] == ["body", "annotation", "camera", "path", "keyframes"]
    assert "increasing time order" in detail["msg"]


def test_several_problems_are_all_reported(alice: Contributor, media: MediaFactory) -> None:
    document = annotation(
        lighting={"setup": "moonbeams"},
        rights={"licence": "cc-by-4.0", "model_release": "no", "location_release": "x"},
    )
    error = api_error(alice.submit(alice.upload(media(14)), document), 422, "validation_error")
    places = {tuple(detail["loc"][2:]) for detail in error["details"]}
    assert ("lighting", "setup") in places
    assert ("rights", "model_release") in places
    assert error["message"] == f"The annotation is invalid ({len(error['details'])} problems)."


def test_an_unknown_top_level_key_is_422(alice: Contributor, media: MediaFactory) -> None:
    upload_id = alice.upload(media(14))
    body = {"upload_id": upload_id, "annotation": ANNOTATION, "status": "accepted"}
    error = api_error(alice.request("POST", "/api/v1/clips", json=body), 422, "validation_error")
    assert error["details"][0]["loc"] == ["body", "status"]


def test_a_camera_path_text_is_parsed_into_the_annotation(
    alice: Contributor, media: MediaFactory
) -> None:
    document = annotation()
    del document["camera"]["path"]
    text = camera_path_text(5_000_000, 5_500_000, 6_000_000, 7_000_000)
    response = alice.submit(alice.upload(media(15)), document, camera_path_text=text)

    assert response.status_code == 202, response.text
    path = response.json()["annotation"]["camera"]["path"]
    assert [k["time_s"] for k in path["keyframes"]] == [0, 0.5, 1, 2]
    assert path["position_scale"] == "arbitrary"
    # super35 is 24.89 mm wide: fx 0.5 of the width is a 12.445 mm lens.
    assert path["keyframes"][0]["focal_length_mm"] == pytest.approx(12.445, abs=0.01)


def test_a_bad_camera_path_text_is_422_camera_path_invalid_naming_the_line(
    alice: Contributor, media: MediaFactory
) -> None:
    document = annotation()
    del document["camera"]["path"]
    text = camera_path_text(0, 500_000) + "1000000 0.5 0.9 0.5\n"
    response = alice.submit(alice.upload(media(16)), document, camera_path_text=text)

    error = api_error(response, 422, "camera_path_invalid")
    assert error["line"] == 4
    assert "line 4" in error["message"]


def test_a_camera_path_text_with_an_annotation_path_is_422(
    alice: Contributor, media: MediaFactory
) -> None:
    response = alice.submit(
        alice.upload(media(16)), ANNOTATION, camera_path_text=camera_path_text(0, 500_000)
    )
    error = api_error(response, 422, "camera_path_invalid")
    assert "not both" in error["message"]


def test_submitting_needs_a_session(api: Any, alice: Contributor, media: MediaFactory) -> None:
    upload_id = alice.upload(media(17))
    response = api.post("/api/v1/clips", json={"upload_id": upload_id, "annotation": ANNOTATION})
    api_error(response, 401, "unauthenticated")


def test_a_long_camera_path_fits_the_clips_body_cap_but_a_huge_body_is_413(
    alice: Contributor, media: MediaFactory, clip_settings: Settings
) -> None:
    document = annotation()
    del document["camera"]["path"]
    # 2,900 poses over 2.9 s: ~200 KB of text, far over the 64 KiB cap of other routes.
    text = camera_path_text(*range(0, 2_900_000, 1_000))
    assert len(text) > clip_settings.max_request_body_bytes
    response = alice.submit(alice.upload(media(18)), document, camera_path_text=text)
    assert response.status_code == 202, response.text
    assert len(response.json()["annotation"]["camera"]["path"]["keyframes"]) == 2_900

    huge = "x" * (clip_settings.clip_max_request_body_bytes + 1)
    response = alice.submit(alice.upload(media(19)), document, camera_path_text=huge)
    api_error(response, 413, "request_too_large")
