"""ingest.cid against an independent implementation: Helia's UnixFS importer (Node).

Every expected CID comes from ``helia_cid.mjs`` run on the same bytes; nothing here
compares the hasher with itself.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.cid import (
    CHUNK_SIZE,
    MAX_LINKS,
    CidHasher,
    StreamingDigest,
    cid_from_leaf_digests,
    cid_of_bytes,
    digest_file,
    normalize_cid,
)
from ingest.errors import InvalidCidError
from shotbank.cid import _TreeBuilder

pytestmark = pytest.mark.node

HeliaOracle = Callable[..., list[str]]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _feed_in_random_slices(hasher: StreamingDigest, data: bytes, rng: random.Random) -> None:
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        step = rng.choice((1, 7, 4096, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 3, 1 << 20))
        hasher.update(view[pos : pos + step])
        pos += step


EDGE_SIZES = {
    "empty": 0,
    "one_byte": 1,
    "exactly_one_chunk": CHUNK_SIZE,
    "one_chunk_plus_one": CHUNK_SIZE + 1,
    "about_10_MB": 10_000_000,
    "one_full_node": MAX_LINKS * CHUNK_SIZE,
}


def test_edge_sizes_match_helia(tmp_path: Path, helia_cids: HeliaOracle) -> None:
    rng = random.Random(20261121)
    files = {
        name: _write(tmp_path / f"{name}.bin", rng.randbytes(size))
        for name, size in EDGE_SIZES.items()
    }
    expected = dict(zip(files, helia_cids(*files.values()), strict=True))
    for name, path in files.items():
        data = path.read_bytes()
        digest = digest_file(path)
        assert digest.cid == expected[name], name
        assert digest.size == len(data)
        assert digest.sha256 == hashlib.sha256(data).hexdigest()
        assert cid_of_bytes(data) == expected[name], name
    # One chunk or less is a single raw block; more is a dag-pb root.
    assert expected["empty"].startswith("bafk")
    assert expected["exactly_one_chunk"].startswith("bafk")
    assert expected["one_chunk_plus_one"].startswith("bafy")


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_random_sizes_and_slicings_match_helia(
    seed: int, tmp_path: Path, helia_cids: HeliaOracle
) -> None:
    rng = random.Random(seed)
    sizes = [rng.randrange(0, 3 * CHUNK_SIZE), rng.randrange(3 * CHUNK_SIZE, 6_000_000)]
    paths = [_write(tmp_path / f"{seed}-{i}.bin", rng.randbytes(n)) for i, n in enumerate(sizes)]
    for path, expected in zip(paths, helia_cids(*paths), strict=True):
        digest = StreamingDigest()
        _feed_in_random_slices(digest, path.read_bytes(), rng)
        assert digest.finalize().cid == expected, (seed, path.stat().st_size)


def test_blocks_of_pieces_with_an_extra_checksum_match_helia(
    tmp_path: Path, helia_cids: HeliaOracle
) -> None:
    # How the upload server feeds it: blocks of network-sized pieces, most blocks large
    # enough to be hashed by helper threads, plus a per-request checksum in the same pass.
    rng = random.Random(7)
    data = rng.randbytes(5 * (1 << 20) + 12_345)
    (expected,) = helia_cids(_write(tmp_path / "pieces.bin", data))
    pieces, pos = [], 0
    while pos < len(data):
        step = rng.randrange(1, 300_000)
        pieces.append(data[pos : pos + step])
        pos += step
    digest, checksum = StreamingDigest(), hashlib.sha256()
    for start in range(0, len(pieces), 9):
        digest.update_many(pieces[start : start + 9], also=(checksum,))
    result = digest.finalize()
    assert result.cid == expected
    assert result.sha256 == checksum.hexdigest() == hashlib.sha256(data).hexdigest()
    assert result.size == len(data)


@pytest.mark.slow
def test_file_needing_a_second_dag_level_matches_helia(
    tmp_path: Path, helia_cids: HeliaOracle
) -> None:
    # 174 leaves fill one node; this file has 193, so the root sits two levels up and
    # its second child is a partial node (the balanced layout's interesting case).
    size = 48 * 1024 * 1024 + 12_345
    path = tmp_path / "big.bin"
    rng = random.Random(99)
    with path.open("wb") as out:
        remaining = size
        while remaining:
            step = min(remaining, 8 << 20)
            out.write(rng.randbytes(step))
            remaining -= step
    (expected,) = helia_cids(path)
    hasher = CidHasher(record_leaves=True)
    with path.open("rb") as handle:
        while block := handle.read(3_000_001):
            hasher.update(block)
    assert hasher.finalize() == expected
    assert len(hasher.leaf_digests) == -(-size // CHUNK_SIZE) > MAX_LINKS
    assert cid_from_leaf_digests(hasher.leaf_digests, size) == expected


def test_leaf_digests_rebuild_the_helia_cid(tmp_path: Path, helia_cids: HeliaOracle) -> None:
    data = random.Random(7).randbytes(5 * CHUNK_SIZE + 11)
    (expected,) = helia_cids(_write(tmp_path / "f.bin", data))
    digests = [
        hashlib.sha256(data[i : i + CHUNK_SIZE]).digest() for i in range(0, len(data), CHUNK_SIZE)
    ]
    assert cid_from_leaf_digests(digests, len(data)) == expected
    with pytest.raises(ValueError, match="leaves"):
        cid_from_leaf_digests(digests[:-1], len(data))


def test_hasher_state_stays_within_one_open_group_per_level() -> None:
    tree = _TreeBuilder()
    digest = bytes(32)
    for _ in range(MAX_LINKS * MAX_LINKS + 5):
        tree.add_leaf(digest, CHUNK_SIZE)
        assert all(len(group) < MAX_LINKS for group in tree._levels)
    assert len(tree._levels) == 3


def test_update_after_finalize_is_an_error() -> None:
    hasher = CidHasher()
    hasher.finalize()
    with pytest.raises(RuntimeError):
        hasher.update(b"x")
    with pytest.raises(RuntimeError):
        _ = hasher.leaf_digests


def test_normalize_cid_accepts_other_bases_and_rejects_everything_else() -> None:
    cid = cid_of_bytes(b"hello")
    from multiformats import CID

    assert normalize_cid(CID.decode(cid).encode("base58btc")) == cid
    for bad in (
        "",
        "../../etc/passwd",
        "bafy" + "a" * 200,
        "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
    ):
        with pytest.raises(InvalidCidError):
            normalize_cid(bad)
    sha512 = CID("base32", 1, "raw", ("sha2-512", bytes(64)))
    with pytest.raises(InvalidCidError, match="sha2-256"):
        normalize_cid(str(sha512))
