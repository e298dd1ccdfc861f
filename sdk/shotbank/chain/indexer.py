"""Event indexer: follow contracts' logs with confirmations, survive reorgs and restarts.

Each :meth:`Indexer.step`:

1. reads the head and the stored checkpoint (last processed block number + hash);
2. checks the checkpoint block is still canonical -- directly, and through the
   ``parentHash`` of the next block, which must equal the stored hash. On a mismatch
   it walks back through the stored block hashes (the last ``reorg_window`` blocks) to
   the newest block the node still has, and in one store transaction calls the
   handler's ``rollback(ancestor)``, forgets the newer hashes and moves the checkpoint
   back. A reorg below the window raises :class:`ReorgTooDeepError`;
3. otherwise fetches headers and logs up to ``head - confirmations`` (at most
   ``batch_blocks`` blocks), checks that every log's ``blockHash`` matches the header
   it was fetched with (else the chain moved mid-step and nothing is written), and in
   one store transaction hands the decoded events to the handler's ``apply``, stores
   the new block hashes and advances the checkpoint.

Because derived state and checkpoint commit together, a crash at any point resumes
from the checkpoint with derived state that matches it. With ``confirmations=N`` the
handler only ever sees blocks ``N`` deep; the rollback path handles reorgs deeper than
that.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Final, Protocol

from eth_typing import ChecksumAddress
from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from pydantic import BaseModel, ConfigDict, Field
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BlockNotFound
from web3.types import FilterParams, LogReceipt

from shotbank.chain.errors import IndexerError, NodeUnavailableError, ReorgTooDeepError

__all__ = [
    "Checkpoint",
    "EventBatch",
    "EventHandler",
    "IndexedEvent",
    "Indexer",
    "IndexerStore",
    "LogSource",
    "SqliteIndexerStore",
    "StepResult",
]

_MAX_BATCH_BLOCKS: Final = 10_000
_log = logging.getLogger(__name__)


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


class Checkpoint(BaseModel):
    """The last block whose events were applied."""

    model_config = ConfigDict(frozen=True)

    block_number: int = Field(ge=-1)
    block_hash: str | None
    """``None`` only for the virtual block before genesis (``block_number == -1``)."""


class IndexedEvent(BaseModel):
    """One decoded log."""

    model_config = ConfigDict(frozen=True)

    contract: str
    event: str
    args: dict[str, Any]
    block_number: int
    block_hash: str
    transaction_hash: str
    log_index: int


class EventBatch(BaseModel):
    """Events of the blocks ``from_block..to_block`` (inclusive), in chain order."""

    model_config = ConfigDict(frozen=True)

    from_block: int
    to_block: int
    to_block_hash: str
    events: tuple[IndexedEvent, ...]


class StepResult(BaseModel):
    """What one :meth:`Indexer.step` did."""

    model_config = ConfigDict(frozen=True)

    head: int
    checkpoint: int
    applied_from: int | None = None
    applied_to: int | None = None
    events: int = 0
    rolled_back_to: int | None = None
    reorg_reason: str | None = None
    """How the reorg was detected (``"parent hash mismatch"``...)."""
    aborted: str | None = None
    """Why the step changed nothing although there was work (the chain moved mid-step)."""

    @property
    def caught_up(self) -> bool:
        """Whether the checkpoint reached the confirmed head."""
        return self.aborted is None and self.rolled_back_to is None and self.applied_to is None


class EventHandler(Protocol):
    """Derives state from events. Both methods run inside the store's transaction."""

    def apply(self, batch: EventBatch) -> None:
        """Apply the events of ``batch`` (may be empty)."""
        ...

    def rollback(self, to_block: int) -> None:
        """Forget all state derived from blocks after ``to_block``."""
        ...


