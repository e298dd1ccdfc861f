"""The ``/datasets`` routes on a live server: operators define and freeze, the background
packer writes the version, anyone reads the metadata; shards are not served yet."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from backend.core.db import create_db_engine
from backend.models.datasets import DatasetVersionStatus
from ingest.blobstore import LocalBlobStore
from shotbank.datasets.format import read_manifest_jsonl, version_hash
from tests.backend.dataset_fixtures import CONTRIBUTOR, clips, operator, server
from tests.backend.datasets_world import BASE, DatasetWorld, annotation
from tests.backend.live import Caller, LiveServer

__all__ = ["clips", "operator", "server"]  # fixtures used here


@pytest.fixture
def world(server: LiveServer) -> Iterator[DatasetWorld]:
    settings = server.settings
    engine = create_db_engine(settings)
    yield DatasetWorld(settings, engine, LocalBlobStore(settings.blob_path, fsync=False))
    engine.dispose()


@pytest.fixture
def as_operator(
    server: LiveServer, caller_for: Callable[..., Caller], operator: LocalAccount
) -> httpx.Client:
    return caller_for(server, operator).http


def _create(http: httpx.Client, slug: str, **flt: Any) -> httpx.Response:
    return http.post("/api/v1/datasets", json={"slug": slug, "title": slug, "filter": flt})


def _wait_ready(http: httpx.Client, dataset_id: str, number: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        body: dict[str, Any] = http.get(f"/api/v1/datasets/{dataset_id}/versions/{number}").json()
        if body["status"] != DatasetVersionStatus.PACKING:
            return body
        assert time.monotonic() < deadline, "the packer did not finish the version"
        time.sleep(0.05)


def test_an_operator_defines_and_freezes_and_anyone_reads_the_ready_version(
    server: LiveServer, world: DatasetWorld, as_operator: httpx.Client, clips: list[bytes]
) -> None:
    ids = sorted(world.accepted(data, owner=CONTRIBUTOR) for data in clips[:2])
    world.accepted(clips[2], owner=CONTRIBUTOR, doc=annotation(lighting={"setup": "low_key"}))
    created = _create(as_operator, "natural-light", lighting_setups=["natural"])
    assert created.status_code == 201, created.text
    dataset = created.json()
    assert dataset["filter"] == {"version": "1", "lighting_setups": ["natural"]}

    frozen = as_operator.post(
        f"/api/v1/datasets/{dataset['id']}/versions", json={"shard_bytes": 32 * 1024}
    )
    assert frozen.status_code == 202, frozen.text
    assert frozen.json()["status"] == "packing"
    assert frozen.json()["samples"] == 2

    with httpx.Client(base_url=server.url) as anyone:
        summary = _wait_ready(anyone, dataset["id"], 1)
        assert summary["status"] == "ready", summary
        assert (summary["samples"], summary["contributors"]) == (2, 1)
        assert summary["shard_bytes"] == 32 * 1024
        base = f"/api/v1/datasets/{dataset['id']}/versions/1"
        manifest = anyone.get(f"{base}/manifest.jsonl")
        assert manifest.status_code == 200
        assert hashlib.sha256(manifest.content).hexdigest() == summary["version_hash"]
        index = anyone.get(f"{base}/index.json").json()
        assert index["version_hash"] == summary["version_hash"]
        assert summary["shards"] == len(index["shards"])
        assert summary["total_bytes"] == sum(shard["size"] for shard in index["shards"])
        assert anyone.get(f"{base}/shard-000000.tar").status_code == 404, "no shards yet"
        detail = anyone.get(f"/api/v1/datasets/{dataset['id']}").json()
        assert [v["number"] for v in detail["versions"]] == [1]
        listing = anyone.get("/api/v1/datasets", params={"limit": 1}).json()
        assert [item["slug"] for item in listing["items"]] == ["natural-light"]
    folder = world.settings.datasets_path / summary["version_hash"]
    rows = read_manifest_jsonl(folder / "manifest.jsonl")
    assert [row.key for row in rows] == ids
    assert version_hash(rows) == summary["version_hash"]


def test_defining_or_freezing_is_403_for_others_and_401_without_a_session(
    server: LiveServer,
    world: DatasetWorld,
    as_operator: httpx.Client,
    caller_for: Callable[..., Caller],
    clips: list[bytes],
) -> None:
    world.accepted(clips[0], owner=CONTRIBUTOR, doc=BASE)
    dataset_id = _create(as_operator, "all").json()["id"]
    stranger = caller_for(server).http
    refused = _create(stranger, "mine")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "not_an_operator"
    assert "SHOTBANK_OPERATORS" in refused.json()["error"]["message"]
    refused = stranger.post(f"/api/v1/datasets/{dataset_id}/versions")
    assert refused.status_code == 403
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.post(f"/api/v1/datasets/{dataset_id}/versions").status_code == 401
    assert as_operator.get(f"/api/v1/datasets/{dataset_id}").json()["versions"] == []


def test_an_empty_match_is_409_and_bad_requests_are_refused_clearly(
    server: LiveServer, world: DatasetWorld, as_operator: httpx.Client, clips: list[bytes]
) -> None:
    world.accepted(clips[0], owner=CONTRIBUTOR)
    dataset_id = _create(as_operator, "drones", camera_movements=["drone"]).json()["id"]
    empty = as_operator.post(f"/api/v1/datasets/{dataset_id}/versions")
    assert empty.status_code == 409
    assert empty.json()["error"]["code"] == "dataset_empty_match"
    assert "nothing to freeze" in empty.json()["error"]["message"]
    assert as_operator.get(f"/api/v1/datasets/{dataset_id}/versions/1").status_code == 404

    taken = _create(as_operator, "drones")
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "dataset_slug_taken")
    invalid = _create(as_operator, "odd", camera_movements=["barrel_roll"])
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (422, "dataset_filter_invalid")
    unknown = _create(as_operator, "odd", lens=["wide"])
    assert unknown.status_code == 422
    too_small = as_operator.post(
        f"/api/v1/datasets/{dataset_id}/versions", json={"shard_bytes": 1024}
    )
    assert too_small.status_code == 422
    missing = as_operator.get("/api/v1/datasets/" + "0" * 32)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "dataset_not_found")
