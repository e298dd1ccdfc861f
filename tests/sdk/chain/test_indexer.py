"""The event indexer on a real anvil: confirmations, real reorgs, restarts, atomicity."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from shotbank.chain.abi import load_abi
from shotbank.chain.contracts import ShotToken, send_call
from shotbank.chain.deploy import deploy_all
from shotbank.chain.deployments import Deployment
from shotbank.chain.devnode import AnvilNode
from shotbank.chain.errors import ReorgTooDeepError
from shotbank.chain.indexer import EventBatch, Indexer, LogSource, SqliteIndexerStore
from shotbank.chain.rpc import RetryPolicy, connect

from .faulty_proxy import FaultyProxy

ETHER = 10**18


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response
    return response.get("result")


class TransferTable:
    """Derived state: every ShotToken Transfer, in the indexer's own database."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS transfers (block_number INTEGER, log_index INTEGER,"
            " tx_hash TEXT, sender TEXT, recipient TEXT, value TEXT,"
            " PRIMARY KEY (block_number, log_index))"
        )
        self.applied: list[tuple[int, int]] = []
        self.rollbacks: list[int] = []
        self.fail_after_rows: int | None = None

    def apply(self, batch: EventBatch) -> None:
        self.applied.append((batch.from_block, batch.to_block))
        transfers = [event for event in batch.events if event.event == "Transfer"]
        for i, event in enumerate(transfers):
            if self.fail_after_rows is not None and i == self.fail_after_rows:
                raise RuntimeError("handler crashed mid-batch")
            self.db.execute(
                "INSERT INTO transfers VALUES (?, ?, ?, ?, ?, ?)",
                (
                    event.block_number,
                    event.log_index,
                    event.transaction_hash,
                    event.args["from"],
                    event.args["to"],
                    str(event.args["value"]),
                ),
            )

    def rollback(self, to_block: int) -> None:
        self.rollbacks.append(to_block)
        self.db.execute("DELETE FROM transfers WHERE block_number > ?", (to_block,))

    def rows(self) -> list[tuple[int, int, str]]:
        return self.db.execute(
            "SELECT block_number, log_index, tx_hash FROM transfers ORDER BY 1, 2"
        ).fetchall()

    def balances(self) -> Counter[str]:
        balances: Counter[str] = Counter()
        for sender, recipient, value in self.db.execute(
            "SELECT sender, recipient, value FROM transfers"
        ):
            balances[recipient] += int(value)
            balances[sender] -= int(value)
        return balances


def chain_transfers(w3: Web3, token: ShotToken, start: int, end: int) -> list[tuple[int, int, str]]:
    """The Transfer logs the node has now, straight from eth_getLogs."""
    logs = token.contract.events.Transfer().get_logs(from_block=start, to_block=end)
    return [
        (log["blockNumber"], log["logIndex"], "0x" + bytes(log["transactionHash"]).hex())
        for log in logs
    ]


class World:
    """A deployed token, some holders, and an indexer following its Transfers."""

    def __init__(
        self, w3: Web3, deployment: Deployment, keys: list[LocalAccount], db: Path
    ) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.treasury = keys[1]
        self.holders = keys[4:8]
        self.token = ShotToken.from_deployment(w3, deployment)
        self.db_path = db
        self.open()

    def open(self, **options: Any) -> None:
        self.store = SqliteIndexerStore(self.db_path)
        self.table = TransferTable(self.store.connection)
        settings: dict[str, Any] = {"confirmations": 0, "batch_blocks": 4, "reorg_window": 32}
        settings.update(options)
        self.indexer = Indexer(
            self.w3,
            self.store,
            self.table,
            name="shot-transfers",
            sources=[
                LogSource(
                    address=self.token.address,
                    abi=tuple(load_abi("ShotToken")),
                    events=("Transfer",),
                )
            ],
            start_block=self.deployment.start_block,
            **settings,
        )

    def close(self) -> None:
        self.store.close()

    def pay(self, n: int, *, value: int = ETHER) -> None:
        for i in range(n):
            holder = self.holders[i % len(self.holders)]
            send_call(self.w3, self.treasury, self.token.transfer(holder.address, value + i))

    def assert_matches_chain(self) -> None:
        head = self.w3.eth.block_number - self.indexer.confirmations
        assert self.table.rows() == chain_transfers(
            self.w3, self.token, self.deployment.start_block, head
        )
        if self.indexer.confirmations == 0:
            derived = self.table.balances()
            for holder in self.holders:
                assert derived[holder.address] == self.token.balance_of(holder.address)


