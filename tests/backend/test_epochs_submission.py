"""Epoch roots on a real chain: quorum, ``submitRoot`` through the outbox, crashes, statuses.

Each test gets a fresh anvil with the real contracts (``deploy_all``), three validators
staked with dev keys (1,000, 2,000 and 3,000 SHOT: 2/3 of the stake is 4,000), 10,000
SHOT funded with ``fund``, and the backend's chain sync indexing all of it
(``tests/backend/epochs_world.py``). The backend's operator is its own dev account.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount
from pydantic import HttpUrl
from sqlalchemy import select
from sqlmodel import Session, col
from web3 import Web3

from backend.models.epochs import Epoch, EpochStatus
from backend.models.rewardchain import OutboxTransaction
from backend.services import epochs
from backend.services.submitter import Submitter, emission_key, root_key
from shotbank.chain.contracts import RootStatus, send_call
from shotbank.chain.devnode import AnvilNode
from tests.backend.conftest import SettingsFactory
from tests.backend.epochs_world import (
    CHALLENGE_WINDOW_S,
    SHOT,
    ChainWorld,
    address,
    make_chain_world,
    scores,
)


@pytest.fixture
def world(
    upload_settings: SettingsFactory, anvil: AnvilNode, anvil_w3: Web3, dev_keys: list[LocalAccount]
) -> Iterator[ChainWorld]:
    """Contracts, stakes and funding on a fresh anvil; the backend database synced."""
    built = make_chain_world(upload_settings, anvil, anvil_w3, dev_keys, ingest_workers=0)
    yield built
    built.engine.dispose()


def close_with_clips(world: ChainWorld, count: int = 3) -> Epoch:
    """``count`` clips accepted by every validator, the funding synced, the epoch closed."""
    for _ in range(count):
        world.decide(address(), [(v.address, scores(0.8)) for v in world.validators])
    world.sync()
    closed = epochs.close_epoch(world.engine, settings=world.settings)
    assert closed.status == EpochStatus.CLOSED
    return closed


def root_transactions(world: ChainWorld) -> list[OutboxTransaction]:
    """The outbox's root submissions."""
    with Session(world.engine) as db:
        return list(
            db.execute(
                select(OutboxTransaction).where(
                    col(OutboxTransaction.key).startswith("epoch-root:")
                )
            ).scalars()
        )


def test_a_root_goes_out_once_the_quorum_signed_and_is_claimable_after_its_window(
    world: ChainWorld,
) -> None:
    small, _middle, large = world.validators
    funded_before = world.distributor_contract.total_funded()
    closed = close_with_clips(world)
    submitter = Submitter(world.engine, world.settings)

    assert not world.sign(1, small)
    world.pass_time(5)  # emission is released by the second: let some accrue
    world.advance(submitter)
    assert world.root_submissions() == []
    assert world.epoch(1).status == EpochStatus.CLOSED
    assert "quorum not reached" in (world.epoch(1).note or "")
    # The close's emission draw went out meanwhile: it funds the next epoch.
    assert world.epoch(1).emission_done
    assert world.distributor_contract.total_funded() > funded_before

    assert world.sign(1, large)
    submitter.step()
    assert world.epoch(1).status == EpochStatus.SUBMITTING
    world.advance(submitter)
    [submitted] = world.root_submissions()
    epoch = world.epoch(1)
    assert (submitted["epoch"], "0x" + submitted["root"].hex()) == (1, closed.root)
    assert submitted["cumulativeTotal"] == closed.cumulative_total
    assert submitted["signedStake"] == 4_000 * SHOT
    assert (epoch.status, epoch.tx_hash, epoch.snapshot_block) == (
        EpochStatus.SUBMITTED,
        submitted["tx"],
        submitted["snapshotBlock"],
    )
    assert epoch.claimable_at is not None
    assert len(root_transactions(world)) == 1
    assert root_transactions(world)[0].key == root_key(31337, 1)

    world.pass_time(CHALLENGE_WINDOW_S + 1)
    world.advance(submitter)
    assert world.epoch(1).status == EpochStatus.CLAIMABLE
    assert world.distributor_contract.root_status(1) == RootStatus.CLAIMABLE
    assert len(world.root_submissions()) == 1


def test_a_crash_between_the_quorum_and_the_enqueue_ends_with_one_root_transaction(
    world: ChainWorld,
) -> None:
    _small, middle, large = world.validators
    close_with_clips(world)
    world.sign(1, middle, large)
    planned = Submitter(world.engine, world.settings).plan_submission()
    assert planned is not None
    # That process died there; a new one starts over the same database.
    world.advance(Submitter(world.engine, world.settings))
    world.advance(Submitter(world.engine, world.settings))
    assert len(world.root_submissions()) == 1
    assert len(root_transactions(world)) == 1
    assert world.epoch(1).status == EpochStatus.SUBMITTED


