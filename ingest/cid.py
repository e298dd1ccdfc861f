"""Content addressing: the CIDv1 that ``ipfs add --cid-version 1 --raw-leaves`` computes.

Kubo's importer with those flags, reproduced here as a streaming hasher:

* the file is cut into fixed 262144-byte chunks (the last one may be shorter; an empty
  file is one empty chunk);
* every chunk is a *raw* leaf block: CIDv1, codec ``raw``, sha2-256 of the chunk;
* leaves are grouped into a balanced tree of dag-pb nodes with at most 174 links each:
  the first 174 leaves under one node, the next 174 under the next, and so on; the
  nodes of a level are grouped the same way until one root remains;
* a file of exactly one chunk is addressed by that leaf itself (``bafk...``); larger
  files by the root dag-pb node (``bafy...``);
* an internal node is ``PBNode{Links, Data}`` with the links first; each link carries
  the child's CID, an empty name and the child's cumulative size (``Tsize``: its own
  encoded bytes plus its children's ``Tsize``); ``Data`` is a UnixFS ``File`` message
  with the total ``filesize`` and one ``blocksizes`` entry (file bytes) per child.

Because the tree is complete to the left, a level only ever needs its not-yet-full
group of at most 174 links: a level that fills up is closed into a parent on the next
level at once. The hasher therefore keeps fewer than 174 links per level, one level per
factor of 174 in the leaf count (a 4 GiB file: 16384 leaves, the root two levels above
them), and can run over an upload in the same single pass as SHA-256; nothing is read
twice and no file bytes are buffered (each leaf is hashed incrementally).

The encodings are small enough to write here (protobuf varints and length-delimited
fields); CIDs and multihashes are built with the ``multiformats`` package. Tests compare
every result with Helia's UnixFS importer on the same bytes (``tests/ingest``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, TypeAlias

from multiformats import CID, multihash

from ingest.errors import InvalidCidError

__all__ = [
    "CHUNK_SIZE",
    "MAX_LINKS",
    "CidHasher",
    "ContentDigest",
    "StreamingDigest",
    "cid_from_leaf_digests",
    "cid_of_bytes",
    "digest_file",
    "normalize_cid",
]

#: Kubo's default fixed-size chunker (``size-262144``).
CHUNK_SIZE: Final = 262_144
#: Kubo's balanced layout: at most this many links per internal node.
MAX_LINKS: Final = 174
#: How many bytes :func:`digest_file` reads at a time.
READ_SIZE: Final = 1 << 20
#: Longest CID string :func:`normalize_cid` looks at (a CIDv1 sha2-256 is 59 chars).
MAX_CID_TEXT: Final = 128

_UNIXFS_FILE: Final = 2
_SHA256_LEN: Final = 32
#: From this many bytes per update, :class:`StreamingDigest` hashes SHA-256 in a helper
#: thread while the calling thread hashes the CID leaves (hashlib releases the GIL on
#: large buffers), so one pass keeps two cores busy. Below it, handing over costs more.
_PARALLEL_MIN_BYTES: Final = 1 << 20

Buffer: TypeAlias = bytes | bytearray | memoryview


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


def _binary_cid_prefix(codec: str) -> bytes:
    """The bytes before the digest in a binary CIDv1 of ``codec`` over sha2-256."""
    cid = CID("base32", 1, codec, multihash.wrap(bytes(_SHA256_LEN), "sha2-256"))
    return bytes(cid)[:-_SHA256_LEN]


# Built once: constructing a multiformats CID per 256 KiB leaf costs more than hashing it.
_RAW_PREFIX: Final = _binary_cid_prefix("raw")
_DAG_PB_PREFIX: Final = _binary_cid_prefix("dag-pb")


def _raw_leaf(digest: bytes, size: int) -> _Link:
    return _Link(cid=_RAW_PREFIX + digest, tsize=size, filesize=size)


def _encode_node(links: Sequence[_Link]) -> bytes:
    """dag-pb ``PBNode`` over ``links`` with a UnixFS ``File`` data message."""
    filesize = sum(link.filesize for link in links)
    unixfs = bytearray(_field_varint(1, _UNIXFS_FILE))
    unixfs += _field_varint(3, filesize)
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


class _TreeBuilder:
    """Kubo's balanced layout over a stream of leaves, keeping one open group per level."""

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


def _cid_text(binary: bytes) -> str:
    return str(CID.decode(binary).encode("base32"))


class CidHasher:
    """Streaming CIDv1 (raw leaves, 256 KiB chunks, balanced 174-link DAG).

    Feed the bytes in order with :meth:`update` (any slice sizes), then call
    :meth:`finalize` once. State is the running hash of the current leaf plus at most
    174 links per tree level; no file bytes are buffered. With ``record_leaves=True``
    the sha2-256 digest of every leaf is also kept (32 bytes per 256 KiB, in
    :attr:`leaf_digests`), which :class:`~ingest.blobstore.LocalBlobStore` stores to
    verify HTTP range reads leaf by leaf.
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
        """Feed the next bytes of the file."""
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
        """The file's CID as a base32 string (``bafk...`` or ``bafy...``); idempotent."""
        if self._cid is None:
            if self._leaf_fill or self._tree.leaf_count == 0:
                self._close_leaf()
            self._cid = _cid_text(self._tree.root().cid)
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
    return _cid_text(tree.root().cid)


