"""A trainer in the browser: the catalogue shows a listed, priced version; a wallet signs in,
buys a licence (a permit signed as typed data and one ``purchaseWithPermit`` transaction,
or approve + ``purchase`` from a wallet that does not sign typed data), sees "Licence
granted" once the backend indexed the purchase, and finds the licence with its SDK snippet
on My licences. Everything is real: clips through ingest and consensus, the packer, the
backend's outbox listing the version on anvil, its chain sync indexing the purchase.

And a contributor claims an epoch's rewards from the Rewards page: the epoch closed by the
backend, its root co-signed by validators and submitted on chain by the backend, past its
challenge window (``tests.backend.epochs_world``, as the CLI's live claim test builds it)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Page, expect
from web3 import Web3

from backend.models.epochs import EpochStatus
from backend.services import epochs as backend_epochs
from ingest.blobstore import LocalBlobStore
from shotbank.chain.contracts import DatasetMarket, ShotToken, send_call
from shotbank.chain.devnode import AnvilNode
from shotbank.chain.siwe import build_siwe_message, sign_siwe_message
from tests.backend.conftest import (
    SettingsFactory,
    caller_for,
    closed_port,
    live,
    make_settings,
    upload_settings,
)
from tests.backend.datasets_world import DatasetWorld
from tests.backend.epochs_world import CHALLENGE_WINDOW_S, ChainWorld, make_chain_world, scores
from tests.backend.live import Caller, LiveServer, ServerFactory
from tests.ingest.mediagen import ClipSpec, make_clip
from tests.web.conftest import WEB_DIST, ContextFactory, WebStack, shoot
from tests.web.flows import alert, button, connect, nav_link, sign_in
from tests.web.wallet import InjectedWallet, ProviderError, install_wallets

pytestmark = pytest.mark.chain

# The backend suite's fixtures, for the rewards world's own live server.
__all__ = ["caller_for", "closed_port", "live", "make_settings", "upload_settings"]

SHOT = 10**18
PRICE = 3 * SHOT
#: ``dev_keys`` indices: the deployer (lister, treasury), the operator, the buyers.
DEPLOYER, OPERATOR, BUYER, PLAIN_BUYER = 0, 9, 3, 4
CONTRIBUTOR = "0x" + "a1" * 20
#: How long the backend may take to pack, list and index (it polls every 0.05 s).
WAIT_S = 30


@pytest.fixture(scope="module")
def web_settings(dev_keys: list[LocalAccount]) -> dict[str, Any]:
    """The backend lists priced versions with the deployer's key (it holds the lister role)
    and polls its packer and chain sync quickly."""
    return {
        "operator_key": "0x" + bytes(dev_keys[DEPLOYER].key).hex(),
        "operators": [dev_keys[OPERATOR].address],
        "ingest_workers": 0,
        "ingest_min_short_side": 120,
        "dataset_poll_s": 0.05,
        "chain_poll_s": 0.05,
    }


@dataclass(frozen=True)
class Listed:
    """The listed version: its dataset, its id on chain (the version hash)."""

    dataset_id: str
    version_id: str


@contextmanager
def _operator_client(stack: WebStack, account: LocalAccount) -> Iterator[httpx.Client]:
    """An API client signed in (SIWE, bearer token) as ``account``."""
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield _signed_in(client, account)


def _signed_in(client: httpx.Client, account: LocalAccount) -> httpx.Client:
    nonce = client.get("/api/v1/auth/nonce").json()
    message = build_siwe_message(
        domain=nonce["domain"],
        address=account.address,
        uri=nonce["uri"],
        chain_id=nonce["chain_id"],
        nonce=nonce["nonce"],
    )
    verified = client.post(
        "/api/v1/auth/verify",
        json={"message": message, "signature": sign_siwe_message(account, message)},
    )
    assert verified.status_code == 200, verified.text
    client.headers["Authorization"] = f"Bearer {verified.json()['token']}"
    return client


def _until(what: str, check: Any) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


@pytest.fixture(scope="module")
def listed(
    web_stack: WebStack, dev_keys: list[LocalAccount], tmp_path_factory: pytest.TempPathFactory
) -> Listed:
    """Three real clips accepted, frozen into a version priced at ``PRICE``, packed and
    listed on chain by the backend's outbox, and indexed as ``listed``."""
    settings = web_stack.settings
    world = DatasetWorld(
        settings, web_stack.engine, LocalBlobStore(settings.blob_path, fsync=False)
    )
    media = tmp_path_factory.mktemp("trainer-media")
    for n in range(3):
        spec = ClipSpec(width=160, height=120, seconds=2.0, tone_hz=1200.0 + 100 * n)
        world.accepted(make_clip(media / f"{n}.mp4", spec).read_bytes(), owner=CONTRIBUTOR)
    with _operator_client(web_stack, dev_keys[OPERATOR]) as http:
        created = http.post(
            "/api/v1/datasets",
            json={
                "slug": "beach",
                "title": "Beach",
                "description": "Static shots of waves on an empty beach.",
                "licence_terms": "Model training only; no redistribution of the clips.",
                "filter": {"camera_movements": ["static"]},
                "price": str(PRICE),
            },
        )
        assert created.status_code in (200, 201), created.text
        dataset_id = str(created.json()["id"])
        frozen = http.post(
            f"/api/v1/datasets/{dataset_id}/versions", json={"shard_bytes": 32 * 1024}
        )
        assert frozen.status_code == 202, frozen.text
        base = f"/api/v1/datasets/{dataset_id}/versions/1"

        def listed_view() -> dict[str, Any] | None:
            view: dict[str, Any] = http.get(base).json()
            assert view["status"] != "failed", view
            listing = view.get("listing") or {}
            return view if listing.get("status") == "listed" else None

        view = _until("the version to be packed, listed and indexed", listed_view)
    assert view["listing"]["price"] == str(PRICE)
    return Listed(dataset_id=dataset_id, version_id=str(view["version_hash"]))


