"""The SDK's dataset calls against a live backend: listing, a verified parallel download
of a real packed, licensed version (resume with Range, idempotent re-runs, corrupt shards
detected and fetched again), 402 without a licence, and streaming samples over HTTP.

The version is frozen and packed by the real routes and packer; the licence is a row as
the market indexer writes it (``tests/backend/test_dataset_downloads.py``, whose fixtures
are reused here).
"""

from __future__ import annotations

import functools
import http.server
import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ingest.cid import cid_of_bytes
from shotbank.client import NotSignedInError, ShotbankClient
from shotbank.datasets import INDEX_NAME, MANIFEST_JSONL_NAME, ShardEntry, ShardIndex
from shotbank.datasets.client import (
    PART_SUFFIX,
    DatasetVersionHandle,
    LicenceRequiredError,
    ShardVerificationError,
)

# The backend suite's fixtures: settings on a tmp var dir, live servers, a packed version.
from tests.backend.conftest import (
    _no_shotbank_environment,
    caller_for,
    closed_port,
    live,
    make_settings,
    upload_settings,
)
from tests.backend.dataset_fixtures import Packed, clips, operator, packed, server
from tests.backend.live import LiveServer

__all__ = [
    "_no_shotbank_environment",
    "caller_for",
    "clips",
    "closed_port",
    "live",
    "make_settings",
    "operator",
    "packed",
    "server",
    "upload_settings",
]


def dataset_id(packed: Packed) -> str:
    return packed.base.split("/")[4]


@pytest.fixture
def buyer(packed: Packed) -> LocalAccount:
    """A wallet holding a licence for the packed version."""
    account: LocalAccount = Account.create()
    packed.license(account.address)
    return account


@pytest.fixture
def client(server: LiveServer, buyer: LocalAccount) -> Iterator[ShotbankClient]:
    """An SDK client signed in (SIWE) as the licensed buyer."""
    with ShotbankClient(server.url) as signed_in:
        signed_in.sign_in(buyer)
        yield signed_in


@pytest.fixture
def version(client: ShotbankClient, packed: Packed) -> DatasetVersionHandle:
    return client.version(dataset_id(packed), 1)


def shard_sizes(packed: Packed) -> dict[str, int]:
    return {entry["name"]: entry["size"] for entry in packed.index["shards"]}


def assert_same_files(packed: Packed, folder: Path) -> None:
    """Every shard, the index and the manifest are the server's bytes; no part is left."""
    for name in shard_sizes(packed):
        assert (folder / name).read_bytes() == (packed.folder / name).read_bytes(), name
    for name in (INDEX_NAME, MANIFEST_JSONL_NAME):
        assert (folder / name).read_bytes() == (packed.folder / name).read_bytes(), name
    assert not list(folder.glob(f"*{PART_SUFFIX}"))


def test_listing_finds_the_dataset_its_ready_version_index_and_manifest(
    client: ShotbankClient, packed: Packed
) -> None:
    listed = list(client.datasets(page_size=1))
    assert [handle.id for handle in listed] == [dataset_id(packed)]
    versions = client.dataset(dataset_id(packed)).versions()
    assert [v.summary.number for v in versions] == [1]
    summary = versions[0].summary
    assert (summary.status, summary.version_hash) == ("ready", packed.version_hash)
    assert summary.version_id == packed.version_id
    index = versions[0].index()
    assert index == ShardIndex.model_validate(packed.index)
    rows = versions[0].manifest()
    assert [row.key for row in rows] == [key for _, s in index.entries() for key in [s.key]]
    assert {row.shard for row in rows} == set(shard_sizes(packed))


