"""Where an epoch's pool came from: the ``funding`` breakdown of ``GET /api/v1/epochs/{n}``.

The pool is ``totalFunded`` at the funding block minus what earlier epochs allocated
(``docs/api/rewards.md``, rule 1); the breakdown splits the funding that arrived since the
previous epoch by who called ``RewardDistributor.fund`` (emission, dataset sales,
slashing, anyone else) and shows the rest as carried from earlier epochs. On a real
anvil with the real contracts, every expected amount is read from the chain's own events
(``LicencePurchased``, ``Funded``, ``Slashed``), never recomputed from constants.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session
from web3 import Web3

from backend.main import create_app
from backend.models.epochs import Epoch, EpochFunding, EpochStatus, EpochSummary
from backend.services import epochs
from shotbank.chain.contracts import DatasetMarket, ShotToken, ValidatorRegistry
from shotbank.chain.devnode import AnvilNode
from shotbank.client import models as client_models
from tests import pgcluster
from tests.backend.conftest import SettingsFactory
from tests.backend.epochs_world import (
    SHOT,
    ChainWorld,
    EpochWorld,
    address,
    fake_deployment,
    make_chain_world,
    make_world,
    scores,
)

#: What ``make_chain_world`` funds from the treasury before any test step.
SEED_FUNDING = 10_000 * SHOT


def _amounts(funding: EpochFunding | client_models.EpochFunding | None) -> dict[str, int]:
    assert funding is not None, "the epoch has no funding breakdown"
    return {
        kind: int(getattr(funding, kind))
        for kind in ("emission", "sales", "slashing", "other", "carried")
    }


def _summary(world: EpochWorld, number: int) -> EpochSummary:
    with Session(world.engine) as db:
        return epochs.epoch_summary(db, number=number)


def _served(summary: EpochSummary) -> client_models.EpochSummary:
    """The summary as the SDK parses it from the route's JSON."""
    return client_models.EpochSummary.model_validate_json(summary.model_dump_json())


def _pool_adds_up(summary: EpochSummary) -> dict[str, int]:
    """The breakdown's amounts, after checking they add up to the published pool."""
    amounts = _amounts(summary.funding)
    assert summary.pool is not None
    assert sum(amounts.values()) == int(summary.pool)
    return amounts


# --- on a real chain -------------------------------------------------------------------------


@pytest.fixture
def chain_world(
    upload_settings: SettingsFactory, anvil: AnvilNode, anvil_w3: Web3, dev_keys: list[LocalAccount]
) -> Iterator[ChainWorld]:
    """Contracts, stakes and the treasury's 10,000 SHOT on a fresh anvil; indexed."""
    built = make_chain_world(upload_settings, anvil, anvil_w3, dev_keys, ingest_workers=0)
    yield built
    built.engine.dispose()


def test_a_licence_sale_emission_and_a_treasury_top_up_show_in_the_epoch_pool_by_source(
    chain_world: ChainWorld, dev_keys: list[LocalAccount]
) -> None:
    world = chain_world
    contributor, trainer, anyone = dev_keys[7], dev_keys[8], dev_keys[3]
    small, middle, large = world.validators

    # Epoch 1: a trainer buys a licence, the scheduled emission is drawn, the treasury
    # tops the pool up.
    sale = world.sell_licence(trainer, 500 * SHOT)
    assert sale["buyer"] == trainer.address
    assert 0 < sale["contributorShare"] < sale["price"]
    world.pass_time(30)
    emission = world.draw_emission(anyone)
    assert emission > 0
    top_up = 1_234 * SHOT
    world.fund(top_up)
    world.decide(contributor.address, [(v.address, scores(0.8)) for v in world.validators])
    world.sync()
    first = epochs.close_epoch(world.engine, settings=world.settings)
    assert first.status == EpochStatus.CLOSED

    summary = _summary(world, 1)
    assert _pool_adds_up(summary) == {
        "emission": emission,
        "sales": sale["contributorShare"],
        "slashing": 0,
        "other": SEED_FUNDING + top_up,
        "carried": 0,
    }
    # The first epoch's pool is everything ever funded, as the distributor says.
    assert summary.funded_total == str(world.distributor_contract.total_funded())
    assert summary.pool == summary.funded_total
    # One contributor is capped at a quarter of the contributor pool: most is carried on.
    assert first.carry is not None
    assert first.carry > 0
    assert _amounts(_served(summary).funding) == _amounts(summary.funding)

    # Epoch 2: another sale and a slash; no emission, no treasury money.
    second_sale = world.sell_licence(trainer, 800 * SHOT)
    bonded = ValidatorRegistry(world.w3, world.registry).bonded_stake_of(small.address)
    slashed = world.slash(small, anyone, epoch=1)
    assert slashed == bonded > 0
    world.decide(contributor.address, [(v.address, scores(0.9)) for v in (middle, large)])
    world.sync()
    nxt = epochs.close_epoch(world.engine, settings=world.settings)
    assert nxt.status == EpochStatus.CLOSED
    assert nxt.previous_epoch == 1
    assert (first.funding_block or 0) < (nxt.funding_block or 0)

    summary = _summary(world, 2)
    assert _pool_adds_up(summary) == {
        "emission": 0,
        "sales": second_sale["contributorShare"],
        "slashing": slashed,
        "other": 0,
        "carried": first.carry,
    }
    assert _amounts(_served(summary).funding)["carried"] == first.carry


# --- from the indexed events alone -----------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (SQLite under the test's var dir) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    admin = request.getfixturevalue("postgres_admin_url")
    with pgcluster.throwaway_database(admin, prefix="shotbank_funding") as url:
        yield url


