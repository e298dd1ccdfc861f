"""What a user does in the header, written against the shared UI contract: roles and
accessible names only (never CSS classes), so that the tests survive a restyle."""

from __future__ import annotations

import re
from typing import Final

from playwright.sync_api import Locator, Page, expect

#: The main navigation's links, in order (the shared UI contract).
NAV_LINKS: Final = ("Upload", "My clips", "Rewards", "Datasets", "My licences", "Validator")


def short_address(address: str) -> re.Pattern[str]:
    """How the header shows a signed-in address: ``0x1234…abcd`` (any letter case)."""
    return re.compile(re.escape(address[:6]) + "…" + re.escape(address[-4:]), re.IGNORECASE)


def banner(page: Page) -> Locator:
    """The page's header landmark."""
    return page.get_by_role("banner")


def button(page: Page, name: str | re.Pattern[str]) -> Locator:
    """A button by its accessible name (exact when ``name`` is a string)."""
    return page.get_by_role("button", name=name, exact=isinstance(name, str))


def alert(page: Page, text: str) -> Locator:
    """The ``alert`` that says ``text``."""
    return page.get_by_role("alert").filter(has_text=text)


def nav_link(page: Page, name: str) -> Locator:
    """A link of the navigation landmark named "Main"."""
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


def connect(page: Page, wallet_name: str | None = None) -> None:
    """Click "Connect wallet"; with ``wallet_name``, pick it in the "Choose a wallet" dialog."""
    button(page, "Connect wallet").click()
    if wallet_name is not None:
        dialog = page.get_by_role("dialog", name="Choose a wallet")
        expect(dialog).to_be_visible()
        dialog.get_by_role("button", name=wallet_name, exact=True).click()


def sign_in(page: Page, address: str) -> None:
    """From a connected wallet on the right chain: "Sign in", then wait to be signed in."""
    button(page, "Sign in").click()
    expect_signed_in(page, address)


def expect_signed_in(page: Page, address: str) -> None:
    """The header shows ``address`` (short) and a "Sign out" button."""
    expect(banner(page).get_by_text(short_address(address))).to_be_visible()
    expect(button(page, "Sign out")).to_be_visible()
