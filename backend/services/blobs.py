"""Reading blobs by CID for the gateway, with every byte checked against its CID.

How the bytes are verified
--------------------------
A CID is a hash of the content, so a gateway that serves bytes which no longer match it
(bit rot, a tampered file) would hand out silent corruption under a name that promises
the opposite. Two paths, both in bounded chunks (the file is never held in memory):

* **Whole blob** (:func:`open_full`): the bytes are re-hashed while streamed, with
  ingest's :class:`~ingest.cid.StreamingDigest`. One chunk is always held back: the last
  chunk is released only after the digest of everything has been compared with the CID
  (and the byte count with the announced size). On a mismatch the stream raises
  :class:`~backend.errors.BlobDamagedError` instead of yielding that last chunk, so the
  client receives fewer bytes than ``Content-Length`` promised and the connection is
  closed: a truncated transfer every HTTP client reports as an error, never a clean
  response with wrong bytes. The blob is logged and quarantined.

* **A range** (:func:`open_part`): re-hashing the whole blob for every ``Range`` request
  would make seeking in a video cost a full read. The blob store's own verification is
  used instead: :class:`~ingest.blobstore.LocalBlobStore` keeps, beside each blob, the
  SHA-256 of each 256 KiB leaf of its DAG; that index is authenticated against the CID
  (the DAG above the leaves is recomputed) when first loaded and cached; a missing or
  damaged index is rebuilt by re-hashing the whole blob once. Every leaf a range touches
  is then read whole and checked against it before any of its bytes are handed out.
  (A Kubo node verifies blocks itself.) The first chunk is read before the response
  starts, so damage in the first leaf is answered with a clean 503 ``blob_damaged``;
  damage further in aborts the stream as above.

Quarantine
----------
A damaged blob is logged at ERROR and recorded in the :class:`Quarantine`: a row in
the ``blob_quarantine`` table, so every worker process and every restart refuses it with
``blob_damaged`` without reading it again. The file is left in place for inspection and
repair; an operator lists and releases records with ``python -m backend.admin
quarantine`` (a release takes effect at once: every request looks the CID up, one
primary-key read).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend.errors import (
    BlobDamagedError,
    BlobNotFoundError,
    DependencyUnavailableError,
    InvalidCidError,
)
from backend.models.blobs import BlobQuarantine
from ingest import errors as ingest_errors
from ingest.blobstore import BlobStore
from ingest.cid import StreamingDigest, normalize_cid

logger = logging.getLogger(__name__)

#: Bytes read from the store per chunk of a whole-blob response.
READ_CHUNK: Final = 256 * 1024


#: Longest reason stored with a quarantine record.
MAX_REASON_CHARS: Final = 512


class Quarantine:
    """Damaged blobs, recorded in the database (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, cid: str, reason: str) -> None:
        """Record ``cid`` (canonical form) as damaged; a second record of it is a no-op."""
        record = BlobQuarantine(
            cid=cid, reason=reason[:MAX_REASON_CHARS], detected_at=datetime.now(UTC)
        )
        with Session(self._engine) as db:
            db.add(record)
            try:
                db.commit()
            except IntegrityError:
                db.rollback()  # another request or process recorded it first

    def __contains__(self, cid: object) -> bool:
        if not isinstance(cid, str):
            return False
        with Session(self._engine) as db:
            return db.get(BlobQuarantine, cid) is not None

    def records(self) -> list[BlobQuarantine]:
        """Every quarantine record, oldest first."""
        with Session(self._engine) as db:
            return list(
                db.exec(select(BlobQuarantine).order_by(col(BlobQuarantine.detected_at))).all()
            )

    def release(self, cid: str) -> bool:
        """Forget ``cid``'s record (after the file was repaired); False if there was none."""
        with Session(self._engine) as db:
            record = db.get(BlobQuarantine, cid)
            if record is None:
                return False
            db.delete(record)
            db.commit()
        return True