@pytest.fixture
def world(
    anvil_w3: Web3, anvil_deployment: Deployment, dev_keys: list[LocalAccount], tmp_path: Path
) -> Iterator[World]:
    world = World(anvil_w3, anvil_deployment, dev_keys, tmp_path / "indexer.sqlite")
    yield world
    world.close()


@pytest.mark.chain
def test_indexes_every_transfer_in_batches(world: World) -> None:
    world.pay(6)
    results = world.indexer.sync()
    assert results[-1].caught_up
    assert len(world.table.applied) > 1  # several batches of at most 4 blocks
    assert len(world.table.rows()) == 7  # genesis mint + 6 payments
    world.assert_matches_chain()


@pytest.mark.chain
def test_waits_for_confirmations(world: World) -> None:
    world.close()
    world.open(confirmations=3)
    world.pay(2)
    head = world.w3.eth.block_number
    world.indexer.sync()
    assert world.indexer.checkpoint().block_number == head - 3
    assert all(row[0] <= head - 3 for row in world.table.rows())
    for _ in range(3):
        rpc(world.w3, "evm_mine")
    world.indexer.sync()
    assert world.indexer.checkpoint().block_number == head
    world.assert_matches_chain()


@pytest.mark.chain
def test_real_reorg_rolls_back_and_reapplies_derived_state(world: World) -> None:
    world.pay(5)
    world.indexer.sync()
    before = world.table.rows()
    head = world.w3.eth.block_number
    orphaned = {row for row in before if row[0] > head - 3}
    assert len(orphaned) == 3

    # Replace the last 3 blocks: one different transfer in the new middle block. The gas
    # is explicit: anvil would estimate it on the pre-reorg state.
    replacement = world.token.transfer(world.holders[3].address, 777)
    request = {
        "from": world.treasury.address,
        "to": replacement.to,
        "data": replacement.data,
        "gas": hex(200_000),
    }
    rpc(world.w3, "anvil_reorg", 3, [[request, 1]])
    assert world.w3.eth.block_number == head

    step = world.indexer.step()
    assert step.rolled_back_to == head - 3
    assert step.reorg_reason == "checkpoint block hash changed"
    assert world.table.rollbacks == [head - 3]
    assert not (set(world.table.rows()) & orphaned)
    world.indexer.sync()
    after = world.table.rows()
    assert len(after) == len(before) - 3 + 1
    assert after[-1][0] == head - 1
    world.assert_matches_chain()


@pytest.mark.chain
def test_reorg_under_new_blocks_is_found_by_parent_hash(world: World) -> None:
    world.pay(3)
    world.indexer.sync()
    head = world.w3.eth.block_number
    rpc(world.w3, "anvil_reorg", 2, [])
    world.pay(2)  # the new chain grows past our checkpoint
    step = world.indexer.step()
    assert step.reorg_reason == "parent hash mismatch"
    assert step.rolled_back_to == head - 2
    world.indexer.sync()
    assert world.table.rollbacks == [head - 2]
    world.assert_matches_chain()


@pytest.mark.chain
def test_reorg_shallower_than_confirmations_never_reaches_the_handler(world: World) -> None:
    world.close()
    world.open(confirmations=4)
    world.pay(6)
    world.indexer.sync()
    rpc(world.w3, "anvil_reorg", 3, [])
    for _ in range(4):
        rpc(world.w3, "evm_mine")
    world.indexer.sync()
    assert world.table.rollbacks == []
    world.assert_matches_chain()


