"""Building blocks of the epoch and rewards tests: decided clips, funding, stakes, a chain.

* Decided clips go through the **real consensus** (``backend.services.consensus.decide_clip``)
  on real ``ClipScores`` reports, so the decision documents, ``decided_at`` and
  ``report.agreed`` the close reads are exactly what scoring writes. Only what comes
  before the decision (upload, ingest, leases, signed report intake, tested elsewhere)
  is written as rows.
* Without a chain (:class:`EpochWorld`), the reward indexer's and the stake snapshot's
  state is written through their own stores (``rewardsync.use_source``,
  ``stakes.use_source``, ``SqlIndexerStore``), as if the chain sync had run.
* With a chain (:class:`ChainWorld`), the contracts are deployed on anvil with
  ``deploy_all``, validators stake, the pool is funded with ``fund`` (and, where a test
  asks, by a licence sale, an emission draw or a slash), and the backend's own chain
  sync indexes all of it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import Engine
from sqlmodel import Session
from web3 import Web3
from web3.logs import DISCARD

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.core.migrate import upgrade_to_head
from backend.models.clips import Clip, ClipStatus
from backend.models.epochs import ClaimView, Epoch, SignatureSubmission
from backend.models.rewardchain import RewardFunding
from backend.models.scoring import ClipScoring, DecisionTrigger, Lease, LeaseState, Report
from backend.models.stakes import ValidatorStake
from backend.services import consensus, epochs, rewardsync, stakes
from backend.services.chainstore import SqlIndexerStore
from backend.services.chainsync import ChainSync
from backend.services.leases import utcnow
from backend.services.submitter import Submitter
from scoring.report import ClipScores, Component, ComponentScore, ModelIdentity
from shotbank.chain.contracts import (
    DatasetMarket,
    RewardDistributor,
    ShotToken,
    ValidatorRegistry,
    send_call,
)
from shotbank.chain.deploy import DeployParams, deploy_all
from shotbank.chain.deployments import Deployment, save_deployment
from shotbank.chain.devnode import DEV_CHAIN_ID, AnvilNode
from shotbank.chain.eip712 import EpochRoot, sign_epoch_root
from shotbank.chain.indexer import Checkpoint

SHOT = 10**18
#: The registry's minimum stake in these tests.
MIN_STAKE = 100 * SHOT
#: Challenge window of the test deployments (the contract's minimum).
CHALLENGE_WINDOW_S = 60

MODEL = ModelIdentity(
    model="shotbank-tiny",
    weights_sha256=hashlib.sha256(b"shotbank-tiny weights").hexdigest(),
    preprocessing="1-0123456789ab",
)


def scores(quality: float, *, threshold: float = 0.5) -> ClipScores:
    """A scored verdict of ``quality`` (passed when at least ``threshold``)."""
    return ClipScores(
        scores={component: ComponentScore(value=quality) for component in Component},
        quality=quality,
        pass_threshold=threshold,
        passed=quality >= threshold,
        model=MODEL,
    )


def address() -> str:
    """A fresh checksum address."""
    created: str = Account.create().address
    return created


def fake_deployment(chain_id: int = DEV_CHAIN_ID) -> Deployment:
    """Addresses for a deployment that exists only in the deployments file (no chain)."""
    return Deployment(
        chain_id=chain_id,
        start_block=1,
        contracts={
            ShotToken.NAME: address(),
            ValidatorRegistry.NAME: address(),
            RewardDistributor.NAME: address(),
            "DatasetMarket": address(),
        },
    )


@dataclass
class EpochWorld:
    """A migrated backend database and its settings, and ways to fill it."""

    settings: Settings
    engine: Engine
    deployment: Deployment

    @property
    def distributor(self) -> str:
        """The RewardDistributor of the deployment."""
        return self.deployment.address(RewardDistributor.NAME)

    @property
    def registry(self) -> str:
        """The ValidatorRegistry of the deployment (the EIP-712 verifying contract)."""
        return self.deployment.address(ValidatorRegistry.NAME)

    def decide(
        self,
        owner: str,
        reports: Sequence[tuple[str, ClipScores]],
        *,
        stake: int = MIN_STAKE,
        now: datetime | None = None,
    ) -> tuple[str, ClipStatus]:
        """A clip of ``owner`` reported on by ``(validator, verdict)`` pairs and decided by
        the real consensus at ``now``; its id and decision."""
        moment = now or utcnow()
        clip_id = secrets.token_hex(16)
        digest = hashlib.sha256(clip_id.encode()).hexdigest()
        annotation_hash = "0x" + digest
        with Session(self.engine) as db:
            clip = Clip(
                id=clip_id,
                owner=owner,
                status=ClipStatus.SCORING,
                upload_id=secrets.token_hex(16),
                size_bytes=1000,
                sha256=digest,
                content_key=digest,
                cid="bafk" + digest[:40],
                annotation_json="{}",
                annotation_hash=annotation_hash,
                created_at=moment - timedelta(minutes=5),
                updated_at=moment - timedelta(minutes=5),
            )
            db.add(clip)
            db.add(
                ClipScoring(
                    clip_id=clip_id,
                    first_leased_at=moment - timedelta(minutes=4),
                    consensus_deadline=moment + timedelta(hours=1),
                )
            )
            db.flush()
            for validator, verdict in reports:
                lease = Lease(
                    clip_id=clip_id,
                    validator=validator,
                    state=LeaseState.REPORTED,
                    annotation_hash=annotation_hash,
                    issued_at=moment - timedelta(minutes=4),
                    expires_at=moment + timedelta(minutes=6),
                    deadline=int((moment + timedelta(minutes=6)).timestamp()),
                    ended_at=moment,
                )
                db.add(lease)
                db.flush()
                db.add(
                    Report(
                        lease_id=lease.id,
                        clip_id=clip_id,
                        validator=validator,
                        outcome=verdict.outcome.value,
                        quality=verdict.quality,
                        passed=verdict.passed,
                        flags=0,
                        weights_sha256=MODEL.weights_sha256,
                        scores_json=verdict.canonical_json().decode(),
                        signature="0x" + "11" * 65,
                        stake_wei=stake,
                        snapshot_block=1,
                        deadline=lease.deadline,
                        created_at=moment,
                    )
                )
            db.flush()
            status = consensus.decide_clip(
                db, clip=clip, trigger=DecisionTrigger.QUORUM, now=moment
            )
            db.commit()
        assert status is not None
        return clip_id, status

    def index_funding(self, *totals: int, block: int = 100, sources: Sequence[str] = ()) -> None:
        """The reward indexer's state as if it had read ``Funded`` events raising the
        pool to each of ``totals`` in turn, the last one at ``block`` (its checkpoint);
        ``sources`` names each event's funder (default: the token, as emission)."""
        funders = list(sources) or [self.deployment.address(ShotToken.NAME)] * len(totals)
        assert len(funders) == len(totals), "one source per total"
        store = SqlIndexerStore(self.engine)
        name = rewardsync.use_source(
            store,
            chain_id=self.deployment.chain_id,
            distributor=self.distributor,
            start_block=self.deployment.start_block,
            confirmations=0,
        )
        with store.transaction():
            session = store.session
            start = block - len(totals) + 1
            previous = rewardsync.funded_total_at(session, block)
            funded = previous[0] if previous is not None else 0
            for offset, (total, funder) in enumerate(zip(totals, funders, strict=True)):
                session.add(
                    RewardFunding(
                        block_number=start + offset,
                        log_index=0,
                        source=funder,
                        amount=total - funded,
                        total_funded=total,
                        block_hash="0x" + secrets.token_hex(32),
                        tx_hash="0x" + secrets.token_hex(32),
                    )
                )
                funded = total
            store.set_checkpoint(
                name, Checkpoint(block_number=block, block_hash="0x" + secrets.token_hex(32))
            )

    def index_stakes(self, validators: dict[str, int], *, block: int = 100) -> None:
        """The stake snapshot as if the chain sync had seen these active stakes."""
        store = SqlIndexerStore(self.engine)
        name = stakes.use_source(
            store,
            chain_id=self.deployment.chain_id,
            registry=self.registry,
            start_block=self.deployment.start_block,
            min_stake_wei=MIN_STAKE,
            confirmations=0,
        )
        with store.transaction():
            for validator, amount in validators.items():
                store.session.merge(
                    ValidatorStake(
                        address=validator,
                        bonded_wei=amount,
                        unbonding_wei=0,
                        updated_block=block,
                        updated_at=utcnow(),
                    )
                )
            store.set_checkpoint(
                name, Checkpoint(block_number=block, block_hash="0x" + secrets.token_hex(32))
            )

    def epoch(self, number: int) -> Epoch:
        """Epoch ``number`` as stored now."""
        with Session(self.engine) as db:
            row = db.get(Epoch, number)
            assert row is not None, f"no epoch {number}"
            db.expunge(row)
            return row

    def clip(self, clip_id: str) -> Clip:
        """A clip as stored now."""
        with Session(self.engine) as db:
            row = db.get(Clip, clip_id)
            assert row is not None
            db.expunge(row)
            return row

    def sign(self, number: int, *accounts: LocalAccount) -> bool:
        """Store the accounts' signatures over epoch ``number`` through the service;
        whether the stake snapshot says the quorum is reached."""
        reached = False
        for account in accounts:
            with Session(self.engine) as db:
                receipt, _ = epochs.submit_signature(
                    db,
                    settings=self.settings,
                    validator=account.address,
                    number=number,
                    body=self.signature(account, number),
                )
            reached = receipt.quorum_reached
        return reached

    def signature(self, account: LocalAccount, number: int) -> SignatureSubmission:
        """``account``'s signature over epoch ``number``'s published root."""
        epoch = self.epoch(number)
        assert epoch.root is not None
        assert epoch.cumulative_total is not None
        signed = sign_epoch_root(
            account,
            EpochRoot(epoch=number, root=epoch.root, cumulative_total=epoch.cumulative_total),
            chain_id=self.deployment.chain_id,
            verifying_contract=self.registry,
        )
        return SignatureSubmission(
            root=epoch.root,
            cumulative_total=str(epoch.cumulative_total),
            signature="0x" + signed.signature.hex(),
        )


