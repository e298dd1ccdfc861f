"""Fixtures of the validator node tests: a chain with staked validators, a content server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from shotbank.chain.contracts import ShotToken, ValidatorRegistry, send_call
from shotbank.chain.deploy import DeployParams, deploy_all
from shotbank.chain.deployments import Deployment
from shotbank.chain.devnode import AnvilNode

SHOT = 10**18
#: A small minimum stake, so every test validator stakes exactly that.
MIN_STAKE = 100 * SHOT


@dataclass
class StakedChain:
    """The four contracts on a fresh anvil, and a way to stake accounts."""

    w3: Web3
    url: str
    deployment: Deployment
    treasury: LocalAccount

    @property
    def registry(self) -> ValidatorRegistry:
        return ValidatorRegistry.from_deployment(self.w3, self.deployment)

    @property
    def token(self) -> ShotToken:
        return ShotToken.from_deployment(self.w3, self.deployment)

    def stake(self, account: LocalAccount, amount: int = MIN_STAKE) -> None:
        """Fund ``account`` with SHOT from the treasury and stake ``amount``."""
        send_call(self.w3, self.treasury, self.token.transfer(account.address, amount))
        registry = self.registry
        send_call(self.w3, account, self.token.approve(registry.address, amount))
        send_call(self.w3, account, registry.stake(amount))

    def request_unstake(self, account: LocalAccount, amount: int) -> None:
        """Move ``amount`` of ``account``'s stake into unbonding."""
        # anvil estimates gas on the latest block, where the stake checkpoint written
        # just now is updated in place; the next block pushes a new one and needs more.
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        send_call(self.w3, account, self.registry.request_unstake(amount))


@pytest.fixture
def staked_chain(anvil: AnvilNode, anvil_w3: Web3, dev_keys: list[LocalAccount]) -> StakedChain:
    """Contracts deployed by dev account 0 (also the treasury); nobody staked yet."""
    deployment = deploy_all(
        anvil_w3,
        dev_keys[0],
        treasury=dev_keys[0].address,
        guardian=dev_keys[1].address,
        params=DeployParams(min_stake=MIN_STAKE),
    )
    return StakedChain(w3=anvil_w3, url=anvil.url, deployment=deployment, treasury=dev_keys[0])


@dataclass
class ContentServer:
    """A plain HTTP server standing in for an IPFS gateway: it serves whatever it is told."""

    url: str
    bodies: dict[str, bytes] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def content_server() -> Iterator[ContentServer]:
    """A threaded HTTP server on a free port; paths map to bodies (or statuses)."""
    holder: dict[str, ContentServer] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server = holder["server"]
            server.requests.append({k.lower(): v for k, v in self.headers.items()})
            status = server.statuses.get(self.path, 200)
            body = server.bodies.get(self.path)
            if body is None or status != 200:
                self.send_response(404 if body is None else status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()  # no Content-Length: the client must count for itself
            sent = 0
            try:
                for start in range(0, len(body), 64 * 1024):
                    chunk = body[start : start + 64 * 1024]
                    self.wfile.write(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            server.sent[self.path] = sent
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    holder["server"] = ContentServer(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield holder["server"]
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


# --- a live backend that validators can work for -----------------------------------------

# The backend suite's fixtures: settings on a tmp var dir, live uvicorn servers, and the
# environment cleared of the developer's SHOTBANK_* variables.
from tests.backend.conftest import (  # noqa: E402
    _no_shotbank_environment,
    closed_port,
    live,
    make_settings,
    upload_settings,
)

__all__ = [
    "_no_shotbank_environment",
    "closed_port",
    "live",
    "make_settings",
    "upload_settings",
]
