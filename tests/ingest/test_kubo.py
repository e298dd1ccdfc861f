"""ingest.blobstore.KuboBlobStore against a real Kubo-compatible RPC API (js-ipfs, offline).

The daemon computes CIDs itself, so a passing put is also an independent check of
ingest.cid against a third implementation.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.blobstore import KuboBlobStore
from ingest.cid import CHUNK_SIZE, digest_file
from ingest.errors import BlobIntegrityError, BlobNotFoundError, BlobStoreUnavailableError

pytestmark = [pytest.mark.node, pytest.mark.slow]


@pytest.fixture
def kubo(ipfs_api: str) -> Iterator[KuboBlobStore]:
    store = KuboBlobStore(ipfs_api, timeout=30)
    yield store
    store.close()


@pytest.mark.parametrize("size", [1, CHUNK_SIZE, 5 * CHUNK_SIZE + 77])
def test_put_read_and_delete_through_the_rpc_api(
    kubo: KuboBlobStore, tmp_path: Path, size: int
) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "clip.bin"
    path.write_bytes(data)
    digest = digest_file(path)
    info = kubo.put_file(path, cid=digest.cid, sha256=digest.sha256, size=size)
    assert (info.cid, info.size, info.sha256) == (digest.cid, size, digest.sha256)
    assert kubo.exists(digest.cid)
    assert kubo.size(digest.cid) == size
    assert digest.cid in set(kubo.iter_cids())
    with kubo.open(digest.cid) as handle:
        assert handle.read() == data
    start, end = size // 3, size - size // 5
    with kubo.open_range(digest.cid, start, end) as part:
        assert part.read() == data[start:end]
    assert kubo.delete(digest.cid) is True
    assert not kubo.exists(digest.cid)
    assert kubo.delete(digest.cid) is False
    with pytest.raises(BlobNotFoundError):
        kubo.size(digest.cid)


def test_put_refuses_a_false_claim_before_adding(kubo: KuboBlobStore, tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"actual bytes")
    other = tmp_path / "b.bin"
    other.write_bytes(b"other bytes")
    with pytest.raises(BlobIntegrityError):
        kubo.put_file(path, cid=digest_file(other).cid)
    assert not kubo.exists(digest_file(path).cid)


def test_unreachable_node_is_reported_as_unavailable() -> None:
    with pytest.raises(BlobStoreUnavailableError):
        KuboBlobStore("/ip4/127.0.0.1/tcp/9/http", timeout=2)


def test_move_removes_the_local_file_once_pinned(kubo: KuboBlobStore, tmp_path: Path) -> None:
    data = random.Random(7).randbytes(2 * CHUNK_SIZE + 9)
    path = tmp_path / "moved.bin"
    path.write_bytes(data)
    digest = digest_file(path)
    info = kubo.put_file(path, cid=digest.cid, sha256=digest.sha256, move=True)
    assert info.cid == digest.cid
    assert not path.exists()
    assert kubo.exists(digest.cid)
    with kubo.open(digest.cid) as handle:
        assert handle.read() == data
    kubo.delete(digest.cid)


def test_a_mismatching_move_leaves_the_local_file(kubo: KuboBlobStore, tmp_path: Path) -> None:
    path = tmp_path / "kept.bin"
    path.write_bytes(b"the real bytes")
    with pytest.raises(BlobIntegrityError):
        kubo.put_file(path, cid=digest_file(path).cid, size=1, move=True)
    assert path.read_bytes() == b"the real bytes"
    assert not kubo.exists(digest_file(path).cid)
