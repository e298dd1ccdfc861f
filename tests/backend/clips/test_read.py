"""``GET /api/v1/clips`` (the caller's list) and ``GET /api/v1/clips/{id}`` (visibility)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from backend.core.config import Settings
from backend.models.clips import ClipStatus
from tests.backend.clips.conftest import Contributor, MediaFactory, api_error, set_clip
from tests.backend.conftest import SettingsFactory

PUBLIC_KEYS = {
    "id",
    "status",
    "contributor",
    "created_at",
    "sha256",
    "cid",
    "size_bytes",
    "annotation",
    "annotation_hash",
    "media",
    "poster_cid",
    "scores",
}


def _ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def _page(who: Contributor, **params: Any) -> dict[str, Any]:
    response = who.request("GET", "/api/v1/clips", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def clip_settings(request: pytest.FixtureRequest, upload_settings: SettingsFactory) -> Settings:
    """The reads run on a fresh SQLite file and on the session's PostgreSQL database."""
    overrides: dict[str, Any] = {"ingest_workers": 0}
    if request.param == "postgresql":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    return upload_settings(**overrides)


@pytest.fixture
def five(alice: Contributor, media: MediaFactory) -> list[str]:
    """Five clips of alice, oldest first."""
    return [alice.submitted(media(20 + n))["id"] for n in range(5)]


# --- one clip -----------------------------------------------------------------------------


def test_others_and_anonymous_callers_get_404_until_the_clip_is_accepted(
    api: TestClient, alice: Contributor, bob: Contributor, media: MediaFactory, engine: Engine
) -> None:
    clip = alice.submitted(media(30))
    location = f"/api/v1/clips/{clip['id']}"
    for status in ("received", "probing", "queued", "scoring", "rejected", "withdrawn"):
        set_clip(engine, clip["id"], status=status)
        api_error(bob.request("GET", location), 404, "clip_not_found")
        api_error(api.get(location), 404, "clip_not_found")
        assert alice.request("GET", location).json()["status"] == status

    # Consensus is not built yet: accepting the clip in the database stands in for it.
    set_clip(engine, clip["id"], status=ClipStatus.ACCEPTED, scores_json='{"scene": 0.8}')
    public = bob.request("GET", location).json()
    assert set(public) == PUBLIC_KEYS  # no filename, upload id, reasons or revision
    assert public["contributor"] == alice.address
    assert public["scores"] == {"scene": 0.8}
    assert (public["sha256"], public["cid"]) == (clip["sha256"], clip["cid"])
    assert api.get(location).json() == public
    assert alice.request("GET", location).json()["upload_id"] == clip["upload_id"]


def test_an_unknown_or_malformed_clip_id_is_404(alice: Contributor) -> None:
    api_error(alice.request("GET", "/api/v1/clips/" + "0" * 32), 404, "clip_not_found")
    api_error(alice.request("GET", "/api/v1/clips/not-a-clip"), 404, "clip_not_found")


def test_a_bad_session_token_on_a_public_read_is_401_not_anonymous(
    api: TestClient, alice: Contributor, media: MediaFactory, engine: Engine
) -> None:
    clip = alice.submitted(media(31))
    set_clip(engine, clip["id"], status=ClipStatus.ACCEPTED)
    response = api.get(f"/api/v1/clips/{clip['id']}", headers={"Authorization": "Bearer nope"})
    api_error(response, 401, "session_invalid")


def test_the_owner_sees_reasons_and_the_reward_as_a_decimal_string(
    alice: Contributor, media: MediaFactory, engine: Engine
) -> None:
    clip = alice.submitted(media(32))
    reasons = [{"code": "media.truncated", "message": "The file ends early.", "field": None}]
    set_clip(
        engine,
        clip["id"],
        status=ClipStatus.REJECTED,
        reasons_json=json.dumps(reasons),
        reward_wei=2**200,
    )
    view = alice.request("GET", f"/api/v1/clips/{clip['id']}").json()
    assert view["reasons"] == reasons
    assert view["reward_wei"] == str(2**200)


# --- the list -----------------------------------------------------------------------------