@pytest.mark.chain
def test_restart_resumes_from_the_checkpoint(world: World) -> None:
    world.pay(3)
    world.indexer.sync()
    checkpoint = world.indexer.checkpoint()
    rows = world.table.rows()
    world.close()

    world.pay(2)
    world.open()
    assert world.indexer.checkpoint() == checkpoint
    assert world.table.rows() == rows
    world.indexer.sync()
    assert world.table.applied[0][0] == checkpoint.block_number + 1
    assert len(world.table.rows()) == len(rows) + 2
    world.assert_matches_chain()


@pytest.mark.chain
def test_reorg_while_stopped_is_found_on_restart(world: World) -> None:
    world.pay(4)
    world.indexer.sync()
    head = world.w3.eth.block_number
    world.close()
    rpc(world.w3, "anvil_reorg", 2, [])
    world.open()
    world.indexer.sync()
    assert world.table.rollbacks == [head - 2]
    world.assert_matches_chain()


@pytest.mark.chain
def test_handler_failure_leaves_state_and_checkpoint_untouched(world: World) -> None:
    world.indexer.sync()
    checkpoint = world.indexer.checkpoint()
    rows = world.table.rows()
    world.pay(3)
    world.table.fail_after_rows = 1
    with pytest.raises(RuntimeError, match="mid-batch"):
        world.indexer.sync()
    assert world.indexer.checkpoint() == checkpoint
    assert world.table.rows() == rows
    world.table.fail_after_rows = None
    world.indexer.sync()
    world.assert_matches_chain()


@pytest.mark.chain
def test_reorg_below_the_kept_window_stops_with_a_clear_error(world: World) -> None:
    world.close()
    world.open(reorg_window=3, batch_blocks=1)
    world.pay(6)
    world.indexer.sync()
    rpc(world.w3, "anvil_reorg", 5, [])
    with pytest.raises(ReorgTooDeepError, match="re-index"):
        world.indexer.sync()


def test_indexer_on_in_process_pyevm(
    pyevm_w3: Web3, pyevm_keys: list[LocalAccount], tmp_path: Path
) -> None:
    deployer, treasury, holder = pyevm_keys[:3]
    deployment = deploy_all(
        pyevm_w3, deployer, treasury=treasury.address, guardian=deployer.address
    )
    token = ShotToken.from_deployment(pyevm_w3, deployment)
    send_call(pyevm_w3, treasury, token.transfer(holder.address, 5))
    store = SqliteIndexerStore(tmp_path / "indexer.sqlite")
    table = TransferTable(store.connection)
    indexer = Indexer(
        pyevm_w3,
        store,
        table,
        name="pyevm",
        sources=[LogSource(address=token.address, abi=tuple(load_abi("ShotToken")))],
        start_block=deployment.start_block,
        confirmations=0,
    )
    indexer.sync()
    assert table.balances()[holder.address] == 5
    assert len(table.rows()) == 2  # genesis mint + the transfer; other events ignored
    store.close()


@pytest.mark.chain
def test_run_loop_follows_new_blocks_and_survives_a_node_outage(
    anvil: AnvilNode,
    anvil_deployment: Deployment,
    dev_keys: list[LocalAccount],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = FaultyProxy(anvil.url).start()
    w3 = connect(proxy.url, policy=RetryPolicy(attempts=2, backoff_s=0.01, timeout_s=5))
    world = World(w3, anvil_deployment, dev_keys, tmp_path / "indexer.sqlite")
    world.store.close()
    stop = threading.Event()
    errors: list[BaseException] = []

    def follow() -> None:
        # SQLite connections belong to their thread: the loop opens its own.
        try:
            world.open()
            world.indexer.run(stop, poll_s=0.05)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        world.pay(2)
        wait_for(lambda: count_rows(world.db_path) == 3)
        proxy.stop()
        time.sleep(0.3)  # the loop meets a dead node a few times
        proxy.start()
        world.pay(1)
        wait_for(lambda: count_rows(world.db_path) == 4)
    finally:
        stop.set()
        thread.join(timeout=10)
        proxy.stop()
    assert errors == []
    assert not thread.is_alive()
    assert "unreachable" in caplog.text


def count_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM transfers").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def wait_for(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.05)
