"""Outgoing transactions that survive crashes: an outbox with nonce management.

Every transaction goes through four steps, and the durable record always comes first:

1. :meth:`Outbox.enqueue` -- estimate gas, then, in *one* store transaction, reserve the
   next nonce, sign, and persist the intent together with the signed raw transaction
   and its hash. Nothing has been broadcast yet; a crash here loses nothing (the next
   :meth:`Outbox.process` broadcasts the stored bytes).
2. broadcast -- send the stored raw bytes. A crash or a timeout right after leaves an
   outcome we cannot know locally; that is fine, because
3. reconcile -- every :meth:`Outbox.process` looks up the receipts of *all* stored
   attempts of each open transaction and the sender's on-chain nonce. A receipt means
   mined; the nonce used with no receipt of ours means someone else used it (dropped).
   Recently final transactions are checked too, against reorgs deeper than the
   confirmations (below). Re-sending the same raw bytes is harmless: same hash, same nonce.
4. bump -- a transaction not mined after ``bump_after_s`` gets a replacement attempt
   with the *same nonce* and fees raised by ``bump_percent``; since all attempts share
   the nonce, exactly one of them can land.

A mined transaction becomes final after ``confirmations`` blocks; if its receipt
disappears first (a reorg), it goes back to ``sent`` and is re-broadcast.

Final is not forever: a reorg deeper than ``confirmations`` can still take a final
transaction's block away, and with it the sender's nonce, so a later transaction would
wait behind a nonce gap for good. For ``reorg_watch_blocks`` blocks after a final
transaction was mined, every :meth:`Outbox.process` checks that its recorded block is
still canonical (one store query, one ``eth_getBlockByNumber`` per distinct block). When
it is not and none of its attempts has a receipt any more, the transaction goes back to
``sent`` and step 2 re-broadcasts the same signed bytes, in nonce order with the rest:
same nonce, so exactly one attempt can land. When an attempt was mined again in another
block, it goes back to ``mined`` and is confirmed anew.

One :class:`Outbox` drives one sender account at a time; the store's nonce reservation
is atomic, so a second process that only *enqueues* is safe too.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from pydantic import BaseModel, ConfigDict, Field
from web3 import Web3
from web3.exceptions import (
    BlockNotFound,
    ContractLogicError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import TxParams, Wei

from shotbank.chain.abi import describe_revert
from shotbank.chain.errors import (
    NodeUnavailableError,
    OutboxError,
    TransactionError,
    TransactionRevertedError,
    TransactionTimeoutError,
)

__all__ = [
    "FINAL_STATUSES",
    "MAX_WATCHED",
    "AttemptKind",
    "NewTx",
    "Outbox",
    "OutboxPolicy",
    "OutboxStore",
    "OutboxTx",
    "SqliteOutboxStore",
    "TxAttempt",
    "TxIntent",
    "TxStatus",
]

_log = logging.getLogger(__name__)


class TxStatus(StrEnum):
    """Life cycle of an outbox transaction."""

    PENDING = "pending"
    """Persisted and signed; no node has accepted it yet."""
    SENT = "sent"
    """Accepted by a node (or outcome unknown) and not mined yet."""
    MINED = "mined"
    """A receipt exists, with fewer than ``confirmations`` blocks on top."""
    CONFIRMED = "confirmed"
    """Final: mined with status 1 and confirmed."""
    REVERTED = "reverted"
    """Final: mined with status 0 and confirmed."""
    CANCELLED = "cancelled"
    """Final: a cancellation (0-value self-transfer) took the nonce."""
    DROPPED = "dropped"
    """Final: the nonce was used by a transaction that is none of our attempts."""


#: Statuses after which the outbox no longer drives a transaction (it only re-opens one that
#: a reorg deeper than the confirmations took away; ``OutboxPolicy.reorg_watch_blocks``).
FINAL_STATUSES: Final = frozenset(
    {TxStatus.CONFIRMED, TxStatus.REVERTED, TxStatus.CANCELLED, TxStatus.DROPPED}
)

_FINAL_VALUES: Final = tuple(sorted(status.value for status in FINAL_STATUSES))

#: Most final transactions one :meth:`Outbox.process` checks against deep reorgs (the
#: lowest nonces first; the rest are checked once those are open again).
MAX_WATCHED: Final = 256


class AttemptKind(StrEnum):
    """Why an attempt (a signed transaction for the nonce) was made."""

    ORIGINAL = "original"
    BUMP = "bump"
    CANCEL = "cancel"


class TxIntent(BaseModel):
    """What the caller wants sent. ``key`` makes :meth:`Outbox.enqueue` idempotent."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(min_length=1, max_length=200)
    to: str | None = Field(default=None, max_length=42)
    data: str = Field(default="0x", pattern=r"^0x([0-9a-fA-F]{2})*$", max_length=2 * 128 * 1024)
    value: int = Field(default=0, ge=0, lt=2**256)
    gas: int | None = Field(default=None, gt=0, lt=2**63)


