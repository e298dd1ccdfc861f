"""ingest.blobstore.LocalBlobStore on a real folder (the Kubo store: test_kubo.py)."""

from __future__ import annotations

import errno
import hashlib
import os
import random
from pathlib import Path

import pytest

from ingest.blobstore import BlobStore, KuboBlobStore, LocalBlobStore
from ingest.cid import CHUNK_SIZE, cid_of_bytes, digest_file
from ingest.errors import BlobIntegrityError, BlobNotFoundError, InvalidCidError


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def _file(tmp_path: Path, data: bytes, name: str = "upload.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def blob(tmp_path: Path) -> tuple[Path, bytes]:
    data = random.Random(3).randbytes(3 * CHUNK_SIZE + 1234)
    return _file(tmp_path, data), data


def test_both_stores_satisfy_the_protocol(store: LocalBlobStore) -> None:
    assert isinstance(store, BlobStore)
    assert issubclass(KuboBlobStore, BlobStore)


def test_put_then_read_back(store: LocalBlobStore, blob: tuple[Path, bytes]) -> None:
    path, data = blob
    digest = digest_file(path)
    info = store.put_file(path, cid=digest.cid, sha256=digest.sha256, size=len(data))
    assert (info.cid, info.size, info.sha256) == (digest.cid, len(data), digest.sha256)
    assert store.exists(digest.cid)
    assert store.size(digest.cid) == len(data)
    with store.open(digest.cid) as handle:
        assert handle.read() == data
    assert list(store.iter_cids()) == [digest.cid]
    stored = store.path_for(digest.cid)
    assert stored.parent.name == digest.cid[-3:-1]
    assert sorted(p.name for p in stored.parent.iterdir()) == [digest.cid, digest.cid + ".leaves"]


def test_put_accepts_the_cid_in_another_base(store: LocalBlobStore, tmp_path: Path) -> None:
    from multiformats import CID

    path = _file(tmp_path, b"tiny")
    base58 = str(CID.decode(cid_of_bytes(b"tiny")).encode("base58btc"))
    assert store.put_file(path, cid=base58).cid == cid_of_bytes(b"tiny")


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        ({"cid": cid_of_bytes(b"something else")}, "not the announced"),
        ({"sha256": "0" * 64}, "SHA-256"),
        ({"size": 1}, "announced 1"),
    ],
)
def test_put_refuses_bytes_that_do_not_match_the_claim(
    store: LocalBlobStore, blob: tuple[Path, bytes], claim: dict[str, object], message: str
) -> None:
    path, _ = blob
    fields: dict[str, object] = {"cid": digest_file(path).cid} | claim
    with pytest.raises(BlobIntegrityError, match=message):
        store.put_file(path, **fields)  # type: ignore[arg-type]
    assert list(store.iter_cids()) == []
    leftovers = [p for p in store.root.rglob("*") if p.is_file()]
    assert leftovers == []


def test_put_of_a_stored_blob_is_idempotent_and_still_verifies(
    store: LocalBlobStore, blob: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, _ = blob
    cid = digest_file(path).cid
    store.put_file(path, cid=cid)
    mtime = store.path_for(cid).stat().st_mtime_ns
    assert store.put_file(path, cid=cid).cid == cid
    assert store.path_for(cid).stat().st_mtime_ns == mtime
    impostor = _file(tmp_path, b"not those bytes", "impostor.bin")
    with pytest.raises(BlobIntegrityError):
        store.put_file(impostor, cid=cid)


def test_empty_blob(store: LocalBlobStore, tmp_path: Path) -> None:
    path = _file(tmp_path, b"")
    cid = digest_file(path).cid
    store.put_file(path, cid=cid)
    assert store.size(cid) == 0
    with store.open_range(cid, 0, 0) as part:
        assert part.read() == b""


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, 1),
        (0, 3 * CHUNK_SIZE + 1234),
        (CHUNK_SIZE - 5, CHUNK_SIZE + 5),
        (2 * CHUNK_SIZE, 3 * CHUNK_SIZE),
        (3 * CHUNK_SIZE + 1000, 3 * CHUNK_SIZE + 1234),
        (500, 500),
    ],
)
def test_open_range_returns_exactly_the_range(
    store: LocalBlobStore, blob: tuple[Path, bytes], start: int, end: int
) -> None:
    path, data = blob
    cid = store.put_file(path, cid=digest_file(path).cid).cid
    for verify in (True, False):
        with store.open_range(cid, start, end, verify=verify) as part:
            assert part.length == end - start
            assert b"".join(part) == data[start:end]
    with store.open_range(cid, start, end) as part:
        first = part.read(7)
        assert first + part.read() == data[start:end]


