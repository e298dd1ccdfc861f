"""The outbox after a reorg deeper than its confirmations: a final transaction whose block
is gone is sent again (the same signed bytes, in nonce order) and lands exactly once;
one whose block stayed canonical is left alone; ``reorg_watch_blocks`` bounds the watch."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.middleware import Web3Middleware
from web3.types import RPCEndpoint

from shotbank.chain.outbox import (
    Outbox,
    OutboxPolicy,
    OutboxTx,
    SqliteOutboxStore,
    TxIntent,
    TxStatus,
)

VALUE = 123_456_789


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    """A raw JSON-RPC call (anvil's test methods; not seen by :func:`record_requests`)."""
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response
    return response.get("result")


def record_requests(w3: Web3) -> list[tuple[str, Any]]:
    """Every JSON-RPC request ``w3`` makes from now on, in order, as ``(method, params)``."""
    seen: list[tuple[str, Any]] = []

    class Recorder(Web3Middleware):
        def request_processor(self, method: RPCEndpoint, params: Any) -> Any:
            seen.append((str(method), params))
            return method, params

    w3.middleware_onion.add(Recorder, name="recorder")
    return seen


def transfer(key: str, to: str) -> TxIntent:
    return TxIntent(key=key, to=to, value=VALUE)


def block_hash(w3: Web3, number: int) -> str:
    return "0x" + bytes(w3.eth.get_block(number)["hash"]).hex()


def confirmed(outbox: Outbox, intent: TxIntent) -> OutboxTx:
    """``intent`` sent and final (anvil automines; one confirmation)."""
    tx = outbox.wait(outbox.enqueue(intent).id, timeout_s=20, poll_s=0.05)
    assert tx.status is TxStatus.CONFIRMED
    return tx


def switch_to_longer_branch(w3: Web3, fork: str, *, extra: int = 2) -> None:
    """Revert to snapshot ``fork`` and mine empty blocks past the old head: the blocks
    after the fork are replaced, and anvil forgets their transactions (no receipt, nothing
    in its pool), so only the outbox can bring them back."""
    old_head = w3.eth.block_number
    assert rpc(w3, "evm_revert", fork) is True
    for _ in range(old_head - w3.eth.block_number + extra):
        rpc(w3, "evm_mine")
    assert rpc(w3, "txpool_content") == {"pending": {}, "queued": {}}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteOutboxStore]:
    store = SqliteOutboxStore(tmp_path / "outbox.sqlite")
    yield store
    store.close()


