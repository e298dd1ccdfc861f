"""Verified downloads: only the leased bytes are ever kept, and the session token stays home."""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest.cid import cid_of_bytes
from scoring.node.client import Lease, LeaseBatch, ValidatorClient
from scoring.node.errors import ContentMismatchError, FetchError
from shotbank.annotation import Annotation, annotation_hash
from tests.scoring.node.conftest import ContentServer
from tests.sdk.annotation.conftest import MINIMAL

#: Over one CID chunk (256 KiB), so the CID is a dag-pb root, not a single raw leaf.
CLIP_BYTES = secrets.token_bytes(300_000)


def make_lease(data: bytes, *, content_url: str | None = None, **changes: Any) -> Lease:
    cid = cid_of_bytes(data)
    now = datetime.now(UTC)
    document: dict[str, Any] = {
        "lease_id": secrets.token_hex(16),
        "clip_id": secrets.token_hex(16),
        "content_cid": cid,
        "content_url": content_url or f"/ipfs/{cid}",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "annotation": MINIMAL,
        "annotation_hash": annotation_hash(Annotation.model_validate(MINIMAL)),
        "issued_at": now.isoformat(),
        "expires_at": (now + timedelta(minutes=10)).isoformat(),
        "deadline": int(time.time()) + 600,
    }
    document.update(changes)
    return Lease.model_validate(document)


@pytest.fixture
def client(content_server: ContentServer) -> Any:
    with ValidatorClient(content_server.url, token="session-token", fetch_timeout=10) as c:
        yield c


def test_a_clip_is_fetched_and_verified_by_size_sha256_and_cid(
    client: ValidatorClient, content_server: ContentServer, tmp_path: Path
) -> None:
    lease = make_lease(CLIP_BYTES)
    content_server.bodies[f"/ipfs/{lease.content_cid}"] = CLIP_BYTES
    counted: list[int] = []
    fetched = client.fetch_content(lease, tmp_path, max_bytes=10**6, on_bytes=counted.append)
    assert fetched.path.read_bytes() == CLIP_BYTES
    assert (fetched.size, fetched.sha256, fetched.cid) == (
        len(CLIP_BYTES),
        lease.sha256,
        lease.content_cid,
    )
    assert sum(counted) == len(CLIP_BYTES)
    assert fetched.cid.startswith("bafy")  # a multi-leaf DAG root was recomputed
    assert os.stat(fetched.path).st_mode & 0o077 == 0


def test_the_session_token_is_never_sent_to_the_content_server(
    client: ValidatorClient, content_server: ContentServer, tmp_path: Path
) -> None:
    lease = make_lease(CLIP_BYTES)
    content_server.bodies[f"/ipfs/{lease.content_cid}"] = CLIP_BYTES
    client.fetch_content(lease, tmp_path, max_bytes=10**6)
    assert content_server.requests
    assert all("authorization" not in headers for headers in content_server.requests)


def test_other_bytes_of_the_same_size_are_a_mismatch_and_leave_no_file(
    client: ValidatorClient, content_server: ContentServer, tmp_path: Path
) -> None:
    lease = make_lease(CLIP_BYTES)
    tampered = bytearray(CLIP_BYTES)
    tampered[-1] ^= 0xFF
    content_server.bodies[f"/ipfs/{lease.content_cid}"] = bytes(tampered)
    with pytest.raises(ContentMismatchError, match="not the leased content") as caught:
        client.fetch_content(lease, tmp_path, max_bytes=10**6)
    assert "CID" in str(caught.value)
    assert "SHA-256" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_lease_whose_cid_and_sha256_disagree_is_refused(
    client: ValidatorClient, content_server: ContentServer, tmp_path: Path
) -> None:
    # The SHA-256 is right, the CID names other bytes: both must hold.
    other_cid = cid_of_bytes(b"something else")
    lease = make_lease(CLIP_BYTES, content_cid=other_cid, content_url=f"/ipfs/{other_cid}")
    content_server.bodies[f"/ipfs/{other_cid}"] = CLIP_BYTES
    with pytest.raises(ContentMismatchError, match=f"CID .*leased {other_cid}"):
        client.fetch_content(lease, tmp_path, max_bytes=10**6)


def test_a_server_sending_more_than_leased_is_cut_off(
    client: ValidatorClient, content_server: ContentServer, tmp_path: Path
) -> None:
    lease = make_lease(CLIP_BYTES)
    path = f"/ipfs/{lease.content_cid}"
    content_server.bodies[path] = CLIP_BYTES + secrets.token_bytes(20 * 1024**2)
    with pytest.raises(ContentMismatchError, match="sent more than the leased"):
        client.fetch_content(lease, tmp_path, max_bytes=10**8)
    assert list(tmp_path.iterdir()) == []
    # The download stopped early, long before the 20 MiB were through.
    deadline = time.monotonic() + 5
    while path not in content_server.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    assert content_server.sent.get(path, 0) < 10 * 1024**2


def test_a_clip_over_the_node_limit_is_not_downloaded(
    client: ValidatorClient, content_server: ContentServer, tmp_path: Path
) -> None:
    lease = make_lease(CLIP_BYTES)
    content_server.bodies[f"/ipfs/{lease.content_cid}"] = CLIP_BYTES
    with pytest.raises(ContentMismatchError, match="over this node's limit"):
        client.fetch_content(lease, tmp_path, max_bytes=1000)
    assert content_server.requests == []


def test_a_missing_blob_and_an_unreachable_server_are_fetch_errors(
    client: ValidatorClient, tmp_path: Path, free_tcp_port: int
) -> None:
    lease = make_lease(CLIP_BYTES)
    with pytest.raises(FetchError, match="HTTP 404"):
        client.fetch_content(lease, tmp_path, max_bytes=10**6)
    gone = make_lease(CLIP_BYTES, content_url=f"http://127.0.0.1:{free_tcp_port}/ipfs/x")
    with pytest.raises(FetchError, match="failed"):
        client.fetch_content(gone, tmp_path, max_bytes=10**6)
    assert list(tmp_path.iterdir()) == []


def test_an_absolute_gateway_url_is_followed_but_only_http(
    client: ValidatorClient, content_server: ContentServer, tmp_path: Path
) -> None:
    lease = make_lease(CLIP_BYTES, content_url=f"{content_server.url}/gw/clip")
    content_server.bodies["/gw/clip"] = CLIP_BYTES
    assert client.fetch_content(lease, tmp_path, max_bytes=10**6).size == len(CLIP_BYTES)
    local = make_lease(CLIP_BYTES, content_url="file:///etc/passwd")
    with pytest.raises(FetchError, match="not HTTP"):
        client.fetch_content(local, tmp_path, max_bytes=10**6)


def test_a_cancelled_download_stops_and_leaves_no_file(
    client: ValidatorClient, content_server: ContentServer, tmp_path: Path
) -> None:
    lease = make_lease(CLIP_BYTES)
    content_server.bodies[f"/ipfs/{lease.content_cid}"] = CLIP_BYTES
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(FetchError, match="cancelled"):
        client.fetch_content(lease, tmp_path, max_bytes=10**6, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_lease_answers_are_bounded_and_ignore_unknown_members() -> None:
    lease = make_lease(CLIP_BYTES).model_dump(mode="json")
    batch = LeaseBatch.model_validate({"leases": [lease], "retry_after_s": 5, "new": 1})
    assert batch.leases[0].lease_id == lease["lease_id"]
    with pytest.raises(ValueError, match="lease_id"):
        Lease.model_validate({**lease, "lease_id": "../../etc"})
