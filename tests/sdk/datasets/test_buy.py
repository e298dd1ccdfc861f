"""``client.buy`` on a real anvil with the real contracts and a live backend indexing them:
one permit transaction or approve + purchase, waiting until the backend grants the
licence, after which the version downloads with signed requests; the clear refusals (not
for sale, balance short, already licensed, price above ``max_price`` before sending and
while in flight)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import ValidationError
from web3 import Web3

from shotbank.chain.contracts import send_call
from shotbank.client import ClientSettings, ShotbankClient
from shotbank.datasets.client import DatasetVersionSummary
from shotbank.datasets.market import (
    AlreadyLicensedError,
    InsufficientBalanceError,
    LicenceWaitTimeoutError,
    NoRpcUrlError,
    NotForSaleError,
    PriceAboveMaxError,
    PurchaseError,
    format_shot,
)
from tests.backend.conftest import (
    _no_shotbank_environment,
    caller_for,
    closed_port,
    live,
    make_settings,
    upload_settings,
)
from tests.backend.dataset_fixtures import Packed, clips
from tests.backend.live import Caller, LiveServer
from tests.sdk.datasets.market_world import (
    PRICE,
    SHOT,
    Market,
    chain,
    dataset_id,
    deployment,
    freeze,
    mining,
    operator,
    rpc,
    server,
    wait_for_listing,
)

__all__ = [
    "_no_shotbank_environment",
    "caller_for",
    "chain",
    "clips",
    "closed_port",
    "deployment",
    "live",
    "make_settings",
    "operator",
    "server",
    "upload_settings",
]


@pytest.fixture
def listed(
    server: LiveServer,
    caller_for: Callable[..., Caller],
    operator: LocalAccount,
    clips: list[bytes],
    chain: Market,
) -> Packed:
    """A ready version priced at ``PRICE``, listed on chain and indexed as ``listed``."""
    packed = freeze(server, caller_for, operator, clips, price=PRICE)
    wait_for_listing(server, chain.w3, packed, "listed", price=PRICE, listed=True)
    return packed


def _buyer(chain: Market, shot: int) -> LocalAccount:
    account: LocalAccount = Account.create()
    chain.fund(account, shot)
    return account


def test_buy_with_a_permit_is_one_transaction_waits_for_access_and_the_download_works(
    server: LiveServer, listed: Packed, chain: Market, anvil_w3: Web3, tmp_path: Path
) -> None:
    buyer = _buyer(chain, PRICE + SHOT)
    nonce_before = anvil_w3.eth.get_transaction_count(buyer.address)
    # A client with no wallet and no session: buy's account= pays, and the client
    # adopts it, so the download that follows is signed by the licence holder.
    with ShotbankClient(server.url, rpc_url=chain_url(anvil_w3)) as client:
        version = client.version(dataset_id(listed), 1)
        with mining(anvil_w3):
            licence = client.buy(version, account=buyer, progress=True, timeout=60)
        assert client.account is buyer
        assert (licence.version_id, licence.buyer, licence.price) == (
            listed.version_id,
            buyer.address,
            PRICE,
        )
        assert licence.contributor_share + licence.validator_share + licence.treasury_share == PRICE
        assert (licence.dataset_id, licence.number) == (dataset_id(listed), 1)
        # One transaction (the permit rode along), the price paid and nothing more.
        assert anvil_w3.eth.get_transaction_count(buyer.address) == nonce_before + 1
        assert chain.token.balance_of(buyer.address) == SHOT
        assert chain.market.has_licence(buyer.address, listed.version_id)
        assert client.licences() == [licence]
        # No session: the download is made of signed requests.
        assert client.token is None
        assert client.signs_requests
        report = version.download(tmp_path, workers=3, progress=False)
        assert report.shards == len(listed.index["shards"])
        for entry in listed.index["shards"]:
            assert (tmp_path / entry["name"]).read_bytes() == (
                listed.folder / entry["name"]
            ).read_bytes()

        with pytest.raises(AlreadyLicensedError, match=f"{buyer.address} already holds"):
            client.buy(version, progress=False)
    assert chain.token.balance_of(buyer.address) == SHOT


def chain_url(w3: Web3) -> str:
    endpoint: str = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    return endpoint


def test_buy_with_approve_then_purchase_from_a_signed_in_client(
    server: LiveServer, listed: Packed, chain: Market, anvil_w3: Web3, tmp_path: Path
) -> None:
    buyer = _buyer(chain, PRICE)
    with ShotbankClient(server.url, rpc_url=chain_url(anvil_w3)) as client:
        client.sign_in(buyer)
        summary = client.version(dataset_id(listed), 1).summary
        with mining(anvil_w3):
            licence = client.buy(summary, permit=False, progress=False, timeout=60)
        assert (licence.buyer, licence.version_id) == (buyer.address, listed.version_id)
        # approve + purchase: two transactions, the allowance spent exactly.
        assert anvil_w3.eth.get_transaction_count(buyer.address) == 2
        assert chain.token.allowance(buyer.address, chain.market.address) == 0
        assert chain.token.balance_of(buyer.address) == 0
        assert client.token is not None
        assert client.licences() == [licence]
        client.version(dataset_id(listed), 1).download(tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.glob("shard-*")) == sorted(
        entry["name"] for entry in listed.index["shards"]
    )


def test_buy_refuses_an_unpriced_version_without_touching_the_chain(
    server: LiveServer,
    caller_for: Callable[..., Caller],
    operator: LocalAccount,
    clips: list[bytes],
    chain: Market,
    anvil_w3: Web3,
) -> None:
    packed = freeze(server, caller_for, operator, clips, price=None)
    buyer = _buyer(chain, PRICE)
    with ShotbankClient(server.url, account=buyer, rpc_url=chain_url(anvil_w3)) as client:
        version = client.version(dataset_id(packed), 1)
        assert version.summary.listing is not None
        assert version.summary.listing.status == "unpriced"
        with pytest.raises(NotForSaleError, match="has no price: it is not for sale"):
            client.buy(version, progress=False)
    assert anvil_w3.eth.get_transaction_count(buyer.address) == 0


def test_buy_refuses_a_version_taken_off_sale(
    server: LiveServer, listed: Packed, chain: Market, anvil_w3: Web3
) -> None:
    buyer = _buyer(chain, PRICE)
    send_call(anvil_w3, chain.lister, chain.market.set_version_listed(listed.version_id, False))
    wait_for_listing(server, anvil_w3, listed, "unlisted", listed=False)
    with (
        ShotbankClient(server.url, account=buyer, rpc_url=chain_url(anvil_w3)) as client,
        pytest.raises(NotForSaleError, match="taken off sale"),
    ):
        client.buy(client.version(dataset_id(listed), 1), progress=False)
    assert anvil_w3.eth.get_transaction_count(buyer.address) == 0


def test_buy_with_too_little_shot_says_how_much_is_missing_and_sends_nothing(
    server: LiveServer, listed: Packed, chain: Market, anvil_w3: Web3
) -> None:
    buyer = _buyer(chain, PRICE - SHOT // 4)
    with (
        ShotbankClient(server.url, account=buyer, rpc_url=chain_url(anvil_w3)) as client,
        pytest.raises(InsufficientBalanceError) as caught,
    ):
        client.buy(client.version(dataset_id(listed), 1), progress=False)
    assert caught.value.shortfall == SHOT // 4
    assert f"{format_shot(SHOT // 4)} short" in str(caught.value)
    assert "0.25 SHOT short" in str(caught.value)
    assert anvil_w3.eth.get_transaction_count(buyer.address) == 0


def test_a_price_above_max_is_refused_before_sending_and_an_unindexed_purchase_times_out(
    server: LiveServer, listed: Packed, chain: Market, anvil_w3: Web3
) -> None:
    buyer = _buyer(chain, 10 * PRICE)
    with ShotbankClient(server.url, account=buyer, rpc_url=chain_url(anvil_w3)) as client:
        version = client.version(dataset_id(listed), 1)
        with pytest.raises(PriceAboveMaxError, match="nothing was sent") as caught:
            client.buy(version, max_price=PRICE - 1, progress=False)
        assert (caught.value.price, caught.value.max_price, caught.value.in_flight) == (
            PRICE,
            PRICE - 1,
            False,
        )
        assert anvil_w3.eth.get_transaction_count(buyer.address) == 0

        # Nothing mines after the purchase: it never gets the backend's confirmations.
        with pytest.raises(LicenceWaitTimeoutError, match="has not shown the licence") as late:
            client.buy(version, max_price=PRICE, progress=False, timeout=3)
    receipt = anvil_w3.eth.get_transaction_receipt(late.value.tx_hash)  # type: ignore[arg-type]
    assert receipt["status"] == 1
    assert chain.market.has_licence(buyer.address, listed.version_id)
    assert chain.token.balance_of(buyer.address) == 9 * PRICE


def _pending(w3: Web3) -> int:
    status = rpc(w3, "txpool_status")
    return int(status["pending"], 16)


def test_a_price_raised_while_the_purchase_is_in_flight_reverts_with_a_clear_error(
    server: LiveServer, listed: Packed, chain: Market, anvil_w3: Web3
) -> None:
    w3 = anvil_w3
    buyer = _buyer(chain, 10 * PRICE)
    raised = 2 * PRICE
    outcome: list[BaseException] = []
    # Transactions wait in the pool until a block is mined by hand: the price change is
    # slipped in ahead of the purchase (a higher tip) after the buyer has checked it.
    rpc(w3, "evm_setAutomine", False)
    try:
        with ShotbankClient(server.url, account=buyer, rpc_url=chain_url(w3)) as client:
            version = client.version(dataset_id(listed), 1)

            def attempt() -> None:
                try:
                    client.buy(version, progress=False, timeout=60)
                except BaseException as exc:
                    outcome.append(exc)

            thread = threading.Thread(target=attempt)
            thread.start()
            deadline = time.monotonic() + 20
            while _pending(w3) == 0:
                assert time.monotonic() < deadline, "the purchase never reached the pool"
                time.sleep(0.02)
            call = chain.market.set_version_price(listed.version_id, raised)
            tx: dict[str, Any] = {
                "to": call.to,
                "data": call.data,
                "value": 0,
                "gas": 200_000,
                "type": 2,
                "chainId": 31337,
                "nonce": w3.eth.get_transaction_count(chain.lister.address, "pending"),
                "maxPriorityFeePerGas": 50 * 10**9,
                "maxFeePerGas": 100 * 10**9,
            }
            w3.eth.send_raw_transaction(chain.lister.sign_transaction(tx).raw_transaction)
            rpc(w3, "evm_mine")
            thread.join(timeout=30)
            assert not thread.is_alive()
    finally:
        rpc(w3, "evm_setAutomine", True)
    [error] = outcome
    assert isinstance(error, PriceAboveMaxError), repr(error)
    assert (error.price, error.max_price, error.in_flight) == (raised, PRICE, True)
    assert "while the purchase was in flight" in str(error)
    assert "DatasetMarketPriceAboveMax" in str(error)
    assert chain.token.balance_of(buyer.address) == 10 * PRICE
    assert not chain.market.has_licence(buyer.address, listed.version_id)


def test_the_rpc_url_comes_from_shotbank_rpc_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOTBANK_RPC_URL", "http://127.0.0.1:8545/")
    with ShotbankClient.from_settings() as client:
        assert client.rpc_url == "http://127.0.0.1:8545"
    with ShotbankClient.from_settings(rpc_url="http://other.test:1") as client:
        assert client.rpc_url == "http://other.test:1"
    monkeypatch.setenv("SHOTBANK_RPC_URL", "ws://127.0.0.1:8545")
    with pytest.raises(ValidationError, match="http"):
        ClientSettings()


def test_buy_without_an_rpc_url_or_a_wallet_says_what_to_set(tmp_path: Path) -> None:
    summary = DatasetVersionSummary.model_validate(
        {
            "dataset_id": "a" * 32,
            "number": 1,
            "status": "ready",
            "version_hash": "b" * 64,
            "samples": 1,
            "contributors": 1,
            "shard_bytes": 1024,
            "created_at": "2026-11-22T00:00:00Z",
        }
    )
    # Nothing is asked of the (unreachable) backend before the settings are checked.
    with (
        ShotbankClient("http://127.0.0.1:9", account=Account.create()) as client,
        pytest.raises(NoRpcUrlError, match="SHOTBANK_RPC_URL"),
    ):
        client.buy(summary, progress=False)
    with (
        ShotbankClient("http://127.0.0.1:9", rpc_url="http://127.0.0.1:9") as client,
        pytest.raises(PurchaseError, match="no wallet to buy with"),
    ):
        client.buy(summary, progress=False)
