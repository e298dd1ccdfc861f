"""Co-signing against the real backend: closed epochs, the signing record, the chain.

The backend is uvicorn serving the real app (chain sync, epoch close, root submitter) on a
fresh anvil with the contracts deployed, three validators staked and the pool funded
(``tests.backend.epochs_world``); clips are decided by the real consensus and the epoch
is closed by ``backend.services.epochs.close_epoch``. Each validator's co-signer is the
node's own :class:`~scoring.node.epochs.EpochCosigner` with a signing record on disk.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session
from web3 import Web3

from backend.models.epochs import Epoch, EpochStatus
from backend.services import epochs as backend_epochs
from backend.services import rewardsync
from scoring.models import TEST_MODEL
from scoring.node.client import ValidatorClient
from scoring.node.config import NodeSettings
from scoring.node.epochs import EpochCosigner, EpochOutcome, EpochOutcomeKind
from scoring.node.metrics import NodeMetrics
from scoring.node.node import ValidatorNode
from scoring.node.signing_record import SigningRecord
from shotbank.chain.devnode import AnvilNode
from shotbank.client import UnexpectedResponseError
from tests.backend.conftest import SettingsFactory
from tests.backend.epochs_world import ChainWorld, make_chain_world, scores
from tests.backend.live import LiveServer, ServerFactory
from tests.scoring.node.conftest import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.chain]


@pytest.fixture
def world(
    upload_settings: SettingsFactory,
    anvil: AnvilNode,
    anvil_w3: Web3,
    dev_keys: list[LocalAccount],
) -> Iterator[ChainWorld]:
    """Epoch 1 closed with a root: two clips accepted, one rejected, validators 4..6."""
    built = make_chain_world(upload_settings, anvil, anvil_w3, dev_keys, ingest_workers=0)
    v = [validator.address for validator in built.validators]
    owners = [key.address for key in dev_keys[1:4]]
    # The third validator disagrees on the first clip: it earns less.
    built.decide(owners[0], [(v[0], scores(0.9)), (v[1], scores(0.8)), (v[2], scores(0.3))])
    built.decide(owners[1], [(v[0], scores(0.7)), (v[1], scores(0.75)), (v[2], scores(0.7))])
    built.decide(owners[2], [(v[0], scores(0.2)), (v[1], scores(0.1)), (v[2], scores(0.2))])
    closed = backend_epochs.close_epoch(built.engine, settings=built.settings)
    assert closed.status == EpochStatus.CLOSED
    assert closed.root is not None
    yield built
    built.engine.dispose()


@pytest.fixture
def server(live: ServerFactory, world: ChainWorld) -> LiveServer:
    return live(world.settings)


Cosigners = Callable[..., EpochCosigner]


@pytest.fixture
def cosigner_for(server: LiveServer, world: ChainWorld, tmp_path: Path) -> Iterator[Cosigners]:
    """A signed-in co-signer of one validator with its own state dir (a fresh one each call
    is a restarted node on the same state dir)."""
    made: list[tuple[EpochCosigner, ValidatorClient]] = []

    def factory(validator: LocalAccount, state_dir: Path | None = None) -> EpochCosigner:
        client = ValidatorClient(server.url, timeout=10)
        client.sign_in(validator)
        cosigner = EpochCosigner(
            client=client,
            account=validator,
            config=client.validator_config(),
            rpc_url=world.node.url,
            record=SigningRecord.in_state_dir(state_dir or tmp_path / validator.address),
            metrics=NodeMetrics(),
        )
        made.append((cosigner, client))
        return cosigner

    yield factory
    for cosigner, client in made:
        cosigner.close()
        client.close()


def kinds(outcomes: list[EpochOutcome]) -> list[tuple[int, EpochOutcomeKind]]:
    return [(outcome.epoch, outcome.kind) for outcome in outcomes]


def signers(server: LiveServer, epoch: int) -> list[str]:
    with ValidatorClient(server.url) as client:
        summary = client.epoch(epoch)
    assert summary.signatures is not None
    return list(summary.signatures.signers)


def sample(cosigner: EpochCosigner, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(cosigner.metrics.exposition().decode()):
        for metric in family.samples:
            if metric.name == name and metric.labels == labels:
                return metric.value
    raise AssertionError(f"no sample {name}{labels}")


def indexed(world: ChainWorld) -> int:
    with Session(world.engine) as db:
        return rewardsync.indexed_block(db) or 0


def tamper(world: ChainWorld, number: int, **values: Any) -> None:
    """Change what the backend publishes for an epoch (a backend gone wrong)."""
    with Session(world.engine) as db:
        row = db.get(Epoch, number)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        db.add(row)
        db.commit()


def test_three_nodes_verify_and_co_sign_and_their_root_lands_on_chain(
    world: ChainWorld, server: LiveServer, cosigner_for: Cosigners
) -> None:
    small, middle, large = (cosigner_for(v) for v in world.validators)
    assert kinds(small.run_once()) == [(1, EpochOutcomeKind.SIGNED)]
    assert signers(server, 1) == [world.validators[0].address]
    assert sample(small, "shotbank_validator_epochs_signed_total") == 1
    # A second round leaves the signed epoch alone.
    assert small.run_once() == []
    # 1,000 + 3,000 of 6,000 SHOT is the 2/3 quorum: the submitter takes it on chain.
    outcome = large.run_once()
    assert kinds(outcome) == [(1, EpochOutcomeKind.SIGNED)]
    assert outcome[0].detail == "quorum reached"
    wait_for("the root on chain", lambda: len(world.root_submissions()) == 1, timeout_s=60)
    submitted = world.root_submissions()[0]
    published = world.epoch(1)
    assert "0x" + bytes(submitted["root"]).hex() == published.root
    assert submitted["cumulativeTotal"] == published.cumulative_total
    assert submitted["signedStake"] == 4_000 * 10**18
    # The slowest node finds the epoch no longer closed: nothing to sign.
    wait_for("the epoch to leave 'closed'", lambda: world.epoch(1).status != EpochStatus.CLOSED)
    assert middle.run_once() == []


def test_the_next_epoch_is_signed_on_top_of_the_root_this_node_signed(
    world: ChainWorld, server: LiveServer, cosigner_for: Cosigners
) -> None:
    node = cosigner_for(world.validators[1])
    assert kinds(node.run_once()) == [(1, EpochOutcomeKind.SIGNED)]
    world.fund(500 * 10**18)
    funded_at = world.w3.eth.block_number
    wait_for("the server's indexer to see the funding", lambda: indexed(world) >= funded_at)
    owner = world.validators[0].address  # a validator may also contribute elsewhere
    v = [validator.address for validator in world.validators]
    world.decide(owner, [(v[1], scores(0.9)), (v[2], scores(0.95))])
    second = backend_epochs.close_epoch(world.engine, settings=world.settings)
    assert second.number == 2
    assert second.previous_epoch == 1
    assert kinds(node.run_once()) == [(2, EpochOutcomeKind.SIGNED)]
    record = node.record.recorded(31337, world.distributor, 2)
    assert record is not None
    assert (record.root, record.cumulative_total) == (second.root, second.cumulative_total)


def test_a_published_root_the_inputs_do_not_give_is_refused_and_never_signed(
    world: ChainWorld,
    server: LiveServer,
    cosigner_for: Cosigners,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The CLI's logging setup (other tests in this process) stops propagation.
    monkeypatch.setattr(logging.getLogger("scoring.node"), "propagate", True)
    honest = world.epoch(1).root
    forged = "0x" + "5a" * 32
    tamper(world, 1, root=forged)
    node = cosigner_for(world.validators[0])
    with caplog.at_level(logging.ERROR, logger="scoring.node"):
        outcomes = node.run_once()
    assert kinds(outcomes) == [(1, EpochOutcomeKind.REFUSED)]
    assert (
        f"epoch 1: published root {forged} but inputs give {honest}; not signing" in caplog.messages
    )
    assert sample(node, "shotbank_validator_epochs_refused_total", reason="root") == 1
    assert sample(node, "shotbank_validator_epochs_signed_total") == 0
    assert node.record.recorded(31337, world.distributor, 1) is None
    assert signers(server, 1) == []
    # Refused once is refused for this run: not re-verified every round.
    assert node.run_once() == []


def test_a_funding_total_the_chain_does_not_show_is_refused(
    world: ChainWorld, server: LiveServer, cosigner_for: Cosigners
) -> None:
    epoch = world.epoch(1)
    assert epoch.funded_total is not None
    tamper(world, 1, funded_total=epoch.funded_total + 1)
    node = cosigner_for(world.validators[0])
    outcomes = node.run_once()
    assert kinds(outcomes) == [(1, EpochOutcomeKind.REFUSED)]
    assert sample(node, "shotbank_validator_epochs_refused_total", reason="funded_total") == 1
    assert signers(server, 1) == []


def test_a_node_that_recorded_another_root_for_the_epoch_refuses_to_sign_it(
    world: ChainWorld, server: LiveServer, cosigner_for: Cosigners, tmp_path: Path
) -> None:
    validator = world.validators[0]
    state = tmp_path / "state"
    with SigningRecord.in_state_dir(state) as record:
        record.record_or_refuse(31337, world.distributor, 1, "0x" + "77" * 32, 5)
    node = cosigner_for(validator, state)
    outcomes = node.run_once()
    assert kinds(outcomes) == [(1, EpochOutcomeKind.REFUSED)]
    assert "not signing a second root" in outcomes[0].detail
    assert sample(node, "shotbank_validator_epochs_refused_total", reason="conflict") == 1
    assert signers(server, 1) == []


def test_a_signature_recorded_but_lost_before_the_backend_got_it_is_sent_again(
    world: ChainWorld, server: LiveServer, cosigner_for: Cosigners, tmp_path: Path
) -> None:
    validator = world.validators[2]
    published = world.epoch(1)
    assert published.root is not None
    assert published.cumulative_total is not None
    state = tmp_path / "state"
    # The node crashed after recording the root and before its POST arrived.
    with SigningRecord.in_state_dir(state) as record:
        record.record_or_refuse(
            31337, world.distributor, 1, published.root, published.cumulative_total
        )
    node = cosigner_for(validator, state)
    assert kinds(node.run_once()) == [(1, EpochOutcomeKind.RESENT)]
    assert signers(server, 1) == [validator.address]
    # Restarted once more: the backend lists it, nothing is sent.
    node.close()
    again = cosigner_for(validator, state)
    assert kinds(again.run_once()) == [(1, EpochOutcomeKind.ALREADY)]


def test_a_running_validator_node_co_signs_on_its_own_thread(
    world: ChainWorld, server: LiveServer, tmp_path: Path
) -> None:
    validator = world.validators[1]
    settings = NodeSettings(
        api_url=server.url,
        rpc_url=world.node.url,
        model=TEST_MODEL[0],
        pretrained=TEST_MODEL[1],
        device="cpu",
        precision="fp32",
        workers=0,
        metrics_port=0,
        poll_interval_s=0.2,
        epoch_poll_s=0.2,
        state_dir=tmp_path / "node",
    )
    node = ValidatorNode(settings, validator)
    node.start()
    stop = threading.Event()
    worker = threading.Thread(target=node.run, args=(stop,), daemon=True)
    worker.start()
    try:
        wait_for("the node's signature", lambda: signers(server, 1) == [validator.address])
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not worker.is_alive()
    exposition = node.metrics.exposition().decode()
    assert "shotbank_validator_epochs_signed_total 1.0" in exposition
    with SigningRecord.in_state_dir(tmp_path / "node") as record:
        kept = record.recorded(31337, world.distributor, 1)
    assert kept is not None
    assert kept.root == world.epoch(1).root


def test_inputs_larger_than_the_limit_are_refused_unread(
    world: ChainWorld, server: LiveServer
) -> None:
    with ValidatorClient(server.url) as client:
        assert client.epoch_inputs(1).inputs.epoch == 1
        with pytest.raises(UnexpectedResponseError, match="answered more than 100 bytes"):
            client.epoch_inputs(1, max_bytes=100)