class TxAttempt(BaseModel):
    """One signed transaction for the outbox transaction's nonce."""

    model_config = ConfigDict(frozen=True)

    tx_hash: str
    raw: str
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    kind: AttemptKind
    created_at: float


class NewTx(BaseModel):
    """Content of a transaction once its nonce is known (built inside the store's lock)."""

    model_config = ConfigDict(frozen=True)

    to: str | None
    data: str
    value: int
    gas: int
    attempt: TxAttempt


class OutboxTx(BaseModel):
    """A transaction in the outbox, with all its attempts."""

    model_config = ConfigDict(frozen=True)

    id: int
    key: str
    chain_id: int
    sender: str
    nonce: int
    to: str | None
    data: str
    value: int
    gas: int
    status: TxStatus
    created_at: float
    updated_at: float
    last_sent_at: float | None = None
    mined_hash: str | None = None
    block_number: int | None = None
    block_hash: str | None = None
    error: str | None = None
    attempts: tuple[TxAttempt, ...] = ()

    @property
    def final(self) -> bool:
        """Whether the outbox is done with this transaction (barring a deep reorg)."""
        return self.status in FINAL_STATUSES

    @property
    def latest_attempt(self) -> TxAttempt:
        """The most recent attempt (the one to broadcast)."""
        return self.attempts[-1]


class OutboxStore(Protocol):
    """Persistence for the outbox. Implementations must make :meth:`create` atomic.

    The SDK ships :class:`SqliteOutboxStore`; the backend may implement the same
    protocol on its own database.
    """

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
        """Return the transaction for ``key``, creating it if absent (``True`` if created).

        Creating reserves ``max(chain_nonce, highest stored nonce + 1)`` for the sender,
        calls ``build(nonce)`` and stores its result, all in one atomic transaction.
        """
        ...

    def get(self, tx_id: int) -> OutboxTx | None:
        """The transaction with id ``tx_id``."""
        ...

    def get_by_key(self, *, chain_id: int, sender: str, key: str) -> OutboxTx | None:
        """The sender's transaction with idempotency key ``key``."""
        ...

    def open_transactions(self, *, chain_id: int, sender: str) -> list[OutboxTx]:
        """The sender's transactions that are not final, by ascending nonce."""
        ...

    def recently_final(
        self, *, chain_id: int, sender: str, since_block: int, limit: int = MAX_WATCHED
    ) -> list[OutboxTx]:
        """The sender's final transactions that were mined at block ``since_block`` or
        later (those with a recorded block), by ascending nonce, at most ``limit``."""
        ...

    def add_attempt(self, tx_id: int, attempt: TxAttempt, *, now: float) -> None:
        """Persist a new attempt (before it is broadcast)."""
        ...

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
        """Change status / sent time / mined info ``(hash, block number, block hash)``."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox_tx (
    id INTEGER PRIMARY KEY,
    chain_id INTEGER NOT NULL,
    sender TEXT NOT NULL,
    key TEXT NOT NULL,
    nonce INTEGER NOT NULL,
    to_address TEXT,
    data TEXT NOT NULL,
    value TEXT NOT NULL,
    gas INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_sent_at REAL,
    mined_hash TEXT,
    block_number INTEGER,
    block_hash TEXT,
    error TEXT,
    UNIQUE (chain_id, sender, key),
    UNIQUE (chain_id, sender, nonce)
);
CREATE INDEX IF NOT EXISTS outbox_tx_open ON outbox_tx (chain_id, sender, status, nonce);
CREATE INDEX IF NOT EXISTS outbox_tx_mined ON outbox_tx (chain_id, sender, block_number);
CREATE TABLE IF NOT EXISTS outbox_attempt (
    id INTEGER PRIMARY KEY,
    tx_id INTEGER NOT NULL REFERENCES outbox_tx (id),
    tx_hash TEXT NOT NULL UNIQUE,
    raw TEXT NOT NULL,
    max_fee_per_gas TEXT NOT NULL,
    max_priority_fee_per_gas TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_attempt_tx ON outbox_attempt (tx_id, id);
"""


