"""The validator API over HTTP: a live backend (uvicorn, its ingest worker, its chain sync
and consensus jobs), wallets signed in with SIWE, stakes on a real anvil chain.

A contributor uploads with tus and submits; the backend's own ingest worker queues the
clip; validators lease it, sign their reports like a node and submit them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI

from backend.models.scoring import LeaseView
from tests.backend.clips.conftest import Contributor, api_error
from tests.backend.conftest import SettingsFactory
from tests.backend.live import Caller, LiveServer, ServerFactory
from tests.backend.scoring.conftest import (
    ANNOTATION,
    MODEL,
    STAKES,
    StakedChain,
    sign,
    unique_media,
    verdict,
)

pytestmark = pytest.mark.chain

CallerFactory = Callable[[LiveServer, LocalAccount | None], Caller]


@pytest.fixture
def database_url() -> str | None:
    """The HTTP tests run on SQLite (the services are tested on PostgreSQL too)."""
    return None


@pytest.fixture
def server(live: ServerFactory, scoring_settings: SettingsFactory) -> LiveServer:
    """A live backend with one ingest worker, quick chain sync and consensus jobs."""
    server = live(
        scoring_settings(ingest_workers=1, ingest_poll_s=0.1, chain_poll_s=0.2, consensus_quorum=3)
    )
    _wait_for(lambda: server_snapshot(server) is not None, "the stake snapshot")
    return server


@pytest.fixture
def anonymous(server: LiveServer) -> Iterator[httpx.Client]:
    """A client of ``server`` that is not signed in."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def server_snapshot(server: LiveServer) -> int | None:
    block: int | None = (
        httpx.get(f"{server.url}/api/v1/validator/config").json().get("snapshot_block")
    )
    return block


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def queued_clip(caller: Caller, base_clip: bytes) -> str:
    """Upload and submit a clip as ``caller``; its id once the backend queued it."""
    contributor = Contributor(http=caller.http, address="")
    clip_id: str = contributor.submitted(unique_media(base_clip), ANNOTATION)["id"]

    def queued() -> bool:
        status = caller.http.get(f"/api/v1/clips/{clip_id}").json()["status"]
        assert status in ("received", "probing", "queued"), status
        return bool(status == "queued")

    _wait_for(queued, f"clip {clip_id} to be queued")
    return clip_id


def lease(caller: Caller, max_jobs: int = 1) -> list[LeaseView]:
    response = caller.http.post("/api/v1/validator/leases", json={"max_jobs": max_jobs})
    assert response.status_code == 200, response.text
    return [LeaseView.model_validate(item) for item in response.json()["leases"]]


def report(caller: Caller, body: dict[str, Any]) -> httpx.Response:
    return caller.http.post("/api/v1/validator/reports", json=body)


# --- the whole way ------------------------------------------------------------------------------


