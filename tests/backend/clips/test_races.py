"""Concurrent requests against a real uvicorn server, on SQLite and on PostgreSQL.

Each test releases its requests together (a barrier) from separate threads with their
own connections, and then checks the invariants in the database: one upload binds to one
clip, one content has one live clip, an idempotency key makes one clip, and a revision
is changed by one edit.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend.core.db import create_db_engine
from backend.errors import ClipBusyError, UploadAlreadyUsedError
from backend.models.clips import Clip, ClipStatus, ClipUpdate
from backend.models.uploads import Upload, UploadState
from backend.services import clips, uploads
from backend.services.uploads import upload_file
from ingest.blobstore import LocalBlobStore
from tests.backend.clips.conftest import ANNOTATION, Contributor, MediaFactory, session_token
from tests.backend.conftest import SettingsFactory
from tests.backend.live import LiveServer, ServerFactory

RACERS = 8
T = TypeVar("T")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(
    request: pytest.FixtureRequest, live: ServerFactory, upload_settings: SettingsFactory
) -> LiveServer:
    """A live server on a fresh SQLite file or on the session's PostgreSQL database."""
    overrides: dict[str, Any] = {"ingest_workers": 0}
    if request.param == "postgresql":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    return live(upload_settings(**overrides))


@pytest.fixture
def engine(server: LiveServer) -> Iterator[Engine]:
    """An engine on the live server's database."""
    built = create_db_engine(server.settings)
    yield built
    built.dispose()


@pytest.fixture
def connect(server: LiveServer) -> Iterator[Callable[[LocalAccount], Contributor]]:
    """``connect(account)``: a contributor with its own HTTP connection to ``server``."""
    clients: list[httpx.Client] = []
    tokens: dict[str, str] = {}

    def factory(account: LocalAccount) -> Contributor:
        http = httpx.Client(base_url=server.url, timeout=60)
        clients.append(http)
        if account.address not in tokens:
            tokens[account.address] = session_token(http, account)
        headers = {"Authorization": f"Bearer {tokens[account.address]}"}
        return Contributor(http=http, address=account.address, headers=headers)

    yield factory
    for http in clients:
        http.close()


def _at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run ``calls`` in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _codes(responses: list[httpx.Response]) -> Counter[tuple[int, str | None]]:
    return Counter(
        (r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else None)
        for r in responses
    )


def test_concurrent_submissions_of_one_upload_bind_it_to_one_clip(
    connect: Callable[[LocalAccount], Contributor], media: MediaFactory, engine: Engine
) -> None:
    account = Account.create()
    upload_id = connect(account).upload(media(60))
    racers = [connect(account) for _ in range(RACERS)]

    responses = _at_once([lambda who=who: who.submit(upload_id) for who in racers])

    assert _codes(responses) == {(202, None): 1, (409, "upload_already_used"): RACERS - 1}
    [winner] = [r.json()["id"] for r in responses if r.status_code == 202]
    assert all(r.json()["error"]["clip_id"] == winner for r in responses if r.status_code == 409)
    with Session(engine) as db:
        assert db.exec(select(Clip.id).where(col(Clip.upload_id) == upload_id)).all() == [winner]
        upload = db.get(Upload, upload_id)
        assert upload is not None
        assert upload.state == UploadState.CONSUMED


