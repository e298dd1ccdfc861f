"""The outbox against real chains: crashes, lost answers, stuck fees, reorgs, stolen nonces."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import Wei

from shotbank.chain.contracts import ContractCall, ShotToken, send_call
from shotbank.chain.deployments import Deployment
from shotbank.chain.devnode import AnvilNode
from shotbank.chain.errors import (
    NodeUnavailableError,
    OutboxError,
    TransactionRevertedError,
)
from shotbank.chain.outbox import (
    AttemptKind,
    Outbox,
    OutboxPolicy,
    SqliteOutboxStore,
    TxIntent,
    TxStatus,
)
from shotbank.chain.rpc import RetryPolicy, connect

from .faulty_proxy import FaultyProxy

VALUE = 123_456_789
FAST = RetryPolicy(attempts=2, backoff_s=0.01, timeout_s=5)


class Clock:
    """A settable clock so that 'stuck for 30 s' takes no time."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response
    return response.get("result")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteOutboxStore]:
    store = SqliteOutboxStore(tmp_path / "outbox.sqlite")
    yield store
    store.close()


def transfer(key: str, to: str, value: int = VALUE) -> TxIntent:
    return TxIntent(key=key, to=to, value=value)


@pytest.mark.chain
def test_send_confirms_and_reserves_consecutive_nonces(
    anvil_w3: Web3, dev_keys: list[LocalAccount], store: SqliteOutboxStore
) -> None:
    sender, recipient = dev_keys[0], dev_keys[1].address
    outbox = Outbox(anvil_w3, sender, store, policy=OutboxPolicy(confirmations=1))
    before = anvil_w3.eth.get_balance(recipient)
    txs = [outbox.enqueue(transfer(f"pay-{i}", recipient)) for i in range(3)]
    assert [tx.nonce for tx in txs] == [0, 1, 2]
    assert all(tx.status is TxStatus.PENDING and len(tx.attempts) == 1 for tx in txs)
    final = [outbox.wait(tx.id, timeout_s=20, poll_s=0.05) for tx in txs]
    assert [tx.status for tx in final] == [TxStatus.CONFIRMED] * 3
    assert all(tx.mined_hash == tx.attempts[0].tx_hash for tx in final)
    assert anvil_w3.eth.get_transaction_count(sender.address) == 3
    assert anvil_w3.eth.get_balance(recipient) - before == 3 * VALUE


@pytest.mark.chain
def test_enqueue_is_idempotent_by_key_and_refuses_a_reused_key(
    anvil_w3: Web3, dev_keys: list[LocalAccount], store: SqliteOutboxStore
) -> None:
    outbox = Outbox(anvil_w3, dev_keys[0], store)
    first = outbox.enqueue(transfer("k", dev_keys[1].address))
    assert outbox.enqueue(transfer("k", dev_keys[1].address)).id == first.id
    with pytest.raises(OutboxError, match="already used"):
        outbox.enqueue(transfer("k", dev_keys[2].address))


