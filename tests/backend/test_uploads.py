"""Resumable uploads (tus 1.0) against a real uvicorn server on a free port.

The real ``tuspy`` client uploads, is interrupted, resumes from the server's offset and
finishes; raw HTTP requests (httpx, and a socket for a slow body) pin the error cases.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from eth_account import Account
from sqlalchemy import update
from sqlmodel import Session
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError
from tusclient.uploader.uploader import Uploader

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.errors import InvalidInputError, UploadBusyError
from backend.models.uploads import Upload, UploadState
from backend.services import uploads
from ingest.cid import StreamingDigest
from tests.backend.conftest import SettingsFactory
from tests.backend.live import TUS, Caller, LiveServer, ServerFactory

CHUNK = 256 * 1024


class Sha256Uploader(Uploader):
    """tuspy's uploader sending ``Upload-Checksum: sha256 ...`` (its default is sha1)."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def _payload(size: int) -> bytes:
    return os.urandom(size)


def _stored(settings: Settings, location: str) -> Upload:
    engine = create_db_engine(settings)
    try:
        with Session(engine) as db:
            upload = db.get(Upload, location.rsplit("/", 1)[1])
            assert upload is not None
            return upload
    finally:
        engine.dispose()


def _checksum(data: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


# --- the real tus client ---------------------------------------------------------------


def test_tuspy_uploads_is_interrupted_resumes_from_the_server_offset_and_finishes(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    server = live()
    caller = caller_for(server)
    data = _payload(5 * CHUNK + 12345)
    client = TusClient(server.uploads_url, headers={"Authorization": f"Bearer {caller.token}"})
    first = Sha256Uploader(
        file_stream=io.BytesIO(data),
        client=client,
        chunk_size=CHUNK,
        metadata={"filename": "sunset-dolly.mp4"},
        upload_checksum=True,
    )
    first.upload(stop_at=2 * CHUNK)  # the client stops after two chunks
    location: str = str(first.url)
    assert caller.head(location).headers["upload-offset"] == str(2 * CHUNK)

    resumed = Sha256Uploader(
        file_stream=io.BytesIO(data),
        url=location,
        client=client,
        chunk_size=CHUNK,
        upload_checksum=True,
    )
    assert resumed.offset == 2 * CHUNK  # asked the server with HEAD
    resumed.upload()

    info = caller.http.get(location, headers=TUS).json()
    expected = StreamingDigest()
    expected.update(data)
    digest = expected.finalize()
    assert info["state"] == "complete"
    assert info["sha256"] == hashlib.sha256(data).hexdigest() == digest.sha256
    assert info["cid"] == digest.cid
    assert info["filename"] == "sunset-dolly.mp4"
    assert (server.settings.upload_path / info["id"]).read_bytes() == data


def test_a_server_restart_mid_upload_is_resumed_and_the_digest_is_right(
    live: ServerFactory, caller_for: Callable[..., Caller], upload_settings: SettingsFactory
) -> None:
    settings = upload_settings()
    data = _payload(3 * CHUNK + 7)
    account = Account.create()
    first = live(settings)
    caller = caller_for(first, account)
    location = caller.created(len(data))
    assert caller.patch(location, 0, data[: 2 * CHUNK]).status_code == 204
    first.stop()

    second = live(settings)  # a new process: its digest cache is empty
    client = TusClient(second.uploads_url, headers={"Authorization": f"Bearer {caller.token}"})
    uploader = Sha256Uploader(
        file_stream=io.BytesIO(data),
        url=f"{second.url}{location}",
        client=client,
        chunk_size=CHUNK,
        upload_checksum=True,
    )
    assert uploader.offset == 2 * CHUNK
    uploader.upload()
    upload = _stored(settings, location)
    assert upload.state == UploadState.COMPLETE
    assert upload.sha256 == hashlib.sha256(data).hexdigest()


def test_a_crash_after_writing_but_before_recording_the_offset_loses_only_that_chunk(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    server = live()
    caller = caller_for(server)
    data = _payload(2 * CHUNK)
    location = caller.created(len(data))
    assert caller.patch(location, 0, data[:CHUNK]).status_code == 204
    path = server.settings.upload_path / location.rsplit("/", 1)[1]
    with open(path, "ab") as handle:  # bytes a crash left beyond the recorded offset
        handle.write(b"garbage")
    response = caller.patch(location, CHUNK, data[CHUNK:])
    assert response.status_code == 204
    assert path.read_bytes() == data
    assert _stored(server.settings, location).sha256 == hashlib.sha256(data).hexdigest()


# --- protocol ---------------------------------------------------------------------------


def test_options_advertises_version_extensions_size_and_checksum(live: ServerFactory) -> None:
    server = live(upload_max_size=10_000)
    response = httpx.options(server.uploads_url)
    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert response.headers["tus-resumable"] == "1.0.0"
    assert set(response.headers["tus-extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "termination",
        "checksum",
        "expiration",
    }
    assert response.headers["tus-max-size"] == "10000"
    assert response.headers["tus-checksum-algorithm"] == "sha256"


def test_creation_answers_201_with_location_and_expiry(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    caller = caller_for(live())
    response = caller.create(10, metadata="filename " + base64.b64encode(b"a.mp4").decode())
    assert response.status_code == 201
    assert response.headers["location"].startswith("/api/v1/uploads/")
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["upload-expires"].endswith("GMT")
    head = caller.head(response.headers["location"])
    assert head.status_code == 200
    assert (head.headers["upload-offset"], head.headers["upload-length"]) == ("0", "10")
    assert head.headers["upload-metadata"] == "filename " + base64.b64encode(b"a.mp4").decode()
    assert head.headers["cache-control"] == "no-store"


def test_creation_with_upload_stores_the_first_chunk(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    caller = caller_for(live())
    data = _payload(1000)
    response = caller.http.post(
        "/api/v1/uploads/",
        content=data[:600],
        headers={
            **TUS,
            "Upload-Length": "1000",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert response.status_code == 201
    assert response.headers["upload-offset"] == "600"
    assert caller.patch(response.headers["location"], 600, data[600:]).status_code == 204
    assert caller.head(response.headers["location"]).headers["upload-offset"] == "1000"


def test_an_empty_upload_is_complete_at_creation(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    caller = caller_for(live())
    location = caller.created(0)
    info = caller.http.get(location, headers=TUS).json()
    assert info["state"] == "complete"
    assert info["sha256"] == hashlib.sha256(b"").hexdigest()


def test_a_wrong_checksum_is_460_and_the_chunk_is_discarded(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    server = live()
    caller = caller_for(server)
    data = _payload(3000)
    location = caller.created(len(data))
    first = caller.patch(location, 0, data[:1000], **{"Upload-Checksum": _checksum(data[:1000])})
    assert first.status_code == 204
    bad = caller.patch(location, 1000, data[1000:2000], **{"Upload-Checksum": _checksum(b"x")})
    assert bad.status_code == 460
    assert bad.json()["error"]["code"] == "checksum_mismatch"
    assert caller.head(location).headers["upload-offset"] == "1000"
    path = server.settings.upload_path / location.rsplit("/", 1)[1]
    assert path.stat().st_size == 1000
    good = caller.patch(location, 1000, data[1000:], **{"Upload-Checksum": _checksum(data[1000:])})
    assert good.status_code == 204
    assert _stored(server.settings, location).sha256 == hashlib.sha256(data).hexdigest()


def test_an_unsupported_checksum_algorithm_is_refused(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    caller = caller_for(live())
    location = caller.created(3)
    response = caller.patch(
        location, 0, b"abc", **{"Upload-Checksum": "md5 kAFQmDzST7DWlj99KOF/cg=="}
    )
    assert response.status_code == 422


def test_an_offset_mismatch_is_409(live: ServerFactory, caller_for: Callable[..., Caller]) -> None:
    caller = caller_for(live())
    location = caller.created(100)
    response = caller.patch(location, 10, b"x" * 10)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "upload_offset_mismatch"


def test_a_missing_tus_resumable_header_is_412_with_tus_version(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    caller = caller_for(live())
    response = caller.http.post("/api/v1/uploads/", headers={"Upload-Length": "10"})
    assert response.status_code == 412
    assert response.headers["tus-version"] == "1.0.0"
    assert response.json()["error"]["code"] == "precondition_failed"


def test_a_patch_with_another_content_type_is_415(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    caller = caller_for(live())
    location = caller.created(3)
    response = caller.patch(location, 0, b"abc", **{"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_an_upload_over_the_size_limit_is_413(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    caller = caller_for(live(upload_max_size=1000))
    response = caller.create(1001)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "upload_too_large"


def test_a_body_beyond_upload_length_is_413_and_discarded(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    server = live()
    caller = caller_for(server)
    location = caller.created(100)
    declared = caller.patch(location, 0, b"x" * 101)
    assert declared.status_code == 413

    def chunked() -> Iterator[bytes]:  # no Content-Length: cut off while streaming
        for _ in range(10):
            yield b"y" * 50

    streamed = caller.patch(location, 0, chunked())
    assert streamed.status_code == 413
    assert caller.head(location).headers["upload-offset"] == "0"
    assert (server.settings.upload_path / location.rsplit("/", 1)[1]).stat().st_size == 0


def test_a_slow_drip_body_is_cut_off_with_408(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    server = live(upload_idle_timeout_s=0.5)
    caller = caller_for(server)
    location = caller.created(100)
    request = (
        f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
        f"Authorization: Bearer {caller.token}\r\nUpload-Offset: 0\r\n"
        "Content-Type: application/offset+octet-stream\r\nContent-Length: 100\r\n\r\n"
    ).encode() + b"z" * 10
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        reply = sock.recv(4096).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 408")
    assert caller.head(location).headers["upload-offset"] == "0"


def test_another_wallets_upload_is_404(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    server = live()
    owner, other = caller_for(server), caller_for(server)
    location = owner.created(10)
    assert other.head(location).status_code == 404
    assert other.patch(location, 0, b"0123456789").status_code == 404
    assert other.http.delete(location, headers=TUS).status_code == 404
    unknown = other.head("/api/v1/uploads/" + "0" * 32)
    assert unknown.status_code == 404
    assert owner.head(location).status_code == 200


def test_uploads_need_a_session(live: ServerFactory) -> None:
    server = live()
    response = httpx.post(server.uploads_url, headers={**TUS, "Upload-Length": "10"})
    assert response.status_code == 401


def test_termination_deletes_the_bytes_and_the_id_then_404s(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    server = live()
    caller = caller_for(server)
    location = caller.created(10)
    caller.patch(location, 0, b"01234")
    assert caller.http.delete(location, headers=TUS).status_code == 204
    assert caller.head(location).status_code == 404
    assert not (server.settings.upload_path / location.rsplit("/", 1)[1]).exists()


def test_an_expired_upload_is_410_and_cleanup_deletes_it(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    server = live()
    caller = caller_for(server)
    location = caller.created(10)
    upload_id = location.rsplit("/", 1)[1]
    engine = create_db_engine(server.settings)
    try:
        with Session(engine) as db:
            db.execute(
                update(Upload)
                .where(Upload.id == upload_id)  # type: ignore[arg-type]
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            db.commit()
            assert caller.head(location).status_code == 410
            assert caller.patch(location, 0, b"x").status_code == 410
            assert uploads.expire_uploads(db, settings=server.settings) == 1
    finally:
        engine.dispose()
    assert not (server.settings.upload_path / upload_id).exists()
    gone = caller.http.get(location, headers=TUS)
    assert (gone.status_code, gone.json()["error"]["code"]) == (410, "upload_expired")


def test_a_wallet_has_a_cap_on_concurrent_uploads_and_daily_bytes(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    caller = caller_for(live(upload_max_concurrent_per_wallet=2, upload_daily_bytes_per_wallet=100))
    caller.created(10)
    caller.created(10)
    third = caller.create(10)
    assert (third.status_code, third.json()["error"]["code"]) == (413, "upload_quota_exceeded")
    other = caller_for(caller.server)
    assert other.create(101).json()["error"]["code"] == "upload_quota_exceeded"


# --- metadata -------------------------------------------------------------------------


def _meta(name: str) -> str:
    return "filename " + base64.b64encode(name.encode("utf-8", "surrogatepass")).decode()


@pytest.mark.parametrize(
    "name",
    ["../etc/passwd", "a/b.mp4", "clip\x00.mp4", "clip\u202e4pm.exe", "..", " lead.mp4", "a" * 300],
    ids=["dotdot", "slash", "nul", "rtl-override", "parent", "space", "too-long"],
)
def test_unsafe_filenames_are_refused(
    live: ServerFactory, caller_for: Callable[..., Caller], name: str
) -> None:
    caller = caller_for(live())
    response = caller.create(10, metadata=_meta(name))
    assert response.status_code == 422, response.text


def test_a_ten_thousand_character_filename_hits_the_metadata_cap(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    caller = caller_for(live())
    response = caller.create(10, metadata=_meta("a" * 10_000))
    assert response.status_code == 413


@pytest.mark.parametrize(
    "header", ["filename !!!notbase64", "bad key abc", "k YQ==,k YQ==", "x " + "_" * 4]
)
def test_malformed_metadata_is_refused(
    live: ServerFactory, caller_for: Callable[..., Caller], header: str
) -> None:
    caller = caller_for(live())
    assert caller.create(10, metadata=header).status_code == 422


def test_a_unicode_filename_is_kept_in_nfc(upload_settings: SettingsFactory) -> None:
    name = uploads.parse_metadata(
        "filename " + base64.b64encode("Cafe\u0301.mp4".encode()).decode(),
        settings=upload_settings(),
    )["filename"]
    assert name == "Caf\u00e9.mp4"
    with pytest.raises(InvalidInputError):
        uploads.sanitize_filename("x" * 10_000, max_chars=255)


def test_a_busy_upload_refuses_a_second_writer() -> None:
    cache = uploads.DigestCache()
    with cache.claim("a"), pytest.raises(UploadBusyError), cache.claim("a"):
        pass  # pragma: no cover


def test_the_digest_cache_is_bounded_and_offset_exact() -> None:
    cache = uploads.DigestCache(max_entries=2)
    for key in "abc":
        cache.put(key, 1, StreamingDigest())
    assert cache.take("a", 1) is None  # evicted
    assert cache.take("b", 2) is None  # wrong offset: not trusted (and dropped)
    assert cache.take("c", 1) is not None


def test_tus_errors_on_unknown_ids_reach_the_client(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    server = live()
    caller = caller_for(server)
    client = TusClient(server.uploads_url, headers={"Authorization": f"Bearer {caller.token}"})
    with pytest.raises(TusCommunicationError):
        Uploader(file_stream=io.BytesIO(b"abc"), url=server.uploads_url + "f" * 32, client=client)


def _send_part_and_hang_up(server: LiveServer, token: str, location: str, **headers: str) -> None:
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (
        f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
        f"Authorization: Bearer {token}\r\nUpload-Offset: 0\r\n{extra}"
        "Content-Type: application/offset+octet-stream\r\nContent-Length: 1000\r\n\r\n"
    ).encode() + b"p" * 400
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        time.sleep(0.3)  # let the server receive the first bytes before hanging up


def _offset_settles(caller: Caller, location: str) -> str:
    deadline = time.monotonic() + 5
    while True:
        offset = caller.head(location).headers["upload-offset"]
        if offset != "0" or time.monotonic() > deadline:
            return offset
        time.sleep(0.05)


def test_a_client_that_hangs_up_keeps_the_bytes_that_arrived(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    server = live()
    caller = caller_for(server)
    location = caller.created(1000)
    _send_part_and_hang_up(server, caller.token, location)
    assert _offset_settles(caller, location) == "400"
    assert caller.patch(location, 400, b"p" * 600).status_code == 204
    assert _stored(server.settings, location).sha256 == hashlib.sha256(b"p" * 1000).hexdigest()


def test_a_checksummed_chunk_cut_short_by_a_hang_up_is_discarded(
    live: ServerFactory, caller_for: Callable[..., Caller]
) -> None:
    server = live()
    caller = caller_for(server)
    location = caller.created(1000)
    _send_part_and_hang_up(
        server, caller.token, location, **{"Upload-Checksum": _checksum(b"p" * 1000)}
    )
    time.sleep(0.5)
    assert caller.head(location).headers["upload-offset"] == "0"
    assert (server.settings.upload_path / location.rsplit("/", 1)[1]).stat().st_size == 0