def test_a_clip_is_leased_reported_and_decided_over_http(
    server: LiveServer,
    anonymous: httpx.Client,
    caller_for: CallerFactory,
    staked_chain: StakedChain,
    base_clip: bytes,
) -> None:
    owner = caller_for(server, None)
    clip_id = queued_clip(owner, base_clip)
    validators = [caller_for(server, account) for account in staked_chain.validators[:3]]
    accounts = staked_chain.validators[:3]
    registry = staked_chain.registry

    views = [lease(v) for v in validators]
    assert [[view.clip_id for view in vs] for vs in views] == [[clip_id]] * 3
    assert owner.http.get(f"/api/v1/clips/{clip_id}").json()["status"] == "scoring"

    qualities = (0.6, 0.8, 0.7)
    first = report(
        validators[0], sign(accounts[0], views[0][0], verdict(qualities[0]), registry=registry)
    )
    assert first.status_code == 201, first.text
    assert first.json()["clip_status"] == "scoring"
    # Hidden until decided: from the owner, other validators and the reporter alike.
    api_error(owner.http.get(f"/api/v1/clips/{clip_id}/reports"), 409, "clip_undecided")
    api_error(validators[1].http.get(f"/api/v1/clips/{clip_id}/reports"), 404, "clip_not_found")
    api_error(anonymous.get(f"/api/v1/clips/{clip_id}/reports"), 404, "clip_not_found")
    assert validators[1].http.get("/api/v1/validator/reports").json()["items"] == []
    own = validators[0].http.get("/api/v1/validator/reports").json()["items"]
    assert [item["report_id"] for item in own] == [first.json()["report_id"]]

    for caller, account, views_of, quality in zip(
        validators[1:], accounts[1:], views[1:], qualities[1:], strict=True
    ):
        response = report(
            caller,
            sign(account, views_of[0], verdict(quality, embedding=b"\x01\x02"), registry=registry),
        )
        assert response.status_code == 201, response.text
    assert response.json()["clip_status"] == "accepted"

    shown = anonymous.get(f"/api/v1/clips/{clip_id}/reports")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["status"] == "accepted"
    # Stakes 1000 (0.6), 2000 (0.8), 3000 (0.7) SHOT: the median by stake is 0.7.
    assert body["decision"]["quality"] == 0.7
    assert {r["validator"]: r["stake_wei"] for r in body["reports"]} == {
        a.address: str(stake) for a, stake in zip(accounts, STAKES, strict=False)
    }
    assert all(r["signature"].startswith("0x") and r["agreed"] for r in body["reports"])
    view = owner.http.get(f"/api/v1/clips/{clip_id}").json()
    assert (view["status"], view["reasons"], view["scores"]["quality"]) == ("accepted", [], 0.7)

    listed = anonymous.get("/api/v1/validators").json()
    assert sorted(item["address"] for item in listed["items"]) == sorted(
        a.address for a in accounts
    )
    one = anonymous.get(f"/api/v1/validators/{accounts[2].address.lower()}").json()
    assert one["address"] == accounts[2].address
    assert (one["bonded_wei"], one["is_active"]) == (str(STAKES[2]), True)
    assert (one["decided_reports"], one["agreements"], one["agreement_rate"]) == (1, 1, 1.0)
    assert one["mean_quality_deviation"] == pytest.approx(0.0)
    api_error(
        anonymous.get(f"/api/v1/validators/{Account.create().address}"), 404, "validator_not_found"
    )
    api_error(anonymous.get("/api/v1/validators/0x1234"), 422, "invalid_input")

    page = (
        validators[0]
        .http.get(
            "/api/v1/validator/embeddings",
            params={"weights_sha256": MODEL.weights_sha256, "limit": 5},
        )
        .json()
    )
    assert [item["clip_id"] for item in page["items"]] == [clip_id]
    assert page["has_more"] is False
    again = (
        validators[0]
        .http.get(
            "/api/v1/validator/embeddings",
            params={"weights_sha256": MODEL.weights_sha256, "after": page["next_cursor"]},
        )
        .json()
    )
    assert (again["items"], again["next_cursor"]) == ([], page["next_cursor"])


# --- refusals over HTTP -----------------------------------------------------------------------


def test_an_unstaked_wallet_is_told_how_to_become_a_validator(
    server: LiveServer, caller_for: CallerFactory, staked_chain: StakedChain
) -> None:
    for account in (staked_chain.unstaked, None):
        caller = caller_for(server, account)
        error = api_error(
            caller.http.post("/api/v1/validator/leases", json={}), 403, "validator_not_staked"
        )
        assert "stake at least 1,000 SHOT" in error["message"]
        assert staked_chain.registry in error["message"]
        api_error(
            caller.http.get("/api/v1/validator/embeddings", params={"weights_sha256": "0" * 64}),
            403,
            "validator_not_staked",
        )
    anonymous = httpx.post(f"{server.url}/api/v1/validator/leases", json={})
    assert anonymous.status_code == 401


