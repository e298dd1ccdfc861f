"""RewardDistributor events on a real anvil, through the backend's chain-sync job: funding
and emission draws, roots co-signed by staked validators, vetoes, challenges, claims, and
real reorgs, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from web3 import Web3

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.core.migrate import upgrade_to_head
from backend.models.rewardchain import (
    CancelReason,
    RewardClaim,
    RewardFunding,
    RewardRoot,
    RewardSource,
)
from backend.models.stakes import (
    ChainBlock,
    ChainCheckpoint,
    StakeSource,
    ValidatorStake,
    ValidatorStakeEvent,
)
from backend.services import rewardsync
from backend.services.chainsync import ChainSync
from shotbank.chain.abi import load_abi
from shotbank.chain.contracts import (
    RewardDistributor,
    ShotToken,
    ValidatorRegistry,
    send_call,
)
from shotbank.chain.deploy import DeployParams, deploy_all
from shotbank.chain.deployments import Deployment, save_deployment
from shotbank.chain.devnode import AnvilNode
from shotbank.chain.eip712 import EpochRoot, bundle_signatures, sign_epoch_root
from shotbank.chain.merkle import StandardMerkleTree, rewards_tree
from tests.backend.conftest import SettingsFactory

SHOT = 10**18
CHALLENGE_WINDOW_S = 60
PARAMS = DeployParams(
    min_stake=100 * SHOT, challenge_window_s=CHALLENGE_WINDOW_S, max_snapshot_age_blocks=200
)
LOGGER = "backend.services.chainsync"
_TABLES = (
    RewardClaim, RewardFunding, RewardRoot, RewardSource,
    ValidatorStakeEvent, ValidatorStake, StakeSource, ChainBlock, ChainCheckpoint,
)  # fmt: skip


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    """A raw JSON-RPC call (anvil's test methods); fails the test on an error answer."""
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response
    return response.get("result")


class World:
    """Contracts on a fresh anvil, three staked validators, and the backend's chain sync."""

    def __init__(
        self, w3: Web3, keys: list[LocalAccount], engine: Engine, settings: Settings
    ) -> None:
        self.w3 = w3
        self.engine = engine
        self.treasury, self.guardian = keys[1], keys[2]
        self.contributors = keys[7:10]
        self.validators = keys[4:7]
        self.deployment: Deployment = deploy_all(
            w3, keys[0], treasury=self.treasury.address, guardian=self.guardian.address,
            params=PARAMS,
        )  # fmt: skip
        settings.deployments_path.parent.mkdir(parents=True, exist_ok=True)
        save_deployment(settings.deployments_path, self.deployment)
        self.token = ShotToken.from_deployment(w3, self.deployment)
        self.registry = ValidatorRegistry.from_deployment(w3, self.deployment)
        self.distributor = RewardDistributor.from_deployment(w3, self.deployment)
        for validator in self.validators:
            send_call(w3, self.treasury, self.token.transfer(validator.address, 100 * SHOT))
            send_call(w3, validator, self.token.approve(self.registry.address, 100 * SHOT))
            send_call(w3, validator, self.registry.stake(100 * SHOT))
        self.sync = ChainSync(engine, settings)
        self._raw = w3.eth.contract(
            address=self.distributor.address, abi=load_abi(RewardDistributor.NAME)
        )

    # --- chain actions -------------------------------------------------------------------

    def fund(self, amount: int) -> int:
        send_call(self.w3, self.treasury, self.token.approve(self.distributor.address, amount))
        receipt = send_call(self.w3, self.treasury, self.distributor.fund(amount))
        return int(receipt["blockNumber"])

    def draw_emission(self) -> int:
        # anvil mines these blocks within a second or two: let emission accrue.
        rpc(self.w3, "evm_increaseTime", 10)
        self.mine()
        receipt = send_call(self.w3, self.treasury, self.distributor.draw_emission())
        return int(receipt["blockNumber"])

    def submit(self, epoch: int, cumulative: Mapping[str, int]) -> tuple[StandardMerkleTree, Any]:
        """Submit the root of ``cumulative`` for ``epoch``, signed by every validator."""
        tree = rewards_tree(cumulative)
        root = EpochRoot(epoch=epoch, root=tree.root, cumulative_total=sum(cumulative.values()))
        bundle = bundle_signatures(
            root,
            [s.signature for s in self.sign(root, self.validators)],
            chain_id=31337,
            verifying_contract=self.registry.address,
        )
        self.mine()
        snapshot = self.w3.eth.block_number - 1
        receipt = send_call(
            self.w3, self.treasury, self.distributor.submit_root(root, snapshot, bundle)
        )
        return tree, receipt

    def sign(self, root: EpochRoot, signers: list[LocalAccount]) -> list[Any]:
        return [
            sign_epoch_root(v, root, chain_id=31337, verifying_contract=self.registry.address)
            for v in signers
        ]

    def claim(self, tree: StandardMerkleTree, account: str, cumulative: int) -> Any:
        proof = tree.get_proof([account, cumulative])
        return send_call(self.w3, self.treasury, self.distributor.claim(account, cumulative, proof))

    def pass_challenge_window(self) -> None:
        rpc(self.w3, "evm_increaseTime", CHALLENGE_WINDOW_S + 1)
        self.mine()

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            rpc(self.w3, "evm_mine")

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def total_funded_at(self, block: int) -> int:
        """``totalFunded()`` at ``block`` (0 before the distributor was deployed)."""
        if not self.w3.eth.get_code(self.distributor.address, block_identifier=block):
            return 0
        return int(self._raw.functions.totalFunded().call(block_identifier=block))

    # --- the backend side ----------------------------------------------------------------

    def catch_up(self, max_steps: int = 50) -> None:
        for _ in range(max_steps):
            if not self.sync.step():
                return
        pytest.fail("the chain sync did not catch up")

    def session(self) -> Session:
        return Session(self.engine)

    def funding(self) -> list[tuple[str, int, int, int]]:
        with self.session() as session:
            rows = session.scalars(
                select(RewardFunding).order_by(
                    col(RewardFunding.block_number), col(RewardFunding.log_index)
                )
            ).all()
            return [(r.source, r.amount, r.total_funded, r.block_number) for r in rows]

    def assert_funded_totals_match_the_chain(self) -> None:
        """``funded_total_at`` equals ``totalFunded()`` at every indexed block."""
        with self.session() as session:
            indexed = rewardsync.indexed_block(session)
            assert indexed is not None
            for block in range(self.deployment.start_block, indexed + 1):
                found = rewardsync.funded_total_at(session, block)
                assert (found[0] if found else 0) == self.total_funded_at(block), block


def _empty(engine: Engine) -> None:
    with Session(engine) as session:
        for table in _TABLES:
            session.execute(delete(table))
        session.commit()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The settings that select each database."""
    if request.param == "postgresql":
        return {"database_url": request.getfixturevalue("postgres_url")}
    return {}


@pytest.fixture
def world(
    anvil: AnvilNode,
    anvil_w3: Web3,
    dev_keys: list[LocalAccount],
    make_settings: SettingsFactory,
    db_overrides: dict[str, Any],
) -> Iterator[World]:
    """A :class:`World` on a migrated database (the PostgreSQL one is emptied around it)."""
    settings = make_settings(
        chain_rpc_url=anvil.url, chain_confirmations=0, chain_poll_s=0.05, **db_overrides
    )
    engine = create_db_engine(settings)
    upgrade_to_head(engine)
    _empty(engine)
    yield World(anvil_w3, dev_keys, engine, settings)
    _empty(engine)
    engine.dispose()


sqlite_only = pytest.mark.parametrize("db_overrides", ["sqlite"], indirect=True)


# --- funding ------------------------------------------------------------------------------


def test_funding_and_emission_draws_give_the_funded_total_at_every_block(world: World) -> None:
    with world.session() as session:
        assert rewardsync.indexed_block(session) is None
    world.catch_up()
    with world.session() as session:
        assert rewardsync.funded_total_at(session, world.w3.eth.block_number) is None
    funded_block = world.fund(500 * SHOT)
    world.mine(2)
    drawn_block = world.draw_emission()
    world.catch_up()

    total = world.distributor.total_funded()
    drawn = total - 500 * SHOT
    assert drawn > 0, "the distributor may mint the token's emission"
    assert world.funding() == [
        (world.treasury.address, 500 * SHOT, 500 * SHOT, funded_block),
        (world.token.address, drawn, total, drawn_block),
    ]
    with world.session() as session:
        assert rewardsync.indexed_block(session) == world.w3.eth.block_number
        assert rewardsync.funded_total_at(session, funded_block - 1) is None
        assert rewardsync.funded_total_at(session, drawn_block - 1) == (500 * SHOT, funded_block)
        assert rewardsync.funded_total_at(session, drawn_block + 100) == (total, drawn_block)
    world.assert_funded_totals_match_the_chain()


@sqlite_only
def test_rows_without_their_checkpoint_are_re_derived_not_duplicated(world: World) -> None:
    world.fund(5 * SHOT)
    world.catch_up()
    before = world.funding()
    with world.session() as session:
        session.execute(
            delete(ChainCheckpoint).where(
                col(ChainCheckpoint.name).startswith(rewardsync.INDEXER_PREFIX)
            )
        )
        session.commit()
    # A restarted backend finds the rows but not the checkpoint that vouches for them.
    world.sync = ChainSync(world.engine, world.sync.settings)
    world.catch_up()
    assert world.funding() == before


# --- roots and claims ---------------------------------------------------------------------


def test_a_co_signed_root_is_indexed_claimable_after_its_window_and_claims_add_up(
    world: World,
) -> None:
    alice, bob = (c.address for c in world.contributors[:2])
    world.fund(1_000 * SHOT)
    first: dict[str, int] = {alice: 40 * SHOT, bob: 2 * SHOT + 1}
    tree, receipt = world.submit(1, first)
    world.catch_up()

    stored = world.distributor.epoch_root(1)
    with world.session() as session:
        row = rewardsync.root_event(session, 1)
        assert row is not None
        assert (row.root, row.cumulative_total) == (tree.root, 42 * SHOT + 1)
        assert (row.snapshot_block, row.claimable_at) == (
            stored.snapshot_block,
            stored.claimable_at,
        )
        assert (row.signed_stake, row.total_stake) == (300 * SHOT, 300 * SHOT)
        assert (row.block_number, row.tx_hash) == (
            receipt["blockNumber"],
            "0x" + bytes(receipt["transactionHash"]).hex(),
        )
        assert row.cancelled is None
        assert rewardsync.latest_root(session) == row
        assert rewardsync.root_event(session, 2) is None
        # Pending: claims do not verify against it yet.
        assert rewardsync.claimable_root(session, now=world.now()) is None
        assert rewardsync.claimable_root(session, now=row.claimable_at) == row

    world.pass_challenge_window()
    world.claim(tree, alice, 40 * SHOT)
    world.claim(tree, bob, 2 * SHOT + 1)
    second: dict[str, int] = {alice: 100 * SHOT, bob: 2 * SHOT + 1}
    tree2, _ = world.submit(2, second)
    world.pass_challenge_window()
    claim_receipt = world.claim(tree2, alice, 100 * SHOT)
    world.catch_up()

    with world.session() as session:
        assert rewardsync.claimed_total(session, alice) == 100 * SHOT
        assert rewardsync.claimed_total(session, bob.lower()) == 2 * SHOT + 1
        assert rewardsync.claimed_total(session, world.contributors[2].address) == 0
        claimable = rewardsync.claimable_root(session, now=world.now())
        assert claimable is not None
        assert (claimable.epoch, claimable.root) == (2, tree2.root)
        latest = session.scalars(
            select(RewardClaim).order_by(col(RewardClaim.block_number).desc())
        ).first()
        assert latest is not None
        assert (latest.account, latest.amount, latest.block_number) == (
            alice,
            60 * SHOT,
            claim_receipt["blockNumber"],
        )
    for account in (alice, bob):
        with world.session() as session:
            assert rewardsync.claimed_total(session, account) == world.distributor.claimed(account)


@sqlite_only
def test_a_vetoed_root_and_a_challenged_root_are_marked_and_never_claimable(
    world: World, dev_keys: list[LocalAccount]
) -> None:
    alice = world.contributors[0].address
    world.fund(100 * SHOT)
    world.submit(1, {alice: 10 * SHOT})
    veto = send_call(world.w3, world.guardian, world.distributor.veto(1))

    # Epoch 2's root, and a second signature by validator 0 for another root of epoch 2:
    # anyone holding both cancels the root and slashes the validator into the pool.
    tree, _ = world.submit(2, {alice: 20 * SHOT})
    cheater = world.validators[0]
    pending = EpochRoot(epoch=2, root=tree.root, cumulative_total=20 * SHOT)
    conflicting = EpochRoot(epoch=2, root="0x" + "ab" * 32, cumulative_total=20 * SHOT)
    (over_pending,) = world.sign(pending, [cheater])
    (over_conflicting,) = world.sign(conflicting, [cheater])
    challenger = dev_keys[3]
    challenge = send_call(
        world.w3,
        challenger,
        world.distributor.challenge(
            2, cheater.address, conflicting.root, conflicting.cumulative_total,
            over_pending.signature, over_conflicting.signature,
        ),
    )  # fmt: skip
    world.pass_challenge_window()
    world.catch_up()

    with world.session() as session:
        vetoed = rewardsync.root_event(session, 1)
        challenged = rewardsync.root_event(session, 2)
        assert vetoed is not None
        assert challenged is not None
        assert (vetoed.cancelled, vetoed.cancelled_by, vetoed.challenged_validator) == (
            CancelReason.VETOED,
            world.guardian.address,
            None,
        )
        assert vetoed.cancelled_block == veto["blockNumber"]
        assert (challenged.cancelled, challenged.cancelled_by) == (
            CancelReason.CHALLENGED,
            challenger.address,
        )
        assert challenged.challenged_validator == cheater.address
        assert challenged.cancelled_tx_hash == "0x" + bytes(challenge["transactionHash"]).hex()
        assert rewardsync.claimable_root(session, now=world.now()) is None
        assert rewardsync.latest_root(session) == challenged
        assert rewardsync.latest_root(session, include_cancelled=False) is None
    # The slashed stake funded the pool: a Funded event from the registry.
    assert world.funding()[-1][:3] == (
        world.registry.address,
        100 * SHOT,
        world.distributor.total_funded(),
    )
    world.assert_funded_totals_match_the_chain()


# --- reorgs -------------------------------------------------------------------------------


def test_a_reorg_rolls_claims_vetoes_and_funding_back_and_applies_the_new_branch(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    alice = world.contributors[0].address
    first_block = world.fund(100 * SHOT)
    tree, _ = world.submit(1, {alice: 10 * SHOT})
    world.pass_challenge_window()
    world.submit(2, {alice: 30 * SHOT})
    world.catch_up()

    fork = rpc(world.w3, "evm_snapshot")
    world.claim(tree, alice, 10 * SHOT)
    send_call(world.w3, world.guardian, world.distributor.veto(2))
    world.fund(7 * SHOT)
    world.catch_up()
    old_head = world.w3.eth.block_number
    with world.session() as session:
        assert rewardsync.claimed_total(session, alice) == 10 * SHOT
        vetoed = rewardsync.root_event(session, 2)
        assert vetoed is not None
        assert vetoed.cancelled == CancelReason.VETOED
    assert [amount for _, amount, _, _ in world.funding()] == [100 * SHOT, 7 * SHOT]

    # The other branch: no claim, no veto, another funding, and a longer chain.
    assert rpc(world.w3, "evm_revert", fork) is True
    new_block = world.fund(3 * SHOT)
    world.mine(old_head - world.w3.eth.block_number + 2)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        world.catch_up()
    assert "reward events: chain reorganised" in caplog.text

    with world.session() as session:
        assert rewardsync.claimed_total(session, alice) == 0
        assert session.scalars(select(RewardClaim)).all() == []
        root2 = rewardsync.root_event(session, 2)
        assert root2 is not None
        assert (root2.cancelled, root2.cancelled_by, root2.cancelled_block) == (None, None, None)
        assert rewardsync.indexed_block(session) == world.w3.eth.block_number
    assert world.funding() == [
        (world.treasury.address, 100 * SHOT, 100 * SHOT, first_block),
        (world.treasury.address, 3 * SHOT, 103 * SHOT, new_block),
    ]
    world.assert_funded_totals_match_the_chain()


# --- the job --------------------------------------------------------------------------------


@sqlite_only
def test_without_a_distributor_in_the_deployment_the_stake_snapshot_still_syncs(
    world: World,
) -> None:
    settings = world.sync.settings
    contracts = dict(world.deployment.contracts)
    del contracts[RewardDistributor.NAME]
    save_deployment(
        settings.deployments_path, world.deployment.model_copy(update={"contracts": contracts})
    )
    world.catch_up()
    assert world.sync.indexer is not None
    assert world.sync.reward_indexer is None
    with world.session() as session:
        assert rewardsync.indexed_block(session) is None
        assert session.get(ValidatorStake, world.validators[0].address) is not None