@dataclass(frozen=True, slots=True)
class BlobHead:
    """What a response about a blob needs before any byte is read."""

    cid: str
    """Canonical (base32) CID."""
    size: int


def _damaged(cid: str, quarantine: Quarantine, reason: str) -> BlobDamagedError:
    quarantine.add(cid, reason)
    logger.error("blob %s quarantined: %s", cid, reason)
    return BlobDamagedError(
        f"The stored copy of {cid} is damaged and cannot be served; it has been quarantined."
    )


def head(store: BlobStore, quarantine: Quarantine, *, cid: str) -> BlobHead:
    """The canonical CID and size of a stored, undamaged blob.

    Raises InvalidCidError, BlobNotFoundError, BlobDamagedError (quarantined) or
    DependencyUnavailableError (the store did not answer).
    """
    try:
        canonical = normalize_cid(cid)
    except ingest_errors.InvalidCidError as exc:
        raise InvalidCidError(f"{exc} Use a CIDv1 (raw or dag-pb, sha2-256).") from None
    if canonical in quarantine:
        raise BlobDamagedError(f"The stored copy of {canonical} is damaged (quarantined).")
    try:
        size = store.size(canonical)
    except ingest_errors.BlobNotFoundError:
        raise BlobNotFoundError(f"No blob {canonical} is stored here.") from None
    except ingest_errors.BlobStoreUnavailableError:
        raise DependencyUnavailableError("The blob store did not answer.") from None
    return BlobHead(cid=canonical, size=size)


def _primed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Pull the first chunk now, so that an early failure raises before a response starts."""
    first = next(chunks, None)
    if first is None:
        return iter(())

    def chained() -> Iterator[bytes]:
        yield first
        yield from chunks

    return chained()


def _verified_chunks(
    store: BlobStore, quarantine: Quarantine, blob: BlobHead, chunk_size: int
) -> Iterator[bytes]:
    digest = StreamingDigest()
    held: bytes | None = None
    with store.open(blob.cid) as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
            if digest.size > blob.size:
                raise _damaged(blob.cid, quarantine, f"longer than its {blob.size} bytes")
            if held is not None:
                yield held
            held = block
    result = digest.finalize()
    if result.size != blob.size or result.cid != blob.cid:
        raise _damaged(
            blob.cid, quarantine, f"{result.size} bytes now hash to {result.cid} (full read)"
        )
    if held is not None:
        yield held


def open_full(
    store: BlobStore, quarantine: Quarantine, blob: BlobHead, *, chunk_size: int = READ_CHUNK
) -> Iterator[bytes]:
    """The whole blob in chunks of at most ``chunk_size`` bytes, re-hashed on the way.

    The last chunk is yielded only once the whole stream matched the CID; otherwise
    BlobDamagedError is raised in its place (before the first chunk for a blob of one or
    two chunks).
    """
    try:
        return _primed(_verified_chunks(store, quarantine, blob, chunk_size))
    except ingest_errors.BlobNotFoundError:
        raise BlobNotFoundError(f"No blob {blob.cid} is stored here.") from None


def _range_chunks(
    store: BlobStore, quarantine: Quarantine, blob: BlobHead, start: int, end: int
) -> Iterator[bytes]:
    try:
        with store.open_range(blob.cid, start, end) as part:
            yield from part
    except ingest_errors.BlobIntegrityError as exc:
        raise _damaged(blob.cid, quarantine, str(exc)) from None


def open_part(
    store: BlobStore, quarantine: Quarantine, blob: BlobHead, *, start: int, end: int
) -> Iterator[bytes]:
    """Bytes ``[start, end)`` of the blob, each leaf verified by the store before it is
    handed out (see the module docstring). BlobDamagedError on a mismatch."""
    try:
        return _primed(_range_chunks(store, quarantine, blob, start, end))
    except ingest_errors.BlobNotFoundError:
        raise BlobNotFoundError(f"No blob {blob.cid} is stored here.") from None
