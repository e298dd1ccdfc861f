"""The node's signing record for epoch roots: its slashing protection.

Two signatures by one validator over different ``(root, cumulativeTotal)`` for one epoch
are *equivocation*: anyone holding both can cancel the pending root and take the
validator's whole bonded stake through ``RewardDistributor.challenge``. A node must
therefore never sign a second, different root for an epoch it signed before, whatever
happened in between: a crash, a restart, a backend that changed its mind, a second node
started by mistake on the same state directory.

The record lives in ``<state dir>/epoch-signatures.sqlite``, one row per
``(chain_id, distributor, epoch)`` holding the root and cumulative total that were (or
are about to be) signed. :meth:`SigningRecord.record_or_refuse` writes the row and
commits it durably -- the transaction is ``BEGIN IMMEDIATE`` (the database's write lock,
so two processes decide one after the other), the journal is WAL with
``synchronous=FULL`` (the commit is fsync'd) -- *before* the caller produces the
signature. Recording first and signing second means a crash in between leaves a record
without a signature, which costs nothing; the opposite order could leave a signature the
record does not know about. Asking again for the same root and total succeeds (a
re-send after a lost answer); asking for anything else raises
:class:`~scoring.node.errors.ConflictingRootError` and nothing is written.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from eth_utils.address import is_address, to_checksum_address

from scoring.node.errors import ConflictingRootError, NodeStateError

__all__ = ["SIGNING_RECORD_FILE", "SignedEpoch", "SigningRecord"]

#: The record's file name inside the node's state directory.
SIGNING_RECORD_FILE: Final = "epoch-signatures.sqlite"
#: Schema version kept in ``PRAGMA user_version``; a newer file is not touched.
_SCHEMA_VERSION: Final = 1
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS epoch_signatures (
    chain_id          INTEGER NOT NULL,
    distributor       TEXT    NOT NULL,
    epoch             INTEGER NOT NULL,
    root              TEXT    NOT NULL,
    cumulative_total  TEXT    NOT NULL,
    signed_at         REAL    NOT NULL,
    PRIMARY KEY (chain_id, distributor, epoch)
) WITHOUT ROWID
"""
_ROOT: Final = re.compile(r"^0x[0-9a-f]{64}$")
_MAX_UINT64: Final = 2**64 - 1
_MAX_UINT256: Final = 2**256 - 1


@dataclass(frozen=True, slots=True)
class SignedEpoch:
    """One row of the record: what this node signed (or was about to sign) for an epoch.

    ``cumulative_total`` is kept as a decimal string in the file (it does not fit
    SQLite's 64-bit integers) and handed out as an ``int``.
    """

    chain_id: int
    distributor: str
    epoch: int
    root: str
    cumulative_total: int
    signed_at: float

    def same_root(self, root: str, cumulative_total: int) -> bool:
        """Whether signing ``(root, cumulative_total)`` repeats this row (not equivocation)."""
        return self.root == root.lower() and self.cumulative_total == cumulative_total


def _key(chain_id: int, distributor: str, epoch: int) -> tuple[int, str, int]:
    if not 1 <= chain_id <= _MAX_UINT64:
        raise ValueError(f"chain id {chain_id} is out of range")
    if not 0 <= epoch <= _MAX_UINT64:
        raise ValueError(f"epoch {epoch} is out of range")
    if not is_address(distributor):
        raise ValueError(f"not an address: {distributor!r}")
    return chain_id, str(to_checksum_address(distributor)), epoch


