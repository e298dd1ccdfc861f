"""Closing and publishing reward epochs (``docs/api/rewards.md``), on SQLite and PostgreSQL.

Clips are decided by the real consensus (``tests/backend/epochs_world.py``); the reward
indexer's funding is written through its own store, as the chain sync would. The chain
is not needed to close an epoch, and these tests have none.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlmodel import Session, col

from backend import admin
from backend.errors import EpochFundingUnknownError, EpochNotFoundError
from backend.main import create_app
from backend.models.clips import ClipStatus
from backend.models.epochs import Epoch, EpochAllocation, EpochClip, EpochStatus, EpochValidator
from backend.services import epochs
from backend.services.leases import utcnow
from shotbank.chain.merkle import REWARD_LEAF_ENCODING, StandardMerkleTree
from shotbank.rewards import EpochInputs, EpochResult, allocate, canonical_json, inputs_hash
from tests import pgcluster
from tests.backend.conftest import SettingsFactory
from tests.backend.epochs_world import (
    SHOT,
    EpochWorld,
    address,
    fake_deployment,
    make_world,
    scores,
)

FUNDED = 1_000 * SHOT


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (SQLite under the test's var dir) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    admin: URL = request.getfixturevalue("postgres_admin_url")
    with pgcluster.throwaway_database(admin, prefix="shotbank_epochs") as url:
        yield url


@pytest.fixture
def world(upload_settings: SettingsFactory, database_url: str | None) -> Iterator[EpochWorld]:
    """A migrated database (SQLite or PostgreSQL) with a deployment that only exists on
    paper, and no chain node."""
    overrides: dict[str, Any] = {"ingest_workers": 0}
    if database_url is not None:
        overrides["database_url"] = database_url
    built = make_world(upload_settings(**overrides), fake_deployment())
    yield built
    built.engine.dispose()


@pytest.fixture
def sqlite_world(upload_settings: SettingsFactory) -> Iterator[EpochWorld]:
    """The same on SQLite only (for what the database does not change)."""
    built = make_world(upload_settings(ingest_workers=0), fake_deployment())
    yield built
    built.engine.dispose()


@pytest.fixture
def api(sqlite_world: EpochWorld) -> Iterator[TestClient]:
    """The backend app on the SQLite world's database."""
    with TestClient(create_app(sqlite_world.settings)) as client:
        yield client


def _count(world: EpochWorld, model: Any, **where: Any) -> int:
    with Session(world.engine) as db:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int(db.execute(query).scalar_one())


def _allocations(world: EpochWorld, number: int) -> dict[str, EpochAllocation]:
    with Session(world.engine) as db:
        rows = db.execute(
            select(EpochAllocation).where(col(EpochAllocation.epoch) == number)
        ).scalars()
        return {row.address: row for row in rows}


def _three_validators() -> list[str]:
    return sorted((address() for _ in range(3)), key=lambda a: int(a, 16))


def _fill(world: EpochWorld) -> dict[str, Any]:
    """Two contributors' clips: three accepted, one rejected; one validator dissents."""
    v1, v2, v3 = _three_validators()
    alice, bob = address(), address()
    good, bad = scores(0.9), scores(0.3)
    clips = {
        "a1": world.decide(alice, [(v1, good), (v2, good), (v3, good)]),
        "a2": world.decide(alice, [(v1, scores(0.6)), (v2, scores(0.6)), (v3, bad)]),
        "b1": world.decide(bob, [(v1, scores(0.7)), (v2, scores(0.7)), (v3, scores(0.7))]),
        "b2": world.decide(bob, [(v1, bad), (v2, bad), (v3, good)]),
    }
    return {"validators": (v1, v2, v3), "alice": alice, "bob": bob, "clips": clips}


# --- closing -------------------------------------------------------------------------------


