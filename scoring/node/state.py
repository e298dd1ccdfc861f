"""What a validator node keeps on disk between runs, in its state directory.

::

    <state_dir>/
      node.lock              held (flock) while a node runs: two nodes never share a state dir
      journal.sqlite3        signed reports and sync cursors
      downloads/             media being scored (emptied at start: a crash leaves no litter)
      duplicates-<model>-<sha12>.index   the near-duplicate index of accepted clips

The **journal** records every report before it is submitted: the lease, the verdict and
its signature. A node that crashed (or lost its connection) between signing and the
backend's answer submits the very same signed report again after a restart instead of
scoring the clip anew, so one validator never signs two different verdicts for one
lease. Entries are pruned once they are a week old (leases live minutes).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from scoring.node.errors import NodeStateError

__all__ = ["JOURNAL_RETENTION_S", "NodeState", "SignedReport"]

#: How long finished journal entries are kept (for people looking into a dispute).
JOURNAL_RETENTION_S: Final = 7 * 86_400
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS reports (
    lease_id     TEXT PRIMARY KEY,
    clip_id      TEXT NOT NULL,
    signer       TEXT NOT NULL,
    deadline     INTEGER NOT NULL,
    scores_json  TEXT NOT NULL,
    signature    BLOB NOT NULL,
    signed_at    REAL NOT NULL,
    finished_at  REAL,
    result       TEXT
);
CREATE TABLE IF NOT EXISTS cursors (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class SignedReport:
    """A report as it was signed (the verdict's JSON is kept byte for byte)."""

    lease_id: str
    clip_id: str
    signer: str
    deadline: int
    scores_json: str
    signature: bytes
    signed_at: float
    finished_at: float | None = None
    result: str | None = None


class NodeState:
    """The state directory of one running node: lock, journal, downloads, index path.

    Raises :class:`NodeStateError` when the directory cannot be created or another node
    holds it. Thread-safe (the journal is used from the loop and the fetch threads).
    """

    def __init__(self, directory: Path) -> None:
        """Open (creating) ``directory`` and take its lock."""
        self.directory = directory
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._lock_fd = os.open(directory / "node.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise NodeStateError(
                f"cannot use the state directory {directory}: {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise NodeStateError(
                f"another validator node is using the state directory {directory}; "
                "give each node its own (SHOTBANK_VALIDATOR_STATE_DIR)"
            ) from None
        self._mutex = threading.Lock()
        try:
            self._db = sqlite3.connect(
                directory / "journal.sqlite3", check_same_thread=False, isolation_level=None
            )
            self._db.executescript(_SCHEMA)
            self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            os.close(self._lock_fd)
            raise NodeStateError(f"cannot open the journal in {directory}: {exc}") from exc
        self.downloads = directory / "downloads"
        # Downloads of a previous run belong to leases this run does not hold.
        shutil.rmtree(self.downloads, ignore_errors=True)
        self.downloads.mkdir(mode=0o700)
        self.prune()

    # --- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the journal and release the lock."""
        with self._mutex:
            self._db.close()
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- the journal ---------------------------------------------------------------------

    def record_signed(self, report: SignedReport) -> None:
        """Write ``report`` down before it is submitted (replacing nothing: first wins)."""
        with self._mutex:
            self._db.execute(
                "INSERT OR IGNORE INTO reports (lease_id, clip_id, signer, deadline, scores_json,"
                " signature, signed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    report.lease_id,
                    report.clip_id,
                    report.signer,
                    report.deadline,
                    report.scores_json,
                    report.signature,
                    report.signed_at,
                ),
            )

    def signed_report(self, lease_id: str, signer: str) -> SignedReport | None:
        """The report signed for ``lease_id`` by ``signer``, finished or not."""
        with self._mutex:
            row = self._db.execute(
                "SELECT lease_id, clip_id, signer, deadline, scores_json, signature, signed_at,"
                " finished_at, result FROM reports WHERE lease_id = ? AND signer = ?",
                (lease_id, signer),
            ).fetchone()
        if row is None:
            return None
        return SignedReport(
            lease_id=row[0],
            clip_id=row[1],
            signer=row[2],
            deadline=int(row[3]),
            scores_json=row[4],
            signature=bytes(row[5]),
            signed_at=float(row[6]),
            finished_at=row[7],
            result=row[8],
        )

    def mark_finished(self, lease_id: str, result: str) -> None:
        """Record how the submission of ``lease_id``'s report ended (``accepted``, a code)."""
        with self._mutex:
            self._db.execute(
                "UPDATE reports SET finished_at = ?, result = ? WHERE lease_id = ?",
                (time.time(), result[:64], lease_id),
            )

    def prune(self, *, older_than_s: float = JOURNAL_RETENTION_S) -> int:
        """Delete entries signed more than ``older_than_s`` ago; how many went."""
        with self._mutex:
            cursor = self._db.execute(
                "DELETE FROM reports WHERE signed_at < ?", (time.time() - older_than_s,)
            )
        return int(cursor.rowcount)

    # --- cursors -------------------------------------------------------------------------

    def cursor(self, name: str) -> str | None:
        """A saved position (e.g. of the embeddings sync)."""
        with self._mutex:
            row = self._db.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_cursor(self, name: str, value: str | None) -> None:
        """Save (or, with ``None``, forget) a position."""
        with self._mutex:
            if value is None:
                self._db.execute("DELETE FROM cursors WHERE name = ?", (name,))
            else:
                self._db.execute(
                    "INSERT INTO cursors (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (name, value),
                )

    # --- files ---------------------------------------------------------------------------

    def index_path(self, model: str, weights_sha256: str) -> Path:
        """Where the duplicate index of embeddings under one model lives."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)[:64]
        return self.directory / f"duplicates-{safe}-{weights_sha256[:12]}.index"
