"""Licence purchases on a real anvil with the real contracts, indexed by the live server's
own chain-sync job: a listed version bought by a trainer becomes downloadable once the
purchase is confirmed, and a reorg that drops the purchase takes the access away; price
and listing changes are followed, and a reorg that drops some restores the earlier ones."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlmodel import Session, col, select
from web3 import Web3

from backend.models.licences import DatasetLicence, DatasetListing, DatasetListingChange
from backend.services import marketsync
from backend.services.licences import chain_version_id
from shotbank.chain.contracts import DatasetMarket, ShotToken, send_call
from shotbank.chain.deploy import DeployParams, deploy_all
from shotbank.chain.deployments import Deployment, save_deployment
from shotbank.chain.devnode import AnvilNode
from tests.backend.conftest import SettingsFactory
from tests.backend.dataset_fixtures import (  # noqa: F401 - fixtures used by name
    Packed,
    clips,
    operator,
    packed,
)
from tests.backend.live import Caller, LiveServer, ServerFactory

SHOT = 10**18
PRICE = 3 * SHOT
CONFIRMATIONS = 2
PARAMS = DeployParams(min_stake=100 * SHOT, challenge_window_s=60, max_snapshot_age_blocks=200)


def _rpc(w3: Web3, method: str, *params: object) -> object:
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response
    return response.get("result")


@pytest.fixture
def deployment(anvil_w3: Web3, dev_keys: list[LocalAccount]) -> Deployment:
    """The contracts on a fresh anvil (``dev_keys[0]`` deploys, lists and is admin)."""
    return deploy_all(
        anvil_w3, dev_keys[0], treasury=dev_keys[1].address, guardian=dev_keys[2].address,
        params=PARAMS,
    )  # fmt: skip


@pytest.fixture
def server(
    live: ServerFactory,
    upload_settings: SettingsFactory,
    operator: LocalAccount,  # noqa: F811 - the imported fixture
    anvil: AnvilNode,
    deployment: Deployment,
) -> LiveServer:
    settings = upload_settings(
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


def _indexed(version: Packed, deployment: Deployment) -> int | None:
    with Session(version.world.engine) as db:
        return marketsync.indexed_block(
            db, chain_id=31337, market=deployment.address(DatasetMarket.NAME)
        )


def _wait_indexed(version: Packed, deployment: Deployment, block: int) -> None:
    deadline = time.monotonic() + 20
    while (_indexed(version, deployment) or -1) < block:
        assert time.monotonic() < deadline, f"the market indexer did not reach block {block}"
        time.sleep(0.05)


def test_a_purchase_grants_access_after_its_confirmations_and_a_reorg_takes_it_away(
    server: LiveServer,
    packed: Packed,  # noqa: F811 - the imported fixture
    anvil_w3: Web3,
    dev_keys: list[LocalAccount],
    deployment: Deployment,
    caller_for: Callable[..., Caller],
) -> None:
    w3, lister, treasury = anvil_w3, dev_keys[0], dev_keys[1]
    market = DatasetMarket.from_deployment(w3, deployment)
    token = ShotToken.from_deployment(w3, deployment)
    buyer: LocalAccount = Account.create()
    trainer = caller_for(server, buyer)
    name, data, _ = packed.shard()
    url = f"{packed.base}/shards/{name}"
    version_id = chain_version_id(packed.version_hash)
    manifest = "0x" + packed.version_hash

    listed = send_call(w3, lister, market.list_version(version_id, manifest, PRICE, "ipfs://t"))
    send_call(w3, treasury, token.transfer(buyer.address, PRICE))
    _rpc(w3, "anvil_setBalance", buyer.address, hex(10**18))
    send_call(w3, buyer, token.approve(market.address, PRICE))
    _wait_indexed(packed, deployment, int(listed["blockNumber"]))
    refused = trainer.http.get(url)
    assert refused.status_code == 402
    message = refused.json()["error"]["message"]
    assert (
        f"DatasetMarket({market.address}).purchase({version_id}, {PRICE}) on chain 31337 "
        "(price 3 SHOT" in message
    )

    fork = _rpc(w3, "evm_snapshot")
    bought = send_call(w3, buyer, market.purchase(version_id, PRICE))
    block = int(bought["blockNumber"])
    _wait_indexed(packed, deployment, block - CONFIRMATIONS)
    assert trainer.http.get(url).status_code == 402, "access before the confirmations"

    for _ in range(CONFIRMATIONS):
        _rpc(w3, "evm_mine")
    _wait_indexed(packed, deployment, block)
    granted = trainer.http.get(url)
    assert (granted.status_code, granted.content) == (200, data)
    with Session(packed.world.engine) as db:
        [licence] = db.exec(select(DatasetLicence)).all()
        assert (licence.buyer, licence.version_id, licence.price) == (
            buyer.address,
            version_id,
            PRICE,
        )
        assert licence.tx_hash == "0x" + bytes(bought["transactionHash"]).hex()
        assert licence.block_number == block
        assert licence.contributor_share + licence.validator_share + licence.treasury_share == PRICE
        assert licence.contributor_share == market.split_of(PRICE)[0]
        listing = db.get(DatasetListing, version_id)
        assert listing is not None
        assert (listing.price, listing.lister) == (PRICE, lister.address)

    # Another branch without the purchase, longer than the one the indexer saw.
    head = w3.eth.block_number
    assert _rpc(w3, "evm_revert", fork) is True
    for _ in range(head - w3.eth.block_number + 2):
        _rpc(w3, "evm_mine")
    _wait_indexed(packed, deployment, w3.eth.block_number - CONFIRMATIONS)
    deadline = time.monotonic() + 20
    while trainer.http.get(url).status_code != 402:
        assert time.monotonic() < deadline, "the reorg did not take the access away"
        time.sleep(0.05)
    with Session(packed.world.engine) as db:
        assert db.exec(select(col(DatasetLicence.tx_hash))).all() == []
        assert db.get(DatasetListing, version_id) is not None, "the listing survived the reorg"
    assert not market.has_licence(buyer.address, version_id)


def test_price_and_listing_changes_are_indexed_and_a_reorg_restores_the_previous_ones(
    server: LiveServer,
    packed: Packed,  # noqa: F811 - the imported fixture
    anvil_w3: Web3,
    dev_keys: list[LocalAccount],
    deployment: Deployment,
    caller_for: Callable[..., Caller],
) -> None:
    w3, lister = anvil_w3, dev_keys[0]
    market = DatasetMarket.from_deployment(w3, deployment)
    version_id = chain_version_id(packed.version_hash)
    http = caller_for(server).http

    def listing() -> dict[str, object]:
        view: dict[str, object] = http.get(packed.base).json()["listing"]
        return view

    assert listing()["status"] == "unpriced"
    send_call(w3, lister, market.list_version(version_id, version_id, PRICE, "ipfs://t"))
    for _ in range(CONFIRMATIONS):
        _rpc(w3, "evm_mine")
    _wait_indexed(packed, deployment, w3.eth.block_number - CONFIRMATIONS)
    assert (listing()["status"], listing()["price"]) == ("listed", str(PRICE))

    fork = _rpc(w3, "evm_snapshot")
    send_call(w3, lister, market.set_version_price(version_id, 2 * PRICE))
    send_call(w3, lister, market.set_version_listed(version_id, False))
    send_call(w3, lister, market.set_version_price(version_id, 4 * PRICE))
    for _ in range(CONFIRMATIONS):
        _rpc(w3, "evm_mine")
    _wait_indexed(packed, deployment, w3.eth.block_number - CONFIRMATIONS)
    assert listing() | {"market": None} == {
        "version_id": version_id,
        "market": None,
        "chain_id": 31337,
        "price": str(4 * PRICE),
        "listed": False,
        "terms_uri": "ipfs://t",
        "status": "unlisted",
    }
    with Session(packed.world.engine) as db:
        events = db.exec(
            select(col(DatasetListingChange.event)).order_by(col(DatasetListingChange.block_number))
        ).all()
        assert events == [
            "VersionListed",
            "VersionPriceChanged",
            "VersionListingChanged",
            "VersionPriceChanged",
        ]

    # Another branch that keeps only the first price change, longer than the seen one.
    head = w3.eth.block_number
    assert _rpc(w3, "evm_revert", fork) is True
    send_call(w3, lister, market.set_version_price(version_id, 2 * PRICE))
    for _ in range(head - w3.eth.block_number + 2):
        _rpc(w3, "evm_mine")
    _wait_indexed(packed, deployment, w3.eth.block_number - CONFIRMATIONS)
    deadline = time.monotonic() + 20
    while (listing()["price"], listing()["listed"]) != (str(2 * PRICE), True):
        assert time.monotonic() < deadline, f"the reorg was not undone: {listing()}"
        time.sleep(0.05)
    assert listing()["status"] == "listed"
    assert market.version(version_id).price == 2 * PRICE
    assert market.version(version_id).listed
    with Session(packed.world.engine) as db:
        stored = db.get(DatasetListing, version_id)
        assert stored is not None
        assert (stored.price, stored.listed) == (2 * PRICE, True)