def make_world(settings: Settings, deployment: Deployment) -> EpochWorld:
    """Save ``deployment`` where ``settings`` look for it and migrate their database."""
    settings.deployments_path.parent.mkdir(parents=True, exist_ok=True)
    save_deployment(settings.deployments_path, deployment)
    engine = create_db_engine(settings)
    upgrade_to_head(engine)
    return EpochWorld(settings=settings, engine=engine, deployment=deployment)


# --- a real chain ------------------------------------------------------------------------


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    """A raw JSON-RPC call (anvil's test methods); fails the test on an error answer."""
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response
    return response.get("result")


@dataclass
class ChainWorld(EpochWorld):
    """An :class:`EpochWorld` on anvil with the real contracts (see the module docstring)."""

    w3: Web3 = field(kw_only=True)
    node: AnvilNode = field(kw_only=True)
    funder: LocalAccount = field(kw_only=True)
    validators: tuple[LocalAccount, ...] = field(kw_only=True)
    operator: LocalAccount = field(kw_only=True)

    @property
    def distributor_contract(self) -> RewardDistributor:
        """The deployed RewardDistributor."""
        return RewardDistributor(self.w3, self.distributor)

    @property
    def token(self) -> ShotToken:
        """The deployed ShotToken."""
        return ShotToken(self.w3, self.deployment.address(ShotToken.NAME))

    @property
    def market(self) -> DatasetMarket:
        """The deployed DatasetMarket (``funder`` is its admin and lister)."""
        return DatasetMarket.from_deployment(self.w3, self.deployment)

    def sell_licence(self, buyer: LocalAccount, price: int) -> dict[str, Any]:
        """List a new dataset version at ``price`` and have ``buyer`` (paid by the
        treasury first) buy a licence; the ``LicencePurchased`` event's arguments."""
        version_id, manifest = secrets.token_bytes(32), secrets.token_bytes(32)
        send_call(
            self.w3,
            self.funder,
            self.market.list_version(version_id, manifest, price, "ipfs://terms/v1"),
        )
        send_call(self.w3, self.funder, self.token.transfer(buyer.address, price))
        send_call(self.w3, buyer, self.token.approve(self.market.address, price))
        receipt = send_call(self.w3, buyer, self.market.purchase(version_id, price))
        [event] = self.market.contract.events.LicencePurchased().process_receipt(
            receipt, errors=DISCARD
        )
        return dict(event["args"])

    def draw_emission(self, caller: LocalAccount) -> int:
        """Draw the scheduled emission into the pool (anyone may); the amount the
        distributor's ``Funded`` event reports."""
        receipt = send_call(self.w3, caller, self.distributor_contract.draw_emission())
        [event] = self.distributor_contract.contract.events.Funded().process_receipt(
            receipt, errors=DISCARD
        )
        assert event["args"]["source"] == self.token.address
        return int(event["args"]["amount"])

    def slash(self, validator: LocalAccount, caller: LocalAccount, *, epoch: int) -> int:
        """Have ``validator`` sign two different roots for ``epoch`` and ``caller`` (anyone)
        hand both to ``ValidatorRegistry.slash``; the amount its ``Slashed`` event reports."""
        registry = ValidatorRegistry(self.w3, self.registry)
        signed = []
        for total in (1, 2):
            message = EpochRoot(
                epoch=epoch, root="0x" + secrets.token_hex(32), cumulative_total=total
            )
            signature = sign_epoch_root(
                validator,
                message,
                chain_id=self.deployment.chain_id,
                verifying_contract=self.registry,
            )
            signed.append((message.root, total, signature.signature))
        receipt = send_call(
            self.w3, caller, registry.slash(validator.address, epoch, signed[0], signed[1])
        )
        [event] = registry.contract.events.Slashed().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["amount"])

    def sync(self) -> None:
        """Run the backend's chain sync until stakes and reward events have caught up."""
        job = ChainSync(self.engine, self.settings)
        for _ in range(50):
            if not job.step():
                return
        raise AssertionError("the chain sync did not catch up")

    def fund(self, amount: int) -> None:
        """Add ``amount`` to the reward pool with ``fund`` (as a sale's share would)."""
        send_call(self.w3, self.funder, self.token.approve(self.distributor, amount))
        send_call(self.w3, self.funder, self.distributor_contract.fund(amount))

    def advance(self, submitter: Submitter, rounds: int = 3) -> None:
        """Let the chain sync and ``submitter`` run a few rounds."""
        for _ in range(rounds):
            self.sync()
            submitter.step()

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks."""
        for _ in range(blocks):
            rpc(self.w3, "evm_mine")

    def pass_time(self, seconds: int) -> None:
        """Move the chain's clock on and mine a block."""
        rpc(self.w3, "evm_increaseTime", seconds)
        rpc(self.w3, "evm_mine")

    def claim(self, account: LocalAccount, claim: ClaimView) -> int:
        """Send a served claim (``rewards_of(...).claim``) from ``account`` as the
        contributor's wallet would; how much its token balance rose."""
        before = self.token.balance_of(account.address)
        call = self.distributor_contract.claim(
            account.address, int(claim.cumulative_amount), claim.proof
        )
        send_call(self.w3, account, call)
        return self.token.balance_of(account.address) - before

    def root_submissions(self) -> list[dict[str, Any]]:
        """Every ``RootSubmitted`` event on the chain, oldest first."""
        events = self.distributor_contract.contract.events.RootSubmitted.get_logs(from_block=0)
        return [
            dict(event["args"]) | {"tx": "0x" + bytes(event["transactionHash"]).hex()}
            for event in events
        ]