def test_the_stored_allocation_is_what_allocate_computes_from_the_published_inputs(
    world: EpochWorld,
) -> None:
    facts = _fill(world)
    clips = facts["clips"]
    assert [status for _, status in clips.values()] == [
        ClipStatus.ACCEPTED,
        ClipStatus.ACCEPTED,
        ClipStatus.ACCEPTED,
        ClipStatus.REJECTED,
    ]
    world.index_funding(FUNDED, block=120)

    closed = epochs.close_epoch(world.engine, settings=world.settings)

    assert (closed.number, closed.status) == (1, EpochStatus.CLOSED)
    with Session(world.engine) as db:
        served = epochs.epoch_inputs_json(db, number=1)
        summary = epochs.epoch_summary(db, number=1)
    document = json.loads(served)
    published = EpochResult.model_validate(document.pop("result"))
    inputs = EpochInputs.model_validate(document)
    # Byte for byte what was hashed and allocated: the served members are canonical.
    assert served.startswith(canonical_json(inputs).decode()[:-1] + ",")
    assert inputs_hash(inputs) == summary.inputs_sha256
    recomputed = allocate(inputs)
    assert recomputed == published

    assert inputs.funding_block == 120
    assert inputs.funded_total == FUNDED
    assert inputs.previous_epoch is None
    assert inputs.distributor == world.distributor
    assert {clip.clip_id for clip in inputs.clips} == {clip_id for clip_id, _ in clips.values()}
    assert [clip.quality_bps for clip in inputs.clips if clip.clip_id == clips["a1"][0]] == [9000]
    v1, v2, v3 = facts["validators"]
    agreed = {entry.address: (entry.reports, entry.agreed_reports) for entry in inputs.validators}
    assert agreed == {v1: (4, 4), v2: (4, 4), v3: (4, 2)}

    assert summary.pool == str(recomputed.pool) == str(FUNDED)
    assert summary.allocated == str(recomputed.allocated)
    assert summary.root == recomputed.root
    assert summary.cumulative_total == str(recomputed.cumulative_total)
    assert (summary.clips.accepted, summary.clips.rejected) == (3, 1)
    assert summary.accounts == len(recomputed.cumulative) == 5
    assert recomputed.allocated <= recomputed.pool
    assert recomputed.validator_pool == FUNDED // 10

    stored = _allocations(world, 1)
    assert recomputed.root is not None
    for allocation in recomputed.allocations:
        row = stored[allocation.address]
        assert (row.contributor_amount, row.validator_amount, row.amount, row.cumulative) == (
            allocation.contributor_amount,
            allocation.validator_amount,
            allocation.amount,
            allocation.cumulative,
        )
        assert StandardMerkleTree.verify_proof(
            recomputed.root,
            REWARD_LEAF_ENCODING,
            [allocation.address, allocation.cumulative],
            json.loads(row.proof_json),
        )
    # Each accepted clip shows its earnings; the rejected one none.
    for name, (clip_id, status) in clips.items():
        expected = recomputed.clip_amounts[clip_id] if status == ClipStatus.ACCEPTED else None
        assert world.clip(clip_id).reward_wei == expected, name
        assert (expected or 0) == (0 if name == "b2" else recomputed.clip_amounts[clip_id])
    with Session(world.engine) as db:
        validator_amounts = {
            row.address: row.amount for row in db.execute(select(EpochValidator)).scalars()
        }
    assert validator_amounts[v1] == validator_amounts[v2] == 2 * validator_amounts[v3]
    assert world.epoch(2).status == EpochStatus.OPEN


def test_closing_an_epoch_twice_returns_it_unchanged_and_counts_nothing_twice(
    world: EpochWorld,
) -> None:
    facts = _fill(world)
    world.index_funding(FUNDED)
    first = epochs.close_epoch(world.engine, settings=world.settings, number=1)
    again = epochs.close_epoch(world.engine, settings=world.settings, number=1)

    assert (again.number, again.status, again.root, again.closed_at) == (
        first.number,
        first.status,
        first.root,
        first.closed_at,
    )
    assert _count(world, EpochClip) == 4
    assert _count(world, Epoch) == 2
    # The next close takes no clip again: nothing new was decided, so nothing is allocated.
    second = epochs.close_epoch(world.engine, settings=world.settings)
    assert (second.number, second.status, second.root) == (2, EpochStatus.EMPTY, None)
    assert _count(world, EpochClip) == 4
    assert second.pool == first.carry
    assert second.previous_epoch == 1
    with pytest.raises(EpochNotFoundError):
        epochs.close_epoch(world.engine, settings=world.settings, number=9)
    assert facts["alice"] in _allocations(world, 1)