def test_open_range_rejects_ranges_outside_the_blob(
    store: LocalBlobStore, blob: tuple[Path, bytes]
) -> None:
    path, data = blob
    cid = store.put_file(path, cid=digest_file(path).cid).cid
    for start, end in ((-1, 5), (5, 4), (0, len(data) + 1)):
        with pytest.raises(ValueError, match="outside"):
            store.open_range(cid, start, end)


def test_bit_rot_inside_a_served_range_is_caught(
    store: LocalBlobStore, blob: tuple[Path, bytes]
) -> None:
    path, data = blob
    cid = store.put_file(path, cid=digest_file(path).cid).cid
    stored = store.path_for(cid)
    stored.chmod(0o644)
    with stored.open("r+b") as handle:
        handle.seek(2 * CHUNK_SIZE + 10)
        handle.write(b"\x00" if data[2 * CHUNK_SIZE + 10] else b"\x01")
    with store.open_range(cid, 0, CHUNK_SIZE) as untouched:
        assert untouched.read() == data[:CHUNK_SIZE]
    with (
        pytest.raises(BlobIntegrityError, match="Leaf 2"),
        store.open_range(cid, 2 * CHUNK_SIZE + 100, 2 * CHUNK_SIZE + 200) as damaged,
    ):
        damaged.read()
    with pytest.raises(BlobIntegrityError):
        store.verify(cid)


def test_damaged_or_missing_leaf_index_is_rebuilt_from_the_blob(
    tmp_path: Path, blob: tuple[Path, bytes]
) -> None:
    path, data = blob
    cid = digest_file(path).cid
    LocalBlobStore(tmp_path / "s").put_file(path, cid=cid)
    index = LocalBlobStore(tmp_path / "s").path_for(cid).with_name(cid + ".leaves")
    good = index.read_bytes()
    index.write_bytes(hashlib.sha256(b"forged").digest() + good[32:])
    fresh = LocalBlobStore(tmp_path / "s")  # no cached index
    with fresh.open_range(cid, 10, 20) as part:
        assert part.read() == data[10:20]
    assert index.read_bytes() == good
    index.unlink()
    assert LocalBlobStore(tmp_path / "s").leaf_digests(cid) == [
        good[i : i + 32] for i in range(0, len(good), 32)
    ]


def test_delete_and_missing_blobs(store: LocalBlobStore, blob: tuple[Path, bytes]) -> None:
    path, _ = blob
    cid = store.put_file(path, cid=digest_file(path).cid).cid
    assert store.delete(cid) is True
    assert store.delete(cid) is False
    assert not store.exists(cid)
    assert list(store.iter_cids()) == []
    with pytest.raises(BlobNotFoundError):
        store.open(cid)
    with pytest.raises(BlobNotFoundError):
        store.size(cid)
    with pytest.raises(BlobNotFoundError):
        store.open_range(cid, 0, 1)