class IndexerStore(Protocol):
    """Checkpoint and recent block hashes, per indexer name, with atomic transactions."""

    def transaction(self) -> AbstractContextManager[None]:
        """A unit in which handler writes, hashes and checkpoint commit together."""
        ...

    def checkpoint(self, name: str) -> Checkpoint | None:
        """The checkpoint of indexer ``name``, if it has one."""
        ...

    def set_checkpoint(self, name: str, checkpoint: Checkpoint) -> None:
        """Record the checkpoint (inside :meth:`transaction`)."""
        ...

    def save_block_hashes(self, name: str, hashes: Mapping[int, str]) -> None:
        """Remember ``block number -> hash`` for reorg detection."""
        ...

    def block_hashes(self, name: str) -> dict[int, str]:
        """All remembered block hashes."""
        ...

    def forget_blocks(
        self, name: str, *, above: int | None = None, below: int | None = None
    ) -> None:
        """Delete remembered hashes above and/or below the given numbers."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS indexer_checkpoint (
    name TEXT PRIMARY KEY,
    block_number INTEGER NOT NULL,
    block_hash TEXT
);
CREATE TABLE IF NOT EXISTS indexer_block (
    name TEXT NOT NULL,
    block_number INTEGER NOT NULL,
    block_hash TEXT NOT NULL,
    PRIMARY KEY (name, block_number)
);
"""


