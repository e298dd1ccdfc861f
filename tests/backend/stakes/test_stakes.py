"""The stake snapshot follows ValidatorRegistry events on a real anvil, reorgs included,
on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from backend.core.config import Settings
from backend.errors import DependencyUnavailableError, ValidatorNotStakedError, http_status_for
from backend.models.stakes import StakeSnapshot, ValidatorStake, ValidatorStakeEvent
from backend.services import stakes
from backend.services.chainsync import ChainSync
from shotbank.chain.contracts import send_call
from shotbank.chain.eip712 import EpochRoot, sign_epoch_root
from tests.backend.stakes.conftest import MIN_STAKE, SHOT, Chain, catch_up, rpc


def snapshot(engine: Engine, validator: LocalAccount) -> StakeSnapshot | None:
    with Session(engine) as session:
        return stakes.snapshot_of(session, validator.address)


def stake_row(engine: Engine, validator: LocalAccount) -> ValidatorStake | None:
    with Session(engine) as session:
        return session.get(ValidatorStake, validator.address)


def checkpoint_block(engine: Engine) -> int | None:
    with Session(engine) as session:
        return stakes.snapshot_block(session)


def assert_matches_chain(engine: Engine, chain: Chain) -> None:
    """Every validator's snapshot row equals the registry's own view at the head."""
    assert checkpoint_block(engine) == chain.w3.eth.block_number
    for validator in chain.validators:
        row = stake_row(engine, validator)
        active = chain.registry.stake_of(validator.address)
        unbonding, _ = chain.registry.unbonding_of(validator.address)
        if row is None:
            assert (active, unbonding) == (0, 0)
        else:
            assert (row.bonded_wei, row.unbonding_wei) == (active, unbonding)


def test_a_stake_shows_as_active_bonded_stake_at_the_snapshot_block(
    chain: Chain, sync: ChainSync, engine: Engine
) -> None:
    first, second, outsider = chain.validators
    chain.stake(first, 150 * SHOT)
    chain.stake(second, MIN_STAKE)
    chain.stake(second, 25 * SHOT)
    catch_up(sync)

    head = chain.w3.eth.block_number
    assert snapshot(engine, first) == StakeSnapshot(
        address=first.address, bonded_wei=150 * SHOT, block=head, is_active=True
    )
    second_snapshot = snapshot(engine, second)
    assert second_snapshot is not None
    assert second_snapshot.bonded_wei == 125 * SHOT
    assert snapshot(engine, outsider) is None
    with Session(engine) as session:
        assert stakes.require_validator(session, first.address.lower()).bonded_wei == 150 * SHOT
        assert stakes.total_active_stake(session) == 275 * SHOT == chain.registry.total_stake()
    assert_matches_chain(engine, chain)


def test_unstaking_lowers_bonded_stake_and_unstaking_all_makes_the_validator_inactive(
    chain: Chain, sync: ChainSync, engine: Engine
) -> None:
    validator = chain.validators[0]
    chain.stake(validator, 300 * SHOT)
    catch_up(sync)
    chain.request_unstake(validator, 120 * SHOT)
    catch_up(sync)
    partly = snapshot(engine, validator)
    assert partly is not None
    assert (partly.bonded_wei, partly.is_active) == (180 * SHOT, True)
    row = stake_row(engine, validator)
    assert row is not None
    assert row.unbonding_wei == 120 * SHOT
    assert_matches_chain(engine, chain)

    chain.request_unstake(validator, 180 * SHOT)
    catch_up(sync)
    gone = snapshot(engine, validator)
    assert gone is not None
    assert (gone.bonded_wei, gone.is_active) == (0, False)
    with Session(engine) as session:
        assert stakes.total_active_stake(session) == 0
        with pytest.raises(ValidatorNotStakedError) as refused:
            stakes.require_validator(session, validator.address)
    assert_matches_chain(engine, chain)
    error = refused.value
    assert (error.code, http_status_for(error)) == ("validator_not_staked", 403)
    for part in (
        validator.address,
        f"ValidatorRegistry {chain.registry.address}",
        "chain 31337",
        f"snapshot block {chain.w3.eth.block_number}",
        "stake at least 100 SHOT with `stake(amount)`",
        "0 confirmations",
    ):
        assert part in error.message


def test_withdrawing_clears_the_unbonding_stake(
    chain: Chain, sync: ChainSync, engine: Engine
) -> None:
    validator = chain.validators[0]
    chain.stake(validator, 200 * SHOT)
    chain.request_unstake(validator, 200 * SHOT)
    catch_up(sync)
    row = stake_row(engine, validator)
    assert row is not None
    assert row.unbonding_wei == 200 * SHOT
    chain.withdraw(validator)
    catch_up(sync)
    row = stake_row(engine, validator)
    assert row is not None
    assert (row.bonded_wei, row.unbonding_wei) == (0, 0)
    assert_matches_chain(engine, chain)


def test_a_slashed_validator_loses_all_its_stake_in_the_snapshot(
    chain: Chain, sync: ChainSync, engine: Engine, dev_keys: list[LocalAccount]
) -> None:
    cheat, honest = chain.validators[:2]
    chain.stake(cheat, 300 * SHOT)
    chain.request_unstake(cheat, 100 * SHOT)
    chain.stake(honest, 100 * SHOT)
    catch_up(sync)

    evidence = []
    for root in ("0x" + "01" * 32, "0x" + "02" * 32):
        signed = sign_epoch_root(
            cheat,
            EpochRoot(epoch=3, root=root, cumulative_total=1),
            chain_id=31337,
            verifying_contract=chain.registry.address,
        )
        evidence.append((root, 1, signed.signature))
    reporter = dev_keys[8]
    chain.settle()
    send_call(chain.w3, reporter, chain.registry.slash(cheat.address, 3, evidence[0], evidence[1]))
    catch_up(sync)

    row = stake_row(engine, cheat)
    assert row is not None
    assert (row.bonded_wei, row.unbonding_wei) == (0, 0)
    with Session(engine) as session:
        assert stakes.total_active_stake(session) == 100 * SHOT
        events = session.exec(
            select(ValidatorStakeEvent.event).where(ValidatorStakeEvent.address == cheat.address)
        ).all()
    assert events == ["Staked", "UnstakeRequested", "Slashed"]
    assert_matches_chain(engine, chain)


def test_a_reorg_replacing_a_stake_rolls_the_snapshot_back(
    chain: Chain, sync: ChainSync, engine: Engine
) -> None:
    early, replaced, replacement = chain.validators
    chain.stake(early, 100 * SHOT)
    chain.stake(replacement, 100 * SHOT)
    chain.stake(replaced, 400 * SHOT)  # approve + stake: the last two blocks
    catch_up(sync)
    assert snapshot(engine, replaced) is not None
    head = chain.w3.eth.block_number

    # The last two blocks are replaced by two in which `replacement` stakes more instead.
    more = chain.registry.stake(50 * SHOT)
    approve = chain.token.approve(chain.registry.address, 50 * SHOT)
    txs = [
        [{"from": replacement.address, "to": call.to, "data": call.data, "gas": hex(300_000)}, i]
        for i, call in enumerate((approve, more))
    ]
    rpc(chain.w3, "anvil_reorg", 2, txs)
    assert chain.w3.eth.block_number == head
    catch_up(sync)

    assert snapshot(engine, replaced) is None
    assert stake_row(engine, replaced) is None
    again = snapshot(engine, replacement)
    assert again is not None
    assert again.bonded_wei == 150 * SHOT
    with Session(engine) as session:
        assert stakes.total_active_stake(session) == 250 * SHOT
    assert_matches_chain(engine, chain)


def test_a_reverted_chain_that_grows_past_the_checkpoint_undoes_the_unstake(
    chain: Chain, sync: ChainSync, engine: Engine
) -> None:
    validator = chain.validators[0]
    chain.stake(validator, 250 * SHOT)
    catch_up(sync)
    before = rpc(chain.w3, "evm_snapshot")
    chain.request_unstake(validator, 250 * SHOT)
    catch_up(sync)
    unstaked = snapshot(engine, validator)
    assert unstaked is not None
    assert not unstaked.is_active

    # Back to before the unstake, then a longer chain without it: found by parent hash.
    assert rpc(chain.w3, "evm_revert", before) is True
    chain.mine(4)
    catch_up(sync)
    restored = snapshot(engine, validator)
    assert restored is not None
    assert (restored.bonded_wei, restored.is_active) == (250 * SHOT, True)
    row = stake_row(engine, validator)
    assert row is not None
    assert row.unbonding_wei == 0
    assert_matches_chain(engine, chain)


def test_fresh_events_wait_for_their_confirmations(
    chain: Chain, engine: Engine, chain_settings: Settings
) -> None:
    settings = chain_settings.model_copy(update={"chain_confirmations": 3})
    sync = ChainSync(engine, settings)
    validator = chain.validators[0]
    chain.stake(validator, 100 * SHOT)
    catch_up(sync)
    assert snapshot(engine, validator) is None
    assert checkpoint_block(engine) == chain.w3.eth.block_number - 3
    chain.mine(3)
    catch_up(sync)
    confirmed = snapshot(engine, validator)
    assert confirmed is not None
    assert confirmed.is_active
    with (
        Session(engine) as session,
        pytest.raises(ValidatorNotStakedError, match="wait for 3 confirmations"),
    ):
        stakes.require_validator(session, chain.validators[1].address)


def test_without_a_snapshot_require_validator_answers_unavailable_not_forbidden(
    engine: Engine, chain: Chain
) -> None:
    with Session(engine) as session:
        assert stakes.snapshot_of(session, chain.validators[0].address) is None
        assert stakes.total_active_stake(session) == 0
        with pytest.raises(DependencyUnavailableError, match="not ready"):
            stakes.require_validator(session, chain.validators[0].address)


@pytest.mark.parametrize(
    ("wei", "text"),
    [
        (0, "0"),
        (SHOT, "1"),
        (1_000 * SHOT, "1,000"),
        (SHOT // 2, "0.5"),
        (1, "0.000000000000000001"),
    ],
)
def test_amounts_are_written_in_shot(wei: int, text: str) -> None:
    assert stakes.format_shot(wei) == text
