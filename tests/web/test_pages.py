"""Every main page, signed in, at a phone and a desktop size: an ``h1``, nothing wider than
the screen, no console error or warning; a screenshot of each is saved under
``test-artifacts/web/``. And the main navigation is reachable and usable by keyboard."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import ContextFactory, WalletFactory, shoot
from tests.web.flows import NAV_LINKS, button, connect, expect_signed_in, nav_link, sign_in
from tests.web.wallet import InjectedWallet, install_wallets

pytestmark = pytest.mark.chain

WalletPage = Callable[..., tuple[Page, InjectedWallet]]

#: The focused element: its text and whether it is in the "Main" navigation.
FOCUSED_JS = """() => {
  const element = document.activeElement;
  if (element === null || element === document.body) return null;
  const nav = element.closest("nav");
  return {
    text: (element.textContent || "").trim(),
    tag: element.tagName,
    inMainNav: nav !== null && nav.getAttribute("aria-label") === "Main",
  };
}"""


def settle(page: Page) -> None:
    """Wait until the page has loaded its data: no "Loading …" status left, fonts ready.

    Not "network idle": pages that poll (clip status) would never be idle.
    """
    page.wait_for_load_state("load")
    loading = page.get_by_role("status").filter(has_text=re.compile(r"^\s*Loading"))
    expect(loading).to_have_count(0)
    page.evaluate("() => document.fonts.ready.then(() => true)")


def nav_targets(page: Page) -> dict[str, str]:
    """Each navigation link's name and path, read from the page (no path is assumed)."""
    targets = {}
    for name in NAV_LINKS:
        href = nav_link(page, name).get_attribute("href")
        assert href is not None, name
        assert href.startswith("/"), f"{name}: {href!r}"
        targets[name] = href
    return targets


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_every_main_page_has_a_heading_and_no_console_problems(
    wallet_page: WalletPage, size: str
) -> None:
    phone = size == "phone"
    page, wallet = wallet_page(key=1 if phone else 2, phone=phone)
    connect(page)
    sign_in(page, wallet.address)
    pages = {"Home": "/", **nav_targets(page)}

    for name, path in pages.items():
        page.goto(path)  # a deep link: the backend's SPA fallback serves the app
        settle(page)

        expect_signed_in(page, wallet.address)
        heading = page.get_by_role("heading", level=1)
        expect(heading, f"{name} ({path}) has one h1").to_have_count(1)
        expect(heading).to_be_visible()
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} is {overflow}px wider than the {size} screen"
        slug = name.lower().replace(" ", "-")
        shoot(page, f"{slug}-{size}")


def test_every_main_page_signed_out_without_a_wallet_has_a_heading_and_no_console_problems(
    new_context: ContextFactory,
) -> None:
    page = new_context().new_page()
    page.goto("/")
    pages = {"Home": "/", **nav_targets(page)}

    for name, path in pages.items():
        page.goto(path)
        settle(page)

        expect(page.get_by_role("heading", level=1), f"{name} ({path})").to_have_count(1)
        expect(button(page, "Connect wallet")).to_be_visible()
        shoot(page, f"{name.lower().replace(' ', '-')}-signed-out-desktop")


def test_the_main_navigation_is_reachable_and_usable_by_keyboard(
    wallet_page: WalletPage,
) -> None:
    page, _ = wallet_page(key=3)
    rewards = nav_link(page, "Rewards").get_attribute("href")
    home_heading = page.get_by_role("heading", level=1).inner_text()
    reached: list[str] = []

    for _ in range(40):  # the header has a handful of stops before the navigation
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED_JS)
        if focused is not None and focused["inMainNav"]:
            reached.append(focused["text"])
        if reached == list(NAV_LINKS):
            break

    assert reached == list(NAV_LINKS), "Tab order through the navigation"
    for _ in NAV_LINKS[NAV_LINKS.index("Rewards") + 1 :]:
        page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED_JS)["text"] == "Rewards"
    page.keyboard.press("Enter")

    assert rewards is not None
    expect(page).to_have_url(re.compile(re.escape(rewards) + "$"))
    expect(page.get_by_role("heading", level=1)).not_to_have_text(home_heading)


def test_choosing_a_wallet_and_signing_in_work_by_keyboard(
    new_context: ContextFactory, make_wallet: WalletFactory
) -> None:
    first, second = make_wallet(key=4), make_wallet(key=5, name="Second Test Wallet")
    context = new_context()
    install_wallets(context, [first, second])
    page = context.new_page()
    page.goto("/")
    dialog = page.get_by_role("dialog", name="Choose a wallet")

    button(page, "Connect wallet").focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    button(page, "Connect wallet").focus()
    page.keyboard.press("Enter")
    dialog.get_by_role("button", name="Second Test Wallet").focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    button(page, "Sign in").focus()
    page.keyboard.press("Enter")

    expect_signed_in(page, second.address)