@dataclass(frozen=True, slots=True)
class ContentDigest:
    """What one pass over a file yields: its size, SHA-256 (hex) and CIDv1."""

    size: int
    sha256: str
    cid: str


_helpers_lock = threading.Lock()
_helpers: ThreadPoolExecutor | None = None


def _helper_pool() -> ThreadPoolExecutor:
    """The process's hashing helper threads (created on first use)."""
    global _helpers
    with _helpers_lock:
        if _helpers is None:
            workers = max(2, min(8, os.cpu_count() or 2))
            _helpers = ThreadPoolExecutor(workers, thread_name_prefix="ingest-hash")
        return _helpers


def _feed(hasher: hashlib._Hash, parts: Sequence[Buffer]) -> None:
    for part in parts:
        hasher.update(part)


class StreamingDigest:
    """SHA-256, byte count and CIDv1 of a stream, computed together in one pass.

    Large updates (at least 1 MiB per call) are hashed by two threads: SHA-256 in a
    helper thread, the CID leaves in the caller's. The call returns when both are done,
    so the caller may reuse its buffer at once; the results do not depend on it.
    """

    def __init__(self, *, record_leaves: bool = False) -> None:
        self._sha256 = hashlib.sha256()
        self._cid = CidHasher(record_leaves=record_leaves)
        self._result: ContentDigest | None = None

    @property
    def size(self) -> int:
        """How many bytes were fed so far (for enforcing upload limits while streaming)."""
        return self._cid.size

    @property
    def cid_hasher(self) -> CidHasher:
        """The CID half (e.g. for its :attr:`CidHasher.leaf_digests`)."""
        return self._cid

    def update(self, data: Buffer) -> None:
        """Feed the next bytes."""
        self.update_many((data,))

    def update_many(self, parts: Sequence[Buffer], *, also: Sequence[hashlib._Hash] = ()) -> None:
        """Feed ``parts`` in order (as if :meth:`update` were called with each).

        ``also`` are further hash objects (e.g. a per-request checksum) fed the same bytes
        in the same pass; from 1 MiB in all, each of them and SHA-256 get a helper thread.
        """
        if self._result is not None:
            raise RuntimeError("update() after finalize()")
        if sum(memoryview(part).nbytes for part in parts) < _PARALLEL_MIN_BYTES:
            for hasher in (self._sha256, *also):
                _feed(hasher, parts)
            _feed_cid(self._cid, parts)
            return
        pool = _helper_pool()
        pending: list[Future[None]] = [
            pool.submit(_feed, hasher, parts) for hasher in (self._sha256, *also)
        ]
        try:
            _feed_cid(self._cid, parts)
        finally:
            for future in pending:
                future.result()

    def finalize(self) -> ContentDigest:
        """The digest of everything fed; idempotent."""
        if self._result is None:
            self._result = ContentDigest(
                size=self._cid.size, sha256=self._sha256.hexdigest(), cid=self._cid.finalize()
            )
        return self._result


def _feed_cid(hasher: CidHasher, parts: Sequence[Buffer]) -> None:
    for part in parts:
        hasher.update(part)


def digest_file(path: str | os.PathLike[str], *, read_size: int = READ_SIZE) -> ContentDigest:
    """Size, SHA-256 and CID of the file at ``path``, reading it once."""
    digest = StreamingDigest()
    buffer = bytearray(read_size)
    view = memoryview(buffer)
    with open(path, "rb") as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return digest.finalize()


def cid_of_bytes(data: bytes | bytearray | memoryview | Iterable[bytes]) -> str:
    """The CID of in-memory bytes (or of an iterable of byte strings, concatenated)."""
    hasher = CidHasher()
    if isinstance(data, bytes | bytearray | memoryview):
        hasher.update(data)
    else:
        for part in data:
            hasher.update(part)
    return hasher.finalize()


def normalize_cid(value: str) -> str:
    """Validate a CID string and return its canonical base32 form.

    Accepted: CIDv1 (any multibase the ``multiformats`` package knows), codec ``raw``
    or ``dag-pb``, sha2-256 multihash — exactly what :class:`CidHasher` produces.
    Anything else (CIDv0, other hashes, other codecs, junk) raises
    :class:`~ingest.errors.InvalidCidError`. The canonical form contains only
    ``[a-z2-7]``, so it is safe to use in file names.
    """
    if not isinstance(value, str) or not 0 < len(value) <= MAX_CID_TEXT:
        raise InvalidCidError("A CID must be a non-empty string of at most 128 characters.")
    try:
        cid = CID.decode(value)
    except Exception as exc:  # multiformats raises several unrelated types
        raise InvalidCidError("The value is not a valid CID.") from exc
    if cid.version != 1:
        raise InvalidCidError("Only CIDv1 is accepted.")
    if cid.codec.name not in ("raw", "dag-pb"):
        raise InvalidCidError("Only CIDs with the raw or dag-pb codec are accepted.")
    if cid.hashfun.name != "sha2-256" or len(cid.raw_digest) != _SHA256_LEN:
        raise InvalidCidError("Only sha2-256 CIDs are accepted.")
    return str(cid.encode("base32"))