#: Stakes of the chain's validators: 2/3 of the total is 4,000 SHOT.
STAKES = (1_000 * SHOT, 2_000 * SHOT, 3_000 * SHOT)


def make_chain_world(
    settings_for: Any, node: AnvilNode, w3: Web3, keys: Sequence[LocalAccount], **overrides: Any
) -> ChainWorld:
    """Deploy on ``node``, stake :data:`STAKES` with ``keys[4:7]``, fund 10,000 SHOT from
    ``keys[0]``; the backend operator is ``keys[9]`` (its own nonces)."""
    funder, validators, operator = keys[0], tuple(keys[4:7]), keys[9]
    deployment = deploy_all(
        w3,
        funder,
        treasury=funder.address,
        guardian=funder.address,
        params=DeployParams(min_stake=MIN_STAKE, challenge_window_s=CHALLENGE_WINDOW_S),
    )
    token = ShotToken.from_deployment(w3, deployment)
    registry = ValidatorRegistry.from_deployment(w3, deployment)
    for account, amount in zip(validators, STAKES, strict=True):
        send_call(w3, funder, token.transfer(account.address, amount))
        send_call(w3, account, token.approve(registry.address, amount))
        rpc(w3, "evm_mine")  # a stake checkpoint written in the estimate's block costs less
        send_call(w3, account, registry.stake(amount))
    # Overrides win over these (a reorg test keeps transactions unconfirmed for a while).
    defaults: dict[str, Any] = {"chain_confirmations": 0, "outbox_confirmations": 0}
    settings: Settings = settings_for(
        chain_rpc_url=node.url,
        chain_poll_s=0.05,
        operator_key="0x" + bytes(operator.key).hex(),
        **(defaults | overrides),
    )
    base = make_world(settings, deployment)
    world = ChainWorld(
        settings=base.settings,
        engine=base.engine,
        deployment=deployment,
        w3=w3,
        node=node,
        funder=funder,
        validators=validators,
        operator=operator,
    )
    world.fund(10_000 * SHOT)
    world.sync()
    return world
