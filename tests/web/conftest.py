"""Fixtures for the browser tests: Debian's Chromium, the real backend serving the built
app on a real anvil chain with the contracts deployed, and the injected test wallet.

* ``browser``: one headless Chromium per session (``shutil.which("chromium")``, driven by
  Python playwright; ``playwright install`` is never used). Each test gets fresh
  contexts (a fresh profile: no storage, no cookies) from ``new_context``.
* ``web_stack``: per module, anvil + ``deploy_all`` + the backend (``web/dist`` at ``/``)
  on a kernel-chosen port; the SIWE domain is that ``host:port``, as in production.
* Every page of every context is watched: a ``console.error``/``console.warning`` or an
  uncaught page error fails the test (``console.allow`` names the expected ones).
* ``shoot`` saves screenshots under ``test-artifacts/web/`` (git-ignored).

Nothing skips: no Chromium, no anvil or no built app is a failing test with the fix.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest
import uvicorn
from eth_account.signers.local import LocalAccount
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    Playwright,
    expect,
    sync_playwright,
)
from sqlalchemy import Engine, func, update
from sqlmodel import Session, select
from web3 import Web3

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.main import create_app
from backend.models.auth import AuthSession
from shotbank.chain.deploy import deploy_all
from shotbank.chain.deployments import Deployment, save_deployment
from shotbank.chain.devnode import DEV_CHAIN_ID, AnvilNode
from shotbank.chain.rpc import RetryPolicy, connect
from tests.web.wallet import InjectedWallet, install_wallets

#: Chromium's flags on this closed network (TOOLCHAIN.md): without the networking ones
#: it keeps trying to reach Google's services.
CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
PROJECT_ROOT: Final = Path(__file__).resolve().parents[2]
PHONE: Final = {"width": 390, "height": 844}
DESKTOP: Final = {"width": 1440, "height": 900}
WEB_DIST: Final = PROJECT_ROOT / "web" / "dist"
ARTIFACTS: Final = PROJECT_ROOT / "test-artifacts" / "web"
#: How long a browser assertion waits (the app answers in milliseconds; CI is slow).
EXPECT_TIMEOUT_MS: Final = 10_000
#: Variables that locate tools, not settings; every other SHOTBANK_* is cleared.
_KEEP_ENV: Final = frozenset({"SHOTBANK_ANVIL", "SHOTBANK_NODE"})


# --- the browser ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; fails (never skips) with the fix when it is missing."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "chromium not found on PATH: run scripts/setup.sh (apt-get install chromium)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    """Python playwright's driver for the session."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright, chromium_path: str) -> Iterator[Browser]:
    """One headless Chromium for the session; tests isolate themselves in contexts."""
    instance = playwright_driver.chromium.launch(
        executable_path=chromium_path, headless=True, args=list(CHROMIUM_ARGS)
    )
    yield instance
    instance.close()


