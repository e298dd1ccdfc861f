"""``/ipfs/{cid}``: content by CID with ranges, caching and integrity checks.

Blobs are real: bytes stored in the app's ``LocalBlobStore`` under the CID ingest
computes. Damage is real too: a byte of the stored file is flipped on disk.
"""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import multiformats
import pytest
from fastapi.testclient import TestClient

from backend import admin
from backend.core.config import Settings
from backend.main import create_app
from ingest.blobstore import LocalBlobStore
from ingest.cid import CHUNK_SIZE, cid_of_bytes
from tests.backend.live import start_server

#: Three leaves (the last one short): ranges may cross leaf boundaries.
DATA = random.Random(7).randbytes(2 * CHUNK_SIZE + 1000)
CID = cid_of_bytes(DATA)
SIZE = len(DATA)
UNKNOWN_CID = cid_of_bytes(b"never stored")


def store_blob(settings: Settings, tmp_path: Path, data: bytes) -> str:
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    cid = cid_of_bytes(data)
    LocalBlobStore(settings.blob_path, fsync=False).put_file(source, cid=cid, size=len(data))
    return cid


def flip_byte(settings: Settings, cid: str, offset: int) -> None:
    path = LocalBlobStore(settings.blob_path).path_for(cid)
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.fixture
def blob(settings: Settings, tmp_path: Path) -> str:
    return store_blob(settings, tmp_path, DATA)


@pytest.fixture
def gateway(blob: str, client: TestClient) -> TestClient:
    """A client of an app whose blob store holds ``DATA``."""
    return client


def assert_content_headers(response: httpx.Response) -> None:
    assert response.headers["etag"] == f'"{CID}"'
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["accept-ranges"] == "bytes"


def test_full_get_serves_the_bytes_with_immutable_caching(gateway: TestClient) -> None:
    response = gateway.get(f"/ipfs/{CID}")
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-length"] == str(SIZE)
    assert_content_headers(response)


