"""Blob stores: where clip bytes live, addressed by their CID.

:class:`BlobStore` is the interface the backend codes against. Two implementations:

:class:`LocalBlobStore` (the embedded default)
    One file per blob under ``root/<shard>/<cid>``, the shard being the two characters
    before the CID's last one (flatfs' ``next-to-last/2``: CIDs share their first
    characters, not their last). Writes are atomic and durable: a temporary file in the
    shard folder, ``fsync``, ``rename``, ``fsync`` of the folder. Every ``put`` hashes
    the bytes as they are copied and refuses them unless their CID (and SHA-256 and size,
    when given) match what the caller announced. ``put_file(..., move=True)`` verifies
    the file in one read-only pass and renames it into place instead of copying it (an
    upload on the same file system becomes the blob without a second copy). Beside each
    blob, ``<cid>.leaves`` holds the SHA-256 of each 256 KiB leaf of its DAG; it is
    authenticated against the CID before use, and lets :meth:`LocalBlobStore.open_range`
    check every leaf an HTTP range touches, so bit rot is caught when served without
    re-reading whole files.

:class:`KuboBlobStore`
    A Kubo (go-ipfs) node over its RPC API with ``ipfshttpclient``: ``add`` with CIDv1,
    raw leaves and the 256 KiB chunker, pinned; ``cat`` to read; ``pin rm`` to delete
    (the node's garbage collector frees the blocks later). The node verifies blocks on
    read itself. The CID the node computes must equal the one announced.

CID arguments are validated with :func:`~ingest.cid.normalize_cid` (any multibase in,
base32 out), so a CID can never name a path outside the store.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import secrets
import stat
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ingest.cid import (
    CHUNK_SIZE,
    ContentDigest,
    StreamingDigest,
    cid_from_leaf_digests,
    normalize_cid,
)
from ingest.errors import (
    BlobIntegrityError,
    BlobNotFoundError,
    BlobStoreError,
    BlobStoreUnavailableError,
    InvalidCidError,
)

__all__ = [
    "BlobInfo",
    "BlobRange",
    "BlobStore",
    "KuboBlobStore",
    "LocalBlobStore",
]

#: Bytes copied per read while storing a blob.
COPY_SIZE: Final = 1 << 20
#: Bytes handed out per chunk when a range is iterated.
RANGE_CHUNK: Final = 256 * 1024
_DIGEST: Final = 32
_LEAVES_SUFFIX: Final = ".leaves"
_TEMP_PREFIX: Final = ".tmp-"


class BlobInfo(BaseModel):
    """A stored blob: its CID (base32), size and, when known, SHA-256 (hex)."""

    model_config = ConfigDict(frozen=True)

    cid: str = Field(max_length=128)
    size: int = Field(ge=0)
    sha256: str | None = Field(default=None, min_length=64, max_length=64)


class BlobRange:
    """Bytes ``[start, end)`` of a blob, read in order; iterate it or call :meth:`read`.

    Close it (or use it as a context manager) when done. Reads raise
    :class:`~ingest.errors.BlobIntegrityError` when verified bytes do not match.
    """

    def __init__(self, chunks: Iterator[bytes], start: int, end: int) -> None:
        self.start = start
        self.end = end
        self._chunks = chunks
        self._pending = b""
        self._closed = False

    @property
    def length(self) -> int:
        """How many bytes the range holds."""
        return self.end - self.start

    def __iter__(self) -> Iterator[bytes]:
        if self._pending:
            pending, self._pending = self._pending, b""
            yield pending
        yield from self._chunks

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all remaining when negative); ``b""`` at the end."""
        parts = [self._pending]
        have = len(self._pending)
        while size < 0 or have < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        if size < 0:
            self._pending = b""
            return data
        self._pending = data[size:]
        return data[:size]

    def close(self) -> None:
        """Release the underlying file or connection."""
        if not self._closed:
            self._closed = True
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> BlobRange:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed storage of clip bytes. Every ``cid`` is a CIDv1 string."""

    def put_file(
        self,
        path: str | os.PathLike[str],
        *,
        cid: str,
        sha256: str | None = None,
        size: int | None = None,
        move: bool = False,
    ) -> BlobInfo:
        """Store the file at ``path`` as ``cid``; its bytes must hash to ``cid`` (and to
        ``sha256`` / have ``size`` when given), else BlobIntegrityError. Idempotent.

        With ``move=True`` the store takes the file: it is gone once this returns
        (also when the blob was already stored), and left untouched when it raises."""
        ...

    def open(self, cid: str) -> BinaryIO:
        """The whole blob for reading (BlobNotFoundError if absent)."""
        ...

    def open_range(self, cid: str, start: int, end: int) -> BlobRange:
        """Bytes ``[start, end)`` of the blob, for HTTP Range answers."""
        ...

    def exists(self, cid: str) -> bool:
        """Whether the blob is stored."""
        ...

    def size(self, cid: str) -> int:
        """The blob's size in bytes (BlobNotFoundError if absent)."""
        ...

    def delete(self, cid: str) -> bool:
        """Remove the blob; False when it was not there."""
        ...

    def iter_cids(self) -> Iterator[str]:
        """Every stored CID (base32), in no particular order."""
        ...