def test_reports_are_refused_with_the_contracts_codes(
    server: LiveServer,
    caller_for: CallerFactory,
    staked_chain: StakedChain,
    base_clip: bytes,
) -> None:
    owner = caller_for(server, None)
    for _ in range(2):
        queued_clip(owner, base_clip)
    account, other_account = staked_chain.validators[3], staked_chain.validators[4]
    caller, other = caller_for(server, account), caller_for(server, other_account)
    registry = staked_chain.registry
    first, second = lease(caller, max_jobs=2)
    scores = verdict(0.7)

    api_error(report(caller, {"lease_id": first.lease_id}), 422, "validation_error")
    bad_scores = {**sign(account, first, scores, registry=registry), "scores": {"quality": 2}}
    api_error(report(caller, bad_scores), 422, "validation_error")
    api_error(
        report(other, sign(account, first, scores, registry=registry)), 404, "lease_not_found"
    )
    forged = sign(Account.create(), first, scores, registry=registry)
    api_error(report(caller, forged), 422, "report_signature_invalid")
    for_the_other_lease = {
        **sign(account, first, scores, registry=registry),
        "lease_id": second.lease_id,
    }
    api_error(report(caller, for_the_other_lease), 422, "report_signature_invalid")
    moved = sign(account, first, scores, registry=registry, deadline=first.deadline + 1)
    api_error(report(caller, moved), 422, "report_deadline_mismatch")

    body = sign(account, first, scores, registry=registry)
    assert report(caller, body).status_code == 201
    api_error(report(caller, body), 409, "report_duplicate")

    # Returning: idempotent for an unreported lease, refused for a reported or foreign one.
    assert caller.http.delete(f"/api/v1/validator/leases/{second.lease_id}").status_code == 204
    assert caller.http.delete(f"/api/v1/validator/leases/{second.lease_id}").status_code == 204
    api_error(
        report(caller, sign(account, second, scores, registry=registry)), 409, "lease_returned"
    )
    api_error(
        caller.http.delete(f"/api/v1/validator/leases/{first.lease_id}"), 409, "lease_reported"
    )
    api_error(
        other.http.delete(f"/api/v1/validator/leases/{first.lease_id}"), 404, "lease_not_found"
    )


def test_leases_are_listed_for_a_restarted_node_and_requests_are_bounded(
    server: LiveServer,
    caller_for: CallerFactory,
    staked_chain: StakedChain,
    base_clip: bytes,
) -> None:
    owner = caller_for(server, None)
    queued_clip(owner, base_clip)
    caller = caller_for(server, staked_chain.validators[0])
    # No body: one job.
    response = caller.http.post("/api/v1/validator/leases")
    assert response.status_code == 200, response.text
    [held] = response.json()["leases"]
    listed = caller.http.get("/api/v1/validator/leases").json()
    assert [item["lease_id"] for item in listed["leases"]] == [held["lease_id"]]
    # Nothing left: an empty batch and when to ask again.
    empty = caller.http.post("/api/v1/validator/leases", json={"max_jobs": 16}).json()
    assert empty == {"leases": [], "retry_after_s": server.settings.lease_retry_after_s}
    for bad in ({"max_jobs": 0}, {"max_jobs": 10_000}, {"max_jobs": 1, "extra": True}):
        api_error(caller.http.post("/api/v1/validator/leases", json=bad), 422, "validation_error")
    too_many = caller.http.get(
        "/api/v1/validator/embeddings", params={"weights_sha256": "0" * 64, "limit": 100_000}
    )
    api_error(too_many, 422, "validation_error")
    api_error(
        caller.http.get("/api/v1/validators", params={"limit": 1000}), 422, "validation_error"
    )


def test_the_server_runs_the_consensus_job(server: LiveServer) -> None:
    app = server.server.config.app
    assert isinstance(app, FastAPI)
    names = {thread.name for thread in app.state.background.threads}
    assert "shotbank-consensus" in names
    assert all(t.is_alive() for t in app.state.background.threads if t.name == "shotbank-consensus")