def test_concurrent_submissions_of_the_same_content_by_several_wallets_make_one_clip(
    connect: Callable[[LocalAccount], Contributor], media: MediaFactory, engine: Engine
) -> None:
    data = media(61)
    racers = [connect(Account.create()) for _ in range(RACERS)]
    uploads = [who.upload(data) for who in racers]

    responses = _at_once(
        [lambda who=who, up=up: who.submit(up) for who, up in zip(racers, uploads, strict=True)]
    )

    assert _codes(responses) == {(202, None): 1, (409, "clip_duplicate"): RACERS - 1}
    [winner] = [r.json() for r in responses if r.status_code == 202]
    assert {r.json()["error"]["existing_clip_id"] for r in responses if r.status_code == 409} == {
        winner["id"]
    }
    with Session(engine) as db:
        live = db.exec(select(Clip.id).where(col(Clip.content_key) == winner["sha256"])).all()
        assert live == [winner["id"]]
        states = {
            upload_id: db.exec(select(Upload.state).where(col(Upload.id) == upload_id)).one()
            for upload_id in uploads
        }
    # The losers' uploads were not bound: their binding was rolled back with the insert.
    assert Counter(states.values()) == {UploadState.CONSUMED: 1, UploadState.COMPLETE: RACERS - 1}
    assert states[winner["upload_id"]] == UploadState.CONSUMED


def test_concurrent_retries_with_one_idempotency_key_make_one_clip(
    connect: Callable[[LocalAccount], Contributor], media: MediaFactory, engine: Engine
) -> None:
    account = Account.create()
    upload_id = connect(account).upload(media(62))
    racers = [connect(account) for _ in range(RACERS)]

    responses = _at_once([lambda who=who: who.submit(upload_id, key="once") for who in racers])

    assert _codes(responses) == {(202, None): 1, (200, None): RACERS - 1}
    assert len({r.json()["id"] for r in responses}) == 1
    assert all(
        r.headers["idempotent-replayed"] == "true" for r in responses if r.status_code == 200
    )
    with Session(engine) as db:
        assert len(db.exec(select(Clip.id).where(col(Clip.owner) == account.address)).all()) == 1


def test_concurrent_edits_of_one_revision_let_exactly_one_through(
    connect: Callable[[LocalAccount], Contributor], media: MediaFactory, engine: Engine
) -> None:
    account = Account.create()
    clip = connect(account).submitted(media(63), ANNOTATION)
    racers = [connect(account) for _ in range(RACERS)]

    def edit(who: Contributor, number: int) -> httpx.Response:
        patch = {"annotation": {"scene": {"tags": [f"take {number}"]}}}
        return who.request(
            "PATCH", f"/api/v1/clips/{clip['id']}", json=patch, headers={"If-Match": '"1"'}
        )

    responses = _at_once([lambda w=w, n=n: edit(w, n) for n, w in enumerate(racers)])

    assert _codes(responses) == {(200, None): 1, (412, "revision_mismatch"): RACERS - 1}
    [winner] = [r.json() for r in responses if r.status_code == 200]
    with Session(engine) as db:
        row = db.get(Clip, clip["id"])
        assert row is not None
        assert (row.revision, row.annotation_hash) == (2, winner["annotation_hash"])


def test_a_withdrawal_racing_a_resubmission_never_loses_the_new_clips_content(
    connect: Callable[[LocalAccount], Contributor], media: MediaFactory, engine: Engine
) -> None:
    data = media(64)
    owner, other = connect(Account.create()), connect(Account.create())
    clip = owner.submitted(data)
    upload_id = other.upload(data)

    withdrawn, resubmitted = _at_once(
        [
            lambda: owner.request("DELETE", f"/api/v1/clips/{clip['id']}"),
            lambda: other.submit(upload_id),
        ]
    )

    assert withdrawn.status_code == 204
    # Either the resubmission came first (duplicate of the still-live clip) or after.
    assert (resubmitted.status_code, resubmitted.json().get("error", {}).get("code")) in {
        (202, None),
        (409, "clip_duplicate"),
    }
    with Session(engine) as db:
        live = db.exec(select(Clip).where(col(Clip.content_key) == clip["sha256"])).all()
    if resubmitted.status_code == 202:
        assert [row.id for row in live] == [resubmitted.json()["id"]]
    else:
        assert live == []


# --- interleavings pinned one by one ------------------------------------------------------
#
# The threads above may or may not interleave at the worst moment. These tests make the
# worst moment happen: another transaction commits right after the request has read what
# it is about to change, so the conditional UPDATE (not an earlier check) must refuse.