class SqliteOutboxStore:
    """:class:`OutboxStore` on a SQLite file (WAL, ``synchronous=FULL``: a commit is on disk)."""

    def __init__(self, path: Path | str) -> None:
        """Open (and create if needed) the outbox tables in the database at ``path``."""
        self._db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._write() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front, so two processes reserving
        # nonces for one sender serialise instead of both reading the same maximum.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _load(self, row: sqlite3.Row | None) -> OutboxTx | None:
        if row is None:
            return None
        attempts = self._db.execute(
            "SELECT * FROM outbox_attempt WHERE tx_id = ? ORDER BY id", (row["id"],)
        ).fetchall()
        return OutboxTx(
            id=row["id"],
            key=row["key"],
            chain_id=row["chain_id"],
            sender=row["sender"],
            nonce=row["nonce"],
            to=row["to_address"],
            data=row["data"],
            value=int(row["value"]),
            gas=row["gas"],
            status=TxStatus(row["status"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            last_sent_at=row["last_sent_at"],
            mined_hash=row["mined_hash"],
            block_number=row["block_number"],
            block_hash=row["block_hash"],
            error=row["error"],
            attempts=tuple(
                TxAttempt(
                    tx_hash=a["tx_hash"],
                    raw=a["raw"],
                    max_fee_per_gas=int(a["max_fee_per_gas"]),
                    max_priority_fee_per_gas=int(a["max_priority_fee_per_gas"]),
                    kind=AttemptKind(a["kind"]),
                    created_at=a["created_at"],
                )
                for a in attempts
            ),
        )

    def _insert_attempt(self, tx_id: int, attempt: TxAttempt) -> None:
        self._db.execute(
            "INSERT INTO outbox_attempt (tx_id, tx_hash, raw, max_fee_per_gas,"
            " max_priority_fee_per_gas, kind, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                tx_id,
                attempt.tx_hash,
                attempt.raw,
                str(attempt.max_fee_per_gas),
                str(attempt.max_priority_fee_per_gas),
                attempt.kind.value,
                attempt.created_at,
            ),
        )

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
        """See :meth:`OutboxStore.create`."""
        with self._write() as db:
            existing = db.execute(
                "SELECT * FROM outbox_tx WHERE chain_id = ? AND sender = ? AND key = ?",
                (chain_id, sender, key),
            ).fetchone()
            if existing is not None:
                loaded = self._load(existing)
                assert loaded is not None
                return loaded, False
            (highest,) = db.execute(
                "SELECT MAX(nonce) FROM outbox_tx WHERE chain_id = ? AND sender = ?",
                (chain_id, sender),
            ).fetchone()
            nonce = max(chain_nonce, -1 if highest is None else highest + 1)
            new = build(nonce)
            cursor = db.execute(
                "INSERT INTO outbox_tx (chain_id, sender, key, nonce, to_address, data, value,"
                " gas, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    chain_id,
                    sender,
                    key,
                    nonce,
                    new.to,
                    new.data,
                    str(new.value),
                    new.gas,
                    TxStatus.PENDING.value,
                    now,
                    now,
                ),
            )
            tx_id = cursor.lastrowid
            assert tx_id is not None
            self._insert_attempt(tx_id, new.attempt)
        created = self.get(tx_id)
        assert created is not None
        return created, True

    def get(self, tx_id: int) -> OutboxTx | None:
        """See :meth:`OutboxStore.get`."""
        return self._load(
            self._db.execute("SELECT * FROM outbox_tx WHERE id = ?", (tx_id,)).fetchone()
        )

    def get_by_key(self, *, chain_id: int, sender: str, key: str) -> OutboxTx | None:
        """See :meth:`OutboxStore.get_by_key`."""
        return self._load(
            self._db.execute(
                "SELECT * FROM outbox_tx WHERE chain_id = ? AND sender = ? AND key = ?",
                (chain_id, sender, key),
            ).fetchone()
        )

    def open_transactions(self, *, chain_id: int, sender: str) -> list[OutboxTx]:
        """See :meth:`OutboxStore.open_transactions`."""
        rows = self._db.execute(
            "SELECT * FROM outbox_tx WHERE chain_id = ? AND sender = ? ORDER BY nonce",
            (chain_id, sender),
        ).fetchall()
        final = {s.value for s in FINAL_STATUSES}
        rows = [row for row in rows if row["status"] not in final]
        return [tx for tx in (self._load(row) for row in rows) if tx is not None]

    def recently_final(
        self, *, chain_id: int, sender: str, since_block: int, limit: int = MAX_WATCHED
    ) -> list[OutboxTx]:
        """See :meth:`OutboxStore.recently_final` (a range of index ``outbox_tx_mined``)."""
        # One placeholder per final status; a fifth status fails every call, loudly.
        rows = self._db.execute(
            "SELECT * FROM outbox_tx WHERE chain_id = ? AND sender = ? AND block_number >= ?"
            " AND status IN (?, ?, ?, ?) ORDER BY nonce LIMIT ?",
            (chain_id, sender, since_block, *_FINAL_VALUES, limit),
        ).fetchall()
        return [tx for tx in (self._load(row) for row in rows) if tx is not None]

    def add_attempt(self, tx_id: int, attempt: TxAttempt, *, now: float) -> None:
        """See :meth:`OutboxStore.add_attempt`."""
        with self._write() as db:
            self._insert_attempt(tx_id, attempt)
            db.execute("UPDATE outbox_tx SET updated_at = ? WHERE id = ?", (now, tx_id))

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
        """See :meth:`OutboxStore.update`."""
        sets = ["updated_at = ?", "error = ?"]
        params: list[Any] = [now, error]
        if status is not None:
            sets.append("status = ?")
            params.append(status.value)
        if last_sent_at is not None:
            sets.append("last_sent_at = ?")
            params.append(last_sent_at)
        if mined is not None:
            sets += ["mined_hash = ?", "block_number = ?", "block_hash = ?"]
            params += list(mined)
        elif clear_mined:
            sets += ["mined_hash = NULL", "block_number = NULL", "block_hash = NULL"]
        with self._write() as db:
            db.execute(f"UPDATE outbox_tx SET {', '.join(sets)} WHERE id = ?", (*params, tx_id))  # noqa: S608 - fixed column names