def _fund(stack: WebStack, deployer: LocalAccount, buyer: str, amount: int) -> None:
    token = ShotToken.from_deployment(stack.w3, stack.deployment)
    send_call(stack.w3, deployer, token.transfer(buyer, amount))


def _as_shown(wei: int) -> str:
    """A SHOT amount as the app shows it: thousands grouped, at most 4 decimals (floored)."""
    whole, rest = divmod(wei, SHOT)
    fraction = f"{rest // 10**14:04d}".rstrip("0")
    return f"{whole:,}" + (f".{fraction}" if fraction else "") + " SHOT"


def _expect_no_overflow(page: Page) -> None:
    """Nothing on the page is wider than the screen (hashes and snippets wrap or scroll)."""
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"


def _open_version(page: Page, address: str) -> None:
    """Sign in, then Datasets → the version's page."""
    sign_in(page, address)
    nav_link(page, "Datasets").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Datasets")
    page.get_by_role("link", name="Beach v1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Beach v1")
    expect(page.get_by_text("For sale")).to_be_visible()


def _expect_confirmation(page: Page) -> None:
    """Click "Buy licence": the price, the 10 SHOT balance and what is left after paying."""
    button(page, "Buy licence").click()
    confirm = page.get_by_role("region", name="Confirm purchase")
    expect(confirm).to_contain_text(re.compile(r"Price\s*3 SHOT"))
    expect(confirm).to_contain_text(re.compile(r"Your balance\s*10 SHOT"))
    expect(confirm).to_contain_text("Balance after purchase: 7 SHOT")
    _expect_no_overflow(page)