def test_head_gives_the_headers_without_a_body(gateway: TestClient) -> None:
    response = gateway.head(f"/ipfs/{CID}")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(SIZE)
    assert_content_headers(response)
    ranged = gateway.head(f"/ipfs/{CID}", headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == f"bytes 0-9/{SIZE}"


def test_html_content_is_still_octet_stream(
    settings: Settings, tmp_path: Path, client: TestClient
) -> None:
    cid = store_blob(settings, tmp_path, b"<html><script>alert(1)</script></html>")
    response = client.get(f"/ipfs/{cid}")
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_other_multibase_of_the_same_cid_is_served_with_the_canonical_etag(
    gateway: TestClient,
) -> None:
    base58 = str(multiformats.CID.decode(CID).encode("base58btc"))
    response = gateway.get(f"/ipfs/{base58}", headers={"Range": "bytes=0-3"})
    assert response.status_code == 206
    assert response.headers["etag"] == f'"{CID}"'


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 10),
        (f"bytes={CHUNK_SIZE - 5}-{CHUNK_SIZE + 4}", CHUNK_SIZE - 5, CHUNK_SIZE + 5),
        (f"bytes={SIZE - 100}-{SIZE + 1000}", SIZE - 100, SIZE),  # last-pos clamped
        (f"bytes={CHUNK_SIZE}-", CHUNK_SIZE, SIZE),
        ("bytes=-500", SIZE - 500, SIZE),
        (f"bytes=-{SIZE * 2}", 0, SIZE),
        ("bytes=0-", 0, SIZE),
    ],
)
def test_single_range_answers_206_with_content_range(
    gateway: TestClient, header: str, start: int, end: int
) -> None:
    response = gateway.get(f"/ipfs/{CID}", headers={"Range": header})
    assert response.status_code == 206
    assert response.content == DATA[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"
    assert response.headers["content-length"] == str(end - start)
    assert_content_headers(response)


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}", "bytes=-0"])
def test_unsatisfiable_range_answers_416_with_the_size(gateway: TestClient, header: str) -> None:
    response = gateway.get(f"/ipfs/{CID}", headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert response.json()["error"]["code"] == "range_not_satisfiable"


@pytest.mark.parametrize(
    "header", ["bytes=0-1,5-6", "bytes=5-2", "items=0-1", "bytes=abc", "bytes=-", "bytes 0-1"]
)
def test_multiple_or_unparsable_ranges_are_ignored(gateway: TestClient, header: str) -> None:
    response = gateway.get(f"/ipfs/{CID}", headers={"Range": header})
    assert response.status_code == 200
    assert response.content == DATA
    assert "content-range" not in response.headers


def test_if_range_with_another_etag_sends_the_whole_body(gateway: TestClient) -> None:
    stale = gateway.get(f"/ipfs/{CID}", headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200
    assert stale.content == DATA
    current = gateway.get(f"/ipfs/{CID}", headers={"Range": "bytes=0-9", "If-Range": f'"{CID}"'})
    assert current.status_code == 206


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_if_none_match_answers_304(gateway: TestClient, method: str) -> None:
    for tag in (f'"{CID}"', f'"x", W/"{CID}"', "*"):
        response = gateway.request(
            method, f"/ipfs/{CID}", headers={"If-None-Match": tag, "Range": "bytes=0-1"}
        )
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == f'"{CID}"'
    assert gateway.get(f"/ipfs/{CID}", headers={"If-None-Match": '"x"'}).status_code == 200


@pytest.mark.parametrize(
    "bad", ["not-a-cid", "QmXhRcvCfE4h3abAFmkZYrdk9qhfmJkGLrFmJ7CwneHFKv", "b" + "a" * 200]
)
def test_bad_cid_answers_400_invalid_cid(client: TestClient, bad: str) -> None:
    response = client.get(f"/ipfs/{bad}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cid"


def test_unknown_cid_answers_404(client: TestClient) -> None:
    for method in ("GET", "HEAD"):
        response = client.request(method, f"/ipfs/{UNKNOWN_CID}")
        assert response.status_code == 404
    assert client.get(f"/ipfs/{UNKNOWN_CID}").json()["error"]["code"] == "blob_not_found"


def test_empty_blob_is_served_whole_even_when_a_range_is_asked(
    settings: Settings, tmp_path: Path, client: TestClient
) -> None:
    cid = store_blob(settings, tmp_path, b"")
    response = client.get(f"/ipfs/{cid}", headers={"Range": "bytes=0-"})
    assert response.status_code == 200
    assert response.content == b""


# --- integrity ----------------------------------------------------------------------------


def test_tampered_blob_full_get_is_cut_short_then_quarantined(
    settings: Settings, blob: str
) -> None:
    flip_byte(settings, blob, 10)
    server = start_server(settings)
    try:
        url = f"http://127.0.0.1:{server.port}/ipfs/{blob}"
        received = bytearray()

        def download() -> None:
            with httpx.Client() as http, http.stream("GET", url) as response:
                assert response.status_code == 200
                assert response.headers["content-length"] == str(SIZE)
                for chunk in response.iter_raw():
                    received.extend(chunk)

        with pytest.raises(httpx.RemoteProtocolError):
            download()
        # The client saw a truncated transfer, never a complete body.
        assert len(received) < SIZE
        again = httpx.get(url)
        assert again.status_code == 503
        assert again.json()["error"]["code"] == "blob_damaged"
    finally:
        server.stop()


def test_tampered_small_blob_full_get_is_a_clean_503(
    settings: Settings, tmp_path: Path, client: TestClient
) -> None:
    cid = store_blob(settings, tmp_path, b"a short clip" * 100)
    flip_byte(settings, cid, 0)
    response = client.get(f"/ipfs/{cid}")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "blob_damaged"


def test_tampered_leaf_fails_a_range_that_touches_it_but_not_one_that_does_not(
    settings: Settings, blob: str, client: TestClient
) -> None:
    flip_byte(settings, blob, CHUNK_SIZE + 10)  # inside the second leaf
    intact = client.get(f"/ipfs/{blob}", headers={"Range": "bytes=0-99"})
    assert intact.status_code == 206
    assert intact.content == DATA[:100]
    damaged = client.get(f"/ipfs/{blob}", headers={"Range": f"bytes={CHUNK_SIZE}-"})
    assert damaged.status_code == 503
    assert damaged.json()["error"]["code"] == "blob_damaged"
    # Quarantined now: even the intact leaf is no longer served.
    assert client.get(f"/ipfs/{blob}", headers={"Range": "bytes=0-99"}).status_code == 503


def test_range_without_leaf_index_verifies_the_whole_blob_first(
    settings: Settings, blob: str, client: TestClient
) -> None:
    store = LocalBlobStore(settings.blob_path)
    leaves = store.path_for(blob).with_name(blob + ".leaves")
    leaves.unlink()
    flip_byte(settings, blob, SIZE - 1)  # the last leaf; the range asks for the first
    response = client.get(f"/ipfs/{blob}", headers={"Range": "bytes=0-99"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "blob_damaged"


def test_the_quarantine_survives_a_restart_and_is_shared_by_other_processes(
    settings: Settings, blob: str
) -> None:
    flip_byte(settings, blob, CHUNK_SIZE + 10)
    with TestClient(create_app(settings)) as first:
        assert (
            first.get(f"/ipfs/{blob}", headers={"Range": f"bytes={CHUNK_SIZE}-"}).status_code == 503
        )
    # Repair the file behind the service's back: a fresh process still refuses the blob,
    # because the record is in the database, not in the first process's memory.
    flip_byte(settings, blob, CHUNK_SIZE + 10)
    with TestClient(create_app(settings)) as second:
        response = second.get(f"/ipfs/{blob}", headers={"Range": "bytes=0-99"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "blob_damaged"


def test_admin_lists_and_releases_a_repaired_blob_but_not_a_damaged_one(
    settings: Settings, blob: str, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    flip_byte(settings, blob, 10)
    assert client.get(f"/ipfs/{blob}", headers={"Range": "bytes=0-9"}).status_code == 503

    assert admin.main(["quarantine", "list"], settings) == 0
    listed = capsys.readouterr().out
    cid, detected_at, reason = listed.strip().split("\t")
    assert cid == blob
    assert detected_at
    assert "does not match its CID" in reason

    # Still damaged: release refuses, the gateway keeps refusing.
    assert admin.main(["quarantine", "release", blob], settings) == 1
    assert "still damaged" in capsys.readouterr().err
    assert client.get(f"/ipfs/{blob}").status_code == 503

    flip_byte(settings, blob, 10)  # repaired
    assert admin.main(["quarantine", "release", blob], settings) == 0
    assert client.get(f"/ipfs/{blob}").content == DATA  # at once, no restart
    assert admin.main(["quarantine", "release", blob], settings) == 1  # nothing left
    assert admin.main(["quarantine", "release", "not-a-cid"], settings) == 2