class OutboxPolicy(BaseModel):
    """Fees, gas, confirmations and bumping for an :class:`Outbox`."""

    model_config = ConfigDict(frozen=True)

    confirmations: int = Field(default=1, ge=0, le=1000)
    """Blocks on top of the mined block before a transaction is final (0: at once)."""
    bump_after_s: float = Field(default=30.0, gt=0)
    """Replace a transaction not mined after this long since its last broadcast."""
    bump_percent: int = Field(default=15, ge=10, le=1000)
    """Fee increase per replacement (nodes require at least 10 %)."""
    max_attempts: int = Field(default=8, ge=1, le=64)
    """Attempts (original + bumps) per transaction; then it only waits."""
    max_fee_per_gas_cap: int | None = Field(default=None, gt=0)
    """Never sign a fee cap above this (wei); ``None`` for no cap."""
    priority_fee_wei: int | None = Field(default=None, ge=0)
    """Tip to offer; ``None`` asks the node (``eth_maxPriorityFeePerGas``)."""
    base_fee_multiplier: int = Field(default=2, ge=1, le=10)
    """``maxFeePerGas = base fee * this + tip`` for new transactions."""
    gas_margin_percent: int = Field(default=20, ge=0, le=200)
    """Added to ``eth_estimateGas`` when the intent does not fix the gas."""
    reorg_watch_blocks: int = Field(default=128, ge=0, le=100_000)
    """Blocks after its block during which a final transaction is still checked against
    reorgs deeper than ``confirmations`` (and re-sent if one took it away); 0: never."""