def test_a_clip_decided_after_the_close_lands_in_the_next_epoch(world: EpochWorld) -> None:
    validators = _three_validators()
    alice, bob = address(), address()
    now = utcnow()
    early, _ = world.decide(alice, [(v, scores(0.8)) for v in validators], now=now)
    # Decided a minute after the moment the epoch closes at: not this epoch's.
    late, _ = world.decide(
        bob, [(v, scores(0.8)) for v in validators], now=now + timedelta(minutes=2)
    )
    world.index_funding(FUNDED)
    one = epochs.close_epoch(world.engine, settings=world.settings, now=now + timedelta(minutes=1))
    world.index_funding(2 * FUNDED, block=200)
    two = epochs.close_epoch(world.engine, settings=world.settings, now=now + timedelta(minutes=3))

    with Session(world.engine) as db:
        taken = dict(db.execute(select(col(EpochClip.clip_id), col(EpochClip.epoch))).all())
        inputs_two = EpochInputs.model_validate(
            {
                k: v
                for k, v in json.loads(epochs.epoch_inputs_json(db, number=2)).items()
                if k != "result"
            }
        )
    assert taken == {early: 1, late: 2}
    assert (one.status, two.status) == (EpochStatus.CLOSED, EpochStatus.CLOSED)
    first, second = _allocations(world, 1), _allocations(world, 2)
    # Epoch 2 builds on epoch 1's cumulative map: alice keeps her leaf, with a new proof.
    assert inputs_two.previous_epoch == 1
    assert inputs_two.previous_cumulative == {a: row.cumulative for a, row in first.items()}
    assert second[alice].amount == 0
    assert second[alice].cumulative == first[alice].cumulative
    assert second[bob].amount > 0
    assert two.root is not None
    assert StandardMerkleTree.verify_proof(
        two.root,
        REWARD_LEAF_ENCODING,
        [alice, second[alice].cumulative],
        json.loads(second[alice].proof_json),
    )
    assert two.cumulative_total == sum(row.cumulative for row in second.values())
    assert two.cumulative_total is not None
    assert two.cumulative_total <= 2 * FUNDED


def test_two_closers_racing_close_the_epoch_once(world: EpochWorld) -> None:
    validators = _three_validators()
    for _ in range(6):
        world.decide(address(), [(v, scores(0.8)) for v in validators])
    world.index_funding(FUNDED)
    barrier = threading.Barrier(2)
    results: list[Epoch] = []
    errors: list[BaseException] = []

    def close() -> None:
        try:
            barrier.wait()
            results.append(epochs.close_epoch(world.engine, settings=world.settings, number=1))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=close) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert [epoch.number for epoch in results] == [1, 1]
    assert results[0].root == results[1].root
    assert _count(world, EpochClip) == 6
    assert _count(world, EpochClip, epoch=1) == 6
    assert _count(world, Epoch) == 2


def test_an_epoch_waits_to_close_until_the_funding_was_indexed(world: EpochWorld) -> None:
    world.decide(address(), [(address(), scores(0.8))])
    with pytest.raises(EpochFundingUnknownError):
        epochs.close_epoch(world.engine, settings=world.settings)
    assert epochs.CloseScheduler(world.engine, world.settings).run() is None
    assert world.epoch(1).status == EpochStatus.OPEN
    assert _count(world, EpochClip) == 0
    world.index_funding(FUNDED)
    assert epochs.close_epoch(world.engine, settings=world.settings).status == EpochStatus.CLOSED


