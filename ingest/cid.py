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

The rule itself (chunking, leaves, the balanced tree, the streaming
:class:`CidHasher`) is implemented once, in the SDK (:mod:`shotbank.cid`, standard
library only, so that trainers check downloads by the same code); this module adds what
the backend needs on top: the one-pass SHA-256 + CID digest of uploads and blobs, and
CID validation with the ``multiformats`` package. Tests compare every result with
Helia's UnixFS importer on the same bytes (``tests/ingest``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, TypeAlias

from multiformats import CID

from ingest.errors import InvalidCidError
from shotbank.cid import CHUNK_SIZE, MAX_LINKS, CidHasher, cid_from_leaf_digests, cid_of_bytes

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

#: How many bytes :func:`digest_file` reads at a time.
READ_SIZE: Final = 1 << 20
#: Longest CID string :func:`normalize_cid` looks at (a CIDv1 sha2-256 is 59 chars).
MAX_CID_TEXT: Final = 128

_SHA256_LEN: Final = 32
#: From this many bytes per update, :class:`StreamingDigest` hashes SHA-256 in a helper
#: thread while the calling thread hashes the CID leaves (hashlib releases the GIL on
#: large buffers), so one pass keeps two cores busy. Below it, handing over costs more.
_PARALLEL_MIN_BYTES: Final = 1 << 20

Buffer: TypeAlias = bytes | bytearray | memoryview


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
