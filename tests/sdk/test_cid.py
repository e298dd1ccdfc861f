"""The SDK's CID (``shotbank.cid``, the one implementation, which the backend's
``ingest.cid`` builds on and ``tests/ingest/test_cid.py`` compares with Helia's UnixFS
importer) across every shape of the DAG: one empty or partial leaf, exactly one chunk,
one level of links, a full first group and a second level above it. Here: its text and
binary form are what the ``multiformats`` package reads and builds, a one-chunk file is
the raw leaf of its SHA-256, a larger one the dag-pb root that its leaf digests give, and
slices, files and one-shot hashing agree."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from multiformats import CID, multihash

from shotbank.cid import (
    CHUNK_SIZE,
    MAX_LINKS,
    CidHasher,
    cid_from_leaf_digests,
    cid_of_bytes,
    cid_of_file,
)


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
def test_the_cid_is_the_raw_leaf_or_the_dag_pb_root_of_the_leaves(size: int) -> None:
    data = _bytes(size)
    text = cid_of_bytes(data)
    cid = CID.decode(text)
    assert (cid.version, cid.hashfun.name, str(cid.encode("base32"))) == (1, "sha2-256", text)
    if size <= CHUNK_SIZE:
        assert cid.codec.name == "raw"
        leaf = CID("base32", 1, "raw", multihash.wrap(hashlib.sha256(data).digest(), "sha2-256"))
        assert text == str(leaf)
    else:
        assert cid.codec.name == "dag-pb"
        leaves = [
            hashlib.sha256(data[start : start + CHUNK_SIZE]).digest()
            for start in range(0, size, CHUNK_SIZE)
        ]
        assert cid_from_leaf_digests(leaves, size) == text


def test_slices_and_files_give_the_same_cid_as_the_whole(tmp_path: Path) -> None:
    data = _bytes(5 * CHUNK_SIZE + 1234)
    hasher = CidHasher()
    step = 1
    position = 0
    while position < len(data):
        hasher.update(memoryview(data)[position : position + step])
        position += step
        step = step * 3 + 7
    whole = cid_of_bytes(data)
    assert hasher.finalize() == whole
    assert hasher.finalize() == whole, "finalize is idempotent"
    with pytest.raises(RuntimeError):
        hasher.update(b"more")
    path = tmp_path / "shard.tar"
    path.write_bytes(data)
    assert cid_of_file(path) == whole
    assert cid_of_bytes([data[:1000], data[1000:]]) == whole


def test_one_changed_byte_changes_the_cid() -> None:
    data = bytearray(_bytes(2 * CHUNK_SIZE))
    before = cid_of_bytes(bytes(data))
    data[CHUNK_SIZE + 5] ^= 1
    assert cid_of_bytes(bytes(data)) != before