def test_a_submission_that_read_the_upload_before_another_bound_it_is_refused(
    connect: Callable[[LocalAccount], Contributor],
    media: MediaFactory,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = Account.create()
    upload_id = connect(account).upload(media(65))
    real_get_upload = uploads.get_upload
    winner: list[str] = []

    def read_then_lose_the_race(db: Session, **kwargs: Any) -> Upload:
        upload = real_get_upload(db, **kwargs)
        if not winner:
            winner.append("")
            with Session(engine) as other:
                first = clips.submit_clip(
                    other,
                    owner=account.address,
                    upload_id=upload_id,
                    annotation_document=ANNOTATION,
                )
                winner[0] = first.clip.id
        return upload

    monkeypatch.setattr(uploads, "get_upload", read_then_lose_the_race)
    with Session(engine) as db, pytest.raises(UploadAlreadyUsedError) as refused:
        clips.submit_clip(
            db, owner=account.address, upload_id=upload_id, annotation_document=ANNOTATION
        )
    assert refused.value.clip_id == winner[0]


def test_an_edit_racing_the_ingest_claim_never_changes_a_clip_being_probed(
    connect: Callable[[LocalAccount], Contributor],
    media: MediaFactory,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = Account.create()
    clip = connect(account).submitted(media(66))
    real_own_clip = clips.own_clip

    def read_then_get_claimed(db: Session, **kwargs: Any) -> Clip:
        row = real_own_clip(db, **kwargs)
        with Session(engine) as worker:  # what the ingest claim does: received -> probing
            worker.execute(
                update(Clip)
                .where(col(Clip.id) == clip["id"], col(Clip.status) == ClipStatus.RECEIVED)
                .values(status=ClipStatus.PROBING, claimed_at=datetime.now(UTC), attempts=1)
            )
            worker.commit()
        return row

    monkeypatch.setattr(clips, "own_clip", read_then_get_claimed)
    patch = ClipUpdate(annotation={"lighting": {"setup": "low_key"}})
    with Session(engine) as db, pytest.raises(ClipBusyError):
        clips.update_clip(db, owner=account.address, clip_id=clip["id"], changes=patch)
    with Session(engine) as db:
        row = db.get(Clip, clip["id"])
        assert row is not None
        assert (row.status, row.revision) == (ClipStatus.PROBING, 1)
        assert row.annotation_hash == clip["annotation_hash"]


def test_a_withdrawal_racing_the_ingest_claim_leaves_the_claim_alone(
    connect: Callable[[LocalAccount], Contributor],
    media: MediaFactory,
    server: LiveServer,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = Account.create()
    clip = connect(account).submitted(media(67))
    real_own_clip = clips.own_clip

    def read_then_get_claimed(db: Session, **kwargs: Any) -> Clip:
        row = real_own_clip(db, **kwargs)
        with Session(engine) as worker:
            worker.execute(
                update(Clip)
                .where(col(Clip.id) == clip["id"], col(Clip.status) == ClipStatus.RECEIVED)
                .values(status=ClipStatus.PROBING, claimed_at=datetime.now(UTC), attempts=1)
            )
            worker.commit()
        return row

    monkeypatch.setattr(clips, "own_clip", read_then_get_claimed)
    store = LocalBlobStore(server.settings.blob_path)
    with Session(engine) as db, pytest.raises(ClipBusyError):
        clips.withdraw_clip(
            db, settings=server.settings, store=store, owner=account.address, clip_id=clip["id"]
        )
    with Session(engine) as db:
        row = db.get(Clip, clip["id"])
        assert row is not None
        assert (row.status, row.content_key) == (ClipStatus.PROBING, clip["sha256"])
    assert upload_file(server.settings, clip["upload_id"]).exists()  # ingest still needs it