@pytest.mark.chain
def test_a_final_transaction_a_deeper_reorg_took_away_is_sent_again_and_lands_once(
    anvil_w3: Web3,
    dev_keys: list[LocalAccount],
    store: SqliteOutboxStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender, recipient = dev_keys[7], dev_keys[8].address
    before = anvil_w3.eth.get_balance(recipient)
    outbox = Outbox(anvil_w3, sender, store, policy=OutboxPolicy(confirmations=1))
    fork = rpc(anvil_w3, "evm_snapshot")
    final = confirmed(outbox, transfer("deep", recipient))
    assert final.block_hash == block_hash(anvil_w3, final.block_number or 0)

    switch_to_longer_branch(anvil_w3, fork)
    assert anvil_w3.eth.get_transaction_count(sender.address) == 0
    assert rpc(anvil_w3, "eth_getTransactionReceipt", final.mined_hash) is None

    with caplog.at_level(logging.WARNING, logger="shotbank.chain.outbox"):
        [again] = outbox.process()
    assert "reorged out after it was final (deeper than 1 confirmations)" in caplog.text
    assert (again.id, again.status, again.mined_hash, again.block_hash) == (
        final.id,
        TxStatus.SENT,
        None,
        None,
    )
    assert again.attempts == final.attempts, "the same signed bytes, no fee bump"
    [landed] = outbox.process()
    assert landed.status is TxStatus.CONFIRMED
    assert landed.mined_hash == final.mined_hash
    assert landed.block_number is not None
    assert landed.block_hash == block_hash(anvil_w3, landed.block_number) != final.block_hash
    assert landed.error is None
    # Exactly once: the nonce is used once, the value moved once, and further passes
    # (watching a block that is canonical now) change nothing.
    assert outbox.process() == []
    assert outbox.get(final.id) == landed
    assert anvil_w3.eth.get_transaction_count(sender.address) == 1
    assert anvil_w3.eth.get_balance(recipient) - before == VALUE


@pytest.mark.chain
def test_reorged_out_final_transactions_are_sent_again_in_nonce_order_before_a_newer_one(
    anvil_w3: Web3, dev_keys: list[LocalAccount], store: SqliteOutboxStore
) -> None:
    sender, recipient = dev_keys[5], dev_keys[6].address
    before = anvil_w3.eth.get_balance(recipient)
    outbox = Outbox(anvil_w3, sender, store, policy=OutboxPolicy(confirmations=1))
    fork = rpc(anvil_w3, "evm_snapshot")
    first = confirmed(outbox, transfer("first", recipient))
    second = confirmed(outbox, transfer("second", recipient))
    assert (first.nonce, second.nonce) == (0, 1)
    assert (first.block_number or 0) < (second.block_number or 0)

    switch_to_longer_branch(anvil_w3, fork)
    assert anvil_w3.eth.get_transaction_count(sender.address) == 0
    # Enqueued after the reorg: it takes the next stored nonce (2), behind a gap that only
    # the re-sent transactions can close.
    later = outbox.enqueue(transfer("later", recipient))
    assert later.nonce == 2

    requests = record_requests(anvil_w3)
    outbox.process()
    sent = [params[0] for method, params in requests if method == "eth_sendRawTransaction"]
    assert sent == [first.attempts[0].raw, second.attempts[0].raw, later.attempts[0].raw]
    landed = [outbox.wait(tx.id, timeout_s=20, poll_s=0.05) for tx in (first, second, later)]
    assert [tx.status for tx in landed] == [TxStatus.CONFIRMED] * 3
    assert [tx.mined_hash for tx in landed] == [
        first.mined_hash,
        second.mined_hash,
        later.attempts[0].tx_hash,
    ]
    assert anvil_w3.eth.get_transaction_count(sender.address) == 3
    assert anvil_w3.eth.get_balance(recipient) - before == 3 * VALUE


@pytest.mark.chain
def test_a_final_transaction_whose_block_stayed_canonical_is_never_touched(
    anvil_w3: Web3, dev_keys: list[LocalAccount], store: SqliteOutboxStore
) -> None:
    sender, recipient = dev_keys[3], dev_keys[4].address
    outbox = Outbox(anvil_w3, sender, store, policy=OutboxPolicy(confirmations=1))
    final = confirmed(outbox, transfer("kept", recipient))
    for _ in range(4):
        rpc(anvil_w3, "evm_mine")
    # A reorg deeper than the confirmations, but above the transaction's block.
    rpc(anvil_w3, "anvil_reorg", 3, [])
    assert final.block_hash == block_hash(anvil_w3, final.block_number or 0)

    requests = record_requests(anvil_w3)
    assert outbox.process() == []
    assert outbox.get(final.id) == final  # not even ``updated_at`` moved
    methods = [method for method, _params in requests]
    assert methods.count("eth_getBlockByNumber") == 1
    assert "eth_getTransactionReceipt" not in methods, "a canonical block costs no receipt"
    assert "eth_sendRawTransaction" not in methods


@pytest.mark.chain
def test_a_final_transaction_mined_again_in_another_block_is_confirmed_there(
    anvil_w3: Web3, dev_keys: list[LocalAccount], store: SqliteOutboxStore
) -> None:
    sender, recipient = dev_keys[1], dev_keys[2].address
    before = anvil_w3.eth.get_balance(recipient)
    outbox = Outbox(anvil_w3, sender, store, policy=OutboxPolicy(confirmations=1))
    final = confirmed(outbox, transfer("moved", recipient))
    rpc(anvil_w3, "evm_mine")
    # The new branch holds the very same signed transaction, one block later.
    rpc(anvil_w3, "anvil_reorg", 2, [[final.attempts[0].raw, 1]])
    receipt = anvil_w3.eth.get_transaction_receipt(HexBytes(final.attempts[0].tx_hash))
    moved_to = "0x" + bytes(receipt["blockHash"]).hex()
    assert moved_to != final.block_hash

    requests = record_requests(anvil_w3)
    [again] = outbox.process()
    assert (again.status, again.mined_hash, again.block_number, again.block_hash) == (
        TxStatus.CONFIRMED,
        final.mined_hash,
        receipt["blockNumber"],
        moved_to,
    )
    assert "eth_sendRawTransaction" not in [method for method, _params in requests]
    assert anvil_w3.eth.get_transaction_count(sender.address) == 1
    assert anvil_w3.eth.get_balance(recipient) - before == VALUE


@pytest.mark.chain
@pytest.mark.parametrize("watch", [0, 2])
def test_no_final_transaction_is_watched_with_reorg_watch_off_or_past_its_window(
    anvil_w3: Web3, dev_keys: list[LocalAccount], store: SqliteOutboxStore, watch: int
) -> None:
    sender, recipient = dev_keys[9], dev_keys[8].address
    fork = rpc(anvil_w3, "evm_snapshot")
    policy = OutboxPolicy(confirmations=1, reorg_watch_blocks=watch)
    outbox = Outbox(anvil_w3, sender, store, policy=policy)
    final = confirmed(outbox, transfer("unwatched", recipient))

    # Three blocks past the old head: the transaction's block is 3 below the new head.
    switch_to_longer_branch(anvil_w3, fork, extra=3)
    assert anvil_w3.eth.block_number - (final.block_number or 0) == 3
    assert outbox.process() == []
    assert outbox.get(final.id) == final  # stuck as before this fix: final, nonce gone
    assert anvil_w3.eth.get_transaction_count(sender.address) == 0

    # Watching far enough back brings it home.
    watching = Outbox(anvil_w3, sender, store, policy=OutboxPolicy(confirmations=1))
    [again] = watching.process()
    assert again.status is TxStatus.SENT
    assert watching.wait(final.id, timeout_s=20, poll_s=0.05).status is TxStatus.CONFIRMED
    assert anvil_w3.eth.get_transaction_count(sender.address) == 1
