"""Licensed data by signed request, with no sign-in: downloads and remote streams send a
fresh ``Shotbank-Signature`` per request (parallel Range requests each their own nonce);
and with ``verify_cid=True`` every shard is checked against the index's CID as well as its
SHA-256: a shard in place that does not match is deleted and fetched again, an index whose
CID disagrees with the bytes fails naming the shard (and without it, the SHA-256 alone
decides)."""

from __future__ import annotations

import functools
import http.server
import json
import logging
import pickle
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlmodel import Session, col, func, select

from backend.models.licences import RequestNonce
from shotbank.client import ShotbankClient
from shotbank.datasets import INDEX_NAME, MANIFEST_JSONL_NAME
from shotbank.datasets.client import (
    PART_SUFFIX,
    DatasetVersionHandle,
    LicenceRequiredError,
    RemoteShardFetch,
    ShardVerificationError,
)
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
from tests.sdk.datasets.market_world import dataset_id

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


@pytest.fixture
def holder(packed: Packed) -> LocalAccount:
    """A wallet holding a licence for the packed version."""
    account: LocalAccount = Account.create()
    packed.license(account.address)
    return account


@pytest.fixture
def signer(server: LiveServer, holder: LocalAccount) -> Iterator[ShotbankClient]:
    """A client with the holder's key and no session: every data request is signed."""
    with ShotbankClient(server.url, account=holder) as client:
        yield client


def _nonces(packed: Packed, address: str) -> int:
    with Session(packed.world.engine) as db:
        mine = col(RequestNonce.address) == address
        return int(db.exec(select(func.count()).select_from(RequestNonce).where(mine)).one())


def _same_files(packed: Packed, folder: Path) -> None:
    for entry in packed.index["shards"]:
        name = entry["name"]
        assert (folder / name).read_bytes() == (packed.folder / name).read_bytes(), name
    assert not list(folder.glob(f"*{PART_SUFFIX}"))


def test_a_download_with_no_session_signs_each_shard_request_with_its_own_nonce(
    signer: ShotbankClient, packed: Packed, holder: LocalAccount, tmp_path: Path
) -> None:
    assert signer.token is None
    version = signer.version(dataset_id(packed), 1)
    report = version.download(tmp_path, workers=4, progress=False)
    _same_files(packed, tmp_path)
    shards = len(packed.index["shards"])
    assert report.shards == shards
    # One signed request per shard, run in parallel: as many nonces recorded, none refused.
    assert _nonces(packed, holder.address) == shards


def test_a_signed_download_without_a_licence_is_402_naming_the_purchase(
    server: LiveServer, packed: Packed, tmp_path: Path
) -> None:
    stranger: LocalAccount = Account.create()
    with ShotbankClient(server.url, account=stranger) as client:
        version = client.version(dataset_id(packed), 1)
        with pytest.raises(LicenceRequiredError) as caught:
            version.download(tmp_path, progress=False)
    assert caught.value.code == "licence_required"
    assert f"purchase({packed.version_id}" in caught.value.message
    assert not list(tmp_path.glob("shard-*"))


def test_a_remote_stream_signs_every_range_request_and_survives_pickling(
    signer: ShotbankClient, packed: Packed, holder: LocalAccount
) -> None:
    stream = signer.version(dataset_id(packed), 1).stream(decode=False, shuffle=False)
    fetch = stream.source.fetch  # type: ignore[attr-defined]
    assert isinstance(fetch, RemoteShardFetch)
    assert fetch.token is None
    assert fetch.account is holder
    # What a DataLoader worker gets: a copy that signs with the same key.
    copy = pickle.loads(pickle.dumps(fetch))
    assert copy.account.address == holder.address
    entry = stream.index.shards[0]
    sample = entry.samples[0]
    data = copy(entry, sample.offset, sample.offset + sample.size)
    raw = (packed.folder / entry.name).read_bytes()
    assert data == raw[sample.offset : sample.offset + sample.size]
    copy.close()

    samples = list(stream)
    assert [s["key"] for s in samples] == [s.key for _, s in stream.index.entries()]
    # The copy's request, then one per sample: each with its own nonce.
    assert _nonces(packed, holder.address) == 1 + len(samples)


def test_a_shard_in_place_that_does_not_match_is_deleted_and_fetched_again(
    signer: ShotbankClient, packed: Packed, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    version = signer.version(dataset_id(packed), 1)
    version.download(tmp_path, progress=False)
    name = packed.index["shards"][1]["name"]
    corrupt = bytearray((tmp_path / name).read_bytes())
    corrupt[len(corrupt) // 2] ^= 0x40
    (tmp_path / name).write_bytes(corrupt)

    with caplog.at_level(logging.WARNING, logger="shotbank.datasets.client"):
        report = version.download(tmp_path, progress=False)
    assert any("does not match the index" in message for message in caplog.messages)
    assert report.bytes_downloaded == len(corrupt)
    assert name not in report.skipped
    assert len(report.skipped) == len(packed.index["shards"]) - 1
    _same_files(packed, tmp_path)


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror_with_wrong_cid(
    signer: ShotbankClient, packed: Packed, tmp_path: Path
) -> Iterator[tuple[ShotbankClient, str]]:
    """A static mirror of the version whose index gives shard 0 the CID of shard 1."""
    version = signer.version(dataset_id(packed), 1)
    root = tmp_path / "mirror"
    folder = root / "api/v1" / version._path.lstrip("/")
    (folder / "shards").mkdir(parents=True)
    index = json.loads((packed.folder / INDEX_NAME).read_text())
    index["shards"][0]["cid"] = index["shards"][1]["cid"]
    (folder / INDEX_NAME).write_text(json.dumps(index))
    shutil.copy(packed.folder / MANIFEST_JSONL_NAME, folder / MANIFEST_JSONL_NAME)
    for entry in index["shards"]:
        shutil.copy(packed.folder / entry["name"], folder / "shards" / entry["name"])
    handler = functools.partial(_QuietFiles, directory=str(root))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        with ShotbankClient(f"http://127.0.0.1:{httpd.server_address[1]}", token="t") as mirror:
            yield mirror, index["shards"][0]["name"]
        httpd.shutdown()
        thread.join()


def test_a_shard_whose_cid_is_not_the_indexs_fails_naming_it_and_is_not_kept(
    signer: ShotbankClient,
    packed: Packed,
    mirror_with_wrong_cid: tuple[ShotbankClient, str],
    tmp_path: Path,
) -> None:
    mirror, name = mirror_with_wrong_cid
    summary = signer.version(dataset_id(packed), 1).summary
    target = tmp_path / "download"
    with pytest.raises(ShardVerificationError, match=f"shard {name} is corrupt: its CID is"):
        DatasetVersionHandle(mirror, summary).download(
            target, workers=1, progress=False, verify_cid=True
        )
    assert not (target / name).exists()
    assert not (target / (name + PART_SUFFIX)).exists()
    # Without the CID check the bytes match the index's SHA-256, which is what decides.
    report = DatasetVersionHandle(mirror, summary).download(target, workers=1, progress=False)
    shard = next(entry for entry in packed.index["shards"] if entry["name"] == name)
    assert report.bytes_downloaded == shard["size"]  # the others were kept from the first try
    assert (target / name).read_bytes() == (packed.folder / name).read_bytes()