def test_download_writes_the_servers_files_verified_and_a_rerun_transfers_no_shard_bytes(
    version: DatasetVersionHandle, packed: Packed, tmp_path: Path
) -> None:
    report = version.download(tmp_path, workers=3, progress=True)
    assert_same_files(packed, tmp_path)
    sizes = shard_sizes(packed)
    assert report.shards == len(sizes) >= 2
    assert report.bytes_downloaded == sum(sizes.values())
    assert (report.skipped, report.resumed, report.refetched) == ([], [], [])
    # The index's CIDs describe exactly the downloaded bytes (computed by ingest here:
    # the SDK itself verifies SHA-256 only).
    for entry in packed.index["shards"]:
        assert cid_of_bytes((tmp_path / entry["name"]).read_bytes()) == entry["cid"]

    again = version.download(tmp_path, workers=2, progress=False)
    assert again.bytes_downloaded == 0
    assert sorted(again.skipped) == sorted(sizes)
    assert_same_files(packed, tmp_path)

    # Killed between the last byte and the rename: the complete part is verified and
    # put in place without a request.
    name = packed.index["shards"][-1]["name"]
    (tmp_path / name).rename(tmp_path / (name + PART_SUFFIX))
    finished = version.download(tmp_path, progress=False)
    assert (finished.bytes_downloaded, finished.resumed) == (0, [])
    assert_same_files(packed, tmp_path)