@pytest.fixture
def world(upload_settings: SettingsFactory, database_url: str | None) -> Iterator[EpochWorld]:
    """A migrated database (SQLite or PostgreSQL), a deployment on paper, no chain."""
    overrides: dict[str, Any] = {"ingest_workers": 0}
    if database_url is not None:
        overrides["database_url"] = database_url
    built = make_world(upload_settings(**overrides), fake_deployment())
    yield built
    built.engine.dispose()


def _sources(world: EpochWorld) -> dict[str, str]:
    deployment = world.deployment
    return {
        "emission": deployment.address(ShotToken.NAME),
        "sales": deployment.address(DatasetMarket.NAME),
        "slashing": deployment.address(ValidatorRegistry.NAME),
        "other": address(),
    }


def _decide_one(world: EpochWorld) -> None:
    validators = [address() for _ in range(3)]
    world.decide(address(), [(validator, scores(0.8)) for validator in validators])


def test_each_funding_is_counted_once_by_source_and_an_empty_epoch_carries_its_whole_pool(
    world: EpochWorld,
) -> None:
    source = _sources(world)
    # Epoch 1: emission 100, sales 30 + 20, slashing 7, a stranger 3 (totals as indexed).
    world.index_funding(
        100 * SHOT,
        130 * SHOT,
        137 * SHOT,
        140 * SHOT,
        160 * SHOT,
        block=50,
        sources=[source[kind] for kind in ("emission", "sales", "slashing", "other", "sales")],
    )
    _decide_one(world)
    first = epochs.close_epoch(world.engine, settings=world.settings)
    assert _pool_adds_up(_summary(world, 1)) == {
        "emission": 100 * SHOT,
        "sales": 50 * SHOT,
        "slashing": 7 * SHOT,
        "other": 3 * SHOT,
        "carried": 0,
    }
    assert first.carry is not None

    # Epoch 2 takes no clip: it allocates nothing and its whole pool is carried again.
    world.index_funding(165 * SHOT, block=60, sources=[source["sales"]])
    empty = epochs.close_epoch(world.engine, settings=world.settings)
    assert empty.status == EpochStatus.EMPTY
    assert _pool_adds_up(_summary(world, 2)) == {
        "emission": 0,
        "sales": 5 * SHOT,
        "slashing": 0,
        "other": 0,
        "carried": first.carry,
    }
    assert empty.carry == empty.pool

    # Epoch 3 sees only what came after epoch 2's funding, and epoch 2's whole pool.
    world.index_funding(175 * SHOT, 176 * SHOT, block=70, sources=[source["emission"]] * 2)
    _decide_one(world)
    epochs.close_epoch(world.engine, settings=world.settings)
    assert _pool_adds_up(_summary(world, 3)) == {
        "emission": 11 * SHOT,
        "sales": 0,
        "slashing": 0,
        "other": 0,
        "carried": empty.pool,
    }


def test_the_route_serves_the_breakdown_and_the_sdk_reads_it(world: EpochWorld) -> None:
    source = _sources(world)
    world.index_funding(
        40 * SHOT, 100 * SHOT, block=20, sources=[source["sales"], source["emission"]]
    )
    _decide_one(world)
    epochs.close_epoch(world.engine, settings=world.settings)

    with TestClient(create_app(world.settings)) as client:
        response = client.get("/api/v1/epochs/1")
        page = client.get("/api/v1/epochs").json()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["funding"] == {
        "emission": str(60 * SHOT),
        "sales": str(40 * SHOT),
        "slashing": "0",
        "other": "0",
        "carried": "0",
    }
    assert page["epochs"][0]["funding"] == body["funding"]
    parsed = client_models.EpochSummary.model_validate(body)
    assert parsed.funding is not None
    assert (parsed.funding.sales, parsed.funding.emission) == (40 * SHOT, 60 * SHOT)


def test_epochs_closed_before_the_breakdown_existed_and_older_servers_give_none(
    world: EpochWorld,
) -> None:
    world.index_funding(100 * SHOT, block=20)
    _decide_one(world)
    epochs.close_epoch(world.engine, settings=world.settings)
    # As an epoch closed before revision 0009 is stored.
    with Session(world.engine) as db:
        db.execute(update(Epoch).values(funding_json=None))
        db.commit()

    summary = _summary(world, 1)
    assert summary.funding is None
    assert _served(summary).funding is None
    older = summary.model_dump(mode="json", exclude={"funding"})
    assert "funding" not in older
    assert client_models.EpochSummary.model_validate(older).funding is None


def test_funding_beyond_the_pool_after_a_redeployment_records_no_breakdown(
    world: EpochWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world.index_funding(100 * SHOT, block=20)
    _decide_one(world)
    first = epochs.close_epoch(world.engine, settings=world.settings)
    assert first.cumulative_total is not None
    assert first.cumulative_total > 0
    # A distributor redeployed between epochs: epoch 1's funding total says nothing about
    # the new one's events, which are all counted, and exceed what the pool can hold.
    moved = epochs.deployed(world.settings)
    moved = epochs.Deployed(
        chain_id=moved.chain_id, distributor=address(), registry=moved.registry, token=moved.token
    )
    with Session(world.engine) as db, caplog.at_level(logging.WARNING):
        breakdown = epochs.funding_breakdown(
            db, contracts=moved, number=2, funding_block=20, pool=100 * SHOT - 1
        )
    assert breakdown is None
    assert "exceeds the pool" in caplog.text
    # The same rows against the real deployment: nothing new since epoch 1.
    with Session(world.engine) as db:
        same = epochs.funding_breakdown(
            db, contracts=epochs.deployed(world.settings), number=2, funding_block=20, pool=5
        )
    assert _amounts(same) == {"emission": 0, "sales": 0, "slashing": 0, "other": 0, "carried": 5}