_CRASHING_SENDER = textwrap.dedent(
    """
    import os, signal, sys
    from eth_account import Account
    from shotbank.chain.outbox import Outbox, OutboxPolicy, SqliteOutboxStore, TxIntent
    from shotbank.chain.rpc import connect

    url, db, key, to, value, crash_point = sys.argv[1:]
    outbox = Outbox(connect(url), Account.from_key(key), SqliteOutboxStore(db),
                    policy=OutboxPolicy(confirmations=1))
    outbox.enqueue(TxIntent(key="payout-1", to=to, value=int(value)))
    if crash_point == "after-send":
        outbox.process()  # broadcasts; the receipt is never looked at
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.chain
@pytest.mark.parametrize("crash_point", ["before-send", "after-send"])
@pytest.mark.parametrize("automine", [True, False])
def test_crash_between_intent_send_and_receipt_lands_exactly_once(
    anvil: AnvilNode,
    anvil_w3: Web3,
    dev_keys: list[LocalAccount],
    tmp_path: Path,
    crash_point: str,
    automine: bool,
) -> None:
    sender, recipient = dev_keys[3], dev_keys[4].address
    before = anvil_w3.eth.get_balance(recipient)
    if not automine:
        rpc(anvil_w3, "evm_setAutomine", False)
    db = tmp_path / "outbox.sqlite"
    crashed = subprocess.run(
        [
            sys.executable,
            "-c",
            _CRASHING_SENDER,
            anvil.url,
            str(db),
            sender.key.hex(),
            recipient,
            str(VALUE),
            crash_point,
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert crashed.returncode == -9, crashed.stderr.decode()
    pending = anvil_w3.eth.get_transaction_count(sender.address, "pending")
    assert pending == (1 if crash_point == "after-send" else 0)
    if not automine:
        rpc(anvil_w3, "evm_setAutomine", True)
        rpc(anvil_w3, "evm_mine")

    store = SqliteOutboxStore(db)
    outbox = Outbox(anvil_w3, sender, store, policy=OutboxPolicy(confirmations=1))
    (open_tx,) = store.open_transactions(chain_id=31337, sender=sender.address)
    # The restarted sender runs twice: reconciling must be idempotent too.
    final = outbox.wait(open_tx.id, timeout_s=20, poll_s=0.05)
    outbox.process()
    assert final.status is TxStatus.CONFIRMED
    assert len(final.attempts) == 1
    assert anvil_w3.eth.get_transaction_count(sender.address) == 1
    assert anvil_w3.eth.get_balance(recipient) - before == VALUE
    store.close()


@pytest.mark.chain
def test_lost_answer_to_a_send_is_reconciled_without_a_second_transaction(
    anvil: AnvilNode, dev_keys: list[LocalAccount], store: SqliteOutboxStore
) -> None:
    proxy = FaultyProxy(anvil.url).start()
    try:
        w3 = connect(proxy.url, policy=FAST)
        sender, recipient = dev_keys[5], dev_keys[6].address
        before = w3.eth.get_balance(recipient)
        outbox = Outbox(w3, sender, store, policy=OutboxPolicy(confirmations=1))
        tx = outbox.enqueue(transfer("lost-answer", recipient))
        proxy.drop_after_forward("eth_sendRawTransaction")
        with pytest.raises(NodeUnavailableError):
            outbox.process()
        kept = outbox.get(tx.id)
        assert kept.status is TxStatus.PENDING
        assert kept.error is not None
        assert "outcome unknown" in kept.error
        final = outbox.wait(tx.id, timeout_s=20, poll_s=0.05)
        assert final.status is TxStatus.CONFIRMED
        assert w3.eth.get_transaction_count(sender.address) == 1
        assert w3.eth.get_balance(recipient) - before == VALUE
        assert proxy.seen["eth_sendRawTransaction"] == 1
    finally:
        proxy.stop()


@pytest.mark.chain
def test_node_down_keeps_the_intent_and_sends_it_when_back(
    anvil: AnvilNode, dev_keys: list[LocalAccount], store: SqliteOutboxStore
) -> None:
    proxy = FaultyProxy(anvil.url).start()
    try:
        w3 = connect(proxy.url, policy=FAST)
        outbox = Outbox(w3, dev_keys[0], store, policy=OutboxPolicy(confirmations=1))
        tx = outbox.enqueue(transfer("while-down", dev_keys[1].address))
        proxy.stop()
        with pytest.raises(NodeUnavailableError):
            outbox.process()
        assert outbox.get(tx.id).status is TxStatus.PENDING
        proxy.start()
        assert outbox.wait(tx.id, timeout_s=20, poll_s=0.05).status is TxStatus.CONFIRMED
        assert w3.eth.get_transaction_count(dev_keys[0].address) == 1
    finally:
        proxy.stop()


@pytest.mark.chain
def test_stuck_transaction_is_replaced_with_higher_fees_and_only_one_lands(
    anvil_w3: Web3, dev_keys: list[LocalAccount], store: SqliteOutboxStore
) -> None:
    sender, recipient = dev_keys[0], dev_keys[2].address
    before = anvil_w3.eth.get_balance(recipient)
    clock = Clock()
    policy = OutboxPolicy(confirmations=1, bump_after_s=30, bump_percent=20)
    outbox = Outbox(anvil_w3, sender, store, policy=policy, clock=clock)
    rpc(anvil_w3, "evm_setAutomine", False)

    tx = outbox.send(transfer("stuck", recipient))
    assert tx.status is TxStatus.SENT
    clock.now += 10
    assert len(outbox.process()[0].attempts) == 1  # not yet stuck long enough
    clock.now += 25
    bumped = outbox.process()[0]
    assert [a.kind for a in bumped.attempts] == [AttemptKind.ORIGINAL, AttemptKind.BUMP]
    first, second = bumped.attempts
    assert second.max_fee_per_gas >= first.max_fee_per_gas * 120 // 100
    assert second.max_priority_fee_per_gas >= first.max_priority_fee_per_gas * 120 // 100
    pending = rpc(anvil_w3, "txpool_content")["pending"]
    pool = {k.lower(): v for k, v in pending.items()}[sender.address.lower()]
    assert [entry["hash"] for entry in pool.values()] == [second.tx_hash]

    rpc(anvil_w3, "evm_mine")
    rpc(anvil_w3, "evm_setAutomine", True)
    final = outbox.wait(tx.id, timeout_s=20, poll_s=0.05)
    assert final.status is TxStatus.CONFIRMED
    assert final.mined_hash == second.tx_hash
    assert anvil_w3.eth.get_transaction_count(sender.address) == 1
    assert anvil_w3.eth.get_balance(recipient) - before == VALUE


@pytest.mark.chain
def test_cancel_replaces_a_stuck_transaction_with_a_self_transfer(
    anvil_w3: Web3, dev_keys: list[LocalAccount], store: SqliteOutboxStore
) -> None:
    sender, recipient = dev_keys[0], dev_keys[2].address
    before = anvil_w3.eth.get_balance(recipient)
    outbox = Outbox(anvil_w3, sender, store, policy=OutboxPolicy(confirmations=1))
    rpc(anvil_w3, "evm_setAutomine", False)
    tx = outbox.send(transfer("to-cancel", recipient))
    cancelled = outbox.cancel(tx.id)
    assert cancelled.latest_attempt.kind is AttemptKind.CANCEL
    rpc(anvil_w3, "evm_mine")
    rpc(anvil_w3, "evm_setAutomine", True)
    assert outbox.wait(tx.id, timeout_s=20, poll_s=0.05).status is TxStatus.CANCELLED
    assert anvil_w3.eth.get_balance(recipient) == before
    assert anvil_w3.eth.get_transaction_count(sender.address) == 1


@pytest.mark.chain
def test_transaction_reorged_out_is_sent_again_and_lands_once(
    anvil_w3: Web3, dev_keys: list[LocalAccount], store: SqliteOutboxStore
) -> None:
    sender, recipient = dev_keys[7], dev_keys[8].address
    before = anvil_w3.eth.get_balance(recipient)
    outbox = Outbox(anvil_w3, sender, store, policy=OutboxPolicy(confirmations=3))
    tx = outbox.send(transfer("reorged", recipient))
    tx = outbox.process()[0]
    assert tx.status is TxStatus.MINED

    # Replace the block holding our transaction (and the one after) with empty blocks.
    rpc(anvil_w3, "evm_mine")
    rpc(anvil_w3, "anvil_reorg", 2, [])
    assert anvil_w3.eth.get_transaction_count(sender.address) == 0

    again = outbox.process()[0]
    assert again.status is TxStatus.SENT  # back from MINED, and broadcast again
    assert again.mined_hash is None
    assert outbox.process()[0].status is TxStatus.MINED  # automine took the re-sent bytes
    for _ in range(2):
        rpc(anvil_w3, "evm_mine")
    final = outbox.process()[0]
    assert final.status is TxStatus.CONFIRMED
    assert final.mined_hash == tx.mined_hash  # the same signed bytes, not a new transaction
    assert final.block_hash != tx.block_hash
    assert anvil_w3.eth.get_transaction_count(sender.address) == 1
    assert anvil_w3.eth.get_balance(recipient) - before == VALUE


@pytest.mark.chain
def test_nonce_taken_by_another_transaction_marks_ours_dropped_once_confirmed(
    anvil_w3: Web3, dev_keys: list[LocalAccount], store: SqliteOutboxStore
) -> None:
    sender = dev_keys[9]
    outbox = Outbox(anvil_w3, sender, store, policy=OutboxPolicy(confirmations=2))
    outbox.enqueue(transfer("will-be-dropped", dev_keys[1].address))
    anvil_w3.eth.send_transaction(
        {"from": sender.address, "to": dev_keys[2].address, "value": Wei(1)}
    )
    (waiting,) = outbox.process()
    assert waiting.status is TxStatus.PENDING  # the foreign use is not confirmed yet
    rpc(anvil_w3, "evm_mine")
    (dropped,) = outbox.process()
    assert dropped.status is TxStatus.DROPPED
    assert dropped.error is not None
    assert "not sent by this outbox" in dropped.error
    assert anvil_w3.eth.get_transaction_count(sender.address) == 1
    assert outbox.enqueue(transfer("next", dev_keys[1].address)).nonce == 1


def test_outbox_works_on_in_process_pyevm(
    pyevm_w3: Web3, pyevm_keys: list[LocalAccount], tmp_path: Path
) -> None:
    store = SqliteOutboxStore(tmp_path / "outbox.sqlite")
    outbox = Outbox(pyevm_w3, pyevm_keys[0], store, policy=OutboxPolicy(confirmations=1))
    recipient = pyevm_keys[1].address
    before = pyevm_w3.eth.get_balance(recipient)
    tx = outbox.send(transfer("pyevm", recipient))
    final = outbox.wait(tx.id, timeout_s=10, poll_s=0)
    assert final.status is TxStatus.CONFIRMED
    assert pyevm_w3.eth.get_balance(recipient) - before == VALUE
    store.close()


@pytest.mark.chain
def test_contract_call_that_would_revert_is_refused_and_not_stored(
    anvil_w3: Web3,
    anvil_deployment: Deployment,
    dev_keys: list[LocalAccount],
    store: SqliteOutboxStore,
) -> None:
    token = ShotToken.from_deployment(anvil_w3, anvil_deployment)
    poor = dev_keys[6]  # holds no SHOT
    outbox = Outbox(anvil_w3, poor, store)
    with pytest.raises(TransactionRevertedError, match="ERC20InsufficientBalance"):
        outbox.enqueue(token.transfer(dev_keys[7].address, 1).intent("overdraw"))
    assert store.get_by_key(chain_id=31337, sender=poor.address, key="overdraw") is None


@pytest.mark.chain
def test_token_payout_with_a_lost_answer_emits_exactly_one_transfer_event(
    anvil: AnvilNode,
    anvil_deployment: Deployment,
    dev_keys: list[LocalAccount],
    store: SqliteOutboxStore,
) -> None:
    proxy = FaultyProxy(anvil.url).start()
    try:
        w3 = connect(proxy.url, policy=FAST)
        token = ShotToken.from_deployment(w3, anvil_deployment)
        treasury, payee = dev_keys[1], dev_keys[8].address
        outbox = Outbox(w3, treasury, store, policy=OutboxPolicy(confirmations=1))
        tx = outbox.enqueue(token.transfer(payee, 42 * 10**18).intent("epoch-7-payee"))
        proxy.drop_after_forward("eth_sendRawTransaction")
        with pytest.raises(NodeUnavailableError):
            outbox.process()
        # A restarted service builds a new outbox on the same store.
        restarted = Outbox(w3, treasury, store, policy=OutboxPolicy(confirmations=1))
        assert (
            restarted.enqueue(token.transfer(payee, 42 * 10**18).intent("epoch-7-payee")).id
            == tx.id
        )
        assert restarted.wait(tx.id, timeout_s=20, poll_s=0.05).status is TxStatus.CONFIRMED
        events = token.contract.events.Transfer().get_logs(
            from_block=0, argument_filters={"to": payee}
        )
        assert [e["args"]["value"] for e in events] == [42 * 10**18]
        assert token.balance_of(payee) == 42 * 10**18
    finally:
        proxy.stop()


_ENQUEUER = textwrap.dedent(
    """
    import sys
    from eth_account import Account
    from shotbank.chain.outbox import Outbox, SqliteOutboxStore, TxIntent
    from shotbank.chain.rpc import connect

    url, db, key, to, prefix = sys.argv[1:]
    outbox = Outbox(connect(url), Account.from_key(key), SqliteOutboxStore(db))
    for i in range(6):
        outbox.enqueue(TxIntent(key=f"{prefix}-{i}", to=to, value=1, gas=21000))
    """
)


@pytest.mark.chain
def test_two_processes_enqueueing_for_one_sender_get_distinct_nonces(
    anvil: AnvilNode, anvil_w3: Web3, dev_keys: list[LocalAccount], tmp_path: Path
) -> None:
    sender, db = dev_keys[2], tmp_path / "outbox.sqlite"
    SqliteOutboxStore(db).close()
    args = [anvil.url, str(db), sender.key.hex(), dev_keys[3].address]
    workers = [
        subprocess.Popen([sys.executable, "-c", _ENQUEUER, *args, name], stderr=subprocess.PIPE)
        for name in ("a", "b")
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err.decode()
    store = SqliteOutboxStore(db)
    txs = store.open_transactions(chain_id=31337, sender=sender.address)
    assert sorted(tx.nonce for tx in txs) == list(range(12))
    outbox = Outbox(anvil_w3, sender, store, policy=OutboxPolicy(confirmations=1))
    for tx in txs:
        assert outbox.wait(tx.id, timeout_s=20, poll_s=0.05).status is TxStatus.CONFIRMED
    assert anvil_w3.eth.get_transaction_count(sender.address) == 12
    store.close()


@pytest.mark.chain
def test_transaction_refused_by_the_node_is_kept_and_sent_once_possible(
    anvil_w3: Web3, dev_keys: list[LocalAccount], store: SqliteOutboxStore
) -> None:
    broke = Account.from_key(b"\x07" * 32)
    outbox = Outbox(anvil_w3, broke, store, policy=OutboxPolicy(confirmations=1))
    tx = outbox.enqueue(
        TxIntent(key="needs-gas-money", to=dev_keys[0].address, value=1, gas=21_000)
    )
    (refused,) = outbox.process()
    assert refused.status is TxStatus.PENDING
    assert refused.error is not None
    assert "refused" in refused.error
    send_call(anvil_w3, dev_keys[0], ContractCall(to=broke.address, data="0x", value=10**18))
    assert outbox.wait(tx.id, timeout_s=20, poll_s=0.05).status is TxStatus.CONFIRMED
