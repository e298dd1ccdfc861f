"""Listing frozen versions on a real anvil with the real contracts: a priced version is
listed exactly once through the operator outbox (crashes included), its view follows the
listing from ``pending`` to ``listed``, operators re-price, unlist and relist it, and a
purchase shows in the licences API. Migration 0012 goes up and down on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from alembic import command
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, Engine, create_engine
from sqlmodel import Session, col, select
from web3 import Web3

from backend import admin
from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.core.migrate import alembic_config, upgrade_to_head
from backend.errors import ConflictError
from backend.models.datasets import Dataset, DatasetVersion, DatasetVersionStatus
from backend.models.licences import DatasetListing, DatasetListingChange
from backend.models.rewardchain import OutboxTransaction
from backend.services import licences
from backend.services.licences import Lister, chain_version_id, listing_key
from backend.services.outboxstore import operator_outbox
from ingest.blobstore import LocalBlobStore
from shotbank.chain.abi import load_abi
from shotbank.chain.contracts import DatasetMarket, ShotToken, send_call
from shotbank.chain.deploy import DeployParams, deploy_all
from shotbank.chain.deployments import Deployment, save_deployment
from shotbank.chain.devnode import AnvilNode
from shotbank.client.signed import sign_request
from tests import pgcluster
from tests.backend.conftest import SettingsFactory
from tests.backend.dataset_fixtures import clips  # noqa: F401 - fixture used by name
from tests.backend.datasets_world import DatasetWorld
from tests.backend.live import Caller, LiveServer, ServerFactory

SHOT = 10**18
PRICE = 3 * SHOT
CONFIRMATIONS = 2
PUBLIC_URL = "https://data.shotbank.example"
PARAMS = DeployParams(min_stake=100 * SHOT, challenge_window_s=60, max_snapshot_age_blocks=200)
CONTRIBUTOR = "0x" + "a1" * 20


def _rpc(w3: Web3, method: str, *params: object) -> Any:
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response
    return response.get("result")


def _mine(w3: Web3, blocks: int) -> None:
    for _ in range(blocks):
        _rpc(w3, "evm_mine")


def _wait(what: str, check: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture
def deployment(anvil_w3: Web3, dev_keys: list[LocalAccount]) -> Deployment:
    """The contracts on a fresh anvil (``dev_keys[0]`` deploys, lists and is admin)."""
    return deploy_all(
        anvil_w3, dev_keys[0], treasury=dev_keys[1].address, guardian=dev_keys[2].address,
        params=PARAMS,
    )  # fmt: skip


@pytest.fixture
def operator() -> LocalAccount:
    """The wallet that signs in to define and freeze datasets."""
    account: LocalAccount = Account.create()
    return account


@pytest.fixture
def chain_settings(
    upload_settings: SettingsFactory,
    operator: LocalAccount,
    anvil: AnvilNode,
    deployment: Deployment,
    dev_keys: list[LocalAccount],
) -> Settings:
    """Settings on the anvil deployment with ``dev_keys[0]`` (the lister) as operator key."""
    settings = upload_settings(
        operators=[operator.address],
        ingest_workers=0,
        ingest_min_short_side=120,
        dataset_poll_s=0.05,
        chain_rpc_url=anvil.url,
        chain_confirmations=CONFIRMATIONS,
        chain_poll_s=0.05,
        outbox_confirmations=1,
        operator_key="0x" + bytes(dev_keys[0].key).hex(),
        public_url=PUBLIC_URL,
    )
    settings.deployments_path.parent.mkdir(parents=True, exist_ok=True)
    save_deployment(settings.deployments_path, deployment)
    return settings


@pytest.fixture
def engine(chain_settings: Settings) -> Iterator[Engine]:
    """The migrated database of ``chain_settings``."""
    made = create_db_engine(chain_settings)
    upgrade_to_head(made)
    yield made
    made.dispose()


def _ready_version(engine: Engine, *, price: int | None) -> DatasetVersion:
    """A dataset and a ready version row (as the packer leaves it) with ``price``."""
    now = datetime.now(UTC)
    with Session(engine) as db:
        dataset = Dataset(
            slug=f"d-{secrets.token_hex(4)}",
            title="t",
            filter_json="{}",
            created_by=CONTRIBUTOR,
            created_at=now,
        )
        db.add(dataset)
        db.flush()
        version = DatasetVersion(
            dataset_id=dataset.id,
            number=1,
            status=DatasetVersionStatus.READY,
            version_hash=secrets.token_hex(32),
            samples=1,
            shard_bytes=1024 * 1024,
            price=price,
            created_by=CONTRIBUTOR,
            created_at=now,
            ready_at=now,
        )
        db.add(version)
        db.commit()
        db.refresh(version)
        return version


def _listing_logs(w3: Web3, market: DatasetMarket, version_id: str) -> int:
    contract = w3.eth.contract(address=market.address, abi=load_abi(DatasetMarket.NAME))
    logs = contract.events.VersionListed().get_logs(from_block=0)
    return sum(1 for log in logs if "0x" + bytes(log["args"]["versionId"]).hex() == version_id)


def _outbox_rows(engine: Engine, key: str) -> list[OutboxTransaction]:
    with Session(engine) as db:
        return list(
            db.exec(select(OutboxTransaction).where(col(OutboxTransaction.key) == key)).all()
        )


def test_a_priced_version_is_listed_once_across_crashes_around_enqueue_and_send(
    chain_settings: Settings, engine: Engine, anvil_w3: Web3, deployment: Deployment
) -> None:
    version = _ready_version(engine, price=PRICE)
    assert version.version_hash is not None
    version_id = chain_version_id(version.version_hash)
    key = listing_key(31337, version_id)
    market = DatasetMarket.from_deployment(anvil_w3, deployment)
    terms = f"{PUBLIC_URL}/api/v1/datasets/{version.dataset_id}/terms"

    # A lister that died right after the outbox stored the transaction, before it
    # recorded it on the version: the transaction is there, the version does not know.
    outbox = operator_outbox(anvil_w3, engine, chain_settings)
    stored = outbox.enqueue(market.list_version(version_id, version_id, PRICE, terms).intent(key))
    assert Lister(engine, chain_settings).pending() == [version.id]

    restarted = Lister(engine, chain_settings)
    assert restarted.step() is True
    with Session(engine) as db:
        row = db.get(DatasetVersion, version.id)
        assert row is not None
        assert row.listing_tx_id == stored.id, "adopted, not re-made"
    assert restarted.pending() == []
    assert restarted.step() is False

    # Broadcast, then a process that dies before it reads the receipt: a fresh outbox
    # reconciles the same transaction instead of sending another.
    outbox.process()
    again = operator_outbox(anvil_w3, engine, chain_settings)
    again.process()
    _mine(anvil_w3, 1)
    again.process()
    assert [row.status for row in _outbox_rows(engine, key)] == ["confirmed"]
    assert _listing_logs(anvil_w3, market, version_id) == 1
    on_chain = market.version(version_id)
    assert (on_chain.price, on_chain.listed, on_chain.terms_uri) == (PRICE, True, terms)
    assert on_chain.manifest_hash == version_id


def test_unpriced_versions_wait_and_a_listing_that_would_revert_is_recorded_not_retried(
    chain_settings: Settings,
    engine: Engine,
    anvil_w3: Web3,
    deployment: Deployment,
    dev_keys: list[LocalAccount],
) -> None:
    unpriced = _ready_version(engine, price=None)
    taken = _ready_version(engine, price=PRICE)
    assert taken.version_hash is not None
    version_id = chain_version_id(taken.version_hash)
    market = DatasetMarket.from_deployment(anvil_w3, deployment)
    # Someone listed that versionId already: listVersion would revert.
    send_call(anvil_w3, dev_keys[0], market.list_version(version_id, version_id, 5, "ipfs://x"))
    lister = Lister(engine, chain_settings)
    assert lister.pending() == [taken.id]
    assert lister.step() is False
    with Session(engine) as db:
        row = db.get(DatasetVersion, taken.id)
        assert row is not None
        assert row.listing_tx_id is None
        assert row.listing_error is not None
        assert "DatasetMarketVersionExists" in row.listing_error
    assert lister.pending() == []

    outbox = operator_outbox(anvil_w3, engine, chain_settings)
    with pytest.raises(ConflictError, match="no listing yet"):
        licences.change_listed(
            engine, chain_settings, outbox, dataset=unpriced.dataset_id, number=1, listed=False
        )
    # Pricing a version that is not listed yet only sets the price the lister then uses.
    assert (
        licences.change_price(
            engine, chain_settings, outbox, dataset=unpriced.dataset_id, number=1, price=7
        )
        is None
    )
    assert lister.pending() == [unpriced.id]
    assert lister.step() is True
    outbox.process()
    assert unpriced.version_hash is not None
    assert market.version(chain_version_id(unpriced.version_hash)).price == 7


@pytest.fixture
def server(live: ServerFactory, chain_settings: Settings) -> LiveServer:
    """A live backend on the anvil deployment: chain sync, submitter and lister running."""
    return live(chain_settings)


def _view(http: httpx.Client, base: str) -> dict[str, Any]:
    answer = http.get(base)
    assert answer.status_code == 200, answer.text
    view: dict[str, Any] = answer.json()
    return view


def _freeze(
    http: httpx.Client,
    *,
    slug: str,
    price: str | None,
    version_price: str | None,
    shard_bytes: int = 32 * 1024,
) -> tuple[str, str]:
    made = http.post(
        "/api/v1/datasets",
        json={
            "slug": slug,
            "title": slug,
            "filter": {},
            "licence_terms": f"Terms of {slug}: train models, do not redistribute.",
            "price": price,
        },
    )
    assert made.status_code == 201, made.text
    assert made.json()["price"] == price
    dataset_id = made.json()["id"]
    body: dict[str, Any] = {"shard_bytes": shard_bytes}
    if version_price is not None:
        body["price"] = version_price
    frozen = http.post(f"/api/v1/datasets/{dataset_id}/versions", json=body)
    assert frozen.status_code == 202, frozen.text
    assert frozen.json()["listing"] is None, "no listing before the version is ready"
    base = f"/api/v1/datasets/{dataset_id}/versions/1"
    _wait("the packer did not finish", lambda: _view(http, base)["status"] != "packing")
    assert _view(http, base)["status"] == "ready"
    return dataset_id, base


def test_a_frozen_priced_version_goes_pending_then_listed_and_operators_change_it(
    server: LiveServer,
    caller_for: Callable[..., Caller],
    operator: LocalAccount,
    clips: list[bytes],  # noqa: F811 - the imported fixture
    anvil_w3: Web3,
    deployment: Deployment,
    dev_keys: list[LocalAccount],
) -> None:
    w3, settings = anvil_w3, server.settings
    engine = create_db_engine(settings)
    world = DatasetWorld(settings, engine, LocalBlobStore(settings.blob_path, fsync=False))
    for data in clips[:2]:
        world.accepted(data, owner=CONTRIBUTOR)
    http = caller_for(server, operator).http
    market = DatasetMarket.from_deployment(w3, deployment)

    bad = http.post("/api/v1/datasets", json={"slug": "x", "title": "x", "price": "0"})
    assert bad.status_code == 422
    too_much = http.post(
        "/api/v1/datasets", json={"slug": "x", "title": "x", "price": "2" + "0" * 36}
    )
    assert too_much.status_code == 422

    dataset_id, base = _freeze(http, slug="beach", price="1000", version_price=str(PRICE))
    version_id = "0x" + _view(http, base)["version_hash"]
    key = listing_key(31337, version_id)
    _wait("the listing was not sent", lambda: _outbox_rows(engine, key) != [] and any(
        row.block_number is not None for row in _outbox_rows(engine, key)))  # fmt: skip
    # Mined but not yet CONFIRMATIONS deep: the indexer has not seen it.
    listing = _view(http, base)["listing"]
    assert listing == {
        "version_id": version_id,
        "market": market.address,
        "chain_id": 31337,
        "price": None,
        "listed": None,
        "terms_uri": None,
        "status": "pending",
    }
    _mine(w3, CONFIRMATIONS)
    _wait("the listing was not indexed", lambda: _view(http, base)["listing"]["status"] == "listed")
    terms = f"{PUBLIC_URL}/api/v1/datasets/{dataset_id}/terms"
    assert _view(http, base)["listing"] | {"status": "-"} == listing | {
        "price": str(PRICE),
        "listed": True,
        "terms_uri": terms,
        "status": "-",
    }
    dataset = _view(http, f"/api/v1/datasets/{dataset_id}")
    assert dataset["versions"][0]["listing"]["status"] == "listed"
    assert _listing_logs(w3, market, version_id) == 1
    assert len(_outbox_rows(engine, key)) == 1
    served = http.get(f"/api/v1/datasets/{dataset_id}/terms")
    assert served.headers["content-type"].startswith("text/plain")
    assert served.text == "Terms of beach: train models, do not redistribute."

    # A purchase shows in the licences API once it is CONFIRMATIONS deep.
    buyer: LocalAccount = Account.create()
    token = ShotToken.from_deployment(w3, deployment)
    send_call(w3, dev_keys[1], token.transfer(buyer.address, PRICE))
    _rpc(w3, "anvil_setBalance", buyer.address, hex(10**18))
    send_call(w3, buyer, token.approve(market.address, PRICE))
    bought = send_call(w3, buyer, market.purchase(version_id, PRICE))
    _mine(w3, CONFIRMATIONS)
    path = "/api/v1/licences"

    def mine_listed() -> list[dict[str, Any]]:
        signed = sign_request(buyer, "GET", path, b"", 31337)
        found: list[dict[str, Any]] = http.get(path, headers={"Authorization": signed}).json()[
            "licences"
        ]
        return found

    _wait("the purchase was not indexed", lambda: mine_listed() != [])
    [licence] = mine_listed()
    assert licence["dataset_id"] == dataset_id
    assert licence["number"] == 1
    assert (licence["buyer"], licence["version_id"], licence["price"]) == (
        buyer.address,
        version_id,
        str(PRICE),
    )
    assert licence["tx_hash"] == "0x" + bytes(bought["transactionHash"]).hex()
    shares = (licence["contributor_share"], licence["validator_share"], licence["treasury_share"])
    assert tuple(int(x) for x in shares) == market.split_of(PRICE)

    # Operators re-price, unlist and relist from the command line; the server sends.
    def changed(expect: dict[str, Any]) -> Callable[[], bool]:
        def check() -> bool:
            _mine(w3, 1)
            got = _view(http, base)["listing"]
            return all(got[name] == value for name, value in expect.items())

        return check

    assert admin.main(["datasets", "price", "beach", "1", str(2 * PRICE)], settings) == 0
    _wait("the new price was not indexed", changed({"price": str(2 * PRICE)}))
    assert market.version(version_id).price == 2 * PRICE
    assert admin.main(["datasets", "unlist", dataset_id, "1"], settings) == 0
    _wait("the unlisting was not indexed", changed({"status": "unlisted", "listed": False}))
    shard = _view(http, f"{base}/index.json")["shards"][0]["name"]
    stranger = caller_for(server).http.get(f"{base}/shards/{shard}")
    assert stranger.status_code == 402
    assert "off sale" in stranger.json()["error"]["message"]
    assert admin.main(["datasets", "relist", "beach", "1"], settings) == 0
    _wait("the relisting was not indexed", changed({"status": "listed", "listed": True}))
    keys = [row.key for row in _all_outbox(engine)]
    assert f"version-price:31337:{version_id}:1" in keys
    assert f"version-listed:31337:{version_id}:1" in keys
    assert f"version-listed:31337:{version_id}:2" in keys
    assert admin.main(["datasets", "price", "beach", "9", "5"], settings) == 1

    # A dataset without a price: its versions are not for sale.
    # (Another shard target: the same clips packed alike would repeat version 1's hash.)
    _, plain = _freeze(
        http, slug="plain", price=None, version_price=None, shard_bytes=4 * 1024 * 1024
    )
    assert _view(http, plain)["listing"]["status"] == "unpriced"
    with Session(engine) as db:
        assert len(db.exec(select(DatasetListing)).all()) == 1
    engine.dispose()


def _all_outbox(engine: Engine) -> list[OutboxTransaction]:
    with Session(engine) as db:
        return list(db.exec(select(OutboxTransaction)).all())


# --- migration 0012 -----------------------------------------------------------------------


def _migrate(engine: Engine, action: str, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def _check_migration_0012(engine: Engine) -> None:
    _migrate(engine, "upgrade", "0011")
    version_id = "0x" + "ab" * 32
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO dataset_listing (version_id, manifest_hash, price, terms_uri,"
                " lister, block_number, log_index, block_hash, tx_hash) VALUES (:v, :v, :p,"
                " 'ipfs://t', :a, 5, 2, :h, :t)"
            ),
            {
                "v": version_id,
                "p": 7 if engine.dialect.name == "postgresql" else f"{7:078d}",
                "a": CONTRIBUTOR,
                "h": "0x" + "11" * 32,
                "t": "0x" + "22" * 32,
            },
        )
    _migrate(engine, "upgrade", "0012")
    tables = set(inspect(engine).get_table_names())
    assert {"request_nonce", "dataset_listing_change"} <= tables
    columns = {c["name"] for c in inspect(engine).get_columns("dataset_version")}
    assert {"price", "listing_tx_id", "listing_error", "price_changes"} <= columns
    with Session(engine) as db:
        listing = db.get(DatasetListing, version_id)
        assert listing is not None
        assert (listing.price, listing.listed) == (7, True)
        [change] = db.exec(select(DatasetListingChange)).all()
        assert (change.event, change.price, change.listed, change.block_number) == (
            "VersionListed", 7, True, 5,
        )  # fmt: skip
    _migrate(engine, "downgrade", "0011")
    tables = set(inspect(engine).get_table_names())
    assert "request_nonce" not in tables
    assert "dataset_listing_change" not in tables
    assert "price" not in {c["name"] for c in inspect(engine).get_columns("dataset")}
    assert "listed" not in {c["name"] for c in inspect(engine).get_columns("dataset_listing")}
    _migrate(engine, "upgrade", "head")


def test_migration_0012_upgrades_and_downgrades_on_sqlite(make_settings: SettingsFactory) -> None:
    engine = create_db_engine(make_settings())
    _check_migration_0012(engine)
    engine.dispose()


@pytest.mark.postgres
def test_migration_0012_upgrades_and_downgrades_on_postgresql(postgres_admin_url: URL) -> None:
    with pgcluster.throwaway_database(postgres_admin_url) as url:
        engine = create_engine(url)
        _check_migration_0012(engine)
        engine.dispose()