@dataclass
class ConsoleLog:
    """Console errors/warnings and uncaught errors of the pages a test opened."""

    problems: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """Expect messages matching ``pattern`` (e.g. the 401 of an expired session)."""
        self.allowed.append(re.compile(pattern))

    def watch(self, page: Page) -> None:
        """Record ``page``'s console errors and warnings and its uncaught errors."""

        def on_console(message: ConsoleMessage) -> None:
            if message.type in {"error", "warning"}:
                where = message.location.get("url") or ""
                at = f" at {where}" if where else ""
                self.problems.append(f"console.{message.type}: {message.text}{at}")

        def on_page_error(error: Error) -> None:
            self.problems.append(f"uncaught: {error.message}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)

    def unexpected(self) -> list[str]:
        """The problems no :meth:`allow` pattern covers."""
        return [p for p in self.problems if not any(a.search(p) for a in self.allowed)]


@pytest.fixture
def console() -> ConsoleLog:
    """The test's console log (checked when its contexts close)."""
    return ConsoleLog()


ContextFactory = Callable[..., BrowserContext]


#: Each phase's report of a test (``setup``, ``call``, ``teardown``).
_REPORTS: Final = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so fixtures know whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture
def open_context(
    browser: Browser, console: ConsoleLog, request: pytest.FixtureRequest
) -> Iterator[ContextFactory]:
    """Open fresh browser contexts (desktop unless ``phone=True``; options go to Playwright).

    At the end: a failed test's pages are screenshotted (``test-artifacts/web/failed/``),
    every context closed, then the test fails on any console error/warning or uncaught
    page error that it did not ``console.allow``.
    """
    opened: list[BrowserContext] = []

    def factory(*, phone: bool = False, **options: Any) -> BrowserContext:
        device: dict[str, Any] = (
            {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
            if phone
            else {"viewport": DESKTOP}
        )
        context = browser.new_context(**(device | options))
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        context.on("page", console.watch)
        opened.append(context)
        return context

    yield factory
    call = request.node.stash.get(_REPORTS, {}).get("call")
    if call is not None and call.failed:
        pages = [page for context in opened for page in context.pages]
        for number, page in enumerate(pages):
            try:
                shoot(page, f"failed/{request.node.name}-{number}")
            except Error as exc:  # a crashed page: the failure itself says more
                print(f"no screenshot of page {number}: {exc.message}")
    for context in opened:
        context.close()
    problems = console.unexpected()
    if problems:
        pytest.fail("the page logged problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def new_context(open_context: ContextFactory, web_stack: WebStack) -> ContextFactory:
    """Open fresh browser contexts on the app (``page.goto("/")`` is its home)."""

    def factory(*, phone: bool = False, **options: Any) -> BrowserContext:
        return open_context(phone=phone, base_url=web_stack.url, **options)

    return factory


@pytest.fixture(autouse=True)
def _expect_timeout() -> None:
    """Browser assertions wait :data:`EXPECT_TIMEOUT_MS` at most."""
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


#: Screenshots saved in this session (listed in the terminal summary).
_SCREENSHOTS: list[Path] = []


def shoot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/web/<name>.png``; print its path."""
    path = ARTIFACTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path.relative_to(PROJECT_ROOT)}")
    _SCREENSHOTS.append(path)
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say where the screenshots went (they are the reviewable output of these tests)."""
    if _SCREENSHOTS:
        where = ARTIFACTS.relative_to(PROJECT_ROOT)
        terminalreporter.write_line(f"web: {len(_SCREENSHOTS)} screenshots saved under {where}/")


# --- the backend on a real chain ------------------------------------------------------


@dataclass
class WebStack:
    """The backend serving the built app on anvil with the contracts deployed."""

    url: str
    settings: Settings
    engine: Engine
    node: AnvilNode
    w3: Web3
    deployment: Deployment

    def sessions_of(self, address: str) -> list[AuthSession]:
        """The SIWE sessions the backend opened for ``address`` (any state)."""
        with Session(self.engine) as db:
            query = select(AuthSession).where(func.lower(AuthSession.address) == address.lower())
            return list(db.exec(query).all())

    def expire_sessions(self, address: str) -> None:
        """Make ``address``'s open sessions expire now (as if their TTL had run out)."""
        past = datetime.now(UTC) - timedelta(seconds=1)
        with Session(self.engine) as db:
            db.execute(
                update(AuthSession)
                .where(func.lower(AuthSession.address) == address.lower())
                .values(expires_at=past)
            )
            db.commit()


def _serve(settings: Settings, sock: socket.socket) -> tuple[uvicorn.Server, threading.Thread]:
    """Run the backend on ``sock`` in a thread; return once it accepts requests."""
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "server thread died"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    return server, thread


@pytest.fixture(scope="module")
def web_settings() -> dict[str, Any]:
    """Extra backend settings for a module's stack (a module overrides this fixture, e.g.
    with an operator key so that the backend lists priced versions through its outbox)."""
    return {}


@pytest.fixture(scope="module")
def web_stack(
    anvil_binary: Path,
    dev_keys: list[LocalAccount],
    tmp_path_factory: pytest.TempPathFactory,
    web_settings: dict[str, Any],
) -> Iterator[WebStack]:
    """The backend (SQLite, a copy of ``web/dist`` at ``/``) on anvil with ``deploy_all``'s
    contracts.

    Shared by the tests of a module: they use different wallets or sign out, and the
    state they leave (sessions, nonces) does not change what the next test sees.
    """
    if not (WEB_DIST / "index.html").is_file():
        pytest.fail(f"{WEB_DIST.relative_to(PROJECT_ROOT)} is missing: run make web", pytrace=False)
    with pytest.MonkeyPatch.context() as env, AnvilNode(anvil_binary) as node:
        for name in list(os.environ):
            if name.startswith("SHOTBANK_") and name not in _KEEP_ENV:
                env.delenv(name)
        w3 = connect(
            node.url,
            expected_chain_id=DEV_CHAIN_ID,
            policy=RetryPolicy(attempts=3, backoff_s=0.05, timeout_s=10),
        )
        deployer = dev_keys[0]
        deployment = deploy_all(w3, deployer, treasury=deployer.address, guardian=deployer.address)
        # A snapshot of the build: a `make web` while the tests run must not swap the
        # app under a page that is half-way through a test.
        web_dir = tmp_path_factory.mktemp("web-dist") / "dist"
        shutil.copytree(WEB_DIST, web_dir)
        if not (web_dir / "index.html").is_file():
            pytest.fail("web/dist changed while copied (a build running?): run make web again")
        sock = socket.socket()  # closed by uvicorn when it shuts down
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        settings = Settings(
            var_dir=tmp_path_factory.mktemp("web-var") / "var",
            host="127.0.0.1",
            port=port,  # the SIWE domain and URI default to this host:port, as in production
            chain_rpc_url=node.url,
            chain_confirmations=0,
            outbox_confirmations=0,
            web_dir=web_dir,
            **web_settings,
        )
        settings.deployments_path.parent.mkdir(parents=True, exist_ok=True)
        save_deployment(settings.deployments_path, deployment)
        server, thread = _serve(settings, sock)
        engine = create_db_engine(settings)
        try:
            yield WebStack(
                url=f"http://127.0.0.1:{port}",
                settings=settings,
                engine=engine,
                node=node,
                w3=w3,
                deployment=deployment,
            )
        finally:
            engine.dispose()
            server.should_exit = True
            thread.join(timeout=15)


# --- wallets --------------------------------------------------------------------------

WalletFactory = Callable[..., InjectedWallet]


@pytest.fixture
def make_wallet(web_stack: WebStack, dev_keys: list[LocalAccount]) -> Iterator[WalletFactory]:
    """Build test wallets on the stack's chain (``key``: index into ``dev_keys``).

    At the end the test fails if a wallet raised while answering (a wallet bug).
    """
    made: list[InjectedWallet] = []

    def factory(key: int = 1, **options: Any) -> InjectedWallet:
        wallet = InjectedWallet(account=dev_keys[key], node=web_stack.w3, **options)
        made.append(wallet)
        return wallet

    yield factory
    failures = [failure for wallet in made for failure in wallet.failures]
    assert not failures, "the test wallet failed:\n" + "\n".join(failures)


@pytest.fixture
def wallet_page(
    new_context: ContextFactory, make_wallet: WalletFactory
) -> Callable[..., tuple[Page, InjectedWallet]]:
    """A page on the app with one injected wallet (options go to the wallet)."""

    def factory(*, phone: bool = False, **options: Any) -> tuple[Page, InjectedWallet]:
        wallet = make_wallet(**options)
        context = new_context(phone=phone)
        install_wallets(context, [wallet])
        page = context.new_page()
        page.goto("/")
        return page, wallet

    return factory
