"""Faults an epoch root must survive on a real chain: a reorg that drops the root's block,
and a validator that signs two roots for one epoch.

Each test gets a fresh anvil with the real contracts (``deploy_all``), three validators
staked with dev keys (1,000, 2,000 and 3,000 SHOT), 10,000 SHOT funded, and the backend's
own chain sync and submitter driving it (``tests/backend/epochs_world.py``). What is
checked on chain is read from the chain itself: the canonical ``RootSubmitted`` logs,
``epochRoot``, ``rootStatus``, stakes and balances.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from sqlalchemy import select
from sqlmodel import Session, col
from web3 import Web3
from web3.logs import DISCARD

from backend.errors import ValidatorNotStakedError
from backend.models.epochs import ClaimView, EpochAllocation, EpochStatus
from backend.models.rewardchain import CancelReason, OutboxTransaction, RewardFunding
from backend.services import epochs, rewards, rewardsync, stakes
from backend.services.submitter import Submitter, emission_key, root_key
from scoring.node.errors import ConflictingRootError
from scoring.node.signing_record import SigningRecord
from shotbank.chain.contracts import RewardDistributor, RootStatus, ValidatorRegistry, send_call
from shotbank.chain.devnode import AnvilNode
from shotbank.chain.eip712 import EpochRoot, recover_epoch_root_signer, sign_epoch_root
from shotbank.chain.errors import TransactionRevertedError
from shotbank.chain.merkle import rewards_tree
from shotbank.chain.outbox import TxStatus
from tests.backend.conftest import SettingsFactory
from tests.backend.epochs_world import (
    CHALLENGE_WINDOW_S,
    SHOT,
    ChainWorld,
    address,
    make_chain_world,
    rpc,
    scores,
)

#: Blocks before the operator's outbox treats a transaction as final: deeper than the
#: reorg below, so the outbox is still watching the root transaction when it disappears.
OUTBOX_CONFIRMATIONS = 12


@pytest.fixture
def world(
    upload_settings: SettingsFactory, anvil: AnvilNode, anvil_w3: Web3, dev_keys: list[LocalAccount]
) -> Iterator[ChainWorld]:
    """Contracts, stakes and funding on a fresh anvil; the backend database synced."""
    built = make_chain_world(
        upload_settings,
        anvil,
        anvil_w3,
        dev_keys,
        ingest_workers=0,
        outbox_confirmations=OUTBOX_CONFIRMATIONS,
    )
    yield built
    built.engine.dispose()


def _tx_hash(value: Any) -> str:
    return "0x" + bytes(value).hex()


def _root_transactions(world: ChainWorld) -> list[OutboxTransaction]:
    with Session(world.engine) as db:
        return list(
            db.execute(
                select(OutboxTransaction).where(
                    col(OutboxTransaction.key).startswith("epoch-root:")
                )
            ).scalars()
        )


def _claim_view(world: ChainWorld, account: str) -> ClaimView:
    with Session(world.engine) as db:
        claim = rewards.rewards_of(db, address=account).claim
    assert claim is not None, f"nothing claimable for {account}"
    return claim


def _cumulative(world: ChainWorld, epoch: int) -> dict[str, int]:
    with Session(world.engine) as db:
        rows = db.execute(
            select(col(EpochAllocation.address), col(EpochAllocation.cumulative)).where(
                col(EpochAllocation.epoch) == epoch
            )
        ).all()
    return {str(account): int(amount) for account, amount in rows}


def _assert_second_claim_pays_nothing(
    world: ChainWorld, account: LocalAccount, claim: ClaimView
) -> None:
    balance = world.token.balance_of(account.address)
    with pytest.raises(TransactionRevertedError, match="RewardDistributorNothingToClaim"):
        world.claim(account, claim)
    assert world.token.balance_of(account.address) == balance


# --- a reorg drops the root's block --------------------------------------------------------


def test_a_reorg_that_drops_the_root_block_ends_with_one_root_on_chain_and_a_paying_claim(
    world: ChainWorld, dev_keys: list[LocalAccount], caplog: pytest.LogCaptureFixture
) -> None:
    contributor = dev_keys[7]
    _small, middle, large = world.validators
    votes = [(v.address, scores(0.8)) for v in world.validators]
    world.decide(contributor.address, votes)
    world.decide(address(), votes)
    world.sync()
    closed = epochs.close_epoch(world.engine, settings=world.settings)
    assert closed.root is not None
    assert world.sign(1, middle, large)
    world.pass_time(5)  # emission accrues: the close's draw goes out with the root

    # The fork point: before the submitter broadcasts anything.
    fork = rpc(world.w3, "evm_snapshot")
    submitter = Submitter(world.engine, world.settings)
    world.advance(submitter)
    epoch = world.epoch(1)
    assert epoch.status == EpochStatus.SUBMITTED
    root_tx_id = epoch.root_tx_id
    assert root_tx_id is not None
    [dropped] = world.root_submissions()
    dropped_receipt = world.w3.eth.get_transaction_receipt(HexBytes(dropped["tx"]))
    sent = submitter.outbox().get(root_tx_id)
    assert (sent.status, sent.mined_hash, sent.block_hash) == (
        TxStatus.MINED,
        dropped["tx"],
        _tx_hash(dropped_receipt["blockHash"]),
    )
    with Session(world.engine) as db:
        assert rewardsync.root_event(db, 1) is not None

    # The other branch: without the root's block, and longer.
    old_head = world.w3.eth.block_number
    assert rpc(world.w3, "evm_revert", fork) is True
    world.mine(old_head - world.w3.eth.block_number + 2)
    # anvil forgets the transactions of the blocks it reverted (no receipt, nothing in its
    # pool): only the outbox can bring the root back. Were the node to re-include them by
    # itself, the re-broadcast below would prove nothing, so that is pinned here.
    assert world.root_submissions() == []
    assert rpc(world.w3, "eth_getTransactionByHash", dropped["tx"]) is None
    assert rpc(world.w3, "txpool_content") == {"pending": {}, "queued": {}}

    # The indexer rolls the root back ...
    with caplog.at_level(logging.WARNING, logger="backend.services.chainsync"):
        world.sync()
    assert "reward events: chain reorganised" in caplog.text
    with Session(world.engine) as db:
        assert rewardsync.root_event(db, 1) is None
    # ... the outbox finds the receipt gone and sends the same signed bytes again, and the
    # epoch is no longer submitted until the indexer sees the root on this branch.
    submitter.step()
    assert world.epoch(1).status == EpochStatus.SUBMITTING
    [resent] = world.root_submissions()
    resent_receipt = world.w3.eth.get_transaction_receipt(HexBytes(resent["tx"]))
    assert resent["tx"] == dropped["tx"]
    assert resent_receipt["blockHash"] != dropped_receipt["blockHash"]
    assert resent_receipt["blockNumber"] > old_head

    world.advance(submitter)
    epoch = world.epoch(1)
    assert (epoch.status, epoch.root_tx_id, epoch.tx_hash, epoch.block_number) == (
        EpochStatus.SUBMITTED,
        root_tx_id,
        resent["tx"],
        resent_receipt["blockNumber"],
    )
    remined = submitter.outbox().get(root_tx_id)
    assert (remined.status, remined.mined_hash, remined.block_hash) == (
        TxStatus.MINED,
        resent["tx"],
        _tx_hash(resent_receipt["blockHash"]),
    )
    with Session(world.engine) as db:
        event = rewardsync.root_event(db, 1)
        assert event is not None
        assert (event.root, event.block_hash) == (
            closed.root,
            _tx_hash(resent_receipt["blockHash"]),
        )
    # Exactly one root transaction, on the canonical chain, for that epoch.
    assert [(s["epoch"], "0x" + s["root"].hex()) for s in world.root_submissions()] == [
        (1, closed.root)
    ]
    stored = world.distributor_contract.epoch_root(1)
    assert (stored.root, stored.cumulative_total, stored.status) == (
        closed.root,
        closed.cumulative_total,
        RootStatus.PENDING,
    )
    assert [tx.id for tx in _root_transactions(world)] == [root_tx_id]
    with Session(world.engine) as db:
        sent_rows = db.execute(select(OutboxTransaction)).scalars().all()
    # Every transaction the operator ever got mined is one outbox row: the root and the
    # emission draw, which the reorg dropped too and the outbox sent again.
    assert world.w3.eth.get_transaction_count(world.operator.address) == len(sent_rows) == 2
    assert {row.key for row in sent_rows} == {root_key(31337, 1), emission_key(31337, 1)}
    world.mine(OUTBOX_CONFIRMATIONS)
    submitter.step()
    assert submitter.outbox().get(root_tx_id).status == TxStatus.CONFIRMED

    world.pass_time(CHALLENGE_WINDOW_S + 1)
    world.advance(submitter)
    assert world.epoch(1).status == EpochStatus.CLAIMABLE
    claim = _claim_view(world, contributor.address)
    owed = _cumulative(world, 1)[contributor.address]
    assert owed > 0
    assert (claim.epoch, claim.root, int(claim.cumulative_amount)) == (1, closed.root, owed)
    assert world.claim(contributor, claim) == owed
    _assert_second_claim_pays_nothing(world, contributor, claim)


# --- equivocation ----------------------------------------------------------------------------


def _signatures_on_chain(world: ChainWorld, epoch: int) -> tuple[EpochRoot, dict[str, bytes]]:
    """What a third party reads from the chain alone: ``epoch``'s pending root (its
    ``RootSubmitted`` log) and each signer's signature over it, recovered from the
    ``submitRoot`` transaction's calldata."""
    [submitted] = [s for s in world.root_submissions() if s["epoch"] == epoch]
    pending = EpochRoot(
        epoch=epoch,
        root="0x" + submitted["root"].hex(),
        cumulative_total=submitted["cumulativeTotal"],
    )
    transaction = world.w3.eth.get_transaction(HexBytes(submitted["tx"]))
    function, arguments = world.distributor_contract.contract.decode_function_input(
        transaction["input"]
    )
    assert function.fn_name == "submitRoot"
    by_signer = {
        recover_epoch_root_signer(
            pending,
            bytes(signature),
            chain_id=world.deployment.chain_id,
            verifying_contract=world.registry,
        ): bytes(signature)
        for signature in arguments["signatures"]
    }
    return pending, by_signer