_ALREADY_KNOWN = ("already known", "already imported", "known transaction")
_NONCE_USED = ("nonce too low", "nonce has already been used", "invalid nonce")
_UNDERPRICED = ("underpriced",)


class Outbox:
    """Sends transactions for one account, persisting first (see the module docstring)."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        store: OutboxStore,
        *,
        policy: OutboxPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Drive ``account``'s transactions on ``w3`` with state in ``store``."""
        self.w3 = w3
        self.account = account
        self.store = store
        self.policy = policy or OutboxPolicy()
        self._clock = clock
        self._sleep = sleep
        self.chain_id = int(w3.eth.chain_id)
        self.sender = account.address

    # -- building and signing -------------------------------------------------------

    def _market_fees(self) -> tuple[int, int]:
        block = self.w3.eth.get_block("latest")
        base_fee = int(block.get("baseFeePerGas", 0) or 0)
        tip = self.policy.priority_fee_wei
        if tip is None:
            tip = int(self.w3.eth.max_priority_fee)
        max_fee = base_fee * self.policy.base_fee_multiplier + tip
        return self._capped(max_fee), min(tip, self._capped(max_fee))

    def _capped(self, fee: int) -> int:
        cap = self.policy.max_fee_per_gas_cap
        return fee if cap is None else min(fee, cap)

    def _sign(
        self,
        *,
        nonce: int,
        to: str | None,
        data: str,
        value: int,
        gas: int,
        fees: tuple[int, int],
        kind: AttemptKind,
    ) -> TxAttempt:
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "value": value,
            "data": data,
            "gas": gas,
            "maxFeePerGas": fees[0],
            "maxPriorityFeePerGas": fees[1],
        }
        if to is not None:
            tx["to"] = to
        signed = self.account.sign_transaction(tx)
        return TxAttempt(
            tx_hash="0x" + bytes(signed.hash).hex(),
            raw="0x" + bytes(signed.raw_transaction).hex(),
            max_fee_per_gas=fees[0],
            max_priority_fee_per_gas=fees[1],
            kind=kind,
            created_at=self._clock(),
        )

    def _estimate_gas(self, intent: TxIntent, to: str | None) -> int:
        params: TxParams = {
            "from": self.sender,
            "value": Wei(intent.value),
            "data": HexBytes(intent.data),
        }
        if to is not None:
            params["to"] = to
        try:
            estimate = int(self.w3.eth.estimate_gas(params))
        except ContractLogicError as exc:
            reason = describe_revert(exc.data) if isinstance(exc.data, str) else str(exc)
            raise TransactionRevertedError(f"{intent.key}: would revert: {reason}") from exc
        except Web3RPCError as exc:
            raise TransactionError(f"{intent.key}: cannot estimate gas: {exc}") from exc
        return estimate * (100 + self.policy.gas_margin_percent) // 100

    # -- public API -----------------------------------------------------------------

    def enqueue(self, intent: TxIntent) -> OutboxTx:
        """Persist ``intent`` as a signed transaction with a reserved nonce; no broadcast.

        Idempotent by ``intent.key``: a second call returns the stored transaction (and
        raises :class:`OutboxError` if the key was used for different content).
        Raises :class:`TransactionRevertedError` (storing nothing) if gas estimation
        reverts.
        """
        to = to_checksum_address(intent.to) if intent.to is not None else None
        existing = self.store.get_by_key(chain_id=self.chain_id, sender=self.sender, key=intent.key)
        if existing is not None:
            self._check_same(existing, intent, to)
            return existing
        gas = intent.gas or self._estimate_gas(intent, to)
        fees = self._market_fees()
        chain_nonce = int(self.w3.eth.get_transaction_count(self.sender, "pending"))

        def build(nonce: int) -> NewTx:
            attempt = self._sign(
                nonce=nonce,
                to=to,
                data=intent.data,
                value=intent.value,
                gas=gas,
                fees=fees,
                kind=AttemptKind.ORIGINAL,
            )
            return NewTx(to=to, data=intent.data, value=intent.value, gas=gas, attempt=attempt)

        tx, created = self.store.create(
            chain_id=self.chain_id,
            sender=self.sender,
            key=intent.key,
            chain_nonce=chain_nonce,
            build=build,
            now=self._clock(),
        )
        if not created:
            self._check_same(tx, intent, to)
        return tx

    @staticmethod
    def _check_same(tx: OutboxTx, intent: TxIntent, to: str | None) -> None:
        if (tx.to, tx.data.lower(), tx.value) != (to, intent.data.lower(), intent.value):
            raise OutboxError(f"key {intent.key!r} was already used for another transaction")

    def send(self, intent: TxIntent) -> OutboxTx:
        """Enqueue ``intent`` and process the outbox once (which broadcasts it)."""
        tx = self.enqueue(intent)
        self.process()
        return self.get(tx.id)

    def get(self, tx_id: int) -> OutboxTx:
        """The current state of transaction ``tx_id``."""
        tx = self.store.get(tx_id)
        if tx is None or tx.chain_id != self.chain_id or tx.sender != self.sender:
            raise OutboxError(f"no transaction {tx_id} for {self.sender} on chain {self.chain_id}")
        return tx

    def process(self) -> list[OutboxTx]:
        """One pass over open transactions: reconcile, broadcast, bump, confirm (after
        re-opening recently final ones that a reorg deeper than the confirmations undid).

        Returns the open transactions' new states. A node that cannot be reached raises
        :class:`NodeUnavailableError` after the store is up to date with what was
        learnt; calling again later resumes.
        """
        head = int(self.w3.eth.block_number)
        used_nonce = int(self.w3.eth.get_transaction_count(self.sender, "latest"))
        # Before the open ones are read: a final transaction a deep reorg took away is
        # open again and re-sent below, in nonce order with the others.
        self._reopen_reorged(head)
        results = []
        for tx in self.store.open_transactions(chain_id=self.chain_id, sender=self.sender):
            results.append(self._process_one(tx, head=head, used_nonce=used_nonce))
        return results

    def cancel(self, tx_id: int) -> OutboxTx:
        """Replace an open transaction with a 0-value self-transfer at higher fees.

        Either the original (or an earlier bump) or the cancellation lands, never both.
        """
        tx = self.get(tx_id)
        if tx.status not in (TxStatus.PENDING, TxStatus.SENT):
            raise OutboxError(f"transaction {tx_id} is {tx.status}; only unmined ones cancel")
        attempt = self._sign(
            nonce=tx.nonce,
            to=self.sender,
            data="0x",
            value=0,
            gas=21_000,
            fees=self._bumped_fees(tx.latest_attempt),
            kind=AttemptKind.CANCEL,
        )
        self.store.add_attempt(tx.id, attempt, now=self._clock())
        self._broadcast(self.get(tx.id), attempt)
        return self.get(tx.id)

    def wait(self, tx_id: int, *, timeout_s: float = 60.0, poll_s: float = 0.2) -> OutboxTx:
        """Process until transaction ``tx_id`` is final; :class:`TransactionTimeoutError` if not."""
        deadline = time.monotonic() + timeout_s
        while True:
            tx = self.get(tx_id)
            if tx.final:
                return tx
            if time.monotonic() >= deadline:
                raise TransactionTimeoutError(
                    f"transaction {tx_id} (nonce {tx.nonce}) still {tx.status} after {timeout_s} s"
                )
            self.process()
            tx = self.get(tx_id)
            if tx.final:
                return tx
            self._sleep(poll_s)

    # -- the state machine ----------------------------------------------------------

    def _receipt(self, tx: OutboxTx) -> tuple[TxAttempt, Any] | None:
        for attempt in reversed(tx.attempts):
            try:
                receipt = self.w3.eth.get_transaction_receipt(HexBytes(attempt.tx_hash))
            except TransactionNotFound:
                continue
            if receipt is not None and receipt.get("blockNumber") is not None:
                return attempt, receipt
        return None

    def _process_one(self, tx: OutboxTx, *, head: int, used_nonce: int) -> OutboxTx:
        now = self._clock()
        found = self._receipt(tx)
        if found is not None:
            attempt, receipt = found
            block_number = int(receipt["blockNumber"])
            block_hash = "0x" + bytes(receipt["blockHash"]).hex()
            depth = head - block_number + 1
            status = TxStatus.MINED
            if depth >= max(self.policy.confirmations, 1) and self._canonical(
                block_number, block_hash
            ):
                if attempt.kind is AttemptKind.CANCEL:
                    status = TxStatus.CANCELLED
                elif int(receipt["status"]) == 1:
                    status = TxStatus.CONFIRMED
                else:
                    status = TxStatus.REVERTED
            self.store.update(
                tx.id, now=now, status=status, mined=(attempt.tx_hash, block_number, block_hash)
            )
            return self.get(tx.id)
        if tx.status is TxStatus.MINED:
            # The receipt is gone: the block was reorged out. Send the same bytes again.
            self.store.update(
                tx.id, now=now, status=TxStatus.SENT, clear_mined=True, error="reorged out"
            )
            tx = self.get(tx.id)
        if used_nonce > tx.nonce:
            # Our nonce is used and (looked up after the nonce) none of our attempts has a
            # receipt: another transaction from this key took it. Dropping is final, so
            # only once that use is as deep as a confirmation, and checked once more.
            deep_block = max(head - max(self.policy.confirmations, 1) + 1, 0)
            deep_nonce = int(self.w3.eth.get_transaction_count(self.sender, deep_block))
            if deep_nonce > tx.nonce and self._receipt(tx) is None:
                self.store.update(
                    tx.id,
                    now=now,
                    status=TxStatus.DROPPED,
                    error=f"nonce {tx.nonce} was used by a transaction not sent by this outbox",
                )
            return self.get(tx.id)
        latest = tx.latest_attempt
        if tx.status is TxStatus.PENDING:
            self._broadcast(tx, latest)
        elif tx.last_sent_at is not None and now - tx.last_sent_at >= self.policy.bump_after_s:
            if len(tx.attempts) < self.policy.max_attempts:
                self._bump(tx)
            else:
                self._broadcast(tx, latest)
        elif not self._node_knows(latest.tx_hash):
            self._broadcast(tx, latest)
        return self.get(tx.id)

    def _reopen_reorged(self, head: int) -> None:
        """Put final transactions whose block a reorg took away back into the life cycle
        (see the module docstring)."""
        watch = self.policy.reorg_watch_blocks
        if watch == 0:
            return
        recent = self.store.recently_final(
            chain_id=self.chain_id, sender=self.sender, since_block=max(head - watch, 0)
        )
        depth = max(self.policy.confirmations, 1)
        canonical: dict[int, str | None] = {}
        for tx in recent:
            if tx.block_number is None or tx.block_hash is None:
                continue
            if tx.block_number not in canonical:
                canonical[tx.block_number] = self._block_hash(tx.block_number)
            if canonical[tx.block_number] == tx.block_hash:
                continue
            # Only now the receipts: a block that is still canonical costs no lookup.
            found = self._receipt(tx)
            now = self._clock()
            if found is None:
                # The nonce is free again on this branch. ``last_sent_at`` now: the same
                # bytes go out first, a fee bump only if they are not mined in time.
                note = f"reorged out after it was final (deeper than {depth} confirmations)"
                _log.warning(
                    "outbox transaction %d (key %r, nonce %d, block %d) %s; sending it again",
                    tx.id,
                    tx.key,
                    tx.nonce,
                    tx.block_number,
                    note,
                )
                self.store.update(
                    tx.id,
                    now=now,
                    status=TxStatus.SENT,
                    last_sent_at=now,
                    clear_mined=True,
                    error=note,
                )
                continue
            attempt, receipt = found
            block_hash = "0x" + bytes(receipt["blockHash"]).hex()
            if block_hash == tx.block_hash:
                # The node's answers disagree (a receipt in a block it calls uncanonical):
                # nothing is known for sure; look again on the next pass.
                continue
            # Mined again, in another block: confirmed anew from there.
            _log.warning(
                "outbox transaction %d (key %r, nonce %d) moved from block %d to block %d in"
                " a reorg deeper than %d confirmations",
                tx.id,
                tx.key,
                tx.nonce,
                tx.block_number,
                int(receipt["blockNumber"]),
                depth,
            )
            self.store.update(
                tx.id,
                now=now,
                status=TxStatus.MINED,
                mined=(attempt.tx_hash, int(receipt["blockNumber"]), block_hash),
                error=f"mined in another block after a reorg deeper than {depth} confirmations",
            )

    def _block_hash(self, block_number: int) -> str | None:
        """The canonical block hash at ``block_number``; None beyond the head."""
        try:
            block = self.w3.eth.get_block(block_number)
        except BlockNotFound:
            return None
        return "0x" + bytes(block["hash"]).hex() if block.get("hash") else None

    def _canonical(self, block_number: int, block_hash: str) -> bool:
        return self._block_hash(block_number) == block_hash

    def _node_knows(self, tx_hash: str) -> bool:
        try:
            self.w3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            return False
        return True

    def _bumped_fees(self, previous: TxAttempt) -> tuple[int, int]:
        factor = 100 + self.policy.bump_percent
        market_max, market_tip = self._market_fees()
        tip = max(-(-previous.max_priority_fee_per_gas * factor // 100), market_tip, 1)
        max_fee = max(-(-previous.max_fee_per_gas * factor // 100), market_max, tip)
        return self._capped(max_fee), min(tip, self._capped(max_fee))

    def _bump(self, tx: OutboxTx) -> None:
        previous = tx.latest_attempt
        fees = self._bumped_fees(previous)
        if fees[0] <= previous.max_fee_per_gas:
            # At the fee cap: a replacement would be refused; keep the current one alive.
            self._broadcast(tx, previous)
            return
        cancelling = previous.kind is AttemptKind.CANCEL
        attempt = self._sign(
            nonce=tx.nonce,
            to=self.sender if cancelling else tx.to,
            data="0x" if cancelling else tx.data,
            value=0 if cancelling else tx.value,
            gas=21_000 if cancelling else tx.gas,
            fees=fees,
            kind=AttemptKind.CANCEL if cancelling else AttemptKind.BUMP,
        )
        self.store.add_attempt(tx.id, attempt, now=self._clock())
        self._broadcast(self.get(tx.id), attempt)

    def _broadcast(self, tx: OutboxTx, attempt: TxAttempt) -> None:
        now = self._clock()
        try:
            self.w3.eth.send_raw_transaction(HexBytes(attempt.raw))
        except NodeUnavailableError as exc:
            # Outcome unknown: the stored attempt is reconciled on the next pass.
            self.store.update(tx.id, now=now, error=f"broadcast outcome unknown: {exc}")
            raise
        except (Web3RPCError, ValueError) as exc:
            message = str(exc).lower()
            if any(s in message for s in _ALREADY_KNOWN + _NONCE_USED):
                # Known to the node, or the nonce is taken (by us, most likely):
                # reconciliation decides which.
                self.store.update(tx.id, now=now, status=TxStatus.SENT, last_sent_at=now)
                return
            if any(s in message for s in _UNDERPRICED):
                self.store.update(
                    tx.id, now=now, status=TxStatus.SENT, last_sent_at=now, error=str(exc)
                )
                return
            # Refused outright (funds, gas limit...): keep it, retry on a later pass.
            self.store.update(tx.id, now=now, error=f"node refused the transaction: {exc}")
            return
        self.store.update(tx.id, now=now, status=TxStatus.SENT, last_sent_at=now)