def test_an_interrupted_shard_resumes_with_a_range_request_from_its_part_file(
    version: DatasetVersionHandle, packed: Packed, tmp_path: Path
) -> None:
    version.download(tmp_path, progress=False)
    name, data, _ = packed.shard(0)
    kept = len(data) // 2 + 7
    # What a killed run leaves: the first bytes of the shard in its .part, no final file.
    (tmp_path / name).unlink()
    (tmp_path / (name + PART_SUFFIX)).write_bytes(data[:kept])

    report = version.download(tmp_path, progress=False)
    assert report.resumed == [name]
    assert report.bytes_downloaded == len(data) - kept
    assert sorted(report.skipped) == sorted(set(shard_sizes(packed)) - {name})
    assert_same_files(packed, tmp_path)


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    """A plain static file server: it ignores ``Range`` and always answers 200."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def static_mirror(
    version: DatasetVersionHandle, packed: Packed, tmp_path: Path
) -> Iterator[ShotbankClient]:
    """A client of a static HTTP server holding the version's files at the API's paths."""
    root = tmp_path / "mirror"
    folder = root / "api/v1" / version._path.lstrip("/")
    (folder / "shards").mkdir(parents=True)
    for name in (INDEX_NAME, MANIFEST_JSONL_NAME):
        shutil.copy(packed.folder / name, folder / name)
    for name in shard_sizes(packed):
        shutil.copy(packed.folder / name, folder / "shards" / name)
    handler = functools.partial(_QuietFiles, directory=str(root))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        with ShotbankClient(f"http://127.0.0.1:{httpd.server_address[1]}", token="t") as mirror:
            yield mirror
        httpd.shutdown()
        thread.join()


def test_a_server_that_ignores_the_range_makes_the_part_start_over(
    version: DatasetVersionHandle,
    packed: Packed,
    static_mirror: ShotbankClient,
    tmp_path: Path,
) -> None:
    name, data, _ = packed.shard(0)
    target = tmp_path / "download"
    target.mkdir()
    (target / (name + PART_SUFFIX)).write_bytes(data[:1000])
    mirrored = DatasetVersionHandle(static_mirror, version.summary)

    report = mirrored.download(target, progress=False)
    assert report.restarted == [name]
    assert report.resumed == []
    assert report.bytes_downloaded == sum(shard_sizes(packed).values())
    assert_same_files(packed, target)


def test_a_corrupt_part_is_detected_deleted_and_the_shard_fetched_again(
    version: DatasetVersionHandle,
    packed: Packed,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    name, data, _ = packed.shard(1)
    corrupt = bytearray(data[:1000])
    corrupt[600] ^= 0xFF
    (tmp_path / (name + PART_SUFFIX)).write_bytes(corrupt)

    with caplog.at_level(logging.WARNING, logger="shotbank.datasets.client"):
        report = version.download(tmp_path, progress=False)
    assert report.resumed == [name]
    assert report.refetched == [name]
    assert any(f"shard {name} is corrupt" in message for message in caplog.messages)
    # The resumed tail plus one whole fetch of that shard, and every other shard once.
    assert report.bytes_downloaded == sum(shard_sizes(packed).values()) + len(data) - 1000
    assert_same_files(packed, tmp_path)


def test_a_shard_corrupt_on_the_server_fails_naming_it_after_one_refetch(
    version: DatasetVersionHandle, packed: Packed, tmp_path: Path
) -> None:
    name, data, sha256 = packed.shard(0)
    served = packed.folder / name
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0x01
    served.write_bytes(flipped)
    try:
        with pytest.raises(ShardVerificationError, match=f"shard {name} is corrupt") as caught:
            version.download(tmp_path, workers=1, progress=False)
    finally:
        served.write_bytes(data)
    assert (caught.value.shard, caught.value.expected) == (name, sha256)
    assert not (tmp_path / name).exists()
    assert not (tmp_path / (name + PART_SUFFIX)).exists()
    # With the server's file good again, the next run completes.
    version.download(tmp_path, progress=False)
    assert_same_files(packed, tmp_path)


def test_without_a_licence_download_raises_402_naming_the_purchase_call(
    server: LiveServer, packed: Packed, tmp_path: Path
) -> None:
    stranger: LocalAccount = Account.create()
    with ShotbankClient(server.url) as anonymous:
        handle = anonymous.version(dataset_id(packed), 1)
        with pytest.raises(NotSignedInError):
            handle.download(tmp_path / "anonymous", progress=False)
        anonymous.sign_in(stranger)
        with pytest.raises(LicenceRequiredError) as caught:
            handle.download(tmp_path / "stranger", progress=False)
    assert (caught.value.status, caught.value.code) == (402, "licence_required")
    assert f"purchase({packed.version_id}, maxPrice)" in caught.value.message
    assert "DatasetMarket" in str(caught.value)
    assert not list((tmp_path / "stranger").glob("shard-*"))


def test_a_remote_stream_yields_the_samples_a_local_stream_decodes(
    version: DatasetVersionHandle, packed: Packed, tmp_path: Path
) -> None:
    from shotbank.datasets.stream import ShardStream

    version.download(tmp_path, progress=False)
    options: dict[str, object] = {"shuffle": False, "frames": 2, "size": (32, 32)}
    stream = version.stream(**options)
    fetch = stream.source.fetch  # type: ignore[attr-defined]
    requests: list[tuple[str, int, int]] = []

    def counted(entry: ShardEntry, start: int, stop: int) -> bytes:
        requests.append((entry.name, start, stop))
        data: bytes = fetch(entry, start, stop)
        return data

    stream.source.fetch = counted  # type: ignore[attr-defined]
    remote = list(stream)
    local = list(ShardStream.from_directory(tmp_path, **options))
    assert len(remote) == len(local) == packed.index["samples"]
    for got, want in zip(remote, local, strict=True):
        assert got["key"] == want["key"]
        assert got["meta"] == want["meta"]
        assert got["text"] == want["text"]
        assert got["frames"].shape == want["frames"].shape
        assert bool((got["frames"] == want["frames"]).all())
    # One Range request per sample, exactly the sample's span in the index.
    spans = [(shard.name, s.offset, s.offset + s.size) for shard, s in stream.index.entries()]
    assert requests == spans


def test_a_remote_stream_without_a_licence_raises_licence_required(
    server: LiveServer, packed: Packed
) -> None:
    stranger: LocalAccount = Account.create()
    with ShotbankClient(server.url) as signed_in:
        signed_in.sign_in(stranger)
        stream = signed_in.version(dataset_id(packed), 1).stream(decode=False)
        with pytest.raises(LicenceRequiredError, match="purchase"):
            next(iter(stream))
