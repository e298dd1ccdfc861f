"""Resumable uploads (tus 1.0 core, creation, termination, checksum, expiration).

Bytes and durability
--------------------
Each upload is one file ``upload_path/<id>``. A ``PATCH`` body is streamed to it in
blocks of :data:`WRITE_BLOCK` bytes (never held whole in memory; a worker thread writes
and hashes one block while the next arrives, and asks the kernel to start writing it to
disk at once, see :func:`_start_writeback`), then the file is ``fsync``-ed, and only
then is the new offset written to the database with a
compare-and-set on the old offset. After a crash the file can therefore be longer than
the stored offset, never shorter; the tail beyond the offset is cut off before the next
write. A failed request (checksum mismatch, too large, too slow) truncates the file back
to the stored offset: the chunk is discarded. A client that disconnects mid-body keeps
what arrived (tus core asks servers to), unless it sent ``Upload-Checksum``, in which
case nothing of that chunk is kept. One writer per upload at a time: an in-process claim
(:meth:`DigestCache.claim`) plus an ``flock`` on the file across worker processes; a
second writer gets 409 ``upload_busy``.

The running digest, and why it is not persisted
-----------------------------------------------
The upload's SHA-256, size and CIDv1 are computed while the bytes stream, with
:class:`ingest.cid.StreamingDigest` (one pass for all three). Python's ``hashlib`` state
cannot be serialised (no pickle, no export of the OpenSSL context), so the digest is
kept in memory in a :class:`DigestCache`, tagged with the offset it covers. A ``PATCH``
continues the cached digest only when its offset equals the stored offset; otherwise
(the server restarted, another worker process served the previous chunk, the entry was
evicted, or the previous chunk failed) the digest is rebuilt by reading the persisted
prefix of the file once. So in the normal case nothing is read twice; after a restart
the prefix is read once more. The alternatives were rejected: a pure-Python SHA-256 with
exportable state is ~50x slower on every byte, and checkpointing CID leaf state still
leaves SHA-256 without a resumable state.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import fcntl
import hashlib
import json
import math
import os
import re
import secrets
import sqlite3
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Final, cast

import anyio
from anyio.to_thread import run_sync
from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend.core.config import Settings
from backend.errors import (
    BackendError,
    ChecksumMismatchError,
    InvalidInputError,
    RequestTimeoutError,
    UploadAlreadyUsedError,
    UploadBusyError,
    UploadExpiredError,
    UploadNotFoundError,
    UploadOffsetMismatchError,
    UploadQuotaExceededError,
    UploadTooLargeError,
)
from backend.models.uploads import Upload, UploadState
from ingest.cid import StreamingDigest

#: tus protocol version spoken, extensions and checksum algorithms supported.
TUS_VERSION: Final = "1.0.0"
TUS_EXTENSIONS: Final = (
    "creation",
    "creation-with-upload",
    "termination",
    "checksum",
    "expiration",
)
CHECKSUM_ALGORITHMS: Final = ("sha256",)
#: Bytes gathered from the request before one write + hash step (bounded memory).
WRITE_BLOCK: Final = 4 << 20
#: How many running digests one process keeps; an evicted one is rebuilt from disk.
DIGEST_CACHE_ENTRIES: Final = 256

_UPLOAD_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_METADATA_KEY: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_FILENAME_KEYS: Final = ("filename", "name")
_DAY: Final = timedelta(days=1)
#: Namespace (first key) of the advisory locks that serialise a wallet's quota checks
#: on PostgreSQL; the second key is the wallet's ``hashtext``.
_QUOTA_LOCK_SPACE: Final = 0x5B0F


class BodyInterruptedError(Exception):
    """The client went away before its request body was complete (not an API error)."""


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


class DigestCache:
    """Running upload digests of this process, each valid for one offset.

    Also serialises writers: :meth:`claim` admits one request per upload at a time.
    """

    def __init__(self, max_entries: int = DIGEST_CACHE_ENTRIES) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[int, StreamingDigest]] = OrderedDict()
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def take(self, upload_id: str, offset: int) -> StreamingDigest | None:
        """Remove and return the digest of ``upload_id`` if it covers exactly ``offset``."""
        with self._lock:
            entry = self._entries.pop(upload_id, None)
        if entry is None or entry[0] != offset:
            return None
        return entry[1]

    def put(self, upload_id: str, offset: int, digest: StreamingDigest) -> None:
        """Remember ``digest`` as covering the first ``offset`` bytes of ``upload_id``."""
        with self._lock:
            self._entries[upload_id] = (offset, digest)
            self._entries.move_to_end(upload_id)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def discard(self, upload_id: str) -> None:
        """Forget the digest of ``upload_id``."""
        with self._lock:
            self._entries.pop(upload_id, None)

    @contextmanager
    def claim(self, upload_id: str) -> Iterator[None]:
        """Hold ``upload_id`` for one writer; raises :class:`UploadBusyError` if held."""
        with self._lock:
            if upload_id in self._busy:
                raise UploadBusyError("Another request is writing to this upload.")
            self._busy.add(upload_id)
        try:
            yield
        finally:
            with self._lock:
                self._busy.discard(upload_id)


# --- metadata -------------------------------------------------------------------------


def sanitize_filename(name: str, *, max_chars: int) -> str:
    """``name`` in NFC if it is a safe single file name; raises otherwise.

    Refused: empty, ``.``/``..``, path separators, control and format characters (NUL,
    bidi overrides such as U+202E, zero-width), leading/trailing spaces, too long.
    """
    if len(name) > max_chars:
        raise InvalidInputError(f"The file name is longer than {max_chars} characters.")
    normalized = unicodedata.normalize("NFC", name)
    if normalized in ("", ".", "..") or normalized != normalized.strip():
        raise InvalidInputError("The file name is empty or not a plain name.")
    for char in normalized:
        if char in "/\\" or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise InvalidInputError(
                f"The file name contains a forbidden character (U+{ord(char):04X})."
            )
    return normalized


def parse_metadata(header: str | None, *, settings: Settings) -> dict[str, str]:
    """Decode a tus ``Upload-Metadata`` header (``key base64value`` pairs, comma-separated)."""
    if not header:
        return {}
    if len(header) > settings.upload_max_metadata_chars:
        raise UploadTooLargeError(
            f"Upload-Metadata is longer than {settings.upload_max_metadata_chars} characters."
        )
    pairs = header.split(",")
    if len(pairs) > settings.upload_max_metadata_pairs:
        raise InvalidInputError(
            f"Upload-Metadata has more than {settings.upload_max_metadata_pairs} pairs."
        )
    metadata: dict[str, str] = {}
    for pair in pairs:
        key, _, encoded = pair.strip().partition(" ")
        if not _METADATA_KEY.match(key) or key in metadata:
            raise InvalidInputError("Upload-Metadata has an invalid or repeated key.")
        try:
            metadata[key] = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidInputError(
                f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text."
            ) from exc
    for key in _FILENAME_KEYS:
        if key in metadata:
            metadata[key] = sanitize_filename(
                metadata[key], max_chars=settings.upload_max_filename_chars
            )
    return metadata


def encode_metadata(metadata: dict[str, str]) -> str:
    """The ``Upload-Metadata`` header for ``metadata``."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in metadata.items()
    )


