"""Dataset sales through the epochs (rule ``shotbank-rewards/2``, ``docs/api/rewards.md``).

On a real anvil with the real contracts: real clips are ingested, accepted, frozen into a
version and packed; the version is listed on the real DatasetMarket under its hash and
bought; the real chain sync indexes the purchase; the epoch close gives the sale's
contributor share to the version's contributors, pro rata to their samples. A sale of a
version the backend does not know stays in the general pool.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session
from web3 import Web3
from web3.logs import DISCARD

from backend.core.db import create_db_engine
from backend.core.migrate import alembic_config, upgrade_to_head
from backend.errors import EpochFundingUnknownError
from backend.main import create_app
from backend.models.datasets import (
    Dataset,
    DatasetCreate,
    DatasetVersion,
    DatasetVersionSample,
    DatasetVersionStatus,
)
from backend.models.epochs import EpochStatus
from backend.models.licences import DatasetLicence
from backend.services import datasets, epochs, marketsync, rewards
from backend.services.chainstore import SqlIndexerStore
from backend.services.leases import utcnow
from ingest.blobstore import LocalBlobStore
from shotbank.chain.contracts import send_call
from shotbank.chain.devnode import AnvilNode
from shotbank.chain.indexer import Checkpoint
from shotbank.rewards import RULE_VERSION, EpochInputs, allocate
from tests import pgcluster
from tests.backend.conftest import SettingsFactory
from tests.backend.datasets_world import NOW, DatasetWorld
from tests.backend.epochs_world import (
    SHOT,
    ChainWorld,
    EpochWorld,
    fake_deployment,
    make_chain_world,
    make_world,
    scores,
)
from tests.ingest.mediagen import ClipSpec, make_clip


class SalesWorld:
    """A :class:`ChainWorld` whose database also holds ready dataset versions."""

    def __init__(self, chain: ChainWorld, folder: Path) -> None:
        self.chain = chain
        self.data = DatasetWorld(
            chain.settings, chain.engine, LocalBlobStore(chain.settings.blob_path, fsync=False)
        )
        self.folder = folder
        self.clips = 0
        self.listed: set[str] = set()

    def ready_version(self, owners: list[str]) -> str:
        """Accept one real clip per owner, freeze them into a new dataset and pack it;
        the version hash."""
        operator = self.chain.settings.operators[0]
        for owner in owners:
            self.clips += 1
            spec = ClipSpec(width=160, height=120, seconds=2.0, tone_hz=200.0 + 50 * self.clips)
            data = make_clip(self.folder / f"clip-{self.clips}.mp4", spec).read_bytes()
            self.data.accepted(data, owner=owner)
        with Session(self.chain.engine) as db:
            dataset_id = datasets.create_dataset(
                db,
                request=DatasetCreate(slug=f"sales-{self.clips}", title="Sales"),
                created_by=operator,
                now=NOW,
            ).id
        version = datasets.freeze_version(
            self.chain.engine,
            settings=self.chain.settings,
            dataset_id=dataset_id,
            created_by=operator,
            now=NOW,
        )
        while datasets.pack_next(
            self.chain.engine, settings=self.chain.settings, blobs=self.data.blobs
        ):
            pass
        with Session(self.chain.engine) as db:
            view = datasets.version_view(db, dataset_id=dataset_id, number=version.number)
        assert view.version_hash is not None, view
        return view.version_hash

    def buy(self, buyer: LocalAccount, version_hash: str, price: int) -> dict[str, Any]:
        """List the version under its hash (once) and have ``buyer`` buy a licence at
        ``price``; the event."""
        world, market = self.chain, self.chain.market
        version_id = bytes.fromhex(version_hash)
        if version_hash not in self.listed:
            send_call(
                world.w3,
                world.funder,
                market.list_version(version_id, version_id, price, "ipfs://terms/v1"),
            )
            self.listed.add(version_hash)
        else:
            send_call(world.w3, world.funder, market.set_version_price(version_id, price))
        send_call(world.w3, world.funder, world.token.transfer(buyer.address, price))
        send_call(world.w3, buyer, world.token.approve(market.address, price))
        receipt = send_call(world.w3, buyer, market.purchase(version_id, price))
        [event] = market.contract.events.LicencePurchased().process_receipt(receipt, errors=DISCARD)
        return dict(event["args"]) | {"tx": "0x" + bytes(receipt["transactionHash"]).hex()}


@pytest.fixture
def world(
    upload_settings: SettingsFactory,
    anvil: AnvilNode,
    anvil_w3: Web3,
    dev_keys: list[LocalAccount],
    tmp_path: Path,
) -> Iterator[SalesWorld]:
    chain = make_chain_world(
        upload_settings,
        anvil,
        anvil_w3,
        dev_keys,
        ingest_workers=0,
        ingest_min_short_side=120,
        operators=[dev_keys[0].address],
    )
    yield SalesWorld(chain, tmp_path)
    chain.engine.dispose()


def _inputs(world: SalesWorld, number: int) -> EpochInputs:
    with Session(world.chain.engine) as db:
        document = json.loads(epochs.epoch_inputs_json(db, number=number))
    del document["result"]
    return EpochInputs.model_validate(document)


def _sales_amounts(world: SalesWorld, number: int) -> dict[str, int]:
    inputs = _inputs(world, number)
    return {a.address: a.sales_amount for a in allocate(inputs).allocations if a.sales_amount}


def test_a_sale_pays_the_versions_contributors_pro_rata_once_and_an_unknown_one_stays_general(
    world: SalesWorld, dev_keys: list[LocalAccount]
) -> None:
    alice, bob, trainer = dev_keys[1].address, dev_keys[2].address, dev_keys[8]
    version_hash = world.ready_version([alice, alice, bob])

    # Epoch 1: one sale of the version (ALICE has 2 of its 3 samples, BOB 1).
    first = world.buy(trainer, version_hash, 300 * SHOT + 7)
    world.chain.sync()
    one = epochs.close_epoch(world.chain.engine, settings=world.chain.settings)
    assert one.status == EpochStatus.CLOSED
    share = first["contributorShare"]
    assert 0 < share < first["price"]
    assert _sales_amounts(world, 1) == {alice: share * 2 // 3, bob: share // 3}
    inputs = _inputs(world, 1)
    assert inputs.rule.version == RULE_VERSION
    assert inputs.market == world.chain.market.address
    assert [(s.tx_hash, s.version_id, s.amount) for s in inputs.sales] == [
        (first["tx"], "0x" + version_hash, share)
    ]
    assert inputs.versions == {"0x" + version_hash: {alice: 2, bob: 1}}

    # Epoch 2: the same version sold again, and a version the backend does not know.
    second = world.buy(dev_keys[3], version_hash, 90 * SHOT)
    unknown = world.chain.sell_licence(trainer, 50 * SHOT)
    world.chain.sync()
    two = epochs.close_epoch(world.chain.engine, settings=world.chain.settings)
    assert two.status == EpochStatus.CLOSED
    share2 = second["contributorShare"]
    # Only epoch 2's own sale: the first one is not counted again.
    assert [s.tx_hash for s in _inputs(world, 2).sales] == [second["tx"]]
    assert _sales_amounts(world, 2) == {alice: share2 * 2 // 3, bob: share2 // 3}

    with Session(world.chain.engine) as db:
        summary = epochs.epoch_summary(db, number=2)
        alice_view = rewards.rewards_of(db, address=alice)
    # The unknown version's share was funded (it is in the pool's sales) but is not
    # earmarked: it stays in the general pool, which nobody earned this epoch.
    assert summary.funding is not None
    assert int(summary.funding.sales) == share2 + unknown["contributorShare"]
    assert int(summary.sales_pool or 0) == share2
    assert int(summary.sales_allocated or 0) == share2 * 2 // 3 + share2 // 3
    assert int(summary.allocated or 0) == int(summary.sales_allocated or 0)
    assert int(summary.carry or 0) == int(summary.pool or 0) - int(summary.allocated or 0)
    assert int(summary.carry or 0) >= unknown["contributorShare"]
    assert [(e.epoch, int(e.sales_amount)) for e in alice_view.epochs] == [
        (2, share2 * 2 // 3),
        (1, share * 2 // 3),
    ]
    assert int(alice_view.earned) == share * 2 // 3 + share2 * 2 // 3

    # The lookup a validator node uses: by hash, with the manifest that hashes to it.
    with TestClient(create_app(world.chain.settings)) as client:
        found = client.get(f"/api/v1/dataset-versions/{version_hash}")
        assert found.status_code == 200, found.text
        body = found.json()
        assert (body["version_hash"], body["samples"], body["contributors"]) == (
            version_hash,
            3,
            2,
        )
        manifest = client.get(body["manifest_url"])
        assert hashlib.sha256(manifest.content).hexdigest() == version_hash
        missing = client.get(f"/api/v1/dataset-versions/{unknown['versionId'].hex()}")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "dataset_version_not_found"
        assert client.get("/api/v1/dataset-versions/ABC").status_code == 422


def _market_indexed_to(world: EpochWorld, block: int) -> None:
    """The market indexer's checkpoint, as if it had read the market up to ``block``."""
    store = SqlIndexerStore(world.engine)
    name = marketsync.use_source(
        store,
        chain_id=world.deployment.chain_id,
        market=world.deployment.address("DatasetMarket"),
    )
    with store.transaction():
        store.set_checkpoint(
            name, Checkpoint(block_number=block, block_hash="0x" + secrets.token_hex(32))
        )


