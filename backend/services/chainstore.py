"""The chain indexer's store in the backend database (SQLite or PostgreSQL).

:class:`SqlIndexerStore` implements ``shotbank.chain.indexer.IndexerStore`` on the
``chain_checkpoint`` and ``chain_block`` tables. Inside :meth:`SqlIndexerStore.transaction`
the indexer's event handler writes through :attr:`SqlIndexerStore.session`, so derived
rows, block hashes and the checkpoint commit (or roll back) together.

Several backend processes may run the indexer on one database (replicas on PostgreSQL).
Each transaction therefore first takes the database's write lock (PostgreSQL: an
advisory lock for the transaction; SQLite: ``BEGIN IMMEDIATE``) and then checks that the
checkpoints this store last read are still the stored ones. If another process moved a
checkpoint meanwhile, :class:`CheckpointMovedError` aborts the transaction before
anything is applied twice; the next step starts from the new checkpoint.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Final

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from backend.models.stakes import ChainBlock, ChainCheckpoint
from shotbank.chain.errors import IndexerError
from shotbank.chain.indexer import Checkpoint

__all__ = ["CheckpointMovedError", "SqlIndexerStore"]

#: Key of the PostgreSQL advisory lock that serialises indexer transactions.
_PG_INDEXER_LOCK: Final = 0x5B07_C4A1


class CheckpointMovedError(IndexerError):
    """Another process advanced or rolled back the checkpoint since this one read it."""


class SqlIndexerStore:
    """``IndexerStore`` over SQLAlchemy; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        """Store checkpoints in the database behind ``engine`` (tables from migrations)."""
        self.engine = engine
        self._lock = threading.RLock()
        self._session: Session | None = None
        # name -> the checkpoint this store last read or wrote (None: none existed).
        self._seen: dict[str, Checkpoint | None] = {}

    @property
    def session(self) -> Session:
        """The session of the open :meth:`transaction`, for the event handler's writes."""
        if self._session is None:
            raise IndexerError("the indexer store has no open transaction")
        return self._session

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        if self._session is not None:
            yield self._session
            return
        with Session(self.engine) as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One database transaction; commits on success, rolls back on any exception."""
        with self._lock:
            if self._session is not None:
                raise IndexerError("indexer store transactions do not nest")
            with Session(self.engine) as session:
                self._session = session
                try:
                    self._lock_for_writing(session)
                    self._check_unmoved(session)
                    yield
                    session.commit()
                except BaseException:
                    session.rollback()
                    # What we believed may be stale now: read it afresh next time.
                    self._seen.clear()
                    raise
                finally:
                    self._session = None

    @staticmethod
    def _lock_for_writing(session: Session) -> None:
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(_PG_INDEXER_LOCK)))
        elif connection.dialect.name == "sqlite":
            driver: object = connection.connection.dbapi_connection
            # pysqlite begins a transaction lazily, before the first write; taking the
            # write lock now makes the checks below and the writes one atomic unit.
            if isinstance(driver, sqlite3.Connection) and not driver.in_transaction:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

    def _check_unmoved(self, session: Session) -> None:
        for name, believed in self._seen.items():
            stored = self._read_checkpoint(session, name)
            if stored != believed:
                raise CheckpointMovedError(
                    f"indexer {name!r}: checkpoint moved from {believed} to {stored} "
                    "(another process indexes the same chain)"
                )

    @staticmethod
    def _read_checkpoint(session: Session, name: str) -> Checkpoint | None:
        row = session.get(ChainCheckpoint, name, populate_existing=True)
        if row is None:
            return None
        return Checkpoint(block_number=row.block_number, block_hash=row.block_hash)

    def checkpoint(self, name: str) -> Checkpoint | None:
        """See ``IndexerStore.checkpoint``; remembered for the next transaction's check."""
        with self._reading() as session:
            found = self._read_checkpoint(session, name)
        if self._session is None:
            self._seen[name] = found
        return found

    def set_checkpoint(self, name: str, checkpoint: Checkpoint) -> None:
        """See ``IndexerStore.set_checkpoint`` (inside :meth:`transaction`)."""
        session = self.session
        row = session.get(ChainCheckpoint, name)
        if row is None:
            row = ChainCheckpoint(name=name, block_number=checkpoint.block_number)
        row.block_number = checkpoint.block_number
        row.block_hash = checkpoint.block_hash
        session.add(row)
        session.flush()
        self._seen[name] = checkpoint

    def save_block_hashes(self, name: str, hashes: Mapping[int, str]) -> None:
        """See ``IndexerStore.save_block_hashes`` (inside :meth:`transaction`)."""
        session = self.session
        for number, block_hash in hashes.items():
            session.merge(ChainBlock(name=name, block_number=number, block_hash=block_hash))
        session.flush()

    def block_hashes(self, name: str) -> dict[int, str]:
        """See ``IndexerStore.block_hashes``."""
        with self._reading() as session:
            rows = session.execute(
                select(col(ChainBlock.block_number), col(ChainBlock.block_hash)).where(
                    col(ChainBlock.name) == name
                )
            ).all()
        return {int(number): str(block_hash) for number, block_hash in rows}

    def forget_blocks(
        self, name: str, *, above: int | None = None, below: int | None = None
    ) -> None:
        """See ``IndexerStore.forget_blocks`` (inside :meth:`transaction`)."""
        session = self.session
        if above is not None:
            session.execute(
                delete(ChainBlock).where(
                    col(ChainBlock.name) == name, col(ChainBlock.block_number) > above
                )
            )
        if below is not None:
            session.execute(
                delete(ChainBlock).where(
                    col(ChainBlock.name) == name, col(ChainBlock.block_number) < below
                )
            )

    def forget_indexer(self, name: str) -> None:
        """Drop the checkpoint and hashes of indexer ``name`` (inside :meth:`transaction`):
        it starts again from its start block."""
        session = self.session
        session.execute(delete(ChainBlock).where(col(ChainBlock.name) == name))
        session.execute(delete(ChainCheckpoint).where(col(ChainCheckpoint.name) == name))
        self._seen[name] = None