class SqliteIndexerStore:
    """:class:`IndexerStore` on SQLite. Handlers may write through :attr:`connection`.

    Work done on :attr:`connection` inside :meth:`transaction` commits (or rolls back)
    together with the checkpoint.
    """

    def __init__(self, path: Path | str) -> None:
        """Open (and create if needed) the indexer tables in the database at ``path``."""
        self.connection = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")
        self._lock = threading.RLock()
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.connection.execute(statement)

    def close(self) -> None:
        """Close the database connection."""
        self.connection.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception)."""
        with self._lock:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    def checkpoint(self, name: str) -> Checkpoint | None:
        """See :meth:`IndexerStore.checkpoint`."""
        row = self.connection.execute(
            "SELECT block_number, block_hash FROM indexer_checkpoint WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else Checkpoint(block_number=row[0], block_hash=row[1])

    def set_checkpoint(self, name: str, checkpoint: Checkpoint) -> None:
        """See :meth:`IndexerStore.set_checkpoint`."""
        self.connection.execute(
            "INSERT INTO indexer_checkpoint (name, block_number, block_hash) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET block_number = excluded.block_number,"
            " block_hash = excluded.block_hash",
            (name, checkpoint.block_number, checkpoint.block_hash),
        )

    def save_block_hashes(self, name: str, hashes: Mapping[int, str]) -> None:
        """See :meth:`IndexerStore.save_block_hashes`."""
        self.connection.executemany(
            "INSERT OR REPLACE INTO indexer_block (name, block_number, block_hash)"
            " VALUES (?, ?, ?)",
            [(name, number, block_hash) for number, block_hash in hashes.items()],
        )

    def block_hashes(self, name: str) -> dict[int, str]:
        """See :meth:`IndexerStore.block_hashes`."""
        rows = self.connection.execute(
            "SELECT block_number, block_hash FROM indexer_block WHERE name = ?", (name,)
        ).fetchall()
        return {int(number): str(block_hash) for number, block_hash in rows}

    def forget_blocks(
        self, name: str, *, above: int | None = None, below: int | None = None
    ) -> None:
        """See :meth:`IndexerStore.forget_blocks`."""
        if above is not None:
            self.connection.execute(
                "DELETE FROM indexer_block WHERE name = ? AND block_number > ?", (name, above)
            )
        if below is not None:
            self.connection.execute(
                "DELETE FROM indexer_block WHERE name = ? AND block_number < ?", (name, below)
            )


class LogSource(BaseModel):
    """A contract to follow: its address and the ABI of its events."""

    model_config = ConfigDict(frozen=True)

    address: str
    abi: tuple[dict[str, Any], ...]
    events: tuple[str, ...] | None = None
    """Event names to follow; ``None`` for every event in the ABI."""


class Indexer:
    """Follows the logs of :class:`LogSource` contracts into an :class:`EventHandler`."""

    def __init__(
        self,
        w3: Web3,
        store: IndexerStore,
        handler: EventHandler,
        *,
        name: str,
        sources: Sequence[LogSource],
        start_block: int,
        confirmations: int = 6,
        batch_blocks: int = 500,
        reorg_window: int = 128,
    ) -> None:
        """Index ``sources`` from ``start_block`` under checkpoint ``name``.

        ``reorg_window`` is how many recent block hashes are kept; it must exceed
        ``confirmations`` and any reorg depth the chain may have.
        """
        if not sources:
            raise IndexerError("an indexer needs at least one log source")
        if not 1 <= batch_blocks <= _MAX_BATCH_BLOCKS:
            raise IndexerError(f"batch_blocks must be within 1..{_MAX_BATCH_BLOCKS}")
        if confirmations < 0 or reorg_window <= confirmations:
            raise IndexerError("need 0 <= confirmations < reorg_window")
        self.w3 = w3
        self.store = store
        self.handler = handler
        self.name = name
        self.start_block = start_block
        self.confirmations = confirmations
        self.batch_blocks = batch_blocks
        self.reorg_window = reorg_window
        self._events: dict[tuple[ChecksumAddress, bytes], tuple[str, Contract]] = {}
        for source in sources:
            address = to_checksum_address(source.address)
            contract = w3.eth.contract(address=address, abi=list(source.abi))
            for entry in source.abi:
                if entry.get("type") != "event" or entry.get("anonymous"):
                    continue
                if source.events is not None and entry["name"] not in source.events:
                    continue
                topic = bytes(event_abi_to_log_topic(entry))  # type: ignore[arg-type]
                self._events[(address, topic)] = (str(entry["name"]), contract)
        if not self._events:
            raise IndexerError("the log sources declare none of the requested events")
        self._addresses: list[ChecksumAddress] = sorted({address for address, _ in self._events})
        self._topics = sorted({_hex(topic) for _, topic in self._events})

    # -- chain access ---------------------------------------------------------------

    def _header(self, number: int) -> tuple[str, str]:
        block = self.w3.eth.get_block(number)
        return _hex(block["hash"]), _hex(block["parentHash"])

    def _canonical_hash(self, number: int) -> str | None:
        try:
            return self._header(number)[0]
        except BlockNotFound:
            return None

    # -- checkpoint -----------------------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        """The stored checkpoint, creating the initial one (``start_block - 1``) if absent."""
        existing = self.store.checkpoint(self.name)
        if existing is not None:
            return existing
        number = self.start_block - 1
        initial = Checkpoint(
            block_number=number, block_hash=self._header(number)[0] if number >= 0 else None
        )
        with self.store.transaction():
            self.store.set_checkpoint(self.name, initial)
            if initial.block_hash is not None:
                self.store.save_block_hashes(self.name, {number: initial.block_hash})
        return initial

    # -- reorgs ---------------------------------------------------------------------

    def _rollback(self, checkpoint: Checkpoint, head: int) -> int:
        known = self.store.block_hashes(self.name)
        ancestor: Checkpoint | None = None
        for number in sorted(known, reverse=True):
            if number <= head and self._canonical_hash(number) == known[number]:
                ancestor = Checkpoint(block_number=number, block_hash=known[number])
                break
        if ancestor is None:
            if self.start_block == 0 and (not known or min(known) == 0):
                # Even block 0 changed (a reset node): everything is re-derived.
                ancestor = Checkpoint(block_number=-1, block_hash=None)
            else:
                oldest = min(known) if known else checkpoint.block_number
                raise ReorgTooDeepError(
                    f"indexer {self.name!r}: reorg reaches below block {oldest}, the oldest "
                    f"hash kept (window {self.reorg_window}); re-index from block "
                    f"{self.start_block}"
                )
        with self.store.transaction():
            self.handler.rollback(ancestor.block_number)
            self.store.forget_blocks(self.name, above=ancestor.block_number)
            self.store.set_checkpoint(self.name, ancestor)
        return ancestor.block_number

    # -- one step -------------------------------------------------------------------

    def step(self) -> StepResult:
        """Detect and undo a reorg, or apply the next batch of confirmed blocks."""
        head = int(self.w3.eth.block_number)
        checkpoint = self.checkpoint()
        cp = checkpoint.block_number
        if cp > head:
            # The node's chain is shorter than what we processed (a reorg to a shorter
            # chain, or a node reset): roll back to what it still has.
            return self._reorg(checkpoint, head, "chain shorter than checkpoint")
        target = head - self.confirmations
        first = cp + 1
        if target < first:
            # Nothing new to apply; still make sure our checkpoint block is canonical.
            if cp >= 0 and self._canonical_hash(cp) != checkpoint.block_hash:
                return self._reorg(checkpoint, head, "checkpoint block hash changed")
            return StepResult(head=head, checkpoint=cp)
        last = min(target, first + self.batch_blocks - 1)

        window_start = max(first, head - self.reorg_window + 1)
        numbers = sorted({first, last, *range(window_start, last + 1)})
        headers = {n: self._header(n) for n in numbers}
        if checkpoint.block_hash is not None and headers[first][1] != checkpoint.block_hash:
            # The block after our checkpoint builds on another block than ours.
            return self._reorg(checkpoint, head, "parent hash mismatch")
        for n in numbers:
            if n - 1 in headers and headers[n][1] != headers[n - 1][0]:
                return StepResult(head=head, checkpoint=cp, aborted=f"chain moved at block {n}")

        events: list[IndexedEvent] = []
        for log in self._get_logs(first, last):
            number = int(log["blockNumber"])
            block_hash = _hex(log["blockHash"])
            if log.get("removed") or (number in headers and headers[number][0] != block_hash):
                return StepResult(
                    head=head, checkpoint=cp, aborted=f"log from a stale block {number}"
                )
            decoded = self._decode(log)
            if decoded is not None:
                events.append(decoded)
        events.sort(key=lambda e: (e.block_number, e.log_index))
        last_hash = headers[last][0]
        batch = EventBatch(
            from_block=first, to_block=last, to_block_hash=last_hash, events=tuple(events)
        )
        keep = {n: h for n, (h, _) in headers.items() if n > head - self.reorg_window}
        keep[last] = last_hash
        with self.store.transaction():
            self.handler.apply(batch)
            self.store.save_block_hashes(self.name, keep)
            self.store.forget_blocks(self.name, below=last - self.reorg_window)
            self.store.set_checkpoint(
                self.name, Checkpoint(block_number=last, block_hash=last_hash)
            )
        return StepResult(
            head=head, checkpoint=last, applied_from=first, applied_to=last, events=len(events)
        )

    def _reorg(self, checkpoint: Checkpoint, head: int, reason: str) -> StepResult:
        ancestor = self._rollback(checkpoint, head)
        return StepResult(
            head=head, checkpoint=ancestor, rolled_back_to=ancestor, reorg_reason=reason
        )

    def _get_logs(self, first: int, last: int) -> list[LogReceipt]:
        params: FilterParams = {
            "fromBlock": first,
            "toBlock": last,
            "address": self._addresses,
            "topics": [self._topics],
        }
        return list(self.w3.eth.get_logs(params))

    def _decode(self, log: LogReceipt) -> IndexedEvent | None:
        topics = log["topics"]
        if not topics:
            return None
        key = (to_checksum_address(log["address"]), bytes(topics[0]))
        found = self._events.get(key)
        if found is None:
            return None
        name, contract = found
        data = contract.events[name]().process_log(log)
        return IndexedEvent(
            contract=key[0],
            event=name,
            args={k: _plain(v) for k, v in data["args"].items()},
            block_number=int(log["blockNumber"]),
            block_hash=_hex(log["blockHash"]),
            transaction_hash=_hex(log["transactionHash"]),
            log_index=int(log["logIndex"]),
        )

    # -- loops ----------------------------------------------------------------------

    def sync(self, *, max_steps: int = 10_000) -> list[StepResult]:
        """Step until the checkpoint reaches ``head - confirmations`` (or ``max_steps``)."""
        results = []
        for _ in range(max_steps):
            result = self.step()
            results.append(result)
            if result.caught_up:
                break
        return results

    def run(self, stop: threading.Event, *, poll_s: float = 2.0) -> None:
        """Follow the chain until ``stop`` is set, sleeping ``poll_s`` when caught up.

        A node that cannot be reached is logged and retried after ``poll_s``; the
        checkpoint is untouched, so nothing is lost. Other errors (a handler failing, a
        reorg deeper than the window) end the loop: they need a person.
        """
        while not stop.is_set():
            try:
                result = self.step()
            except NodeUnavailableError as exc:
                _log.warning("indexer %s: %s; retrying in %.1f s", self.name, exc, poll_s)
                stop.wait(poll_s)
                continue
            if result.caught_up:
                stop.wait(poll_s)
            elif result.aborted:
                stop.wait(min(poll_s, 0.2))


def _plain(value: Any) -> Any:
    """Event argument values as JSON-friendly Python: bytes become ``0x`` hex."""
    if isinstance(value, bytes | bytearray | HexBytes):
        return _hex(bytes(value))
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value