def test_the_close_waits_for_a_lagging_market_indexer_and_funds_only_up_to_its_block(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world(make_settings(), fake_deployment())
    world.index_funding(1000, block=100)
    # Never indexed: the epoch closes without sales, and says so.
    with caplog.at_level(logging.WARNING, logger="backend.services.epochs"):
        one = epochs.close_epoch(world.engine, settings=world.settings)
    assert (one.status, one.funding_block, one.sales_pool) == (EpochStatus.EMPTY, 100, 0)
    assert any("closes without dataset sales" in m for m in caplog.messages)
    # Behind the previous funding block: sales since then are unknown, the close waits.
    world.index_funding(2000, block=120)
    _market_indexed_to(world, 90)
    with pytest.raises(EpochFundingUnknownError, match="market indexer is at block 90"):
        epochs.close_epoch(world.engine, settings=world.settings)
    # Between the two: the epoch is funded up to what the market indexer has read.
    _market_indexed_to(world, 110)
    two = epochs.close_epoch(world.engine, settings=world.settings)
    assert (two.number, two.funding_block, two.funded_total) == (2, 110, 1000)
    world.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def paper_world(
    request: pytest.FixtureRequest, make_settings: SettingsFactory
) -> Iterator[EpochWorld]:
    """A migrated database (SQLite or PostgreSQL) and a deployment only on paper."""
    overrides: dict[str, Any] = {"ingest_workers": 0}
    if request.param == "sqlite":
        built = make_world(make_settings(**overrides), fake_deployment())
        yield built
        built.engine.dispose()
        return
    admin = request.getfixturevalue("postgres_admin_url")
    with pgcluster.throwaway_database(admin, prefix="shotbank_sales") as url:
        built = make_world(make_settings(database_url=url, **overrides), fake_deployment())
        yield built
        built.engine.dispose()


def _version_of(world: EpochWorld, owners: list[str]) -> str:
    """A ready version row holding one decided clip per owner; its hash."""
    later = utcnow() + timedelta(days=1)  # decided after the closes: in no epoch's clips
    clips = [
        world.decide(owner, [("0x" + "7a" * 20, scores(0.9))], now=later)[0] for owner in owners
    ]
    version_hash = secrets.token_hex(32)
    with Session(world.engine) as db:
        dataset = Dataset(
            slug=f"paper-{version_hash[:8]}",
            title="Paper",
            filter_json="{}",
            created_by=owners[0],
            created_at=later,
        )
        db.add(dataset)
        db.flush()
        version = DatasetVersion(
            dataset_id=dataset.id,
            number=1,
            status=DatasetVersionStatus.READY,
            version_hash=version_hash,
            samples=len(clips),
            shard_bytes=1 << 20,
            created_by=owners[0],
            created_at=later,
        )
        db.add(version)
        db.flush()
        db.add_all(
            DatasetVersionSample(version_id=version.id, clip_id=clip, contributor=owner)
            for clip, owner in zip(clips, owners, strict=True)
        )
        db.commit()
    return version_hash


def _licence(world: EpochWorld, version_hash: str, share: int, *, block: int) -> str:
    """A ``dataset_licence`` row as the market indexer writes it; its transaction hash."""
    tx = "0x" + secrets.token_hex(32)
    with Session(world.engine) as db:
        db.add(
            DatasetLicence(
                tx_hash=tx,
                log_index=3,
                version_id="0x" + version_hash,
                buyer="0x" + "b0" * 20,
                price=share * 2,
                contributor_share=share,
                validator_share=share // 2,
                treasury_share=share // 2,
                block_number=block,
                block_hash="0x" + secrets.token_hex(32),
            )
        )
        db.commit()
    return tx


def test_each_indexed_sale_of_a_known_version_is_in_the_one_epoch_of_its_block(
    paper_world: EpochWorld,
) -> None:
    world = paper_world
    alice, bob = "0x" + "a1" * 20, "0x" + "b2" * 20
    known = _version_of(world, [alice, alice, bob])
    world.index_funding(10**21, block=100)
    _market_indexed_to(world, 100)
    first = _licence(world, known, 3 * 10**20 + 2, block=50)
    _licence(world, secrets.token_hex(32), 10**20, block=60)  # a version nobody here knows
    later = _licence(world, known, 6 * 10**19, block=101)  # after epoch 1's funding block

    one = epochs.close_epoch(world.engine, settings=world.settings)
    inputs = _inputs_of(world, 1)
    assert [s.tx_hash for s in inputs.sales] == [first]
    assert inputs.versions == {
        "0x" + known: {Web3.to_checksum_address(alice): 2, Web3.to_checksum_address(bob): 1}
    }
    assert (one.sales_pool, one.sales_allocated) == (3 * 10**20 + 2, 3 * 10**20 + 1)

    world.index_funding(2 * 10**21, block=120)
    _market_indexed_to(world, 120)
    epochs.close_epoch(world.engine, settings=world.settings)
    assert [s.tx_hash for s in _inputs_of(world, 2).sales] == [later]
    with Session(world.engine) as db:
        view = rewards.rewards_of(db, address=alice)
    assert [(e.epoch, int(e.sales_amount)) for e in view.epochs] == [
        (2, 4 * 10**19),
        (1, 2 * 10**20 + 1),
    ]


def _inputs_of(world: EpochWorld, number: int) -> EpochInputs:
    with Session(world.engine) as db:
        document = json.loads(epochs.epoch_inputs_json(db, number=number))
    del document["result"]
    return EpochInputs.model_validate(document)


def _columns(engine: Engine, table: str) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns(table)}


def _migrate(engine: Engine, target: str, *, down: bool) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, target)


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_migration_0014_adds_and_drops_the_sales_columns(
    database: str, make_settings: SettingsFactory, request: pytest.FixtureRequest
) -> None:
    overrides = {}
    if database == "postgresql":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    engine = create_db_engine(make_settings(**overrides))
    added = {"epoch": {"sales_pool", "sales_allocated"}, "epoch_allocation": {"sales_amount"}}
    try:
        upgrade_to_head(engine)
        for table, columns in added.items():
            assert columns <= _columns(engine, table)
        _migrate(engine, "0013", down=True)
        for table, columns in added.items():
            assert not columns & _columns(engine, table)
        assert "funding_json" in _columns(engine, "epoch")
        _migrate(engine, "0014", down=False)
        for table, columns in added.items():
            assert columns <= _columns(engine, table)
    finally:
        if database == "postgresql":
            upgrade_to_head(engine)  # the shared database stays at head for other tests
        engine.dispose()