def _logs(contract: RewardDistributor | ValidatorRegistry, event: str, receipt: Any) -> list[Any]:
    """``contract``'s ``event`` logs in ``receipt`` (the other contracts' logs are skipped)."""
    return list(contract.contract.events[event]().process_receipt(receipt, errors=DISCARD))


def _funding_rows(world: ChainWorld, *, after: int, up_to: int) -> list[RewardFunding]:
    with Session(world.engine) as db:
        return list(
            db.execute(
                select(RewardFunding)
                .where(
                    col(RewardFunding.block_number) > after,
                    col(RewardFunding.block_number) <= up_to,
                )
                .order_by(col(RewardFunding.block_number), col(RewardFunding.log_index))
            ).scalars()
        )


def test_a_validator_that_signs_two_roots_for_an_epoch_is_slashed_by_anyone_and_the_pool_grows(
    world: ChainWorld, dev_keys: list[LocalAccount], tmp_path: Path
) -> None:
    contributor, challenger = dev_keys[7], dev_keys[3]
    small, cheater, large = world.validators
    registry = ValidatorRegistry(world.w3, world.registry)
    submitter = Submitter(world.engine, world.settings)
    world.decide(contributor.address, [(v.address, scores(0.8)) for v in world.validators])
    world.decide(address(), [(v.address, scores(0.7)) for v in world.validators])
    world.sync()
    first = epochs.close_epoch(world.engine, settings=world.settings)
    assert first.root is not None
    assert first.cumulative_total is not None
    assert world.sign(1, small, cheater, large)
    world.advance(submitter)
    assert world.epoch(1).status == EpochStatus.SUBMITTED

    # A third party reads the pending root and the cheater's signature off the chain.
    pending, on_chain = _signatures_on_chain(world, 1)
    assert (pending.root, pending.cumulative_total) == (first.root, first.cumulative_total)
    assert set(on_chain) == {small.address, cheater.address, large.address}
    # The node's slashing protection would have refused the second signature: the first
    # root is recorded before it is signed, and another root for that epoch is refused.
    conflicting = EpochRoot(
        epoch=1,
        root=rewards_tree({cheater.address: first.cumulative_total}).root,
        cumulative_total=first.cumulative_total,
    )
    key = (world.deployment.chain_id, world.distributor, 1)
    with SigningRecord.in_state_dir(tmp_path / "node-state") as record:
        record.record_or_refuse(*key, pending.root, pending.cumulative_total)
        with pytest.raises(ConflictingRootError, match="slashable"):
            record.record_or_refuse(*key, conflicting.root, conflicting.cumulative_total)
        recorded = record.recorded(*key)
        assert recorded is not None
        assert recorded.same_root(pending.root, pending.cumulative_total)
    # A misbehaving key signs anyway, without the node.
    second = sign_epoch_root(
        cheater, conflicting, chain_id=world.deployment.chain_id, verifying_contract=world.registry
    )

    now = int(world.w3.eth.get_block("latest")["timestamp"])
    assert now < world.distributor_contract.epoch_root(1).claimable_at  # within the window
    bonded = registry.bonded_stake_of(cheater.address)
    assert bonded == 2_000 * SHOT
    funded_before = world.distributor_contract.total_funded()
    receipt = send_call(
        world.w3,
        challenger,
        world.distributor_contract.challenge(
            1,
            cheater.address,
            conflicting.root,
            conflicting.cumulative_total,
            on_chain[cheater.address],
            second.signature,
        ),
    )
    [slashed] = _logs(registry, "Slashed", receipt)
    assert (slashed.args.validator, slashed.args.epoch, slashed.args.amount) == (
        cheater.address,
        1,
        bonded,
    )
    [funded] = _logs(world.distributor_contract, "Funded", receipt)
    assert (funded.args.source, funded.args.amount, funded.args.totalFunded) == (
        world.registry,
        bonded,
        funded_before + bonded,
    )
    [challenged] = _logs(world.distributor_contract, "RootChallenged", receipt)
    assert (challenged.args.validator, challenged.args.challenger) == (
        cheater.address,
        challenger.address,
    )
    assert registry.bonded_stake_of(cheater.address) == 0
    assert not registry.is_active_validator(cheater.address)
    assert world.distributor_contract.root_status(1) == RootStatus.CANCELLED

    # The backend follows: the epoch is cancelled, the slashed stake is funding, and the
    # cheater is no validator any more.
    world.advance(submitter)
    assert world.epoch(1).status == EpochStatus.CANCELLED
    with Session(world.engine) as db:
        event = rewardsync.root_event(db, 1)
        assert event is not None
        assert (event.cancelled, event.cancelled_by, event.challenged_validator) == (
            CancelReason.CHALLENGED,
            challenger.address,
            cheater.address,
        )
        snapshot = stakes.snapshot_of(db, cheater.address)
        assert snapshot is not None
        assert (snapshot.bonded_wei, snapshot.is_active) == (0, False)
        with pytest.raises(ValidatorNotStakedError):
            stakes.require_validator(db, cheater.address)
        assert stakes.total_active_stake(db) == 4_000 * SHOT
    slash_funding = [
        row
        for row in _funding_rows(world, after=0, up_to=world.w3.eth.block_number)
        if row.source == world.registry
    ]
    assert [(row.amount, row.block_number) for row in slash_funding] == [
        (bonded, receipt["blockNumber"])
    ]

    # The next epoch: its pool holds the slashed stake, its root owes the cancelled epoch's
    # amounts too, and the remaining validators reach 2/3 of the smaller stake.
    world.decide(contributor.address, [(v.address, scores(0.9)) for v in (small, large)])
    world.sync()
    nxt = epochs.close_epoch(world.engine, settings=world.settings)
    assert nxt.status == EpochStatus.CLOSED
    assert nxt.funding_block is not None
    assert nxt.funded_total is not None
    assert (nxt.previous_epoch, nxt.previous_cumulative_total) == (1, first.cumulative_total)
    assert first.funding_block is not None
    assert first.funded_total is not None
    since_first = _funding_rows(world, after=first.funding_block, up_to=nxt.funding_block)
    assert (slash_funding[0].block_number, slash_funding[0].log_index) in {
        (row.block_number, row.log_index) for row in since_first
    }
    assert nxt.funded_total == first.funded_total + sum(row.amount for row in since_first)
    assert nxt.pool == nxt.funded_total - first.cumulative_total
    # The same pool counted from the other end: what epoch 1 left, plus the slash and the
    # emission drawn since.
    assert first.carry is not None
    assert nxt.pool == first.carry + sum(row.amount for row in since_first)
    assert nxt.cumulative_total == first.cumulative_total + (nxt.allocated or 0)
    owed_first, owed_next = _cumulative(world, 1), _cumulative(world, 2)
    assert all(owed_next[account] >= amount for account, amount in owed_first.items())
    contributor_owed = owed_next[contributor.address]
    assert contributor_owed > owed_first[contributor.address] > 0

    with Session(world.engine) as db, pytest.raises(ValidatorNotStakedError):
        epochs.submit_signature(
            db,
            settings=world.settings,
            validator=cheater.address,
            number=2,
            body=world.signature(cheater, 2),
        )
    # The largest remaining validator alone: 3,000 SHOT is 2/3 of the 4,000 staked now
    # (the backend's snapshot says so at once), not of the 6,000 staked before the slash.
    assert world.sign(2, large)
    # The submitter counts stake on chain at head - 1: while that block is older than the
    # slash, the cheater's 2,000 SHOT are still in the total and the root waits.
    assert world.w3.eth.block_number == receipt["blockNumber"]
    submitter.step()
    waiting = world.epoch(2)
    assert waiting.status == EpochStatus.CLOSED
    assert f"{3_000 * SHOT} of {6_000 * SHOT} staked" in (waiting.note or "")
    world.mine()  # the chain moves on past the slash
    world.advance(submitter)
    assert world.epoch(2).status == EpochStatus.SUBMITTED
    [landed] = [s for s in world.root_submissions() if s["epoch"] == 2]
    assert ("0x" + landed["root"].hex(), landed["cumulativeTotal"]) == (
        nxt.root,
        nxt.cumulative_total,
    )
    assert (landed["signedStake"], landed["totalStake"]) == (3_000 * SHOT, 4_000 * SHOT)

    world.pass_time(CHALLENGE_WINDOW_S + 1)
    world.advance(submitter)
    assert world.epoch(2).status == EpochStatus.CLAIMABLE
    assert world.epoch(1).status == EpochStatus.CANCELLED
    claim = _claim_view(world, contributor.address)
    assert (claim.epoch, int(claim.cumulative_amount)) == (2, contributor_owed)
    assert world.claim(contributor, claim) == contributor_owed
    _assert_second_claim_pays_nothing(world, contributor, claim)


