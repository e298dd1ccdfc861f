"""The indexer store in the backend database: the IndexerStore protocol, atomic
transactions, and the guard against two processes indexing one chain."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.core.config import Settings
from backend.models.stakes import ValidatorStake
from backend.services import stakes
from backend.services.chainstore import CheckpointMovedError, SqlIndexerStore
from backend.services.chainsync import ChainSync
from shotbank.chain.errors import IndexerError
from shotbank.chain.indexer import Checkpoint
from tests.backend.stakes.conftest import Chain, catch_up

NAME = "validator-stake:31337:0x0000000000000000000000000000000000000001"


def test_checkpoints_and_block_hashes_round_trip(engine: Engine) -> None:
    store = SqlIndexerStore(engine)
    assert store.checkpoint(NAME) is None
    with store.transaction():
        store.set_checkpoint(NAME, Checkpoint(block_number=-1, block_hash=None))
        store.save_block_hashes(NAME, {n: f"0x{n:064x}" for n in range(10, 20)})
    with store.transaction():
        store.set_checkpoint(NAME, Checkpoint(block_number=19, block_hash=f"0x{19:064x}"))
        store.save_block_hashes(NAME, {19: "0x" + "ab" * 32})
        store.forget_blocks(NAME, above=17, below=12)
        store.save_block_hashes("other", {5: "0x" + "cd" * 32})

    reopened = SqlIndexerStore(engine)
    assert reopened.checkpoint(NAME) == Checkpoint(block_number=19, block_hash=f"0x{19:064x}")
    assert reopened.block_hashes(NAME) == {n: f"0x{n:064x}" for n in range(12, 18)}
    assert reopened.block_hashes("other") == {5: "0x" + "cd" * 32}


def write_then_crash(store: SqlIndexerStore) -> None:
    """A handler that writes a stake row and the checkpoint, then fails."""
    with store.transaction():
        store.set_checkpoint(NAME, Checkpoint(block_number=5, block_hash="0x" + "01" * 32))
        store.session.add(
            ValidatorStake(
                address="0x" + "11" * 20,
                bonded_wei=1,
                unbonding_wei=0,
                updated_block=5,
                updated_at=datetime.now(UTC),
            )
        )
        store.session.flush()
        raise RuntimeError("handler crashed")


def test_a_failed_transaction_leaves_no_trace(engine: Engine) -> None:
    store = SqlIndexerStore(engine)
    with pytest.raises(RuntimeError, match="handler crashed"):
        write_then_crash(store)
    assert store.checkpoint(NAME) is None
    with Session(engine) as session:
        assert session.get(ValidatorStake, "0x" + "11" * 20) is None


def test_writes_need_a_transaction_and_transactions_do_not_nest(engine: Engine) -> None:
    store = SqlIndexerStore(engine)
    with pytest.raises(IndexerError, match="no open transaction"):
        store.set_checkpoint(NAME, Checkpoint(block_number=1, block_hash="0x" + "01" * 32))
    with pytest.raises(IndexerError, match="do not nest"), store.transaction(), store.transaction():
        pass


def test_a_checkpoint_moved_by_another_process_aborts_the_transaction(engine: Engine) -> None:
    mine, theirs = SqlIndexerStore(engine), SqlIndexerStore(engine)
    with mine.transaction():
        mine.set_checkpoint(NAME, Checkpoint(block_number=10, block_hash="0x" + "0a" * 32))
    assert mine.checkpoint(NAME) is not None
    assert theirs.checkpoint(NAME) is not None
    with theirs.transaction():
        theirs.set_checkpoint(NAME, Checkpoint(block_number=11, block_hash="0x" + "0b" * 32))

    with pytest.raises(CheckpointMovedError, match="another process"), mine.transaction():
        pytest.fail("must not get to apply anything")
    # Having failed, it reads afresh and carries on from the other's checkpoint.
    assert mine.checkpoint(NAME) == Checkpoint(block_number=11, block_hash="0x" + "0b" * 32)
    with mine.transaction():
        mine.set_checkpoint(NAME, Checkpoint(block_number=12, block_hash="0x" + "0c" * 32))


def test_two_jobs_on_one_database_apply_every_event_once(
    chain: Chain, chain_settings: Settings, engine: Engine
) -> None:
    first = ChainSync(engine, chain_settings)
    second = ChainSync(engine, chain_settings)
    validator = chain.validators[0]
    for amount in (100, 20, 30):
        chain.stake(validator, amount * 10**18)
        # Interleaved: each step starts from what the other left (or is told it moved).
        first.step()
        second.step()
    catch_up(first)
    catch_up(second)
    with Session(engine) as session:
        snapshot = stakes.snapshot_of(session, validator.address)
    assert snapshot is not None
    assert snapshot.bonded_wei == 150 * 10**18