def _check_expected(digest: ContentDigest, cid: str, sha256: str | None, size: int | None) -> None:
    if size is not None and digest.size != size:
        raise BlobIntegrityError(f"The bytes are {digest.size} long, not the announced {size}.")
    if sha256 is not None and digest.sha256 != sha256.lower():
        raise BlobIntegrityError("The bytes do not match the announced SHA-256.")
    if digest.cid != cid:
        raise BlobIntegrityError(f"The bytes have CID {digest.cid}, not the announced {cid}.")


def _check_range(start: int, end: int, size: int) -> None:
    if not 0 <= start <= end <= size:
        raise ValueError(f"range [{start}, {end}) is outside a blob of {size} bytes")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    """Blobs as files in a local folder; see the module docstring for the layout."""

    #: Leaf indexes kept in memory after authentication (a 4 GiB blob's is 512 KiB).
    INDEX_CACHE_SIZE: Final = 32

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._indexes: OrderedDict[tuple[str, int], list[bytes]] = OrderedDict()

    # --- paths ---

    def path_for(self, cid: str) -> Path:
        """Where the blob ``cid`` lives (whether or not it is stored)."""
        canonical = normalize_cid(cid)
        return self.root / canonical[-3:-1] / canonical

    def _leaves_path(self, blob: Path) -> Path:
        return blob.with_name(blob.name + _LEAVES_SUFFIX)

    # --- writing ---

    def _temp(self, folder: Path, name: str) -> tuple[Path, BinaryIO]:
        path = folder / f"{_TEMP_PREFIX}{name}.{secrets.token_hex(8)}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        return path, os.fdopen(fd, "wb")

    def _commit(self, temp: Path, handle: BinaryIO, final: Path) -> None:
        handle.flush()
        if self._fsync:
            os.fsync(handle.fileno())
        handle.close()
        os.replace(temp, final)

    def _write_leaves(self, folder: Path, blob: Path, digests: list[bytes]) -> None:
        temp, handle = self._temp(folder, blob.name + _LEAVES_SUFFIX)
        try:
            handle.write(b"".join(digests))
            self._commit(temp, handle, self._leaves_path(blob))
        except BaseException:
            handle.close()
            temp.unlink(missing_ok=True)
            raise

    def put_file(
        self,
        path: str | os.PathLike[str],
        *,
        cid: str,
        sha256: str | None = None,
        size: int | None = None,
        move: bool = False,
    ) -> BlobInfo:
        """Store the file at ``path`` as ``cid``, verifying its bytes first.

        Copying (the default) hashes the bytes in the same pass that writes them to a
        temporary file in the shard folder, which is then renamed into place.

        ``move=True`` takes the file itself: one read-only pass verifies it and records
        the leaf index, then the file is renamed into place (no second copy); the source
        is gone afterwards. The bytes are ``fsync``-ed before the rename and both folders
        after it. Across file systems (``EXDEV``), and for a source that is a symbolic
        link or has other hard links (either would let the blob change under its CID),
        it falls back to copying, then removes the source. On any integrity failure
        nothing is stored and the source is left untouched; so is a source that changed
        while it was being verified.

        When the blob is already stored the file is still read and verified (the
        caller's claim is checked either way) but nothing is written; with ``move`` the
        source is then removed. A stored file whose size differs from these bytes is
        damaged (the CID fixes the size) and is replaced by them once they verify.
        """
        canonical = normalize_cid(cid)
        final = self.path_for(canonical)
        folder = final.parent
        if not folder.is_dir():
            folder.mkdir(exist_ok=True)
            if self._fsync:
                _fsync_dir(self.root)
        source = Path(path)
        if self._stored_size(final) == source.stat().st_size:
            result = self._verify_source(source, canonical, sha256, size, sync=False)[0]
            if move:
                self._remove_source(source)
            return BlobInfo(cid=canonical, size=result.size, sha256=result.sha256)
        # Not stored, or stored with another size than these bytes: a blob whose size
        # differs from bytes with its CID is damaged, and the verified bytes replace it.
        if move:
            moved = self._move_in(source, canonical, final, sha256, size)
            if moved is not None:
                return BlobInfo(cid=canonical, size=moved.size, sha256=moved.sha256)
        result = self._copy_in(source, canonical, final, sha256, size)
        if move:
            self._remove_source(source)
        return BlobInfo(cid=canonical, size=result.size, sha256=result.sha256)

    @staticmethod
    def _stored_size(final: Path) -> int | None:
        try:
            return final.stat().st_size
        except FileNotFoundError:
            return None

    def _verify_source(
        self, source: Path, cid: str, sha256: str | None, size: int | None, *, sync: bool
    ) -> tuple[ContentDigest, StreamingDigest, os.stat_result]:
        """Hash ``source`` in one read-only pass and check it against the claim.

        Returns the digest, the hasher (for its leaf digests) and the file's status as
        read. With ``sync`` the file's data is flushed to disk on the way (a no-op when
        it already was), so a rename that follows cannot expose unwritten bytes after a
        crash.
        """
        digest = StreamingDigest(record_leaves=True)
        with source.open("rb") as handle:
            before = os.fstat(handle.fileno())
            while block := handle.read(COPY_SIZE):
                digest.update(block)
            if sync and self._fsync:
                os.fsync(handle.fileno())
            after = os.fstat(handle.fileno())
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            raise BlobIntegrityError("The file changed while it was being stored.")
        result = digest.finalize()
        _check_expected(result, cid, sha256, size)
        return result, digest, after

    def _move_in(
        self, source: Path, cid: str, final: Path, sha256: str | None, size: int | None
    ) -> ContentDigest | None:
        """Verify ``source`` and rename it to ``final``.

        None when it cannot be renamed: on another device (``EXDEV``), not a regular
        file (a symbolic link would become the blob) or with other hard links (they
        could change the blob's bytes later); the caller copies it instead.
        """
        folder = final.parent
        if not self._movable(os.lstat(source)):
            return None
        result, digest, status = self._verify_source(source, cid, sha256, size, sync=True)
        self._write_leaves(folder, final, digest.cid_hasher.leaf_digests)
        try:
            current = os.lstat(source)
            if (current.st_ino, current.st_size, current.st_mtime_ns) != (
                status.st_ino,
                status.st_size,
                status.st_mtime_ns,
            ) or not self._movable(current):
                raise BlobIntegrityError("The file changed while it was being stored.")
            os.rename(source, final)
        except BaseException as exc:
            self._leaves_path(final).unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno == errno.EXDEV:
                return None
            raise
        if self._fsync:
            _fsync_dir(folder)
            _fsync_dir(source.parent)
        return result

    @staticmethod
    def _movable(status: os.stat_result) -> bool:
        return stat.S_ISREG(status.st_mode) and status.st_nlink == 1

    def _copy_in(
        self, source: Path, cid: str, final: Path, sha256: str | None, size: int | None
    ) -> ContentDigest:
        """Copy ``source`` to ``final`` through a temporary file, hashing in the same pass."""
        folder = final.parent
        digest = StreamingDigest(record_leaves=True)
        temp, handle = self._temp(folder, cid)
        try:
            with source.open("rb") as reader:
                while block := reader.read(COPY_SIZE):
                    digest.update(block)
                    handle.write(block)
            result = digest.finalize()
            _check_expected(result, cid, sha256, size)
            self._write_leaves(folder, final, digest.cid_hasher.leaf_digests)
            self._commit(temp, handle, final)
        except BaseException:
            handle.close()
            temp.unlink(missing_ok=True)
            raise
        if self._fsync:
            _fsync_dir(folder)
        return result

    def _remove_source(self, source: Path) -> None:
        source.unlink()
        if self._fsync:
            _fsync_dir(source.parent)

    # --- reading ---

    def open(self, cid: str) -> BinaryIO:
        """The stored file, opened for binary reading."""
        try:
            return self.path_for(cid).open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(f"No blob {cid} is stored.") from None

    def exists(self, cid: str) -> bool:
        """Whether the blob is stored."""
        return self.path_for(cid).is_file()

    def size(self, cid: str) -> int:
        """The blob's size in bytes."""
        try:
            return self.path_for(cid).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"No blob {cid} is stored.") from None

    def iter_cids(self) -> Iterator[str]:
        """Every stored CID; temporary files and leaf indexes are skipped."""
        for shard in sorted(self.root.iterdir()):
            if not shard.is_dir() or len(shard.name) != 2:
                continue
            for entry in shard.iterdir():
                name = entry.name
                if name.startswith(_TEMP_PREFIX) or name.endswith(_LEAVES_SUFFIX):
                    continue
                try:
                    canonical = normalize_cid(name)
                except InvalidCidError:
                    continue
                if canonical == name and entry.is_file():
                    yield canonical

    def delete(self, cid: str) -> bool:
        """Remove the blob and its leaf index; False when it was not stored."""
        blob = self.path_for(cid)
        self._leaves_path(blob).unlink(missing_ok=True)
        self._indexes = OrderedDict((k, v) for k, v in self._indexes.items() if k[0] != blob.name)
        try:
            blob.unlink()
        except FileNotFoundError:
            return False
        if self._fsync:
            _fsync_dir(blob.parent)
        return True

    def sweep_temporary(self, older_than_s: float = 3600.0) -> int:
        """Delete temporary files left by interrupted puts; returns how many."""
        cutoff = time.time() - older_than_s
        removed = 0
        for shard in self.root.iterdir():
            if not shard.is_dir():
                continue
            for entry in shard.glob(f"{_TEMP_PREFIX}*"):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < cutoff:
                        entry.unlink()
                        removed += 1
        return removed

    # --- verification ---

    def verify(self, cid: str) -> ContentDigest:
        """Re-hash the whole blob; BlobIntegrityError unless it still has its CID.

        Also rewrites its leaf index, so it repairs a missing or damaged one.
        """
        canonical = normalize_cid(cid)
        blob = self.path_for(canonical)
        digest = StreamingDigest(record_leaves=True)
        with self.open(canonical) as handle:
            while block := handle.read(COPY_SIZE):
                digest.update(block)
        result = digest.finalize()
        if result.cid != canonical:
            raise BlobIntegrityError(f"The stored bytes of {canonical} now hash to {result.cid}.")
        self._write_leaves(blob.parent, blob, digest.cid_hasher.leaf_digests)
        return result

    def leaf_digests(self, cid: str) -> list[bytes]:
        """The authenticated SHA-256 of every leaf of the blob's DAG.

        Read from the index beside the blob and checked against the CID (the DAG above
        the leaves is recomputed); an absent or damaged index is rebuilt by
        :meth:`verify`, which also proves the blob itself intact.
        """
        canonical = normalize_cid(cid)
        size = self.size(canonical)
        key = (canonical, size)
        cached = self._indexes.get(key)
        if cached is not None:
            self._indexes.move_to_end(key)
            return cached
        digests = self._read_index(canonical, size)
        if digests is None:
            self.verify(canonical)
            digests = self._read_index(canonical, size)
            if digests is None:  # pragma: no cover - verify() just wrote a valid one
                raise BlobStoreError(f"The leaf index of {canonical} cannot be rebuilt.")
        self._indexes[key] = digests
        while len(self._indexes) > self.INDEX_CACHE_SIZE:
            self._indexes.popitem(last=False)
        return digests

    def _read_index(self, cid: str, size: int) -> list[bytes] | None:
        leaves = max(1, -(-size // CHUNK_SIZE))
        try:
            raw = self._leaves_path(self.path_for(cid)).read_bytes()
        except FileNotFoundError:
            return None
        if len(raw) != leaves * _DIGEST:
            return None
        digests = [raw[i : i + _DIGEST] for i in range(0, len(raw), _DIGEST)]
        if cid_from_leaf_digests(digests, size) != cid:
            return None
        return digests

    def open_range(self, cid: str, start: int, end: int, *, verify: bool = True) -> BlobRange:
        """Bytes ``[start, end)`` of the blob (an HTTP ``bytes=a-b`` is ``[a, b + 1)``).

        With ``verify`` (the default) every 256 KiB leaf the range touches is read whole
        and checked against the authenticated leaf index before any of its bytes are
        handed out; a mismatch raises :class:`~ingest.errors.BlobIntegrityError`.
        """
        canonical = normalize_cid(cid)
        size = self.size(canonical)
        _check_range(start, end, size)
        digests = self.leaf_digests(canonical) if verify else None
        handle = self.open(canonical)
        return BlobRange(self._range_chunks(handle, canonical, start, end, digests), start, end)

    @staticmethod
    def _range_chunks(
        handle: BinaryIO, cid: str, start: int, end: int, digests: list[bytes] | None
    ) -> Iterator[bytes]:
        with handle:
            if digests is None:
                handle.seek(start)
                position = start
                while position < end:
                    block = handle.read(min(RANGE_CHUNK, end - position))
                    if not block:
                        raise BlobIntegrityError(f"The blob {cid} is shorter than recorded.")
                    position += len(block)
                    yield block
                return
            first = start // CHUNK_SIZE
            last = (end - 1) // CHUNK_SIZE if end > start else first - 1
            handle.seek(first * CHUNK_SIZE)
            for leaf in range(first, last + 1):
                block = handle.read(CHUNK_SIZE)
                if hashlib.sha256(block).digest() != digests[leaf]:
                    raise BlobIntegrityError(
                        f"Leaf {leaf} of blob {cid} does not match its CID (damaged on disk)."
                    )
                base = leaf * CHUNK_SIZE
                yield block[max(start, base) - base : min(end, base + len(block)) - base]


class KuboBlobStore:
    """Blobs in a Kubo (go-ipfs) node, through its RPC API (``ipfshttpclient``).

    ``api`` is the node's RPC multiaddr; it must be a trusted local node (the RPC API
    is an admin interface). Pass ``client`` to reuse an existing ipfshttpclient Client.
    """

    #: ``ipfs add`` settings that reproduce :func:`ingest.cid.CidHasher`.
    ADD_OPTIONS: Final = {
        "cid_version": 1,
        "raw_leaves": True,
        "chunker": f"size-{CHUNK_SIZE}",
        "pin": True,
    }

    def __init__(
        self,
        api: str = "/ip4/127.0.0.1/tcp/5001/http",
        *,
        timeout: float = 120.0,
        client: Any = None,
    ) -> None:
        if client is None:
            import ipfshttpclient

            with warnings.catch_warnings():
                # 0.8.0a2 warns on every Kubo newer than 0.8; the RPC calls used here
                # (add, cat, pin, files/stat) have not changed since.
                warnings.simplefilter("ignore", ipfshttpclient.exceptions.VersionMismatch)
                try:
                    client = ipfshttpclient.connect(api, timeout=timeout)
                except ipfshttpclient.exceptions.Error as exc:
                    raise BlobStoreUnavailableError(
                        f"The IPFS node at {api} cannot be reached."
                    ) from exc
        self._client = client

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        import ipfshttpclient

        try:
            return call(*args, **kwargs)
        except (
            ipfshttpclient.exceptions.ConnectionError,
            ipfshttpclient.exceptions.TimeoutError,
        ) as exc:
            raise BlobStoreUnavailableError(f"The IPFS node did not answer ({what}).") from exc
        except ipfshttpclient.exceptions.ErrorResponse as exc:
            message = str(exc).lower()
            if "not pinned" in message or "not found" in message or "no link" in message:
                raise BlobNotFoundError(f"The IPFS node has no {what}.") from exc
            raise BlobStoreError(f"The IPFS node refused {what}: {str(exc)[:200]}") from exc
        except ipfshttpclient.exceptions.Error as exc:
            raise BlobStoreError(f"The IPFS node failed {what}: {str(exc)[:200]}") from exc

    def put_file(
        self,
        path: str | os.PathLike[str],
        *,
        cid: str,
        sha256: str | None = None,
        size: int | None = None,
        move: bool = False,
    ) -> BlobInfo:
        """Hash the file locally, check it, then ``ipfs add`` it (pinned).

        The CID the node answers must be the announced one; otherwise the node's pin is
        removed again and :class:`~ingest.errors.BlobIntegrityError` raised (the node was
        set up with other import settings). With ``move=True`` the local file is deleted
        once the node holds the pin (the node keeps its own copy of the blocks); on any
        error it is left in place.
        """
        from ingest.cid import digest_file

        canonical = normalize_cid(cid)
        local = digest_file(path)
        _check_expected(local, canonical, sha256, size)
        added = self._call("add", self._client.add, os.fspath(path), **self.ADD_OPTIONS)
        answered = normalize_cid(str(added["Hash"]))
        if answered != canonical:
            with contextlib.suppress(BlobStoreError):
                self._call("pin rm", self._client.pin.rm, answered)
            raise BlobIntegrityError(
                f"The IPFS node computed {answered} for the bytes of {canonical}; check its "
                "import settings."
            )
        if move:
            Path(path).unlink()
        return BlobInfo(cid=canonical, size=local.size, sha256=local.sha256)

    def _stream(self, cid: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        response = self._call(
            f"blob {cid}", self._client.cat, cid, offset=offset, length=length, stream=True
        )
        try:
            for chunk in response:
                yield bytes(chunk)
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()

    def open(self, cid: str) -> BinaryIO:
        """The whole blob, streamed from the node (``cat``)."""
        canonical = normalize_cid(cid)
        if not self.exists(canonical):
            raise BlobNotFoundError(f"No blob {canonical} is pinned.")
        return io.BufferedReader(_IteratorReader(self._stream(canonical)))

    def open_range(self, cid: str, start: int, end: int) -> BlobRange:
        """Bytes ``[start, end)`` (``cat --offset --length``; the node verifies blocks)."""
        canonical = normalize_cid(cid)
        _check_range(start, end, self.size(canonical))
        if start == end:
            return BlobRange(iter(()), start, end)
        return BlobRange(self._stream(canonical, start, end - start), start, end)

    def exists(self, cid: str) -> bool:
        """Whether the node holds a recursive pin for the blob."""
        canonical = normalize_cid(cid)
        try:
            self._call(f"pin {canonical}", self._client.pin.ls, canonical, type="recursive")
        except BlobNotFoundError:
            return False
        except BlobStoreError as exc:
            if isinstance(exc, BlobStoreUnavailableError):
                raise
            return False
        return True

    def size(self, cid: str) -> int:
        """The blob's size (``files stat /ipfs/<cid>``)."""
        canonical = normalize_cid(cid)
        if not self.exists(canonical):
            raise BlobNotFoundError(f"No blob {canonical} is pinned.")
        stat = self._call(f"blob {canonical}", self._client.files.stat, f"/ipfs/{canonical}")
        return int(stat["Size"])

    def delete(self, cid: str) -> bool:
        """Unpin the blob; its blocks go at the node's next garbage collection."""
        canonical = normalize_cid(cid)
        if not self.exists(canonical):
            return False
        self._call(f"pin {canonical}", self._client.pin.rm, canonical)
        return True

    def iter_cids(self) -> Iterator[str]:
        """Every recursively pinned CID this project accepts (others are skipped)."""
        pins = self._call("pin list", self._client.pin.ls, type="recursive")
        keys: Iterable[str] = pins["Keys"]
        for key in keys:
            try:
                yield normalize_cid(str(key))
            except InvalidCidError:
                continue


class _IteratorReader(io.RawIOBase):
    """A read-only binary file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = chunk
        view = memoryview(target).cast("B")
        count = min(len(view), len(self._buffer))
        view[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()
