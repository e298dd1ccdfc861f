"""The transaction outbox's store on the backend database (SQLite or PostgreSQL).

:class:`SqlOutboxStore` implements ``shotbank.chain.outbox.OutboxStore`` on the
``tx_outbox`` and ``tx_attempt`` tables (``backend.models.rewardchain``) with the
semantics of the SDK's ``SqliteOutboxStore``: one row per ``(chain_id, sender, key)``,
nonces reserved as ``max(chain nonce, highest stored nonce + 1)``, and the reservation,
the signing callback and the insert in one transaction, so two processes (or threads)
enqueueing for one sender never get the same nonce and a key never gets two transactions.

How the reservation is made atomic:

* PostgreSQL: the transaction first takes an advisory lock for ``(chain_id, sender)``
  (``pg_advisory_xact_lock``, released at commit). Under READ COMMITTED every statement
  after the lock sees what the previous holder committed.
* SQLite: every write transaction is begun ``BEGIN IMMEDIATE``, which takes the database's
  write lock before the key and the highest nonce are read.

The unique constraints on ``(chain_id, sender, key)`` and ``(chain_id, sender, nonce)``
back both up.

:func:`operator_outbox` builds the backend's :class:`~shotbank.chain.outbox.Outbox` for
the operator account (``SHOTBANK_OPERATOR_KEY``) over this store.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Final

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from web3 import Web3

from backend.core.config import Settings
from backend.errors import ConfigurationError
from backend.models.rewardchain import MAX_ERROR_CHARS, OutboxAttempt, OutboxTransaction
from shotbank.chain.outbox import (
    FINAL_STATUSES,
    MAX_WATCHED,
    AttemptKind,
    NewTx,
    Outbox,
    OutboxPolicy,
    OutboxTx,
    TxAttempt,
    TxStatus,
)

__all__ = ["SqlOutboxStore", "operator_account", "operator_outbox"]

#: First half of the PostgreSQL advisory lock keys of nonce reservations (the second
#: half is derived from chain id and sender), distinct from the indexer's lock.
_PG_OUTBOX_LOCK_CLASS: Final = 0x5B07_0B0C
_FINAL: Final = tuple(status.value for status in FINAL_STATUSES)


def _lock_key(chain_id: int, sender: str) -> int:
    """A signed 32-bit key for ``(chain_id, sender)`` (stable across processes)."""
    digest = hashlib.sha256(f"{chain_id}:{sender.lower()}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def _error(message: str | None) -> str | None:
    # A node's answer can be arbitrarily long; the start says what went wrong.
    return None if message is None else message[:MAX_ERROR_CHARS]


class SqlOutboxStore:
    """``OutboxStore`` over SQLAlchemy; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        """Keep the outbox in the database behind ``engine`` (tables from migrations)."""
        self.engine = engine

    @contextmanager
    def _write(
        self, *, chain_id: int | None = None, sender: str | None = None
    ) -> Iterator[Session]:
        """A write transaction; with ``chain_id`` and ``sender``, holding that sender's lock."""
        with Session(self.engine, expire_on_commit=False) as session:
            connection = session.connection()
            dialect = connection.dialect.name
            if dialect == "sqlite":
                driver: object = connection.connection.dbapi_connection
                # pysqlite begins lazily, before the first write; reads before it could be
                # outdated by another writer. IMMEDIATE takes the write lock now.
                if isinstance(driver, sqlite3.Connection) and not driver.in_transaction:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
            elif dialect == "postgresql" and chain_id is not None and sender is not None:
                connection.execute(
                    select(
                        func.pg_advisory_xact_lock(
                            _PG_OUTBOX_LOCK_CLASS, _lock_key(chain_id, sender)
                        )
                    )
                )
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    # --- reading ---------------------------------------------------------------------

    @staticmethod
    def _attempts(session: Session, tx_ids: Sequence[int]) -> dict[int, list[TxAttempt]]:
        found: dict[int, list[TxAttempt]] = {tx_id: [] for tx_id in tx_ids}
        if not tx_ids:
            return found
        rows = session.scalars(
            select(OutboxAttempt)
            .where(col(OutboxAttempt.tx_id).in_(tx_ids))
            .order_by(col(OutboxAttempt.tx_id), col(OutboxAttempt.id))
        ).all()
        for row in rows:
            found[row.tx_id].append(
                TxAttempt(
                    tx_hash=row.tx_hash,
                    raw=row.raw,
                    max_fee_per_gas=row.max_fee_per_gas,
                    max_priority_fee_per_gas=row.max_priority_fee_per_gas,
                    kind=AttemptKind(row.kind),
                    created_at=row.created_at,
                )
            )
        return found

    @classmethod
    def _load(cls, session: Session, rows: Sequence[OutboxTransaction]) -> list[OutboxTx]:
        ids = [row.id for row in rows if row.id is not None]
        attempts = cls._attempts(session, ids)
        loaded = []
        for row in rows:
            assert row.id is not None
            loaded.append(
                OutboxTx(
                    id=row.id,
                    key=row.key,
                    chain_id=row.chain_id,
                    sender=row.sender,
                    nonce=row.nonce,
                    to=row.to_address,
                    data=row.data,
                    value=row.value,
                    gas=row.gas,
                    status=TxStatus(row.status),
                    created_at=row.created_at,
                    updated_at=row.updated_at,
                    last_sent_at=row.last_sent_at,
                    mined_hash=row.mined_hash,
                    block_number=row.block_number,
                    block_hash=row.block_hash,
                    error=row.error,
                    attempts=tuple(attempts[row.id]),
                )
            )
        return loaded

    @staticmethod
    def _by_key(session: Session, chain_id: int, sender: str, key: str) -> OutboxTransaction | None:
        return session.scalars(
            select(OutboxTransaction).where(
                col(OutboxTransaction.chain_id) == chain_id,
                col(OutboxTransaction.sender) == sender,
                col(OutboxTransaction.key) == key,
            )
        ).first()

    def get(self, tx_id: int) -> OutboxTx | None:
        """See ``OutboxStore.get``."""
        with Session(self.engine) as session:
            row = session.get(OutboxTransaction, tx_id)
            return None if row is None else self._load(session, [row])[0]

    def get_by_key(self, *, chain_id: int, sender: str, key: str) -> OutboxTx | None:
        """See ``OutboxStore.get_by_key``."""
        with Session(self.engine) as session:
            row = self._by_key(session, chain_id, sender, key)
            return None if row is None else self._load(session, [row])[0]

    def open_transactions(self, *, chain_id: int, sender: str) -> list[OutboxTx]:
        """See ``OutboxStore.open_transactions``."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(OutboxTransaction)
                .where(
                    col(OutboxTransaction.chain_id) == chain_id,
                    col(OutboxTransaction.sender) == sender,
                    col(OutboxTransaction.status).not_in(_FINAL),
                )
                .order_by(col(OutboxTransaction.nonce))
            ).all()
            return self._load(session, rows)

    def recently_final(
        self, *, chain_id: int, sender: str, since_block: int, limit: int = MAX_WATCHED
    ) -> list[OutboxTx]:
        """See ``OutboxStore.recently_final``.

        ``ix_tx_outbox_chain_id_sender_status_nonce`` narrows the scan to the sender's
        final rows; the block condition is checked on those.
        """
        with Session(self.engine) as session:
            rows = session.scalars(
                select(OutboxTransaction)
                .where(
                    col(OutboxTransaction.chain_id) == chain_id,
                    col(OutboxTransaction.sender) == sender,
                    col(OutboxTransaction.status).in_(_FINAL),
                    col(OutboxTransaction.block_number) >= since_block,
                )
                .order_by(col(OutboxTransaction.nonce))
                .limit(limit)
            ).all()
            return self._load(session, rows)

    # --- writing ---------------------------------------------------------------------

    def create(
        self,
        *,
        chain_id: int,
        sender: str,
        key: str,
        chain_nonce: int,
        build: Callable[[int], NewTx],
        now: float,
    ) -> tuple[OutboxTx, bool]:
        """See ``OutboxStore.create``: reserve, build and insert under the sender's lock."""
        with self._write(chain_id=chain_id, sender=sender) as session:
            existing = self._by_key(session, chain_id, sender, key)
            if existing is not None:
                return self._load(session, [existing])[0], False
            highest = session.scalar(
                select(func.max(col(OutboxTransaction.nonce))).where(
                    col(OutboxTransaction.chain_id) == chain_id,
                    col(OutboxTransaction.sender) == sender,
                )
            )
            nonce = max(chain_nonce, -1 if highest is None else int(highest) + 1)
            new = build(nonce)
            row = OutboxTransaction(
                chain_id=chain_id,
                sender=sender,
                key=key,
                nonce=nonce,
                to_address=new.to,
                data=new.data,
                value=new.value,
                gas=new.gas,
                status=TxStatus.PENDING.value,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            assert row.id is not None
            tx_id = row.id
            session.add(self._attempt_row(tx_id, new.attempt))
        created = self.get(tx_id)
        assert created is not None
        return created, True

    @staticmethod
    def _attempt_row(tx_id: int, attempt: TxAttempt) -> OutboxAttempt:
        return OutboxAttempt(
            tx_id=tx_id,
            tx_hash=attempt.tx_hash,
            raw=attempt.raw,
            max_fee_per_gas=attempt.max_fee_per_gas,
            max_priority_fee_per_gas=attempt.max_priority_fee_per_gas,
            kind=attempt.kind.value,
            created_at=attempt.created_at,
        )

    def add_attempt(self, tx_id: int, attempt: TxAttempt, *, now: float) -> None:
        """See ``OutboxStore.add_attempt``."""
        with self._write() as session:
            session.add(self._attempt_row(tx_id, attempt))
            session.execute(
                update(OutboxTransaction)
                .where(col(OutboxTransaction.id) == tx_id)
                .values(updated_at=now)
            )

    def update(
        self,
        tx_id: int,
        *,
        now: float,
        status: TxStatus | None = None,
        last_sent_at: float | None = None,
        mined: tuple[str, int, str] | None = None,
        clear_mined: bool = False,
        error: str | None = None,
    ) -> None:
        """See ``OutboxStore.update`` (``error`` is always written: ``None`` clears it)."""
        values: dict[str, object] = {"updated_at": now, "error": _error(error)}
        if status is not None:
            values["status"] = status.value
        if last_sent_at is not None:
            values["last_sent_at"] = last_sent_at
        if mined is not None:
            values["mined_hash"], values["block_number"], values["block_hash"] = mined
        elif clear_mined:
            values.update(mined_hash=None, block_number=None, block_hash=None)
        with self._write() as session:
            session.execute(
                update(OutboxTransaction).where(col(OutboxTransaction.id) == tx_id).values(**values)
            )


def operator_account(settings: Settings) -> LocalAccount:
    """The operator account of ``SHOTBANK_OPERATOR_KEY``.

    Raises :class:`~backend.errors.ConfigurationError` when the key is not set.
    """
    if settings.operator_key is None:
        raise ConfigurationError(
            "SHOTBANK_OPERATOR_KEY is not set: the backend has no account to send "
            "root submissions and emission draws with."
        )
    account: LocalAccount = Account.from_key(settings.operator_key.get_secret_value())
    return account


def operator_outbox(
    w3: Web3, engine: Engine, settings: Settings, *, policy: OutboxPolicy | None = None
) -> Outbox:
    """The operator's :class:`~shotbank.chain.outbox.Outbox` on ``w3`` over ``engine``.

    Transactions are final after ``SHOTBANK_OUTBOX_CONFIRMATIONS`` blocks unless
    ``policy`` says otherwise. Raises :class:`~backend.errors.ConfigurationError` without
    an operator key. Connects to the node (the outbox reads its chain id).
    """
    return Outbox(
        w3,
        operator_account(settings),
        SqlOutboxStore(engine),
        policy=policy or OutboxPolicy(confirmations=settings.outbox_confirmations),
    )
