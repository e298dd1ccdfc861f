"""Fixtures of the validator node tests: a staked chain, a live backend, real clips.

* ``staked_chain``: the four contracts on a fresh anvil (minimum stake 100 SHOT) and a
  way to stake accounts;
* ``network``: the real backend (uvicorn, ingest worker, chain sync, consensus with a
  quorum of 2) on that chain, with validators ``dev_keys[4:7]`` staked and in the
  backend's stake snapshot;
* ``contribute``: clips uploaded the contributor's way (tus, ``POST /clips``), queued;
* ``clip_files``: three tiny real clips the in-project model knows (one true to its
  annotation, one mislabelled, one black);
* ``content_server``: a plain HTTP server that serves whatever bytes it is told (a lying
  gateway).
"""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from backend.core.config import Settings
from scoring.clipgen import scene_frames, solid_frames, tone, write_clip
from scoring.models import TEST_MODEL
from scoring.node.config import NodeSettings
from scoring.synthetic import Scene
from shotbank.annotation.vocabulary import LightingSetup
from shotbank.chain.contracts import ShotToken, ValidatorRegistry, send_call
from shotbank.chain.deploy import DeployParams, deploy_all
from shotbank.chain.deployments import Deployment, save_deployment
from shotbank.chain.devnode import AnvilNode
from shotbank.client import ShotbankClient

# The backend suite's fixtures: settings on a tmp var dir, live uvicorn servers, and the
# environment cleared of the developer's SHOTBANK_* variables (autouse).
from tests.backend.conftest import (
    _no_shotbank_environment,
    closed_port,
    live,
    make_settings,
    upload_settings,
)
from tests.backend.live import LiveServer, ServerFactory

__all__ = [
    "_no_shotbank_environment",
    "closed_port",
    "live",
    "make_settings",
    "upload_settings",
]

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


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Poll ``check`` until it holds; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class Network:
    """A live backend on a staked chain, and the staked validators' keys."""

    server: LiveServer
    chain: StakedChain
    validators: list[LocalAccount]

    @property
    def url(self) -> str:
        return self.server.url

    def config(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.url}/api/v1/validator/config", timeout=5).json()
        return body


def in_snapshot(url: str, address: str) -> bool:
    """Whether the backend's stake snapshot shows ``address`` as an active validator."""
    response = httpx.get(f"{url}/api/v1/validators/{address}", timeout=5)
    return response.status_code == 200 and bool(response.json()["is_active"])


@pytest.fixture
def lease_ttl_s() -> int:
    """Lease lifetime of the test backend (a test module overrides it to outlive leases)."""
    return 60


@pytest.fixture
def network(
    lease_ttl_s: int,
    live: ServerFactory,
    upload_settings: Callable[..., Settings],
    staked_chain: StakedChain,
    dev_keys: list[LocalAccount],
) -> Network:
    """The backend (quorum 2) on the chain, with validators ``dev_keys[4:7]`` staked."""
    validators = dev_keys[4:7]
    for validator in validators:
        staked_chain.stake(validator)
    settings = upload_settings(
        chain_rpc_url=staked_chain.url,
        chain_confirmations=0,
        chain_poll_s=0.05,
        consensus_quorum=2,
        consensus_interval_s=0.5,
        lease_ttl_s=lease_ttl_s,
        lease_retry_after_s=1,
        ingest_poll_s=0.1,
        ingest_min_short_side=240,
    )
    settings.deployments_path.parent.mkdir(parents=True, exist_ok=True)
    save_deployment(settings.deployments_path, staked_chain.deployment)
    server = live(settings)
    wait_for(
        "the stake snapshot",
        lambda: all(in_snapshot(server.url, v.address) for v in validators),
    )
    return Network(server=server, chain=staked_chain, validators=validators)