def test_a_trainer_buys_a_listed_version_with_a_permit_and_gets_the_sdk_snippet(
    web_stack: WebStack,
    listed: Listed,
    wallet_page: Callable[..., tuple[Page, InjectedWallet]],
    dev_keys: list[LocalAccount],
) -> None:
    buyer = dev_keys[BUYER]
    _fund(web_stack, dev_keys[DEPLOYER], buyer.address, 10 * SHOT)
    market = DatasetMarket.from_deployment(web_stack.w3, web_stack.deployment)
    page, wallet = wallet_page(key=BUYER)
    connect(page)

    sign_in(page, buyer.address)
    nav_link(page, "Datasets").click()
    catalogue = page.get_by_role("table", name="Versions of Beach")
    expect(catalogue).to_contain_text("For sale")
    expect(catalogue).to_contain_text("3 SHOT")
    expect(catalogue).to_contain_text(listed.version_id[:10])
    # The filters come from the datasets' own filter documents.
    page.get_by_label("Min score").select_option("0.9")  # Beach asks no minimum quality
    expect(page.get_by_role("status").filter(has_text="0 of 1 datasets")).to_be_visible()
    expect(catalogue).to_have_count(0)
    page.get_by_label("Min score").select_option("")
    page.get_by_label("Camera move").select_option("static")
    expect(page.get_by_role("status").filter(has_text="1 of 1 datasets")).to_be_visible()
    shoot(page, "trainer-catalogue")

    page.get_by_role("link", name="Beach v1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Beach v1")
    expect(page.get_by_text(listed.version_id)).to_be_visible()
    # Previews of the first samples: the manifest's rows, each clip's poster.
    posters = page.get_by_role("img", name=re.compile(r"^Poster of sample "))
    expect(posters).to_have_count(3)
    for poster in posters.all():
        poster.scroll_into_view_if_needed()
        expect(poster).to_have_js_property("complete", True)
        assert poster.evaluate("image => image.naturalWidth") > 0
    button(page, "Buy licence").click()
    confirm = page.get_by_role("region", name="Confirm purchase")
    expect(confirm).to_contain_text(re.compile(r"Price\s*3 SHOT"))
    expect(confirm).to_contain_text(re.compile(r"Your balance\s*10 SHOT"))
    shoot(page, "trainer-confirm-purchase")
    sent_before = wallet.methods_called().count("eth_sendTransaction")
    button(page, "Confirm purchase").click()

    expect(page.get_by_role("status").filter(has_text="Licence granted")).to_be_visible(
        timeout=WAIT_S * 1000
    )
    shoot(page, "trainer-licence-granted")
    methods = wallet.methods_called()
    assert "eth_signTypedData_v4" in methods
    assert methods.count("eth_sendTransaction") - sent_before == 1, "permit path: one transaction"
    assert market.has_licence(buyer.address, listed.version_id)
    token = ShotToken.from_deployment(web_stack.w3, web_stack.deployment)
    assert token.balance_of(buyer.address) == 7 * SHOT

    nav_link(page, "My licences").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My licences")
    card = page.get_by_role("listitem").filter(has=page.get_by_role("link", name="Beach v1"))
    expect(card).to_contain_text("3 SHOT")
    snippet = f'client.version("{listed.dataset_id}", 1).download("data/beach-v1")'
    expect(card.locator("pre")).to_contain_text(snippet)
    expect(card).to_contain_text(re.compile(r"0x[0-9a-f]{64}"))
    expect(card.get_by_role("button", name="Copy", exact=True)).to_be_visible()
    shoot(page, "trainer-my-licences")

    # Back on the version: held, so no "Buy licence"; the catalogue marks it licensed.
    card.get_by_role("link", name="Beach v1").click()
    expect(page.get_by_text("You hold a licence for this version")).to_be_visible()
    expect(button(page, "Buy licence")).to_have_count(0)
    nav_link(page, "Datasets").click()
    expect(page.get_by_role("table", name="Versions of Beach")).to_contain_text("Licensed")


@dataclass
class NoTypedDataWallet(InjectedWallet):
    """A wallet that does not implement ``eth_signTypedData_v4`` (EIP-1193 4200)."""

    def _dispatch(self, method: str, params: Any, events: list[dict[str, Any]]) -> Any:
        if method == "eth_signTypedData_v4":
            raise ProviderError(4200, "The wallet does not support eth_signTypedData_v4")
        return super()._dispatch(method, params, events)


def test_on_a_phone_short_of_shot_then_rejected_then_without_typed_data_approve_and_purchase(
    web_stack: WebStack,
    listed: Listed,
    new_context: ContextFactory,
    dev_keys: list[LocalAccount],
) -> None:
    buyer = dev_keys[PLAIN_BUYER]
    wallet = NoTypedDataWallet(account=buyer, node=web_stack.w3)
    context = new_context(phone=True)
    install_wallets(context, [wallet])
    page = context.new_page()
    page.goto("/")
    connect(page)
    _open_version(page, buyer.address)

    # Without SHOT: the confirmation says how much is missing and cannot be confirmed.
    button(page, "Buy licence").click()
    confirm = page.get_by_role("region", name="Confirm purchase")
    expect(confirm).to_contain_text("Not enough SHOT: 3 SHOT short.")
    expect(button(page, "Confirm purchase")).to_be_disabled()
    button(page, "Cancel").click()

    _fund(web_stack, dev_keys[DEPLOYER], buyer.address, 10 * SHOT)
    _expect_confirmation(page)
    sent_before = web_stack.w3.eth.get_transaction_count(buyer.address)

    # Refusing the approval in the wallet: an alert, no licence, "Buy licence" again.
    wallet.reject_next_signature()
    button(page, "Confirm purchase").click()
    expect(alert(page, "Signature rejected")).to_be_visible()
    expect(button(page, "Buy licence")).to_be_visible()
    market = DatasetMarket.from_deployment(web_stack.w3, web_stack.deployment)
    assert not market.has_licence(buyer.address, listed.version_id)

    button(page, "Buy licence").click()
    button(page, "Confirm purchase").click()
    expect(page.get_by_role("status").filter(has_text="Licence granted")).to_be_visible(
        timeout=WAIT_S * 1000
    )
    methods = wallet.methods_called()
    assert methods.count("eth_signTypedData_v4") == 2, "the permit was tried each time"
    # Three requests to send: the refused approval, then approve and purchase.
    assert methods.count("eth_sendTransaction") == 3
    assert web_stack.w3.eth.get_transaction_count(buyer.address) == sent_before + 2
    assert market.has_licence(buyer.address, listed.version_id)
    assert not wallet.failures, wallet.failures
    _expect_no_overflow(page)
    shoot(page, "trainer-licence-granted-phone")
    nav_link(page, "My licences").click()
    expect(page.get_by_role("button", name="Copy", exact=True)).to_be_visible()
    _expect_no_overflow(page)
    shoot(page, "trainer-my-licences-phone")


