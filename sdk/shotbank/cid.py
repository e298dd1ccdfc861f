"""Content CIDs as the backend computes them, so a trainer can check downloads by CID.

The backend addresses clips and shards with the CIDv1 that ``ipfs add --cid-version 1
--raw-leaves`` gives (its ingest package, verified there against Helia's importer):

* the bytes are cut into fixed 262144-byte chunks (an empty file is one empty chunk);
* each chunk is a raw leaf (codec ``raw``, sha2-256);
* leaves are grouped in a balanced dag-pb tree of at most 174 links per node; a file of
  one chunk is that leaf itself (``bafk...``), a larger one the root node (``bafy...``);
* a node is ``PBNode{Links, Data}``, each link the child's CID, an empty name and its
  cumulative size; ``Data`` a UnixFS ``File`` with ``filesize`` and one ``blocksizes``
  entry per child.

This is the one implementation of the rule: the SDK must stay light (standard library only,
no ``multiformats``: the binary CID prefixes and the base32 text form are a few bytes of
well-known constants), and the backend's ingest package (``ingest.cid``) builds its
one-pass SHA-256 + CID digest, CID validation and blob-store leaf checks on top of it.
The ingest tests compare it with Helia's UnixFS importer on the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CHUNK_SIZE",
    "MAX_LINKS",
    "CidHasher",
    "cid_from_leaf_digests",
    "cid_of_bytes",
    "cid_of_file",
    "cid_text",
]

#: Kubo's default fixed-size chunker (``size-262144``).
CHUNK_SIZE: Final = 262_144
#: Kubo's balanced layout: at most this many links per internal node.
MAX_LINKS: Final = 174
_READ: Final = 1 << 20
_UNIXFS_FILE: Final = 2
_SHA256_LEN: Final = 32
# CIDv1 (0x01), codec (raw 0x55 / dag-pb 0x70), multihash sha2-256 (0x12) of 32 bytes (0x20).
_RAW_PREFIX: Final = bytes((0x01, 0x55, 0x12, 0x20))
_DAG_PB_PREFIX: Final = bytes((0x01, 0x70, 0x12, 0x20))


def _varint(value: int) -> bytes:
    """Protobuf / unsigned LEB128 varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field_varint(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _field_bytes(field: int, value: bytes) -> bytes:
    return _varint((field << 3) | 2) + _varint(len(value)) + value


@dataclass(frozen=True, slots=True)
class _Link:
    """One child of an internal node."""

    cid: bytes  # binary CID
    tsize: int  # cumulative block bytes under (and including) the child
    filesize: int  # file bytes under the child


def _raw_leaf(digest: bytes, size: int) -> _Link:
    return _Link(cid=_RAW_PREFIX + digest, tsize=size, filesize=size)


def _encode_node(links: Sequence[_Link]) -> bytes:
    """dag-pb ``PBNode`` over ``links`` with a UnixFS ``File`` data message."""
    filesize = sum(link.filesize for link in links)
    unixfs = bytearray(_field_varint(1, _UNIXFS_FILE) + _field_varint(3, filesize))
    for link in links:
        unixfs += _field_varint(4, link.filesize)
    node = bytearray()
    for link in links:
        pb_link = _field_bytes(1, link.cid) + _field_bytes(2, b"") + _field_varint(3, link.tsize)
        node += _field_bytes(2, pb_link)
    node += _field_bytes(1, bytes(unixfs))
    return bytes(node)


def _parent(links: Sequence[_Link]) -> _Link:
    block = _encode_node(links)
    return _Link(
        cid=_DAG_PB_PREFIX + hashlib.sha256(block).digest(),
        tsize=len(block) + sum(link.tsize for link in links),
        filesize=sum(link.filesize for link in links),
    )


def cid_text(binary: bytes) -> str:
    """A binary CID as multibase base32 text: ``b`` + RFC 4648 lower case, no padding."""
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


class _TreeBuilder:
    """Kubo's balanced layout over a stream of leaves, keeping one open group per level.

    The tree is complete to the left, so a level only ever needs its not-yet-full group
    of fewer than 174 links: a level that fills up is closed into its parent at once.
    """

    def __init__(self) -> None:
        self._levels: list[list[_Link]] = []
        self.leaf_count = 0

    def add_leaf(self, digest: bytes, size: int) -> None:
        self.leaf_count += 1
        self._push(0, _raw_leaf(digest, size))

    def _push(self, level: int, link: _Link) -> None:
        while True:
            if level == len(self._levels):
                self._levels.append([])
            group = self._levels[level]
            group.append(link)
            if len(group) < MAX_LINKS:
                return
            # A full group is final: in a balanced tree nothing else joins it.
            self._levels[level] = []
            link = _parent(group)
            level += 1

    def root(self) -> _Link:
        """Close every open group bottom-up; the last group of one link is the root."""
        if self.leaf_count == 0:
            raise RuntimeError("the tree has no leaves")
        level = 0
        while True:
            group = self._levels[level]
            higher = any(self._levels[level + 1 :])
            if group and not higher and len(group) == 1:
                return group[0]
            self._levels[level] = []
            if group:
                self._push(level + 1, _parent(group))
            level += 1


class CidHasher:
    """Streaming CIDv1 (raw leaves, 256 KiB chunks, balanced 174-link DAG).

    Feed the bytes in order with :meth:`update` (any slice sizes), then call
    :meth:`finalize`. State is the running hash of the current leaf plus fewer than 174
    links per tree level; no file bytes are buffered. With ``record_leaves=True`` the
    sha2-256 digest of every leaf is also kept (32 bytes per 256 KiB, in
    :attr:`leaf_digests`), which the backend's blob store keeps to verify range reads
    leaf by leaf.
    """

    def __init__(self, *, record_leaves: bool = False) -> None:
        self._leaf_hash = hashlib.sha256()
        self._leaf_fill = 0
        self._tree = _TreeBuilder()
        self._size = 0
        self._cid: str | None = None
        self._leaf_digests: list[bytes] | None = [] if record_leaves else None

    @property
    def size(self) -> int:
        """How many bytes were fed so far."""
        return self._size

    @property
    def leaf_digests(self) -> list[bytes]:
        """The sha2-256 digest of every leaf so far (only with ``record_leaves=True``)."""
        if self._leaf_digests is None:
            raise RuntimeError("this hasher was created without record_leaves=True")
        return self._leaf_digests

    def _close_leaf(self) -> None:
        digest = self._leaf_hash.digest()
        if self._leaf_digests is not None:
            self._leaf_digests.append(digest)
        self._tree.add_leaf(digest, self._leaf_fill)
        self._leaf_hash = hashlib.sha256()
        self._leaf_fill = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes."""
        if self._cid is not None:
            raise RuntimeError("update() after finalize()")
        view = memoryview(data).cast("B")
        self._size += len(view)
        while view:
            # Leaves are hashed incrementally: no chunk is buffered or copied.
            take = min(CHUNK_SIZE - self._leaf_fill, len(view))
            self._leaf_hash.update(view[:take])
            self._leaf_fill += take
            view = view[take:]
            if self._leaf_fill == CHUNK_SIZE:
                self._close_leaf()

    def finalize(self) -> str:
        """The CID as base32 text (``bafk...`` for one chunk, ``bafy...`` above); idempotent."""
        if self._cid is None:
            if self._leaf_fill or self._tree.leaf_count == 0:
                self._close_leaf()
            self._cid = cid_text(self._tree.root().cid)
        return self._cid


def cid_from_leaf_digests(digests: Sequence[bytes], size: int) -> str:
    """The CID of a ``size``-byte file whose leaves have these sha2-256 ``digests``.

    Recomputes the DAG above the leaves without the file's bytes, so a stored list of
    leaf digests can be authenticated against the CID it claims to belong to.
    """
    expected = max(1, -(-size // CHUNK_SIZE))
    if size < 0 or len(digests) != expected:
        raise ValueError(f"a {size}-byte file has {expected} leaves, got {len(digests)}")
    tree = _TreeBuilder()
    for index, digest in enumerate(digests):
        if len(digest) != _SHA256_LEN:
            raise ValueError("leaf digests must be 32-byte sha2-256 digests")
        tree.add_leaf(digest, min(CHUNK_SIZE, size - index * CHUNK_SIZE))
    return cid_text(tree.root().cid)


def cid_of_bytes(data: bytes | bytearray | memoryview | Iterable[bytes]) -> str:
    """The CID of in-memory bytes (or of an iterable of byte strings, concatenated)."""
    hasher = CidHasher()
    if isinstance(data, bytes | bytearray | memoryview):
        hasher.update(data)
    else:
        for part in data:
            hasher.update(part)
    return hasher.finalize()


def cid_of_file(path: str | os.PathLike[str]) -> str:
    """The CID of the file at ``path``, read once in 1 MiB pieces."""
    hasher = CidHasher()
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ):
            hasher.update(chunk)
    return hasher.finalize()