# --- a reorg deeper than the outbox's confirmations -------------------------------------------


@pytest.fixture
def eager_world(
    upload_settings: SettingsFactory, anvil: AnvilNode, anvil_w3: Web3, dev_keys: list[LocalAccount]
) -> Iterator[ChainWorld]:
    """:func:`world` with an outbox that deems a mined transaction final at once, so any
    reorg that drops the root's block is deeper than its confirmations."""
    built = make_chain_world(
        upload_settings, anvil, anvil_w3, dev_keys, ingest_workers=0, outbox_confirmations=0
    )
    yield built
    built.engine.dispose()


def test_a_reorg_deeper_than_the_outbox_confirmations_still_ends_with_one_root_and_a_paying_claim(
    eager_world: ChainWorld, dev_keys: list[LocalAccount], caplog: pytest.LogCaptureFixture
) -> None:
    world, contributor = eager_world, dev_keys[7]
    _small, middle, large = world.validators
    votes = [(v.address, scores(0.8)) for v in world.validators]
    world.decide(contributor.address, votes)
    world.decide(address(), votes)
    world.sync()
    closed = epochs.close_epoch(world.engine, settings=world.settings)
    assert closed.root is not None
    assert world.sign(1, middle, large)
    world.pass_time(5)

    fork = rpc(world.w3, "evm_snapshot")
    submitter = Submitter(world.engine, world.settings)
    world.advance(submitter)
    epoch = world.epoch(1)
    assert epoch.status == EpochStatus.SUBMITTED
    root_tx_id = epoch.root_tx_id
    assert root_tx_id is not None
    [dropped] = world.root_submissions()
    final = submitter.outbox().get(root_tx_id)
    assert (final.status, final.mined_hash) == (TxStatus.CONFIRMED, dropped["tx"])

    # The other branch, without the root's block: the final root transaction and the
    # emission draw are gone, and the operator's nonce with them.
    old_head = world.w3.eth.block_number
    assert rpc(world.w3, "evm_revert", fork) is True
    world.mine(old_head - world.w3.eth.block_number + 2)
    assert world.root_submissions() == []
    assert world.w3.eth.get_transaction_count(world.operator.address) == 0
    world.sync()
    with Session(world.engine) as db:
        assert rewardsync.root_event(db, 1) is None

    # The outbox still watches its final transactions: it sends the same bytes again.
    with caplog.at_level(logging.WARNING, logger="shotbank.chain.outbox"):
        submitter.step()
    assert "reorged out after it was final (deeper than 1 confirmations)" in caplog.text
    assert world.epoch(1).status == EpochStatus.SUBMITTING
    [resent] = world.root_submissions()
    assert resent["tx"] == dropped["tx"]
    resent_receipt = world.w3.eth.get_transaction_receipt(HexBytes(resent["tx"]))
    assert resent_receipt["blockNumber"] > old_head

    world.advance(submitter)
    epoch = world.epoch(1)
    assert (epoch.status, epoch.root_tx_id, epoch.tx_hash, epoch.block_number) == (
        EpochStatus.SUBMITTED,
        root_tx_id,
        resent["tx"],
        resent_receipt["blockNumber"],
    )
    landed = submitter.outbox().get(root_tx_id)
    assert (landed.status, landed.mined_hash, landed.block_hash) == (
        TxStatus.CONFIRMED,
        resent["tx"],
        _tx_hash(resent_receipt["blockHash"]),
    )
    # Exactly one root on the canonical chain, one outbox row per mined transaction.
    assert [(s["epoch"], "0x" + s["root"].hex()) for s in world.root_submissions()] == [
        (1, closed.root)
    ]
    assert [tx.id for tx in _root_transactions(world)] == [root_tx_id]
    with Session(world.engine) as db:
        rows = db.execute(select(OutboxTransaction)).scalars().all()
    assert {row.status for row in rows} == {TxStatus.CONFIRMED.value}
    assert world.w3.eth.get_transaction_count(world.operator.address) == len(rows) == 2

    world.pass_time(CHALLENGE_WINDOW_S + 1)
    world.advance(submitter)
    assert world.epoch(1).status == EpochStatus.CLAIMABLE
    claim = _claim_view(world, contributor.address)
    owed = _cumulative(world, 1)[contributor.address]
    assert owed > 0
    assert (claim.epoch, claim.root, int(claim.cumulative_amount)) == (1, closed.root, owed)
    assert world.claim(contributor, claim) == owed
    _assert_second_claim_pays_nothing(world, contributor, claim)