@pytest.fixture
def claimable_world(
    upload_settings: SettingsFactory,
    anvil: AnvilNode,
    anvil_w3: Web3,
    dev_keys: list[LocalAccount],
    live: ServerFactory,
    caller_for: Callable[[LiveServer, LocalAccount], Caller],
) -> Iterator[tuple[ChainWorld, LiveServer]]:
    """Epoch 1 closed over two clips of ``dev_keys[1]``, its root signed by validators with
    2/3 of the stake, submitted by the backend and past its challenge window; the backend
    serving the built app says ``dev_keys[1]`` can claim."""
    world = make_chain_world(
        upload_settings, anvil, anvil_w3, dev_keys, ingest_workers=0, web_dir=WEB_DIST
    )
    v = [validator.address for validator in world.validators]
    contributor = dev_keys[1].address
    world.decide(contributor, [(v[0], scores(0.9)), (v[1], scores(0.8)), (v[2], scores(0.85))])
    world.decide(contributor, [(v[0], scores(0.95)), (v[1], scores(0.9)), (v[2], scores(0.9))])
    closed = backend_epochs.close_epoch(world.engine, settings=world.settings)
    assert closed.status == EpochStatus.CLOSED
    server = live(world.settings)
    small, _middle, large = world.validators  # 1,000 + 3,000 of 6,000 SHOT: 2/3
    for validator in (small, large):
        answer = caller_for(server, validator).http.post(
            "/api/v1/validator/epochs/1/signatures",
            json=world.signature(validator, 1).model_dump(),
        )
        assert answer.status_code == 201, answer.text
    _until("the root on chain", lambda: len(world.root_submissions()) == 1)
    world.pass_time(CHALLENGE_WINDOW_S + 1)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        _until(
            "the claim",
            lambda: int(http.get(f"/api/v1/rewards/{contributor}").json()["claimable"]) > 0,
        )
    yield world, server
    world.engine.dispose()


def test_a_contributor_claims_the_rewards_and_sees_the_new_balance(
    claimable_world: tuple[ChainWorld, LiveServer],
    open_context: ContextFactory,
    dev_keys: list[LocalAccount],
) -> None:
    world, server = claimable_world
    contributor = dev_keys[1]
    wallet = InjectedWallet(account=contributor, node=world.w3)
    context = open_context(base_url=server.url)
    install_wallets(context, [wallet])
    page = context.new_page()
    page.goto("/rewards")
    connect(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Rewards")
    claimable = int(
        httpx.get(f"{server.url}/api/v1/rewards/{contributor.address}").json()["claimable"]
    )
    before = world.token.balance_of(contributor.address)
    button(page, "Claim").click()
    after = before + claimable
    expect(page.get_by_role("status").filter(has_text="Confirmed")).to_contain_text(
        f"balance is now {_as_shown(after)}", timeout=WAIT_S * 1000
    )
    assert world.token.balance_of(contributor.address) == after
    # Claimed: no second "Claim" while the backend has not indexed the payment yet.
    expect(button(page, "Claim")).to_have_count(0)
    assert wallet.methods_called().count("eth_sendTransaction") == 1
    assert not wallet.failures, wallet.failures
    shoot(page, "rewards-claimed")