def test_the_open_epoch_closes_when_its_length_has_passed(
    upload_settings: SettingsFactory,
) -> None:
    world = make_world(upload_settings(ingest_workers=0, epoch_length_s=60), fake_deployment())
    world.index_funding(FUNDED)
    opened = epochs.open_epoch(world.engine).opened_at
    assert epochs.close_due(world.engine, settings=world.settings, now=opened) is None
    assert (
        epochs.close_due(world.engine, settings=world.settings, now=opened + timedelta(seconds=59))
        is None
    )
    closed = epochs.close_due(
        world.engine, settings=world.settings, now=opened + timedelta(seconds=60)
    )
    assert closed is not None
    assert (closed.number, closed.status) == (1, EpochStatus.EMPTY)
    assert world.epoch(2).opened_at == opened + timedelta(seconds=60)
    world.engine.dispose()


# --- publication ---------------------------------------------------------------------------


def test_epochs_are_published_newest_first_and_the_open_one_is_not(
    sqlite_world: EpochWorld, api: TestClient
) -> None:
    world = sqlite_world
    world.index_funding(FUNDED)
    validators = _three_validators()
    world.decide(address(), [(v, scores(0.8)) for v in validators])
    for _ in range(3):
        epochs.close_epoch(world.engine, settings=world.settings)

    page = api.get("/api/v1/epochs", params={"limit": 2}).json()
    assert [e["epoch"] for e in page["epochs"]] == [3, 2]
    assert [e["status"] for e in page["epochs"]] == ["empty", "empty"]
    assert page["next_before"] == 2
    rest = api.get("/api/v1/epochs", params={"before": 2}).json()
    assert [e["epoch"] for e in rest["epochs"]] == [1]
    assert rest["next_before"] is None
    one = api.get("/api/v1/epochs/1").json()
    assert one["status"] == "closed"
    assert one["rule"] == {
        "version": "shotbank-rewards/2",
        "validator_share_bps": 1000,
        "contributor_cap_bps": 2500,
    }
    assert one["funded_total"] == str(FUNDED)
    assert one["signatures"] == {"signed_stake": "0", "total_stake": "0", "signers": []}
    assert one["submission"] is None
    current = api.get("/api/v1/epochs/current").json()
    assert current["epoch"] == 4
    for path, status, code in (
        ("/api/v1/epochs/4", 404, "epoch_not_found"),
        ("/api/v1/epochs/4/inputs", 409, "epoch_open"),
        ("/api/v1/epochs/99/inputs", 404, "epoch_not_found"),
        ("/api/v1/epochs?limit=101", 422, "validation_error"),
        ("/api/v1/epochs/0", 422, "validation_error"),
    ):
        response = api.get(path)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), path
    inputs = api.get("/api/v1/epochs/1/inputs")
    assert inputs.headers["content-type"] == "application/json"
    assert inputs.json()["result"]["root"] == one["root"]


def test_operators_close_the_open_epoch_and_list_epochs_from_the_command_line(
    sqlite_world: EpochWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    world = sqlite_world
    world.decide(address(), [(v, scores(0.8)) for v in _three_validators()])
    assert admin.main(["epochs", "close"], settings=world.settings) == 1
    assert "not read RewardDistributor" in capsys.readouterr().err
    world.index_funding(FUNDED)

    assert admin.main(["epochs", "close"], settings=world.settings) == 0
    assert capsys.readouterr().out.startswith("epoch 1 closed: 1 clips accepted, 0 rejected")
    assert admin.main(["epochs", "close"], settings=world.settings) == 0
    assert capsys.readouterr().out.startswith("epoch 2 empty: 0 clips accepted")
    assert admin.main(["epochs", "list", "--limit", "5"], settings=world.settings) == 0
    listed = [line.split("\t")[:2] for line in capsys.readouterr().out.splitlines()]
    assert listed == [["2", "empty"], ["1", "closed"]]