def parse_checksum(header: str | None) -> bytes | None:
    """The expected digest of an ``Upload-Checksum: sha256 <base64>`` header, if any."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm.lower() not in CHECKSUM_ALGORITHMS:
        raise InvalidInputError(
            f"Checksum algorithm {algorithm[:32]!r} is not supported; use sha256."
        )
    try:
        digest = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise InvalidInputError("Upload-Checksum is not valid base64.") from exc
    if len(digest) != hashlib.sha256().digest_size:
        raise InvalidInputError("Upload-Checksum is not a SHA-256 digest.")
    return digest


# --- rows -----------------------------------------------------------------------------


def upload_file(settings: Settings, upload_id: str) -> Path:
    """Where the bytes of ``upload_id`` are written."""
    return settings.upload_path / upload_id


def get_upload(db: Session, *, owner: str, upload_id: str, now: datetime | None = None) -> Upload:
    """The upload ``upload_id`` of ``owner``.

    Another wallet's upload, a terminated one and an unknown id all raise
    :class:`UploadNotFoundError` (existence is not leaked); an expired one raises
    :class:`UploadExpiredError`. A ``consumed`` one (bound to a clip) is still returned.
    """
    upload = db.get(Upload, upload_id) if _UPLOAD_ID.match(upload_id) else None
    if (
        upload is None
        or not secrets.compare_digest(upload.owner, owner)
        or upload.state == UploadState.TERMINATED
    ):
        raise UploadNotFoundError("No such upload.")
    expired = upload.state == UploadState.ACTIVE and (now or utcnow()) >= upload.expires_at
    if upload.state == UploadState.EXPIRED or expired:
        raise UploadExpiredError("The upload has expired; start a new one.")
    return upload


def create_upload(
    db: Session,
    *,
    settings: Settings,
    owner: str,
    length: int,
    metadata_header: str | None,
    now: datetime | None = None,
) -> Upload:
    """Register a new upload of ``length`` bytes for ``owner`` and create its empty file.

    Enforces ``upload_max_size``, the wallet's concurrent uploads and its daily bytes;
    the quota check and the insert are serialised per wallet (:func:`_lock_wallet_quota`),
    so concurrent creations cannot overshoot the caps. Commits ``db`` (rolls it back when
    refused).
    """
    moment = now or utcnow()
    if length < 0:
        raise InvalidInputError("Upload-Length must be a non-negative integer.")
    if length > settings.upload_max_size:
        raise UploadTooLargeError(
            f"The upload is larger than the {settings.upload_max_size}-byte limit."
        )
    metadata = parse_metadata(metadata_header, settings=settings)
    _lock_wallet_quota(db, owner)
    try:
        _check_quota(db, settings=settings, owner=owner, length=length, moment=moment)
        upload = Upload(
            id=secrets.token_hex(16),
            owner=owner,
            length=length,
            filename=next((metadata[key] for key in _FILENAME_KEYS if key in metadata), None),
            metadata_json=json.dumps(metadata),
            created_at=moment,
            expires_at=moment + timedelta(seconds=settings.upload_expiry_s),
        )
        settings.upload_path.mkdir(parents=True, exist_ok=True)
        with open(upload_file(settings, upload.id), "xb") as handle:
            os.fsync(handle.fileno())
        if length == 0:
            result = StreamingDigest().finalize()
            upload.state, upload.completed_at = UploadState.COMPLETE, moment
            upload.sha256, upload.cid = result.sha256, result.cid
        db.add(upload)
        db.commit()  # ends the transaction: releases the wallet's quota lock
    except BaseException:
        db.rollback()  # a refused or failed creation releases the lock at once, too
        raise
    db.refresh(upload)
    return upload


def _lock_wallet_quota(db: Session, owner: str) -> None:
    """Serialise ``owner``'s quota check and insert until ``db``'s transaction ends.

    Counting and then inserting is otherwise a race: concurrent creations all count
    below the cap and all insert. PostgreSQL: a transaction-scoped advisory lock keyed
    by the wallet; under READ COMMITTED the counts that follow it see every creation
    committed before it was granted. SQLite: the write transaction is begun now
    (``BEGIN IMMEDIATE``), before the counts, which serialises all creations (SQLite has
    one writer anyway; readers are not blocked in WAL mode); a waiting creation waits up
    to ``db_connect_timeout_s`` (the busy timeout).
    """
    connection = db.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        lock = func.pg_advisory_xact_lock(_QUOTA_LOCK_SPACE, func.hashtext(owner))
        connection.execute(select(lock))
    elif dialect == "sqlite":
        driver: object = connection.connection.dbapi_connection  # sqlite3.Connection
        # pysqlite opens a transaction only right before a data-changing statement, so one
        # already open has written and holds SQLite's write lock: nothing more to take.
        if isinstance(driver, sqlite3.Connection) and not driver.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _check_quota(
    db: Session, *, settings: Settings, owner: str, length: int, moment: datetime
) -> None:
    """Raise :class:`UploadQuotaExceededError` if ``owner`` may not start ``length`` bytes."""
    active = db.scalar(
        select(func.count())
        .select_from(Upload)
        .where(
            Upload.owner == owner,
            Upload.state == UploadState.ACTIVE,
            col(Upload.expires_at) > moment,
        )
    )
    if (active or 0) >= settings.upload_max_concurrent_per_wallet:
        raise UploadQuotaExceededError(
            f"At most {settings.upload_max_concurrent_per_wallet} unfinished uploads at once."
        )
    declared = db.scalar(
        select(func.coalesce(func.sum(Upload.length), 0)).where(
            Upload.owner == owner, col(Upload.created_at) > moment - _DAY
        )
    )
    if int(declared or 0) + length > settings.upload_daily_bytes_per_wallet:
        raise UploadQuotaExceededError(
            f"At most {settings.upload_daily_bytes_per_wallet} bytes per wallet per 24 hours."
        )


def terminate_upload(
    db: Session, *, settings: Settings, digests: DigestCache, owner: str, upload_id: str
) -> None:
    """Delete an upload's bytes and forget it (tus termination).

    An upload bound to a clip (``consumed``) is refused with 409
    :class:`UploadAlreadyUsedError`: its bytes belong to the clip (withdraw the clip
    instead). The state change is conditional, so a submission binding the upload at
    the same moment either wins (this is refused) or loses (it sees no upload).
    """
    upload = get_upload(db, owner=owner, upload_id=upload_id)
    with digests.claim(upload_id):
        done = db.execute(
            update(Upload)
            .where(
                col(Upload.id) == upload_id,
                col(Upload.state).in_([UploadState.ACTIVE, UploadState.COMPLETE]),
            )
            .values(state=UploadState.TERMINATED)
            .execution_options(synchronize_session=False)
        )
        if getattr(done, "rowcount", 0) != 1:
            db.rollback()
            db.refresh(upload)
            if upload.state == UploadState.CONSUMED:
                raise UploadAlreadyUsedError(
                    "The upload is bound to a clip; withdraw the clip to delete its bytes."
                )
            raise UploadNotFoundError("No such upload.")
        db.commit()
        digests.discard(upload_id)
        upload_file(settings, upload_id).unlink(missing_ok=True)


def expire_uploads(db: Session, *, settings: Settings, now: datetime | None = None) -> int:
    """Mark unfinished uploads past their expiry as expired and delete their bytes.

    Meant to run periodically (and safe to run at any time); returns how many expired.
    """
    moment = now or utcnow()
    stale = db.exec(
        select(Upload).where(Upload.state == UploadState.ACTIVE, col(Upload.expires_at) <= moment)
    ).all()
    for upload in stale:
        upload.state = UploadState.EXPIRED
        db.add(upload)
    db.commit()
    for upload in stale:
        upload_file(settings, upload.id).unlink(missing_ok=True)
    return len(stale)


# --- appending bytes --------------------------------------------------------------------


@dataclass
class _Chunk:
    """One ``PATCH`` in progress: where it writes and what it has hashed."""

    handle: BinaryIO
    digest: StreamingDigest
    chunk_hash: hashlib._Hash | None
    written: int = 0

    def write(self, pieces: Sequence[bytes]) -> None:
        """Append one block (the request's pieces as they came: no joining copy)."""
        self.handle.writelines(pieces)
        self.handle.flush()
        _start_writeback(self.handle.fileno())
        also = () if self.chunk_hash is None else (self.chunk_hash,)
        self.digest.update_many(pieces, also=also)
        self.written += sum(len(piece) for piece in pieces)

    def sync(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    function = getattr(ctypes.CDLL(None, use_errno=True), "sync_file_range", None)
    if function is None:  # not Linux
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


_sync_file_range: Final = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE: Final = 2


def _start_writeback(fd: int) -> None:
    """Have the kernel start writing ``fd``'s dirty pages to disk, without waiting.

    Only a head start for the ``fsync`` that ends the ``PATCH`` (which still decides
    durability): the disk works while the rest of the body arrives, instead of all at
    once at the end while the client waits. PostgreSQL's ``*_flush_after`` settings do
    the same. Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``; elsewhere nothing.
    """
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # a failure only loses the head start


def _rehash_prefix(path: Path, offset: int) -> StreamingDigest:
    """A digest of the first ``offset`` bytes of ``path`` (after a restart)."""
    digest = StreamingDigest()
    with open(path, "rb") as handle:
        remaining = offset
        while remaining:
            block = handle.read(min(WRITE_BLOCK, remaining))
            if not block:
                raise BackendError("An upload's file is shorter than its recorded offset.")
            digest.update(block)
            remaining -= len(block)
    return digest


def _open_at(path: Path, offset: int) -> BinaryIO:
    handle = open(path, "r+b")  # noqa: SIM115 - closed by append()
    try:
        # Across worker processes: one writer per upload file (released on close).
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise UploadBusyError("Another request is writing to this upload.") from exc
    handle.truncate(offset)  # cut bytes a crash left beyond the recorded offset
    handle.seek(offset)
    return handle


def _discard(handle: BinaryIO, offset: int) -> None:
    handle.truncate(offset)
    handle.flush()
    os.fsync(handle.fileno())


async def _receive(
    chunk: _Chunk,
    body: AsyncIterator[bytes],
    *,
    room: int,
    keep_partial: bool,
    idle_timeout_s: float,
    total_timeout_s: float,
) -> None:
    """Stream ``body`` (at most ``room`` bytes) into ``chunk``.

    The pieces are gathered into blocks of :data:`WRITE_BLOCK` bytes; a worker thread
    writes and hashes one block while the next one arrives (hashlib and file writes
    release the GIL), and the hand-over waits while the writer is busy, so an upload
    holds at most two blocks in memory. A client that hangs up ends the body early when
    ``keep_partial``; otherwise :class:`BodyInterruptedError` propagates. A pause longer
    than ``idle_timeout_s`` or a body longer than ``total_timeout_s`` raises
    :class:`RequestTimeoutError`; waiting for our own writer is not a pause.
    """
    send, receive = anyio.create_memory_object_stream[list[bytes]]()

    async def write_blocks() -> None:
        async with receive:
            async for pieces in receive:
                await run_sync(chunk.write, pieces)

    with _first_error():
        async with anyio.create_task_group() as group:
            group.start_soon(write_blocks)
            async with send:
                deadline = anyio.current_time() + total_timeout_s
                pieces: list[bytes] = []
                gathered = received = 0
                # One scope for the whole body, its deadline moved on after each piece
                # (cheaper than a scope per piece).
                with anyio.CancelScope() as scope:
                    scope.deadline = anyio.current_time() + min(idle_timeout_s, total_timeout_s)
                    try:
                        async for piece in body:
                            received += len(piece)
                            if received > room:
                                raise UploadTooLargeError("The body goes beyond Upload-Length.")
                            pieces.append(piece)
                            gathered += len(piece)
                            if gathered >= WRITE_BLOCK:
                                scope.deadline = math.inf
                                await send.send(pieces)
                                pieces, gathered = [], 0
                            scope.deadline = min(anyio.current_time() + idle_timeout_s, deadline)
                    except BodyInterruptedError:
                        if not keep_partial:
                            raise
                if scope.cancelled_caught:
                    raise RequestTimeoutError("The request body arrived too slowly.")
                if pieces:
                    await send.send(pieces)


@contextmanager
def _first_error() -> Iterator[None]:
    """Raise a task group's (first) error as itself, so domain errors keep their type."""
    try:
        yield
    except BaseExceptionGroup as group:
        # The other task is cancelled when one fails, so there is one error in practice.
        raise group.exceptions[0] from None


def _commit(
    engine: Engine, *, upload_id: str, old: int, new: int, digest: StreamingDigest, length: int
) -> Upload:
    with Session(engine) as db:
        values: dict[str, object] = {"offset": new}
        if new == length:
            result = digest.finalize()
            values |= {
                "state": UploadState.COMPLETE,
                "completed_at": utcnow(),
                "sha256": result.sha256,
                "cid": result.cid,
            }
        done = db.execute(
            update(Upload)
            .where(
                col(Upload.id) == upload_id,
                col(Upload.offset) == old,
                col(Upload.state) == UploadState.ACTIVE,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if getattr(done, "rowcount", 0) != 1:
            db.rollback()
            raise UploadOffsetMismatchError("The upload changed while this request was written.")
        db.commit()
        upload = db.get(Upload, upload_id)
        assert upload is not None
        return upload


def _load(engine: Engine, owner: str, upload_id: str) -> Upload:
    with Session(engine) as db:
        upload = get_upload(db, owner=owner, upload_id=upload_id)
        db.expunge(upload)
        return upload


async def append(
    engine: Engine,
    *,
    settings: Settings,
    digests: DigestCache,
    owner: str,
    upload_id: str,
    offset: int,
    content_length: int | None,
    checksum: str | None,
    body: AsyncIterator[bytes],
) -> Upload:
    """Write one ``PATCH`` body at ``offset``; returns the upload with its new offset.

    See the module docstring for what is kept when. Raises
    :class:`UploadOffsetMismatchError` (409), :class:`UploadTooLargeError` (413, beyond
    ``Upload-Length``), :class:`ChecksumMismatchError` (460),
    :class:`RequestTimeoutError` (408, slow body), :class:`UploadBusyError` (409).
    """
    upload = await run_sync(_load, engine, owner, upload_id)
    if upload.state != UploadState.ACTIVE or offset != upload.offset:
        raise UploadOffsetMismatchError(
            f"Upload-Offset {offset} is not the upload's offset {upload.offset}."
        )
    if content_length is not None and offset + content_length > upload.length:
        raise UploadTooLargeError("The body would go beyond Upload-Length.")
    expected = parse_checksum(checksum)
    path = upload_file(settings, upload_id)
    with digests.claim(upload_id):
        cached = digests.take(upload_id, offset)
        digest = cached if cached is not None else await run_sync(_rehash_prefix, path, offset)
        handle = await run_sync(_open_at, path, offset)
        chunk = _Chunk(
            handle=handle, digest=digest, chunk_hash=hashlib.sha256() if expected else None
        )
        keep = False
        try:
            await _receive(
                chunk,
                body,
                room=upload.length - offset,
                keep_partial=expected is None,
                idle_timeout_s=settings.upload_idle_timeout_s,
                total_timeout_s=settings.upload_request_timeout_s,
            )
            await run_sync(chunk.sync)
            if expected is not None:
                assert chunk.chunk_hash is not None
                if not secrets.compare_digest(chunk.chunk_hash.digest(), expected):
                    raise ChecksumMismatchError(
                        "The body does not match Upload-Checksum; it was discarded."
                    )
            new_offset = offset + chunk.written
            saved = await run_sync(
                lambda: _commit(
                    engine,
                    upload_id=upload_id,
                    old=offset,
                    new=new_offset,
                    digest=digest,
                    length=upload.length,
                )
            )
            keep = True
        finally:
            try:
                if not keep:
                    await run_sync(_discard, handle, offset)
            finally:
                handle.close()
    if saved.state == UploadState.ACTIVE:
        digests.put(upload_id, saved.offset, digest)
    return saved