class SigningRecord:
    """The epoch-root signing record in one SQLite file (see the module docstring).

    Safe to share between threads; several processes may open the same file and never
    both record different roots for one epoch. Raises
    :class:`~scoring.node.errors.NodeStateError` when the file cannot be used.
    """

    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0) -> None:
        """Open (creating) the record at ``path``; a writer waits ``busy_timeout_s`` for
        another process's transaction before giving up."""
        self.path = path
        created = not path.exists()
        self._mutex = threading.Lock()
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # isolation_level=None: transactions are begun explicitly (BEGIN IMMEDIATE).
            self._db = sqlite3.connect(
                path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise NodeStateError(f"cannot open the signing record {path}: {exc}") from exc
        try:
            _set_wal(self._db, busy_timeout_s)
            # FULL: every commit is fsync'd before it returns, so a recorded root survives
            # a power cut that follows the signature.
            self._db.execute("PRAGMA synchronous=FULL")
            if self._schema_version() != _SCHEMA_VERSION:
                # Only a new file is written to here; an existing one is opened without
                # waiting for another process's write lock.
                self._db.execute("BEGIN IMMEDIATE")
                if self._schema_version() < _SCHEMA_VERSION:
                    self._db.execute(_SCHEMA)
                    self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._db.close()
            raise NodeStateError(f"cannot use the signing record {path}: {exc}") from exc
        except NodeStateError:
            self._db.close()
            raise
        if created:
            _fsync_directory(path.parent)

    def _schema_version(self) -> int:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > _SCHEMA_VERSION:
            raise NodeStateError(
                f"the signing record {self.path} was written by a newer node (schema "
                f"{version}); upgrade this node rather than signing without it"
            )
        return version

    @classmethod
    def in_state_dir(cls, directory: Path) -> Self:
        """The record of the node whose state directory is ``directory``."""
        return cls(directory / SIGNING_RECORD_FILE)

    # --- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the file."""
        with self._mutex:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- the record ----------------------------------------------------------------------

    def recorded(self, chain_id: int, distributor: str, epoch: int) -> SignedEpoch | None:
        """What was recorded for ``epoch`` of ``distributor`` on ``chain_id``, if anything."""
        key = _key(chain_id, distributor, epoch)
        try:
            with self._mutex:
                row = self._db.execute(
                    "SELECT root, cumulative_total, signed_at FROM epoch_signatures"
                    " WHERE chain_id = ? AND distributor = ? AND epoch = ?",
                    key,
                ).fetchone()
        except sqlite3.Error as exc:
            raise NodeStateError(f"cannot read the signing record {self.path}: {exc}") from exc
        return None if row is None else _row(key, row)

    def record_or_refuse(
        self, chain_id: int, distributor: str, epoch: int, root: str, cumulative_total: int
    ) -> SignedEpoch:
        """Record that ``(root, cumulative_total)`` is signed for ``epoch``, durably, or refuse.

        Call it *before* signing. Returns the row (the earlier one when the same root
        and total were recorded before: signing them again is allowed). Raises
        :class:`ConflictingRootError` when a different root or total is recorded for the
        epoch, and :class:`NodeStateError` when the record cannot be written; in both
        cases the caller must not sign.
        """
        key = _key(chain_id, distributor, epoch)
        root = root.lower()
        if not _ROOT.match(root):
            raise ValueError(f"not a 32-byte hex root: {root!r}")
        if not 0 <= cumulative_total <= _MAX_UINT256:
            raise ValueError(f"cumulative total {cumulative_total} is out of range")
        try:
            with self._mutex:
                # The write lock is taken before reading, so the read and the insert are
                # one decision: another process waits here until this one committed.
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    row = self._db.execute(
                        "SELECT root, cumulative_total, signed_at FROM epoch_signatures"
                        " WHERE chain_id = ? AND distributor = ? AND epoch = ?",
                        key,
                    ).fetchone()
                    if row is None:
                        signed_at = time.time()
                        self._db.execute(
                            "INSERT INTO epoch_signatures (chain_id, distributor, epoch, root,"
                            " cumulative_total, signed_at) VALUES (?, ?, ?, ?, ?, ?)",
                            (*key, root, str(cumulative_total), signed_at),
                        )
                        self._db.execute("COMMIT")
                        return SignedEpoch(*key, root, cumulative_total, signed_at)
                    self._db.execute("ROLLBACK")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise NodeStateError(
                f"cannot write the signing record {self.path}: {exc}; not signing"
            ) from exc
        existing = _row(key, row)
        if existing.same_root(root, cumulative_total):
            return existing
        raise ConflictingRootError(
            f"epoch {epoch} (distributor {key[1]}, chain {chain_id}): this node signed root "
            f"{existing.root} with cumulative total {existing.cumulative_total} and refuses "
            f"to sign root {root} with total {cumulative_total}: two different roots for "
            "one epoch are slashable"
        )


def _set_wal(db: sqlite3.Connection, busy_timeout_s: float) -> None:
    """Switch ``db`` to WAL, waiting up to ``busy_timeout_s`` for other processes.

    The switch needs the file to itself for an instant, and SQLite answers "database is
    locked" at once (without its busy handler) while another process is creating or
    switching the same file, so it is retried here.
    """
    deadline = time.monotonic() + busy_timeout_s
    delay = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _row(key: tuple[int, str, int], row: tuple[str, str, float]) -> SignedEpoch:
    return SignedEpoch(key[0], key[1], key[2], str(row[0]), int(row[1]), float(row[2]))


def _fsync_directory(directory: Path) -> None:
    """Make the new file's directory entry durable (SQLite syncs the file, not its name)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
