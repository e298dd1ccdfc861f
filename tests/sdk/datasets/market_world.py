"""A priced dataset version on a real anvil with the real contracts, served by a live
backend whose own chain sync indexes the market: what ``client.buy`` is tested against.

The backend (uvicorn serving the real app) follows the ``DatasetMarket`` with
``CONFIRMATIONS`` confirmations. The version is frozen with a price through the API and
packed by the real packer, and the backend lists it on chain itself through its outbox
(operator key ``dev_keys[0]``, the deployer, holds the lister role); the tests wait until
the backend's version view shows it ``listed``.
Anvil mines only when a transaction arrives, so :func:`mining` mines a block every
0.1 s while a purchase waits for its confirmations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from backend.core.db import create_db_engine
from ingest.blobstore import LocalBlobStore
from shotbank.chain.contracts import DatasetMarket, ShotToken, send_call
from shotbank.chain.deploy import DeployParams, deploy_all
from shotbank.chain.deployments import Deployment, save_deployment
from shotbank.chain.devnode import AnvilNode
from shotbank.client import ShotbankClient
from tests.backend.conftest import SettingsFactory
from tests.backend.dataset_fixtures import CONTRIBUTOR, Packed
from tests.backend.datasets_world import DatasetWorld
from tests.backend.live import Caller, LiveServer, ServerFactory

SHOT = 10**18
PRICE = 3 * SHOT
CONFIRMATIONS = 2
PARAMS = DeployParams(min_stake=100 * SHOT, challenge_window_s=60, max_snapshot_age_blocks=200)


def rpc(w3: Web3, method: str, *params: object) -> Any:
    """A raw JSON-RPC call to the dev node (anvil_*, evm_*), failing on an error."""
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response
    return response.get("result")


@contextmanager
def mining(w3: Web3, every_s: float = 0.1) -> Iterator[None]:
    """Mine an empty block every ``every_s`` while the block runs (confirmations)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_s):
            rpc(w3, "evm_mine")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@pytest.fixture
def deployment(anvil_w3: Web3, dev_keys: list[LocalAccount]) -> Deployment:
    """The contracts on a fresh anvil (``dev_keys[0]`` deploys, lists and is admin)."""
    return deploy_all(
        anvil_w3, dev_keys[0], treasury=dev_keys[1].address, guardian=dev_keys[2].address,
        params=PARAMS,
    )  # fmt: skip


@pytest.fixture
def operator() -> LocalAccount:
    account: LocalAccount = Account.create()
    return account


@pytest.fixture
def server(
    live: ServerFactory,
    upload_settings: SettingsFactory,
    operator: LocalAccount,
    anvil: AnvilNode,
    deployment: Deployment,
    dev_keys: list[LocalAccount],
) -> LiveServer:
    """The backend on the anvil chain, listing with the deployer's key and indexing the
    market with ``CONFIRMATIONS``."""
    settings = upload_settings(
        operator_key="0x" + bytes(dev_keys[0].key).hex(),
        outbox_confirmations=0,
        operators=[operator.address],
        ingest_workers=0,
        ingest_min_short_side=120,
        dataset_poll_s=0.05,
        chain_rpc_url=anvil.url,
        chain_confirmations=CONFIRMATIONS,
        chain_poll_s=0.05,
    )
    settings.deployments_path.parent.mkdir(parents=True, exist_ok=True)
    save_deployment(settings.deployments_path, deployment)
    return live(settings)


def freeze(
    server: LiveServer,
    caller_for: Callable[..., Caller],
    operator: LocalAccount,
    clips: list[bytes],
    *,
    price: int | None,
) -> Packed:
    """A ready version of ``clips`` (several 32 KiB shards), frozen with ``price``."""
    settings = server.settings
    engine = create_db_engine(settings)
    world = DatasetWorld(settings, engine, LocalBlobStore(settings.blob_path, fsync=False))
    for data in clips:
        world.accepted(data, owner=CONTRIBUTOR)
    http = caller_for(server, operator).http
    dataset_id = http.post(
        "/api/v1/datasets", json={"slug": "beach", "title": "Beach", "filter": {}}
    ).json()["id"]
    body: dict[str, Any] = {"shard_bytes": 32 * 1024}
    if price is not None:
        body["price"] = str(price)
    frozen = http.post(f"/api/v1/datasets/{dataset_id}/versions", json=body)
    assert frozen.status_code == 202, frozen.text
    base = f"/api/v1/datasets/{dataset_id}/versions/1"
    deadline = time.monotonic() + 20
    while (summary := http.get(base).json())["status"] == "packing":
        assert time.monotonic() < deadline, "the packer did not finish the version"
        time.sleep(0.05)
    assert summary["status"] == "ready", summary
    index = http.get(f"{base}/index.json").json()
    return Packed(
        base=base,
        version_hash=summary["version_hash"],
        index=index,
        folder=settings.datasets_path / summary["version_hash"],
        world=world,
    )


def dataset_id(packed: Packed) -> str:
    return packed.base.split("/")[4]


def wait_for_listing(
    server: LiveServer, w3: Web3, packed: Packed, status: str, **fields: Any
) -> None:
    """Until the backend's version view shows the listing with ``status`` (and ``fields``),
    mining blocks so that the listing's transaction gets its confirmations."""
    deadline = time.monotonic() + 20
    with ShotbankClient(server.url) as client, mining(w3):
        while True:
            listing = client.version(dataset_id(packed), 1).summary.listing
            seen = None if listing is None else listing.model_dump()
            if seen is not None and all(
                seen[key] == value for key, value in {"status": status, **fields}.items()
            ):
                return
            assert time.monotonic() < deadline, f"the listing never became {status}: {seen}"
            time.sleep(0.05)


@dataclass
class Market:
    """The chain side of the tests: contracts, the lister and a way to fund buyers."""

    w3: Web3
    market: DatasetMarket
    token: ShotToken
    lister: LocalAccount
    treasury: LocalAccount

    def fund(self, account: LocalAccount, shot: int) -> None:
        """Give ``account`` ``shot`` SHOT wei and 1 ETH for gas."""
        if shot:
            send_call(self.w3, self.treasury, self.token.transfer(account.address, shot))
        rpc(self.w3, "anvil_setBalance", account.address, hex(10**18))


@pytest.fixture
def chain(anvil_w3: Web3, dev_keys: list[LocalAccount], deployment: Deployment) -> Market:
    return Market(
        w3=anvil_w3,
        market=DatasetMarket.from_deployment(anvil_w3, deployment),
        token=ShotToken.from_deployment(anvil_w3, deployment),
        lister=dev_keys[0],
        treasury=dev_keys[1],
    )