def test_the_list_shows_only_the_callers_clips_newest_first(
    alice: Contributor, bob: Contributor, media: MediaFactory, five: list[str]
) -> None:
    bobs = bob.submitted(media(33))["id"]
    assert _ids(_page(alice)) == five[::-1]
    assert _page(alice)["next_cursor"] is None
    assert _ids(_page(bob)) == [bobs]


def test_the_list_pages_with_an_opaque_cursor_until_it_is_null(
    alice: Contributor, five: list[str]
) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = _page(alice, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += _ids(page)
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == five[::-1]


def test_paging_is_stable_when_clips_are_added_between_pages(
    alice: Contributor, media: MediaFactory, five: list[str]
) -> None:
    first = _page(alice, limit=2)
    newer = alice.submitted(media(34))["id"]
    rest = _page(alice, limit=10, cursor=first["next_cursor"])
    assert _ids(first) + _ids(rest) == five[::-1]
    assert _ids(_page(alice, limit=1)) == [newer]


def test_clips_created_in_the_same_instant_are_ordered_by_id(
    alice: Contributor, engine: Engine, five: list[str]
) -> None:
    instant = datetime(2030, 1, 1, tzinfo=UTC)
    for clip_id in five:
        set_clip(engine, clip_id, created_at=instant)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        page = _page(alice, limit=1, **({"cursor": cursor} if cursor else {}))
        seen += _ids(page)
        cursor = page["next_cursor"]
    assert cursor is None
    assert seen == sorted(five, reverse=True)


def test_the_status_filter_repeats_and_its_cursor_keeps_it(
    alice: Contributor, engine: Engine, five: list[str]
) -> None:
    set_clip(engine, five[0], status=ClipStatus.QUEUED)
    set_clip(engine, five[2], status=ClipStatus.REJECTED)
    set_clip(engine, five[4], status=ClipStatus.QUEUED)

    queued = _page(alice, status="queued")
    assert _ids(queued) == [five[4], five[0]]
    both = _page(alice, status=["rejected", "queued"], limit=2)
    assert _ids(both) == [five[4], five[2]]
    rest = _page(alice, status=["queued", "rejected"], limit=2, cursor=both["next_cursor"])
    assert _ids(rest) == [five[0]]
    assert rest["next_cursor"] is None

    error = api_error(
        alice.request(
            "GET", "/api/v1/clips", params={"status": "queued", "cursor": both["next_cursor"]}
        ),
        422,
        "invalid_cursor",
    )
    assert "another status filter" in error["message"]
    api_error(
        alice.request("GET", "/api/v1/clips", params={"status": "done"}), 422, "validation_error"
    )


@pytest.mark.parametrize("limit", [0, -1, 101, 1_000_000, "ten"])
def test_a_limit_outside_1_to_100_is_422(alice: Contributor, limit: object) -> None:
    error = api_error(
        alice.request("GET", "/api/v1/clips", params={"limit": limit}), 422, "validation_error"
    )
    assert error["details"][0]["loc"] == ["query", "limit"]


def test_a_garbled_forged_or_foreign_cursor_is_422_invalid_cursor(
    alice: Contributor, bob: Contributor, five: list[str]
) -> None:
    cursor = _page(alice, limit=1)["next_cursor"]
    body, mac = cursor.split(".")
    fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    fields["i"] = "f" * 32  # skip ahead to wherever the forger likes
    forged_body = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()

    for bad in ["garbage", "a.b.c", cursor + "x", f"{forged_body}.{mac}", "%%%.%%%", "." * 5]:
        response = alice.request("GET", "/api/v1/clips", params={"cursor": bad})
        api_error(response, 422, "invalid_cursor")
    # A cursor is signed for the wallet it was issued to.
    api_error(bob.request("GET", "/api/v1/clips", params={"cursor": cursor}), 422, "invalid_cursor")
    api_error(
        alice.request("GET", "/api/v1/clips", params={"cursor": "x" * 2000}),
        422,
        "validation_error",
    )


def test_listing_needs_a_session(api: TestClient) -> None:
    api_error(api.get("/api/v1/clips"), 401, "unauthenticated")
