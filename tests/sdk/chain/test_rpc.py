"""RPC faults through a real proxy in front of a real anvil: retries, no retried sends."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount

from shotbank.chain.devnode import AnvilNode
from shotbank.chain.errors import ChainIdMismatchError, NodeUnavailableError, RpcError
from shotbank.chain.rpc import READ_METHODS, RetryPolicy, connect

from .faulty_proxy import FaultyProxy

FAST = RetryPolicy(attempts=4, backoff_s=0.01, max_backoff_s=0.05, timeout_s=5)


@pytest.fixture
def proxy(anvil: AnvilNode) -> Iterator[FaultyProxy]:
    proxy = FaultyProxy(anvil.url).start()
    yield proxy
    proxy.stop()


def test_send_is_not_on_the_retry_allow_list() -> None:
    assert "eth_sendRawTransaction" not in READ_METHODS
    assert "eth_sendTransaction" not in READ_METHODS
    assert {"eth_call", "eth_getLogs", "eth_getBlockByNumber", "eth_chainId"} <= READ_METHODS


@pytest.mark.chain
def test_reads_are_retried_through_transient_http_errors(proxy: FaultyProxy) -> None:
    w3 = connect(proxy.url, policy=FAST)
    proxy.fail(3, status=503, method="eth_blockNumber")
    assert w3.eth.block_number == 0
    assert proxy.seen["eth_blockNumber"] == 4


@pytest.mark.chain
def test_reads_give_up_with_node_unavailable_after_the_allowed_attempts(proxy: FaultyProxy) -> None:
    w3 = connect(proxy.url, policy=FAST)
    proxy.fail(10, status=502, method="eth_getBlockByNumber")
    with pytest.raises(NodeUnavailableError, match="eth_getBlockByNumber"):
        w3.eth.get_block("latest")
    assert proxy.seen["eth_getBlockByNumber"] == FAST.attempts


@pytest.mark.chain
def test_client_errors_are_not_retried(proxy: FaultyProxy) -> None:
    w3 = connect(proxy.url, policy=FAST)
    proxy.fail(1, status=403, method="eth_chainId")
    with pytest.raises(RpcError, match="HTTP 403") as caught:
        w3.eth.chain_id  # noqa: B018
    assert not isinstance(caught.value, NodeUnavailableError)
    assert proxy.seen["eth_chainId"] == 1


@pytest.mark.chain
def test_raw_send_is_tried_once_and_reports_an_unknown_outcome(
    proxy: FaultyProxy, dev_keys: list[LocalAccount]
) -> None:
    w3 = connect(proxy.url, policy=FAST)
    sender = dev_keys[0]
    signed = sender.sign_transaction(
        {
            "type": 2,
            "chainId": 31337,
            "nonce": 0,
            "to": dev_keys[1].address,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    proxy.drop_after_forward("eth_sendRawTransaction")
    with pytest.raises(NodeUnavailableError) as caught:
        w3.eth.send_raw_transaction(signed.raw_transaction)
    assert isinstance(caught.value, ConnectionError)
    assert proxy.seen["eth_sendRawTransaction"] == 1
    # The node did get it: the lost answer was the only failure.
    assert w3.eth.get_transaction_receipt(signed.hash)["status"] == 1


@pytest.mark.chain
def test_node_down_is_a_clear_fast_error_and_recovers_when_back(proxy: FaultyProxy) -> None:
    w3 = connect(proxy.url, policy=FAST)
    assert w3.eth.chain_id == 31337
    proxy.stop()
    started = time.monotonic()
    with pytest.raises(NodeUnavailableError, match=f"127.0.0.1:{proxy.port}") as caught:
        w3.eth.block_number  # noqa: B018
    assert caught.value.method == "eth_blockNumber"
    assert time.monotonic() - started < 3
    proxy.start()
    assert w3.eth.block_number == 0


@pytest.mark.chain
def test_connect_checks_the_chain_id(anvil: AnvilNode) -> None:
    with pytest.raises(ChainIdMismatchError, match="31337"):
        connect(anvil.url, expected_chain_id=1, policy=FAST)
