"""A node checks an epoch's dataset sales before it co-signs (rule ``shotbank-rewards/2``).

The backend is the real app (uvicorn) on a fresh anvil with the real contracts; a real
dataset version (real clips, ingested, accepted, frozen and packed) is listed on the real
DatasetMarket and bought, and epoch 1 is closed by ``backend.services.epochs``. A backend
gone wrong is played by rewriting what it publishes for the epoch *consistently*: the
inputs, the root and total they give and their hash, so that only the sales check can
tell (``scoring.node.epochs.check_sales``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from sqlmodel import Session
from web3 import Web3

from backend.models.epochs import Epoch, EpochDocument, EpochStatus
from backend.services import epochs as backend_epochs
from scoring.node.client import ValidatorClient
from scoring.node.epochs import EpochCosigner, EpochOutcomeKind
from scoring.node.metrics import NodeMetrics
from scoring.node.signing_record import SigningRecord
from shotbank.chain.devnode import AnvilNode
from shotbank.rewards import EpochInputs, allocate, canonical_json
from tests.backend.conftest import SettingsFactory
from tests.backend.epochs_world import SHOT, make_chain_world, scores
from tests.backend.live import LiveServer, ServerFactory
from tests.backend.test_sales_rewards import SalesWorld

pytestmark = [pytest.mark.chain]


@pytest.fixture
def world(
    upload_settings: SettingsFactory,
    anvil: AnvilNode,
    anvil_w3: Web3,
    dev_keys: list[LocalAccount],
    tmp_path: Path,
) -> Iterator[SalesWorld]:
    """Epoch 1 closed with one sale of a version of ALICE (2 samples) and BOB (1), and a
    clip decided by the validators (so the epoch has a root even without its sale)."""
    chain = make_chain_world(
        upload_settings,
        anvil,
        anvil_w3,
        dev_keys,
        ingest_workers=0,
        ingest_min_short_side=120,
        operators=[dev_keys[0].address],
    )
    built = SalesWorld(chain, tmp_path)
    version_hash = built.ready_version(
        [dev_keys[1].address, dev_keys[1].address, dev_keys[2].address]
    )
    built.buy(dev_keys[8], version_hash, 300 * SHOT)
    chain.decide(dev_keys[3].address, [(v.address, scores(0.8)) for v in chain.validators])
    chain.sync()
    closed = backend_epochs.close_epoch(chain.engine, settings=chain.settings)
    assert closed.status == EpochStatus.CLOSED
    yield built
    chain.engine.dispose()


@pytest.fixture
def server(live: ServerFactory, world: SalesWorld) -> LiveServer:
    return live(world.chain.settings)


Cosigners = Callable[[LocalAccount], EpochCosigner]


@pytest.fixture
def cosigner_for(server: LiveServer, world: SalesWorld, tmp_path: Path) -> Iterator[Cosigners]:
    """A signed-in co-signer with a fresh signing record (a node of its own each call)."""
    made: list[tuple[EpochCosigner, ValidatorClient]] = []

    def factory(validator: LocalAccount) -> EpochCosigner:
        client = ValidatorClient(server.url, timeout=10)
        client.sign_in(validator)
        cosigner = EpochCosigner(
            client=client,
            account=validator,
            config=client.validator_config(),
            rpc_url=world.chain.node.url,
            record=SigningRecord.in_state_dir(tmp_path / f"node-{len(made)}"),
            metrics=NodeMetrics(),
        )
        made.append((cosigner, client))
        return cosigner

    yield factory
    for cosigner, client in made:
        cosigner.close()
        client.close()


def published_inputs(world: SalesWorld) -> dict[str, Any]:
    with Session(world.chain.engine) as db:
        document = db.get(EpochDocument, 1)
        assert document is not None
        loaded: dict[str, Any] = json.loads(document.inputs_json)
        return loaded


def publish(world: SalesWorld, inputs: dict[str, Any]) -> None:
    """Publish ``inputs`` for epoch 1 with the root, totals and hash they give."""
    parsed = EpochInputs.model_validate(inputs)
    result = allocate(parsed)
    canonical = canonical_json(parsed)
    with Session(world.chain.engine) as db:
        epoch, document = db.get(Epoch, 1), db.get(EpochDocument, 1)
        assert epoch is not None
        assert document is not None
        epoch.root, epoch.cumulative_total = result.root, result.cumulative_total
        epoch.allocated, epoch.carry = result.allocated, result.carry
        epoch.inputs_sha256 = hashlib.sha256(canonical).hexdigest()
        document.inputs_json = canonical.decode("ascii")
        document.result_json = result.model_dump_json()
        db.add_all([epoch, document])
        db.commit()


def test_an_epoch_whose_sales_the_chain_and_manifest_confirm_is_signed(
    world: SalesWorld, cosigner_for: Cosigners
) -> None:
    inputs = published_inputs(world)
    assert len(inputs["sales"]) == 1
    assert len(inputs["versions"]) == 1
    node = cosigner_for(world.chain.validators[0])
    assert [(o.epoch, o.kind) for o in node.run_once()] == [(1, EpochOutcomeKind.SIGNED)]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("versions", "manifest counts samples"),
        ("amount", "the chain says"),
        ("left_out", "which the backend knows, is left out"),
    ],
)
def test_sales_or_sample_counts_the_chain_and_manifest_do_not_confirm_are_refused(
    world: SalesWorld,
    cosigner_for: Cosigners,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
    why: str,
) -> None:
    # The CLI's logging setup (other tests in this process) stops propagation.
    monkeypatch.setattr(logging.getLogger("scoring.node"), "propagate", True)
    inputs = published_inputs(world)
    [version] = inputs["versions"]
    if change == "versions":
        # The same contributors, their sample counts swapped: BOB paid as if ALICE.
        counts = inputs["versions"][version]
        inputs["versions"][version] = dict(zip(counts, reversed(counts.values()), strict=True))
    elif change == "amount":
        inputs["sales"][0]["amount"] = str(int(inputs["sales"][0]["amount"]) - 1)
    else:
        inputs["sales"], inputs["versions"] = [], {}
    publish(world, inputs)
    node = cosigner_for(world.chain.validators[0])
    with caplog.at_level(logging.ERROR, logger="scoring.node"):
        outcomes = node.run_once()
    assert [(o.epoch, o.kind) for o in outcomes] == [(1, EpochOutcomeKind.REFUSED)]
    assert why in outcomes[0].detail
    assert any(why in message and "not signing" in message for message in caplog.messages)
    assert node.record.recorded(31337, world.chain.distributor, 1) is None
