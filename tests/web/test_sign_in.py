"""Connecting a wallet and Sign-In with Ethereum in the app, in Chromium, against the real
backend on anvil: the happy path and every state the shared UI contract names (no wallet,
several wallets, wrong network, rejected signature, expired session).

The backend is shared by the module; a test that looks at the sessions it opened uses a
dev key no other test signs in with."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from shotbank.chain.devnode import DEV_CHAIN_ID
from tests.web.conftest import ConsoleLog, ContextFactory, WalletFactory, WebStack
from tests.web.flows import (
    alert,
    banner,
    button,
    connect,
    expect_signed_in,
    nav_link,
    short_address,
    sign_in,
)
from tests.web.wallet import MAINNET_CHAIN_ID, InjectedWallet, install_wallets

pytestmark = pytest.mark.chain

WalletPage = Callable[..., tuple[Page, InjectedWallet]]
#: Chromium logs every 4xx answer as a console error; an expired session is one.
UNAUTHORIZED = r"status of 401"


def signed_messages(wallet: InjectedWallet) -> list[str]:
    """The texts the page asked ``wallet`` to ``personal_sign`` (viem sends 0x-hex)."""
    return [
        bytes.fromhex(call.params[0].removeprefix("0x")).decode()
        for call in wallet.calls
        if call.method == "personal_sign"
    ]


def test_signs_in_with_siwe_and_out_again(wallet_page: WalletPage, web_stack: WebStack) -> None:
    page, wallet = wallet_page(key=1)
    expect(banner(page).get_by_text("Shotbank", exact=True)).to_be_visible()

    connect(page)
    sign_in(page, wallet.address)

    [message] = signed_messages(wallet)
    assert message.startswith(f"{web_stack.settings.siwe_domain_value} wants you to sign in")
    assert wallet.address in message
    assert f"URI: {web_stack.settings.siwe_uri_value}" in message
    assert f"Chain ID: {DEV_CHAIN_ID}" in message
    [session] = web_stack.sessions_of(wallet.address)
    assert session.revoked_at is None

    button(page, "Sign out").click()

    expect(button(page, "Sign in")).to_be_visible()
    expect(banner(page).get_by_text(short_address(wallet.address))).to_have_count(0)
    [session] = web_stack.sessions_of(wallet.address)
    assert session.revoked_at is not None, "signing out must revoke the session on the server"


def test_a_signed_in_session_survives_a_reload(wallet_page: WalletPage) -> None:
    page, wallet = wallet_page(key=2)
    connect(page)
    sign_in(page, wallet.address)

    page.reload()

    expect_signed_in(page, wallet.address)


def test_no_wallet_says_no_wallet_found(new_context: ContextFactory) -> None:
    page = new_context().new_page()
    page.goto("/")

    button(page, "Connect wallet").click()

    notice = page.get_by_role("status").or_(page.get_by_role("alert"))
    expect(notice.filter(has_text="No wallet found")).to_be_visible()
    expect(button(page, "Sign in")).to_have_count(0)


def test_two_wallets_open_the_choose_a_wallet_dialog(
    new_context: ContextFactory, make_wallet: WalletFactory
) -> None:
    first = make_wallet(key=3)
    second = make_wallet(key=4, name="Second Test Wallet", rdns="dev.shotbank.second")
    context = new_context()
    install_wallets(context, [first, second])
    page = context.new_page()
    page.goto("/")

    button(page, "Connect wallet").click()
    dialog = page.get_by_role("dialog", name="Choose a wallet")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Shotbank Test Wallet")).to_be_visible()
    dialog.get_by_role("button", name="Second Test Wallet").click()

    expect(dialog).to_be_hidden()
    sign_in(page, second.address)
    assert "eth_requestAccounts" not in first.methods_called()


def test_one_unannounced_injected_wallet_is_used_directly(
    new_context: ContextFactory, make_wallet: WalletFactory
) -> None:
    wallet = make_wallet(key=5, announce=False)
    context = new_context()
    install_wallets(context, [wallet])
    page = context.new_page()
    page.goto("/")

    connect(page)

    expect(page.get_by_role("dialog", name="Choose a wallet")).to_be_hidden()
    sign_in(page, wallet.address)


def test_wrong_network_offers_a_switch_then_sign_in_works(wallet_page: WalletPage) -> None:
    page, wallet = wallet_page(key=6, chain_id=MAINNET_CHAIN_ID)

    connect(page)

    expect(alert(page, "Wrong network")).to_be_visible()
    expect(button(page, "Sign in")).to_have_count(0)
    button(page, re.compile(r"^Switch to \S")).click()
    expect(alert(page, "Wrong network")).to_have_count(0)
    sign_in(page, wallet.address)
    switches = [c.params for c in wallet.calls if c.method == "wallet_switchEthereumChain"]
    assert switches == [[{"chainId": hex(DEV_CHAIN_ID)}]]
    assert wallet.added_chains == []


def test_a_chain_the_wallet_does_not_know_is_added(wallet_page: WalletPage) -> None:
    page, wallet = wallet_page(key=7, chain_id=MAINNET_CHAIN_ID, knows_dev_chain=False)
    connect(page)
    expect(alert(page, "Wrong network")).to_be_visible()

    button(page, re.compile(r"^Switch to \S")).click()

    expect(alert(page, "Wrong network")).to_have_count(0)
    [added] = wallet.added_chains
    assert added["chainId"] == hex(DEV_CHAIN_ID)
    assert added["rpcUrls"]
    sign_in(page, wallet.address)


def test_a_rejected_signature_says_so_and_offers_sign_in_again(
    wallet_page: WalletPage, web_stack: WebStack
) -> None:
    page, wallet = wallet_page(key=8)
    connect(page)
    wallet.reject_next_signature()

    button(page, "Sign in").click()

    expect(alert(page, "Signature rejected")).to_be_visible()
    expect(button(page, "Sign in")).to_be_enabled()
    assert web_stack.sessions_of(wallet.address) == []
    sign_in(page, wallet.address)


def test_an_expired_session_says_session_expired_on_the_next_api_call(
    wallet_page: WalletPage, web_stack: WebStack, console: ConsoleLog
) -> None:
    console.allow(UNAUTHORIZED)
    page, wallet = wallet_page(key=9)
    connect(page)
    sign_in(page, wallet.address)

    web_stack.expire_sessions(wallet.address)
    nav_link(page, "My clips").click()

    expect(alert(page, "Session expired")).to_be_visible()
    expect(button(page, "Sign in")).to_be_visible()
    expect(button(page, "Sign out")).to_have_count(0)


def test_an_expired_session_says_session_expired_after_a_reload(
    wallet_page: WalletPage, web_stack: WebStack, console: ConsoleLog
) -> None:
    console.allow(UNAUTHORIZED)
    page, wallet = wallet_page(key=9)
    connect(page)
    sign_in(page, wallet.address)
    web_stack.expire_sessions(wallet.address)

    page.reload()

    expect(alert(page, "Session expired")).to_be_visible()
    expect(button(page, "Sign out")).to_have_count(0)
    connect(page)
    sign_in(page, wallet.address)


def test_switching_the_wallet_to_another_chain_while_signed_in_says_wrong_network(
    wallet_page: WalletPage,
) -> None:
    page, wallet = wallet_page(key=3)
    connect(page)
    sign_in(page, wallet.address)

    wallet.switch_chain_in_wallet(page, MAINNET_CHAIN_ID)

    expect(alert(page, "Wrong network")).to_be_visible()
    button(page, re.compile(r"^Switch to \S")).click()
    expect(alert(page, "Wrong network")).to_have_count(0)
    assert wallet.chain_id == DEV_CHAIN_ID
