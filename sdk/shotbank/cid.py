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

This module repeats that rule with the standard library only (the SDK stays light: no
``multiformats``): the binary CID prefixes and the base32 text form are a few bytes of
well-known constants. The tests compare it with the backend's implementation on the same
bytes, across the one-leaf, one-level and two-level shapes.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["CHUNK_SIZE", "MAX_LINKS", "CidHasher", "cid_of_bytes", "cid_of_file"]

#: Kubo's default fixed-size chunker (``size-262144``).
CHUNK_SIZE: Final = 262_144
#: Kubo's balanced layout: at most this many links per internal node.
MAX_LINKS: Final = 174
_READ: Final = 1 << 20
_UNIXFS_FILE: Final = 2
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
    cid: bytes  # binary CID
    tsize: int  # encoded bytes under and including the child
    filesize: int  # file bytes under the child


def _parent(links: Sequence[_Link]) -> _Link:
    filesize = sum(link.filesize for link in links)
    unixfs = bytearray(_field_varint(1, _UNIXFS_FILE) + _field_varint(3, filesize))
    for link in links:
        unixfs += _field_varint(4, link.filesize)
    node = bytearray()
    for link in links:
        pb_link = _field_bytes(1, link.cid) + _field_bytes(2, b"") + _field_varint(3, link.tsize)
        node += _field_bytes(2, pb_link)
    node += _field_bytes(1, bytes(unixfs))
    return _Link(
        cid=_DAG_PB_PREFIX + hashlib.sha256(node).digest(),
        tsize=len(node) + sum(link.tsize for link in links),
        filesize=filesize,
    )


def _text(binary: bytes) -> str:
    # Multibase base32: prefix "b", RFC 4648 lower case, no padding.
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


class CidHasher:
    """Streaming CIDv1 of a byte stream: :meth:`update` in order, then :meth:`finalize`.

    Keeps the running hash of the current leaf and fewer than 174 links per tree level
    (a full group is closed into its parent at once: the tree is complete to the left),
    so no file bytes are buffered.
    """

    def __init__(self) -> None:
        self._leaf = hashlib.sha256()
        self._fill = 0
        self._leaves = 0
        self._levels: list[list[_Link]] = []
        self._cid: str | None = None

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes."""
        if self._cid is not None:
            raise RuntimeError("update() after finalize()")
        view = memoryview(data).cast("B")
        while view:
            take = min(CHUNK_SIZE - self._fill, len(view))
            self._leaf.update(view[:take])
            self._fill += take
            view = view[take:]
            if self._fill == CHUNK_SIZE:
                self._close_leaf()

    def _close_leaf(self) -> None:
        self._leaves += 1
        self._push(0, _Link(_RAW_PREFIX + self._leaf.digest(), self._fill, self._fill))
        self._leaf = hashlib.sha256()
        self._fill = 0

    def _push(self, level: int, link: _Link) -> None:
        while True:
            if level == len(self._levels):
                self._levels.append([])
            group = self._levels[level]
            group.append(link)
            if len(group) < MAX_LINKS:
                return
            self._levels[level] = []
            link = _parent(group)
            level += 1

    def finalize(self) -> str:
        """The CID as base32 text (``bafk...`` for one chunk, ``bafy...`` above); idempotent."""
        if self._cid is None:
            if self._fill or self._leaves == 0:
                self._close_leaf()
            level = 0
            while True:
                group = self._levels[level]
                higher = any(self._levels[level + 1 :])
                if group and not higher and len(group) == 1:
                    self._cid = _text(group[0].cid)
                    break
                self._levels[level] = []
                if group:
                    self._push(level + 1, _parent(group))
                level += 1
        return self._cid


def cid_of_bytes(data: bytes | bytearray | memoryview) -> str:
    """The CID of in-memory bytes."""
    hasher = CidHasher()
    hasher.update(data)
    return hasher.finalize()


def cid_of_file(path: str | os.PathLike[str]) -> str:
    """The CID of the file at ``path``, read once in 1 MiB pieces."""
    hasher = CidHasher()
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ):
            hasher.update(chunk)
    return hasher.finalize()
