"""The SDK's CID (``shotbank.cid``) equals the backend's (``ingest.cid``, itself checked
against Helia's UnixFS importer) on the same bytes, across every shape of the DAG: one
empty or partial leaf, exactly one chunk, one level of links, a full first group and a
second level above it; fed in odd slices or read from a file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ingest.cid import cid_of_bytes as backend_cid
from shotbank.cid import CHUNK_SIZE, MAX_LINKS, CidHasher, cid_of_bytes, cid_of_file


def _bytes(size: int) -> bytes:
    """``size`` deterministic, non-repeating bytes (no two leaves alike)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(counter.to_bytes(8, "big")).digest() * 64
        counter += 1
    return bytes(out[:size])


@pytest.mark.parametrize(
    "size",
    [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        3 * CHUNK_SIZE + 17,
        MAX_LINKS * CHUNK_SIZE,
        MAX_LINKS * CHUNK_SIZE + 1,
        (MAX_LINKS + 2) * CHUNK_SIZE + 5,
    ],
)
def test_the_sdk_cid_is_the_backends_cid(size: int) -> None:
    data = _bytes(size)
    expected = backend_cid(data)
    assert cid_of_bytes(data) == expected
    assert expected.startswith("bafk" if size <= CHUNK_SIZE else "bafy")


def test_slices_and_files_give_the_same_cid_as_the_whole(tmp_path: Path) -> None:
    data = _bytes(5 * CHUNK_SIZE + 1234)
    hasher = CidHasher()
    step = 1
    position = 0
    while position < len(data):
        hasher.update(memoryview(data)[position : position + step])
        position += step
        step = step * 3 + 7
    assert hasher.finalize() == backend_cid(data)
    assert hasher.finalize() == backend_cid(data), "finalize is idempotent"
    with pytest.raises(RuntimeError):
        hasher.update(b"more")
    path = tmp_path / "shard.tar"
    path.write_bytes(data)
    assert cid_of_file(path) == backend_cid(data)


def test_one_changed_byte_changes_the_cid() -> None:
    data = bytearray(_bytes(2 * CHUNK_SIZE))
    before = cid_of_bytes(bytes(data))
    data[CHUNK_SIZE + 5] ^= 1
    assert cid_of_bytes(bytes(data)) != before