def node_settings(network: Network, state_dir: Path, **overrides: Any) -> NodeSettings:
    """Settings of a quick node for ``network``: the in-project model on CPU."""
    values: dict[str, Any] = {
        "api_url": network.url,
        "rpc_url": network.chain.url,
        "model": TEST_MODEL[0],
        "pretrained": TEST_MODEL[1],
        "device": "cpu",
        "precision": "fp32",
        "workers": 0,
        "max_leases": 2,
        "metrics_port": 0,
        "poll_interval_s": 0.2,
        "status_interval_s": 1.0,
        "shutdown_grace_s": 5.0,
        "expiry_margin_s": 2.0,
        "state_dir": state_dir,
    }
    values.update(overrides)
    return NodeSettings(**values)


def node_environment(settings: NodeSettings, key: LocalAccount) -> dict[str, str]:
    """The environment that configures ``shotbank validator run`` like ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOTBANK_")}
    for name, value in settings.model_dump(exclude={"config_file"}).items():
        if value is None:
            continue
        if isinstance(value, tuple):
            value = json.dumps([str(v) for v in value])
        env[f"SHOTBANK_VALIDATOR_{name.upper()}"] = str(value)
    env["SHOTBANK_PRIVATE_KEY"] = "0x" + bytes(key.key).hex()
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Contributor:
    """A contributor's session on the backend (rejected clips are visible to it alone)."""

    http: httpx.Client

    def _get(self, path: str) -> dict[str, Any]:
        response = self.http.get(path)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def clip(self, clip_id: str) -> dict[str, Any]:
        return self._get(f"/api/v1/clips/{clip_id}")

    def status(self, clip_id: str) -> str:
        return str(self.clip(clip_id)["status"])

    def reports(self, clip_id: str) -> dict[str, Any]:
        return self._get(f"/api/v1/clips/{clip_id}/reports")


Contribute = Callable[[list[tuple[Path, dict[str, Any]]]], tuple[Contributor, list[str]]]


@pytest.fixture
def contribute(network: Network) -> Iterator[Contribute]:
    """Upload files as a fresh contributor; its session and the clip ids once past ingest."""
    clients: list[httpx.Client] = []

    def upload(files: list[tuple[Path, dict[str, Any]]]) -> tuple[Contributor, list[str]]:
        account: LocalAccount = Account.create()
        ids = []
        with ShotbankClient(network.url) as client:
            client.sign_in(account)
            for path, document in files:
                upload = client.upload(path)
                ids.append(client.create_clip(upload.upload_id, document).id)
            for clip_id in ids:
                clip = client.wait_for_clip(clip_id, timeout_s=60, interval_s=0.1)
                # Past ingest; a node already running may have leased or decided it.
                assert clip.status in ("queued", "scoring", "accepted", "rejected"), (
                    clip.status,
                    clip.reasons,
                )
            token = client.token
        http = httpx.Client(
            base_url=network.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        clients.append(http)
        return Contributor(http), ids

    yield upload
    for session in clients:
        session.close()


def annotation(description: str, lighting: str = "natural") -> dict[str, Any]:
    """An annotation of a held synthetic shot with sound."""
    return {
        "schema_version": "1",
        "scene": {"description": description, "setting": "interior"},
        "camera": {"movement": "static"},
        "lighting": {"setup": lighting},
        "audio": {"genre": "ambience", "dialogue": False, "recording": "studio"},
        "rights": {
            "licence": "cc0-1.0",
            "model_release": "not_required",
            "location_release": "not_required",
        },
    }


@pytest.fixture(scope="session")
def clip_files(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, dict[str, Any]]]:
    """Three tiny real clips with annotations: one true, one mislabelled, one black."""
    folder = tmp_path_factory.mktemp("node-clips")
    sound = tone(300.0, seconds=2.5)
    red_circle = write_clip(
        folder / "red-circle.mp4",
        scene_frames(Scene("red", "circle", LightingSetup.NATURAL), seconds=2.5),
        audio=sound,
    )
    blue_square = write_clip(
        folder / "blue-square.mp4",
        scene_frames(Scene("blue", "square", LightingSetup.NATURAL), seconds=2.5, seed=1),
        audio=sound,
    )
    black = write_clip(folder / "black.mp4", solid_frames(seconds=2.5), audio=sound)
    return [
        (red_circle, annotation("A red circle.")),
        (blue_square, annotation("A red circle.")),
        (black, annotation("A green star.")),
    ]
