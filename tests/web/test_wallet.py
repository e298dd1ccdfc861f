"""The injected test wallet on its own, in Chromium on a plain page (no app): what the
browser tests rely on it to do, proven here so that an app failure is the app's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Page
from web3 import Web3

from shotbank.chain.devnode import DEV_CHAIN_ID
from tests.web.conftest import ConsoleLog, ContextFactory
from tests.web.wallet import (
    MAINNET_CHAIN_ID,
    InjectedWallet,
    install_wallets,
    recover_personal_sign,
)

PLAIN_URL = "http://wallet.test/"
PLAIN_HTML = "<!doctype html><html lang=en><title>Plain</title><h1>Plain page</h1></html>"
DEV_CHAIN_HEX = hex(DEV_CHAIN_ID)

#: Calls ``window.ethereum`` (or the announced provider named ``wallet``) and returns
#: ``{result}`` or the error's ``{code, message}``.
REQUEST_JS = """async ([method, params, wallet]) => {
  let provider = window.ethereum;
  if (wallet !== null) {
    const found = [];
    window.addEventListener("eip6963:announceProvider", (e) => found.push(e.detail));
    window.dispatchEvent(new Event("eip6963:requestProvider"));
    provider = found.find((d) => d.info.name === wallet).provider;
  }
  try {
    return { result: await provider.request({ method, params }) };
  } catch (error) {
    return { code: error.code, message: error.message };
  }
}"""

#: Collects the EIP-6963 announcements a page receives after asking for them.
ANNOUNCEMENTS_JS = """() => {
  const found = [];
  window.addEventListener("eip6963:announceProvider", (e) => found.push(e.detail));
  window.dispatchEvent(new Event("eip6963:requestProvider"));
  return found.map((d) => ({
    ...d.info,
    isWindowEthereum: d.provider === window.ethereum,
    frozen: Object.isFrozen(d) && Object.isFrozen(d.info),
  }));
}"""

PageFactory = Callable[..., Page]


@pytest.fixture
def plain_page(open_context: ContextFactory) -> PageFactory:
    """A plain page (no app) with ``wallets`` injected; options go to ``install_wallets``."""

    def factory(wallets: list[InjectedWallet], **options: Any) -> Page:
        context = open_context()
        context.route(
            "http://wallet.test/**",
            lambda route: route.fulfill(body=PLAIN_HTML, content_type="text/html"),
        )
        install_wallets(context, wallets, **options)
        page = context.new_page()
        page.goto(PLAIN_URL)
        return page

    return factory


def request(page: Page, method: str, params: Any = None, wallet: str | None = None) -> Any:
    """``{result}`` or ``{code, message}`` of one provider request made by the page."""
    return page.evaluate(REQUEST_JS, [method, [] if params is None else params, wallet])


def connected(page: Page) -> None:
    """Connect the page to ``window.ethereum`` (as a dapp does first)."""
    assert "result" in request(page, "eth_requestAccounts")


def test_wallet_is_announced_through_eip6963_and_is_window_ethereum(
    plain_page: PageFactory, dev_keys: list[LocalAccount]
) -> None:
    wallet = InjectedWallet(account=dev_keys[1])
    page = plain_page([wallet])

    [info] = page.evaluate(ANNOUNCEMENTS_JS)

    assert info["name"] == "Shotbank Test Wallet"
    assert info["rdns"] == "dev.shotbank.testwallet"
    assert info["uuid"] == wallet.uuid
    assert info["icon"].startswith("data:image/svg+xml;base64,")
    assert info["isWindowEthereum"] is True
    assert info["frozen"] is True


def test_two_wallets_are_announced_and_each_answers_with_its_own_key(
    plain_page: PageFactory, dev_keys: list[LocalAccount]
) -> None:
    first = InjectedWallet(account=dev_keys[1])
    second = InjectedWallet(account=dev_keys[2], name="Second Test Wallet", rdns="dev.second")
    page = plain_page([first, second])

    names = [info["name"] for info in page.evaluate(ANNOUNCEMENTS_JS)]
    answer = request(page, "eth_requestAccounts", wallet="Second Test Wallet")

    assert names == ["Shotbank Test Wallet", "Second Test Wallet"]
    assert answer == {"result": [second.address]}
    assert first.calls == []


def test_unannounced_wallet_is_only_window_ethereum(
    plain_page: PageFactory, dev_keys: list[LocalAccount]
) -> None:
    page = plain_page([InjectedWallet(account=dev_keys[1], announce=False)])

    assert page.evaluate(ANNOUNCEMENTS_JS) == []
    assert request(page, "eth_chainId") == {"result": DEV_CHAIN_HEX}


def test_no_window_ethereum_when_asked_for_none(
    plain_page: PageFactory, dev_keys: list[LocalAccount]
) -> None:
    page = plain_page([InjectedWallet(account=dev_keys[1])], window_ethereum=None)

    assert page.evaluate("() => window.ethereum === undefined") is True
    assert len(page.evaluate(ANNOUNCEMENTS_JS)) == 1


def test_accounts_are_shared_only_after_eth_request_accounts(
    plain_page: PageFactory, dev_keys: list[LocalAccount]
) -> None:
    wallet = InjectedWallet(account=dev_keys[1])
    page = plain_page([wallet])
    page.evaluate(
        "() => { window.seen = []; window.ethereum.on('accountsChanged', (a) => seen.push(a)); }"
    )

    before = request(page, "eth_accounts")
    granted = request(page, "eth_requestAccounts")
    after = request(page, "eth_accounts")

    assert before == {"result": []}
    assert granted == after == {"result": [wallet.address]}
    assert page.evaluate("() => window.seen") == [[wallet.address]]
    assert wallet.methods_called() == ["eth_accounts", "eth_requestAccounts", "eth_accounts"]


def test_personal_sign_is_signed_by_the_wallet_key(
    plain_page: PageFactory, dev_keys: list[LocalAccount]
) -> None:
    wallet = InjectedWallet(account=dev_keys[1])
    page = plain_page([wallet])
    connected(page)
    message = "shotbank.test wants you to sign in\n\nNonce: abc123"
    # As viem sends it: the UTF-8 bytes as 0x-hex.
    as_hex = "0x" + message.encode().hex()

    answer = request(page, "personal_sign", [as_hex, wallet.address.lower()])

    assert recover_personal_sign(message, answer["result"]) == wallet.address


def test_personal_sign_refuses_an_address_the_wallet_does_not_hold(
    plain_page: PageFactory, dev_keys: list[LocalAccount]
) -> None:
    page = plain_page([InjectedWallet(account=dev_keys[1])])
    connected(page)

    answer = request(page, "personal_sign", ["0x6869", dev_keys[2].address])

    assert answer["code"] == 4100


def test_typed_data_v4_is_signed_by_the_wallet_key(
    plain_page: PageFactory, dev_keys: list[LocalAccount]
) -> None:
    wallet = InjectedWallet(account=dev_keys[1])
    page = plain_page([wallet])
    connected(page)
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "value", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": {"name": "Shot", "chainId": DEV_CHAIN_ID},
        "message": {"owner": wallet.address, "value": "1000"},
    }
    # viem sends the typed data as a JSON string.
    answer = page.evaluate(
        "async ([a, t]) => window.ethereum.request("
        "{method: 'eth_signTypedData_v4', params: [a, JSON.stringify(t)]})",
        [wallet.address, typed],
    )

    signer = Account.recover_message(encode_typed_data(full_message=typed), signature=answer)
    assert signer == wallet.address


def test_rejects_only_the_next_signature_with_4001(
    plain_page: PageFactory, dev_keys: list[LocalAccount]
) -> None:
    wallet = InjectedWallet(account=dev_keys[1])
    page = plain_page([wallet])
    connected(page)
    wallet.reject_next_signature()

    rejected = request(page, "personal_sign", ["0x6869", wallet.address])
    signed = request(page, "personal_sign", ["0x6869", wallet.address])

    assert rejected["code"] == 4001
    assert "rejected" in rejected["message"]
    assert recover_personal_sign("hi", signed["result"]) == wallet.address


def test_switching_to_a_known_chain_emits_chain_changed(
    plain_page: PageFactory, dev_keys: list[LocalAccount]
) -> None:
    wallet = InjectedWallet(account=dev_keys[1], chain_id=MAINNET_CHAIN_ID)
    page = plain_page([wallet])
    page.evaluate(
        "() => { window.seen = []; window.ethereum.on('chainChanged', (c) => seen.push(c)); }"
    )

    before = request(page, "eth_chainId")
    switched = request(page, "wallet_switchEthereumChain", [{"chainId": DEV_CHAIN_HEX}])
    after = request(page, "eth_chainId")

    assert before == {"result": "0x1"}
    assert switched == {"result": None}
    assert after == {"result": DEV_CHAIN_HEX}
    assert page.evaluate("() => window.seen") == [DEV_CHAIN_HEX]


def test_an_unknown_chain_answers_4902_until_it_is_added(
    plain_page: PageFactory, dev_keys: list[LocalAccount]
) -> None:
    wallet = InjectedWallet(account=dev_keys[1], chain_id=MAINNET_CHAIN_ID, knows_dev_chain=False)
    page = plain_page([wallet])
    chain = {
        "chainId": DEV_CHAIN_HEX,
        "chainName": "Shotbank dev",
        "rpcUrls": ["http://127.0.0.1:8545"],
        "nativeCurrency": {"name": "Ether", "symbol": "ETH", "decimals": 18},
    }

    unknown = request(page, "wallet_switchEthereumChain", [{"chainId": DEV_CHAIN_HEX}])
    no_rpc = request(page, "wallet_addEthereumChain", [{**chain, "rpcUrls": []}])
    added = request(page, "wallet_addEthereumChain", [chain])

    assert unknown["code"] == 4902
    assert no_rpc["code"] == -32602
    assert added == {"result": None}
    assert request(page, "eth_chainId") == {"result": DEV_CHAIN_HEX}
    assert wallet.added_chains == [chain]


def test_an_unsupported_method_answers_4200(
    plain_page: PageFactory, dev_keys: list[LocalAccount]
) -> None:
    page = plain_page([InjectedWallet(account=dev_keys[1])])

    assert request(page, "eth_sign", ["0x00", "0x6869"])["code"] == 4200


@pytest.mark.chain
def test_send_transaction_is_signed_and_mined_on_the_dev_node(
    plain_page: PageFactory, dev_keys: list[LocalAccount], anvil_w3: Web3
) -> None:
    wallet = InjectedWallet(account=dev_keys[1], node=anvil_w3)
    page = plain_page([wallet])
    connected(page)
    recipient = Account.create().address
    tx = {"from": wallet.address, "to": recipient, "value": hex(12345)}

    sent = request(page, "eth_sendTransaction", [tx])
    receipt = anvil_w3.eth.wait_for_transaction_receipt(sent["result"], timeout=10)
    read = request(page, "eth_getBalance", [recipient, "latest"])

    assert receipt["status"] == 1
    assert receipt["from"] == wallet.address
    assert anvil_w3.eth.get_balance(recipient) == 12345
    assert read == {"result": hex(12345)}


@pytest.mark.chain
def test_send_transaction_on_another_chain_fails_4901(
    plain_page: PageFactory, dev_keys: list[LocalAccount], anvil_w3: Web3
) -> None:
    wallet = InjectedWallet(account=dev_keys[1], node=anvil_w3, chain_id=MAINNET_CHAIN_ID)
    page = plain_page([wallet])
    connected(page)

    sent = request(page, "eth_sendTransaction", [{"from": wallet.address, "to": wallet.address}])

    assert sent["code"] == 4901
    assert anvil_w3.eth.get_transaction_count(dev_keys[1].address) == 0


def test_console_errors_and_uncaught_errors_are_collected(
    plain_page: PageFactory, dev_keys: list[LocalAccount], console: ConsoleLog
) -> None:
    page = plain_page([InjectedWallet(account=dev_keys[1])])

    page.evaluate("() => { console.warn('careful'); console.error('broken'); }")
    page.evaluate("() => setTimeout(() => { throw new Error('thrown later'); })")
    page.wait_for_timeout(100)

    assert console.unexpected() == [
        "console.warning: careful",
        "console.error: broken",
        "uncaught: thrown later",
    ]
    # Expected here; the fixture would otherwise fail the test at teardown.
    console.allow("careful|broken|thrown later")


def test_a_chain_switched_in_the_wallet_reaches_the_page_as_chain_changed(
    plain_page: PageFactory, dev_keys: list[LocalAccount]
) -> None:
    wallet = InjectedWallet(account=dev_keys[1])
    page = plain_page([wallet])
    page.evaluate(
        "() => { window.seen = []; window.ethereum.on('chainChanged', (c) => seen.push(c)); }"
    )

    wallet.switch_chain_in_wallet(page, MAINNET_CHAIN_ID)

    assert page.evaluate("() => window.seen") == ["0x1"]
    assert request(page, "eth_chainId") == {"result": "0x1"}