@pytest.mark.parametrize(
    "bad", ["../../etc/passwd", "", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"]
)
def test_cids_that_are_not_cids_never_become_paths(store: LocalBlobStore, bad: str) -> None:
    with pytest.raises(InvalidCidError):
        store.exists(bad)
    with pytest.raises(InvalidCidError):
        store.open(bad)


def test_interrupted_puts_leave_only_temporary_files_that_are_swept(
    store: LocalBlobStore, blob: tuple[Path, bytes]
) -> None:
    path, _ = blob
    cid = digest_file(path).cid
    shard = store.path_for(cid).parent
    shard.mkdir(parents=True)
    stale = shard / f".tmp-{cid}.deadbeef"
    stale.write_bytes(b"half a file")
    os.utime(stale, (1, 1))
    assert list(store.iter_cids()) == []
    assert store.sweep_temporary(older_than_s=60) == 1
    assert not stale.exists()


def test_many_blobs_spread_over_shards(store: LocalBlobStore, tmp_path: Path) -> None:
    cids = set()
    for number in range(40):
        data = f"blob {number}".encode()
        cids.add(store.put_file(_file(tmp_path, data), cid=cid_of_bytes(data)).cid)
    assert set(store.iter_cids()) == cids
    assert len({store.path_for(cid).parent for cid in cids}) > 10


# --- put_file(..., move=True) --------------------------------------------------------


def test_move_renames_the_file_into_place_without_a_copy(
    store: LocalBlobStore, blob: tuple[Path, bytes]
) -> None:
    path, data = blob
    inode = path.stat().st_ino
    digest = digest_file(path)
    info = store.put_file(path, cid=digest.cid, sha256=digest.sha256, size=len(data), move=True)
    assert (info.cid, info.size, info.sha256) == (digest.cid, len(data), digest.sha256)
    assert not path.exists()
    stored = store.path_for(digest.cid)
    assert stored.stat().st_ino == inode
    assert stored.read_bytes() == data
    assert sorted(p.name for p in stored.parent.iterdir()) == [digest.cid, digest.cid + ".leaves"]
    with store.open_range(digest.cid, CHUNK_SIZE - 3, CHUNK_SIZE + 3) as part:
        assert part.read() == data[CHUNK_SIZE - 3 : CHUNK_SIZE + 3]
    store.verify(digest.cid)


@pytest.mark.parametrize(
    "claim",
    [{"cid": cid_of_bytes(b"something else")}, {"sha256": "0" * 64}, {"size": 1}],
    ids=["cid", "sha256", "size"],
)
def test_a_mismatching_move_leaves_the_source(
    store: LocalBlobStore, blob: tuple[Path, bytes], claim: dict[str, object]
) -> None:
    path, data = blob
    inode = path.stat().st_ino
    fields: dict[str, object] = {"cid": digest_file(path).cid} | claim
    with pytest.raises(BlobIntegrityError):
        store.put_file(path, move=True, **fields)  # type: ignore[arg-type]
    assert path.read_bytes() == data
    assert path.stat().st_ino == inode
    assert list(store.iter_cids()) == []
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_move_of_a_stored_blob_verifies_then_removes_the_source(
    store: LocalBlobStore, blob: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, data = blob
    cid = digest_file(path).cid
    store.put_file(path, cid=cid)
    mtime = store.path_for(cid).stat().st_mtime_ns
    same = _file(tmp_path, data, "again.bin")
    assert store.put_file(same, cid=cid, move=True).cid == cid
    assert not same.exists()
    assert store.path_for(cid).stat().st_mtime_ns == mtime
    impostor = _file(tmp_path, data[:-1] + b"\x00", "impostor.bin")
    with pytest.raises(BlobIntegrityError):
        store.put_file(impostor, cid=cid, move=True)
    assert impostor.exists()


def test_move_replaces_a_stored_blob_of_the_wrong_size(
    store: LocalBlobStore, blob: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, data = blob
    cid = digest_file(path).cid
    store.put_file(path, cid=cid)
    stored = store.path_for(cid)
    stored.write_bytes(data[: CHUNK_SIZE + 5])  # damaged on disk: cut short
    store.put_file(_file(tmp_path, data, "good.bin"), cid=cid, move=True)
    assert store.path_for(cid).read_bytes() == data
    store.verify(cid)


def test_move_across_devices_falls_back_to_copy(
    store: LocalBlobStore, blob: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = blob
    inode = path.stat().st_ino
    attempts: list[tuple[object, object]] = []

    def cross_device(source: object, target: object) -> None:
        attempts.append((source, target))
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "rename", cross_device)
    digest = digest_file(path)
    info = store.put_file(path, cid=digest.cid, sha256=digest.sha256, move=True)
    assert attempts, "the move was not tried first"
    assert info.size == len(data)
    assert not path.exists()
    stored = store.path_for(digest.cid)
    assert stored.stat().st_ino != inode
    assert stored.read_bytes() == data
    assert sorted(p.name for p in stored.parent.iterdir()) == [digest.cid, digest.cid + ".leaves"]
    assert store.leaf_digests(digest.cid)


@pytest.mark.parametrize("kind", ["hard link", "symbolic link"])
def test_a_linked_source_is_copied_not_moved(
    store: LocalBlobStore, blob: tuple[Path, bytes], tmp_path: Path, kind: str
) -> None:
    path, data = blob
    link = tmp_path / "link.bin"
    if kind == "hard link":
        os.link(path, link)
    else:
        link.symlink_to(path)
    cid = digest_file(path).cid
    store.put_file(link, cid=cid, move=True)
    assert not link.exists()
    assert path.read_bytes() == data, "the other name keeps its file"
    stored = store.path_for(cid)
    assert not stored.is_symlink()
    assert stored.stat().st_ino != path.stat().st_ino
    assert stored.read_bytes() == data