def test_a_root_transaction_stored_before_a_crash_is_adopted_not_sent_again(
    world: ChainWorld,
) -> None:
    _small, middle, large = world.validators
    close_with_clips(world)
    world.sign(1, middle, large)
    crashed = Submitter(world.engine, world.settings)
    plan = crashed.plan_submission()
    assert plan is not None
    stored = crashed.outbox().enqueue(plan.call.intent(plan.key))
    # Died before recording it on the epoch (and before broadcasting). Blocks go by, so
    # a new plan would pick another snapshot block: another transaction for one key.
    world.mine(3)
    assert world.epoch(1).status == EpochStatus.CLOSED

    world.advance(Submitter(world.engine, world.settings))
    [submitted] = world.root_submissions()
    epoch = world.epoch(1)
    assert (epoch.status, epoch.root_tx_id, epoch.snapshot_block) == (
        EpochStatus.SUBMITTED,
        stored.id,
        plan.snapshot_block,
    )
    assert submitted["snapshotBlock"] == plan.snapshot_block
    assert [tx.id for tx in root_transactions(world)] == [stored.id]


def test_a_crash_between_the_broadcast_and_the_receipt_ends_with_one_root_transaction(
    world: ChainWorld,
) -> None:
    _small, middle, large = world.validators
    close_with_clips(world)
    world.sign(1, middle, large)
    crashed = Submitter(world.engine, world.settings)
    plan = crashed.plan_submission()
    assert plan is not None
    tx = crashed.enqueue_submission(plan)
    assert tx is not None
    crashed.outbox().process()  # broadcast (and mined); the receipt was never read
    assert world.epoch(1).status == EpochStatus.SUBMITTING
    # Emission accrues per second of chain time: let one pass, so there is some to draw.
    world.pass_time(1)

    restarted = Submitter(world.engine, world.settings)
    world.advance(restarted, rounds=4)
    assert len(world.root_submissions()) == 1
    assert len(root_transactions(world)) == 1
    assert world.epoch(1).status == EpochStatus.SUBMITTED
    operator_nonce = world.w3.eth.get_transaction_count(world.operator.address)
    with Session(world.engine) as db:
        sent = db.execute(select(OutboxTransaction)).scalars().all()
    # Every transaction the operator ever sent is one outbox row: the root, the emission.
    assert operator_nonce == len(sent) == 2
    assert {row.key for row in sent} == {root_key(31337, 1), emission_key(31337, 1)}


def test_an_epoch_closes_with_the_node_down_and_its_root_goes_out_once_it_is_back(
    world: ChainWorld, closed_port: int
) -> None:
    small, _middle, large = world.validators
    for _ in range(2):
        world.decide(address(), [(v.address, scores(0.8)) for v in world.validators])
    world.sync()  # the funding was indexed while the node was up
    down = world.settings.model_copy(
        update={"chain_rpc_url": HttpUrl(f"http://127.0.0.1:{closed_port}")}
    )

    closed = epochs.close_epoch(world.engine, settings=down)
    assert closed.status == EpochStatus.CLOSED
    assert closed.funded_total == 10_000 * SHOT
    world.sign(1, small, large)
    waiting = Submitter(world.engine, down)
    assert waiting.step() is False  # logged, never raised
    assert world.epoch(1).status == EpochStatus.CLOSED
    assert world.root_submissions() == []

    world.advance(Submitter(world.engine, world.settings))
    assert world.epoch(1).status == EpochStatus.SUBMITTED
    assert len(world.root_submissions()) == 1


def test_a_later_epoch_with_the_quorum_supersedes_an_older_one_without_it(
    world: ChainWorld,
) -> None:
    small, middle, large = world.validators
    close_with_clips(world)
    world.sign(1, small)
    world.fund(1_000 * SHOT)
    second = close_with_clips(world, count=2)
    world.sign(2, middle, large)

    world.advance(Submitter(world.engine, world.settings))
    [submitted] = world.root_submissions()
    assert submitted["epoch"] == 2
    assert submitted["cumulativeTotal"] == second.cumulative_total
    assert world.epoch(1).status == EpochStatus.SUPERSEDED
    assert world.epoch(2).status == EpochStatus.SUBMITTED


def test_one_root_at_a_time_and_a_vetoed_root_is_owed_by_the_next(world: ChainWorld) -> None:
    _small, middle, large = world.validators
    first = close_with_clips(world)
    world.sign(1, middle, large)
    submitter = Submitter(world.engine, world.settings)
    world.advance(submitter)
    assert world.epoch(1).status == EpochStatus.SUBMITTED

    close_with_clips(world, count=1)
    world.sign(2, middle, large)
    world.advance(submitter)
    # Epoch 1's root is in its challenge window: epoch 2 waits.
    assert [s["epoch"] for s in world.root_submissions()] == [1]
    assert world.epoch(2).status == EpochStatus.CLOSED
    assert "challenge window" in (world.epoch(2).note or "")

    send_call(world.w3, world.funder, world.distributor_contract.veto(1))
    world.advance(submitter)
    assert world.epoch(1).status == EpochStatus.CANCELLED
    # Vetoed: nothing is pending any more, and epoch 2's cumulative root includes epoch 1.
    assert [s["epoch"] for s in world.root_submissions()] == [1, 2]
    assert world.epoch(2).status == EpochStatus.SUBMITTED
    assert world.epoch(2).previous_epoch == 1
    assert world.epoch(2).cumulative_total == (first.cumulative_total or 0) + (
        world.epoch(2).allocated or 0
    )

    world.pass_time(CHALLENGE_WINDOW_S + 1)
    world.advance(submitter)
    assert world.epoch(2).status == EpochStatus.CLAIMABLE
    assert world.epoch(1).status == EpochStatus.CANCELLED
