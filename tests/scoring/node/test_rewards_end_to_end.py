"""The contributor's loop closed: clips in, tokens out, exactly as the allocation rule says.

Against a fresh anvil with the real contracts (challenge window 60 s) and the real backend
(ingest, chain sync, consensus with a quorum of 3, epochs, the root submitter with its
own operator key): three contributors upload real generated clips, three validator nodes
score them and co-sign the epoch root, the root lands on chain, the challenge window
passes (anvil's clock is moved), and each contributor claims with ``shotbank rewards
claim``. Every wallet's SHOT balance must rise by exactly what an *independent*
implementation of the rule in this file computes from what anyone can see: the
``Funded`` events on chain up to the epoch's funding block, and each clip's consensus
decision and reports from the API. Then a second epoch, and claims again (cumulative).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from eth_account.signers.local import LocalAccount
from sqlmodel import Session
from web3 import Web3

from backend import admin
from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.services import rewardsync
from scoring.clipgen import scene_frames, solid_frames, tone, write_clip
from scoring.node.config import NodeSettings
from scoring.node.node import ValidatorNode
from scoring.synthetic import Scene
from shotbank.annotation.vocabulary import LightingSetup
from shotbank.chain.contracts import RewardDistributor, ShotToken, send_call
from shotbank.chain.deploy import DeployParams, deploy_all
from shotbank.chain.deployments import save_deployment
from shotbank.chain.devnode import AnvilNode
from shotbank.cli import main as cli_main
from shotbank.client import ShotbankClient
from tests.backend.live import ServerFactory
from tests.scoring.node.conftest import (
    MIN_STAKE,
    SHOT,
    Network,
    StakedChain,
    annotation,
    in_snapshot,
    node_settings,
    wait_for,
)

pytestmark = pytest.mark.slow

#: The pool the treasury puts in before the first epoch closes.
FUNDING = 9_000 * SHOT
VALIDATOR_SHARE_BPS = 1000
CAP_BPS = 5000
CHALLENGE_WINDOW_S = 60


# --- an independent implementation of rule shotbank-rewards/1 (docs/api/rewards.md) ------


@dataclass(frozen=True)
class Decided:
    """A clip as anyone sees it once decided: owner, decision, consensus quality."""

    clip_id: str
    contributor: str
    accepted: bool
    quality_bps: int
    agreed: dict[str, bool]


def expected_amounts(pool: int, clips: list[Decided]) -> dict[str, int]:
    """Each address's epoch amount under the rule, written from the text, not the code."""
    agreed: dict[str, int] = {}
    for clip in clips:
        for validator, ok in clip.agreed.items():
            agreed[validator] = agreed.get(validator, 0) + int(ok)
    weights: dict[str, int] = {}
    for clip in clips:
        if clip.accepted:
            weights[clip.contributor] = weights.get(clip.contributor, 0) + clip.quality_bps
    validator_pool = pool * VALIDATOR_SHARE_BPS // 10_000 if sum(agreed.values()) else 0
    contributor_pool = pool * (10_000 - VALIDATOR_SHARE_BPS) // 10_000 if weights else 0
    cap = contributor_pool * CAP_BPS // 10_000
    budget: dict[str, int] = {}
    remaining, weight_left = contributor_pool, sum(weights.values())
    order = sorted(weights, key=lambda a: (-weights[a], int(a, 16)))
    capped = 0
    for address in order:
        if remaining * weights[address] <= cap * weight_left:
            break
        budget[address] = cap
        remaining -= cap
        weight_left -= weights[address]
        capped += 1
    for address in order[capped:]:
        budget[address] = remaining * weights[address] // weight_left
    amounts: dict[str, int] = {}
    for clip in clips:
        if clip.accepted and weights[clip.contributor]:
            share = budget[clip.contributor] * clip.quality_bps // weights[clip.contributor]
            amounts[clip.contributor] = amounts.get(clip.contributor, 0) + share
    total_agreed = sum(agreed.values())
    for validator, count in agreed.items():
        if count:
            amounts[validator] = amounts.get(validator, 0) + validator_pool * count // total_agreed
    return amounts


# --- the world --------------------------------------------------------------------------


@dataclass
class RunningNode:
    """A validator node working on a thread of the test process."""

    node: ValidatorNode
    thread: threading.Thread
    stop: threading.Event
    errors: list[BaseException]


@pytest.fixture
def run_node() -> Iterator[Callable[[NodeSettings, LocalAccount], RunningNode]]:
    """Start validator nodes on threads (stopped, and checked for errors, at the end)."""
    running: list[RunningNode] = []

    def start(settings: NodeSettings, account: LocalAccount) -> RunningNode:
        node = ValidatorNode(settings, account)
        node.start()
        stop = threading.Event()
        errors: list[BaseException] = []

        def work() -> None:
            try:
                node.run(stop)
            except BaseException as exc:  # checked at teardown
                errors.append(exc)

        thread = threading.Thread(target=work, name=f"node-{account.address[:8]}", daemon=True)
        thread.start()
        handle = RunningNode(node, thread, stop, errors)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        handle.stop.set()
    for handle in running:
        handle.thread.join(timeout=60)
        assert handle.errors == []


@pytest.fixture
def rewards_network(
    live: ServerFactory,
    upload_settings: Callable[..., Settings],
    anvil: AnvilNode,
    anvil_w3: Web3,
    dev_keys: list[LocalAccount],
) -> Network:
    """The backend on a fresh chain (60 s challenge window), validators ``dev_keys[4:7]``
    staked, an operator (``dev_keys[2]``) that submits roots, and a funded pool."""
    deployment = deploy_all(
        anvil_w3,
        dev_keys[0],
        treasury=dev_keys[0].address,
        guardian=dev_keys[1].address,
        params=DeployParams(min_stake=MIN_STAKE, challenge_window_s=CHALLENGE_WINDOW_S),
    )
    chain = StakedChain(w3=anvil_w3, url=anvil.url, deployment=deployment, treasury=dev_keys[0])
    validators = dev_keys[4:7]
    for validator in validators:
        chain.stake(validator)
    distributor = RewardDistributor.from_deployment(anvil_w3, deployment)
    send_call(anvil_w3, dev_keys[0], chain.token.approve(distributor.address, FUNDING))
    send_call(anvil_w3, dev_keys[0], distributor.fund(FUNDING))
    settings = upload_settings(
        chain_rpc_url=anvil.url,
        chain_confirmations=0,
        chain_poll_s=0.05,
        consensus_quorum=3,
        consensus_interval_s=0.5,
        lease_ttl_s=60,
        lease_retry_after_s=1,
        ingest_poll_s=0.1,
        ingest_min_short_side=240,
        operator_key="0x" + bytes(dev_keys[2].key).hex(),
        epoch_length_s=3600,
        epoch_validator_share_bps=VALIDATOR_SHARE_BPS,
        epoch_contributor_cap_bps=CAP_BPS,
        outbox_confirmations=0,
    )
    settings.deployments_path.parent.mkdir(parents=True, exist_ok=True)
    save_deployment(settings.deployments_path, deployment)
    server = live(settings)
    wait_for(
        "the stake snapshot",
        lambda: all(in_snapshot(server.url, v.address) for v in validators),
    )
    return Network(server=server, chain=chain, validators=validators)


def _clip(folder: Path, name: str, frames: Any) -> Path:
    return write_clip(folder / f"{name}.mp4", frames, audio=tone(300.0, seconds=2.5))


def _scene(colour: str, shape: str, seed: int) -> Any:
    return scene_frames(Scene(colour, shape, LightingSetup.NATURAL), seconds=2.5, seed=seed)


def upload(network: Network, account: LocalAccount, files: list[tuple[Path, str]]) -> list[str]:
    """Upload ``files`` (path, description) as ``account``; the clip ids once past ingest."""
    ids = []
    with ShotbankClient(network.url) as client:
        client.sign_in(account)
        for path, description in files:
            done = client.upload(path)
            ids.append(client.create_clip(done.upload_id, annotation(description)).id)
        for clip_id in ids:
            clip = client.wait_for_clip(clip_id, timeout_s=60, interval_s=0.1)
            # Past ingest; the running nodes may have leased it already.
            assert clip.status in ("queued", "scoring", "accepted", "rejected"), (
                clip.status,
                clip.reasons,
            )
    return ids


def decided(network: Network, account: LocalAccount, clip_ids: list[str]) -> list[Decided]:
    """The decisions on ``account``'s clips, read through its own session."""
    out = []
    with ShotbankClient(network.url) as client:
        client.sign_in(account)
        http = httpx.Client(
            base_url=network.url, headers={"Authorization": f"Bearer {client.token}"}, timeout=10
        )
        with http:
            for clip_id in clip_ids:
                body = http.get(f"/api/v1/clips/{clip_id}/reports").json()
                accepted = body["status"] == "accepted"
                quality = float(body["decision"]["quality"]) if accepted else 0.0
                out.append(
                    Decided(
                        clip_id=clip_id,
                        contributor=account.address,
                        accepted=accepted,
                        # Basis points, rounded to nearest (qualities are never negative).
                        quality_bps=int(quality * 10_000 + 0.5) if accepted else 0,
                        agreed={
                            Web3.to_checksum_address(r["validator"]): bool(r["agreed"])
                            for r in body["reports"]
                        },
                    )
                )
    return out


def funded_up_to(w3: Web3, distributor: str, block: int) -> int:
    """Everything the distributor was funded with up to ``block``, from its events."""
    contract = RewardDistributor(w3, distributor)
    events = contract.contract.events.Funded().get_logs(from_block=0, to_block=block)
    return sum(int(event["args"]["amount"]) for event in events)


def _epoch(network: Network, number: int) -> dict[str, Any]:
    response = httpx.get(f"{network.url}/api/v1/epochs/{number}", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _advance(w3: Web3, seconds: int) -> None:
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def claim(network: Network, account: LocalAccount, *options: str) -> dict[str, Any]:
    """``shotbank rewards claim --json`` as ``account`` would run it."""
    result = CliRunner().invoke(
        cli_main,
        [
            "rewards",
            "claim",
            "--json",
            "--api",
            network.url,
            "--rpc-url",
            network.chain.url,
            *options,
        ],
        env={"SHOTBANK_PRIVATE_KEY": "0x" + bytes(account.key).hex()},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def close_epoch(settings: Settings) -> None:
    """What an operator runs: ``python -m backend.admin epochs close``."""
    assert admin.main(["epochs", "close"], settings=settings) == 0


def run_epoch(
    network: Network,
    number: int,
    uploads: dict[str, list[str]],
    accounts: dict[str, LocalAccount],
) -> tuple[dict[str, Any], dict[str, int]]:
    """Wait for decisions, close epoch ``number``, wait for its root to be claimable;
    the epoch's summary and the independently expected amounts."""
    w3 = network.chain.w3
    clips: list[Decided] = []
    for address, ids in uploads.items():
        wait_for(
            f"decisions on {address}'s clips",
            functools.partial(_all_decided, network, accounts[address], ids),
            timeout_s=240,
        )
        clips += decided(network, accounts[address], ids)
    # The close takes funding from the backend's indexed events: wait until everything
    # funded so far (the previous close's emission draw included) is indexed.
    wait_for("the funding indexed", lambda: _funding_indexed(network), timeout_s=60)
    close_epoch(network.server.settings)
    summary = _epoch(network, number)
    assert summary["status"] != "empty"
    wait_for(
        f"epoch {number}'s root on chain",
        lambda: _epoch(network, number)["status"] in ("submitted", "claimable"),
        timeout_s=120,
    )
    _advance(w3, CHALLENGE_WINDOW_S + 1)
    wait_for(
        f"epoch {number} claimable",
        lambda: _epoch(network, number)["status"] == "claimable",
        timeout_s=60,
    )
    summary = _epoch(network, number)
    funded = funded_up_to(w3, summary["distributor"], summary["funding_block"])
    pool = funded - int(summary["previous_cumulative_total"])
    assert int(summary["pool"]) == pool
    return summary, expected_amounts(pool, clips)


def _funding_indexed(network: Network) -> bool:
    w3 = network.chain.w3
    distributor = RewardDistributor.from_deployment(w3, network.chain.deployment)
    head = w3.eth.block_number
    engine = create_db_engine(network.server.settings)
    try:
        with Session(engine) as db:
            indexed = rewardsync.indexed_block(db)
            funded = rewardsync.funded_total_at(db, head)
    finally:
        engine.dispose()
    return (
        indexed is not None
        and indexed >= head
        and funded is not None
        and funded[0] == distributor.total_funded()
    )


def _all_decided(network: Network, account: LocalAccount, ids: list[str]) -> bool:
    with ShotbankClient(network.url) as client:
        client.sign_in(account)
        return all(client.get_clip(i).status in ("accepted", "rejected") for i in ids)


def test_three_contributors_are_paid_exactly_what_the_rule_gives_over_two_epochs(
    rewards_network: Network,
    run_node: Callable[[NodeSettings, LocalAccount], RunningNode],
    dev_keys: list[LocalAccount],
    tmp_path: Path,
) -> None:
    network = rewards_network
    w3 = network.chain.w3
    token = ShotToken.from_deployment(w3, network.chain.deployment)
    for index, validator in enumerate(network.validators):
        run_node(node_settings(network, tmp_path / f"node-{index}", epoch_poll_s=0.5), validator)
    contributors = dev_keys[7:10]
    accounts: dict[str, LocalAccount] = {account.address: account for account in contributors}
    wallets = [*contributors, *network.validators]
    one, two, three = contributors
    folder = tmp_path / "clips"
    folder.mkdir()

    # Epoch 1: a true clip and a black one; two true clips; a mislabelled one and a true one.
    uploads: dict[str, list[str]] = {
        one.address: upload(
            network,
            one,
            [
                (_clip(folder, "a1", _scene("red", "circle", 11)), "A red circle."),
                (_clip(folder, "a2", solid_frames(seconds=2.5)), "A green star."),
            ],
        ),
        two.address: upload(
            network,
            two,
            [
                (_clip(folder, "b1", _scene("blue", "square", 12)), "A blue square."),
                (_clip(folder, "b2", _scene("green", "triangle", 13)), "A green triangle."),
            ],
        ),
        three.address: upload(
            network,
            three,
            [
                (_clip(folder, "c1", _scene("yellow", "star", 14)), "A red circle."),
                (_clip(folder, "c2", _scene("purple", "circle", 15)), "A purple circle."),
            ],
        ),
    }
    before = {wallet.address: token.balance_of(wallet.address) for wallet in wallets}
    summary, expected = run_epoch(network, 1, uploads, accounts)
    statuses = [
        d.accepted
        for address, ids in uploads.items()
        for d in decided(network, accounts[address], ids)
    ]
    assert any(statuses), "some clips are accepted"
    assert not all(statuses), "some clips are rejected"
    assert summary["clips"] == {
        "accepted": sum(statuses),
        "rejected": len(statuses) - sum(statuses),
    }
    gas: dict[str, list[int]] = {"first claim": [], "later claim": []}
    for account in wallets:
        if account.address not in expected:
            continue
        receipt = claim(network, account)
        paid = token.balance_of(account.address) - before[account.address]
        assert paid == expected[account.address], (account.address, receipt)
        assert int(receipt["amount"]) == paid
        gas["first claim"].append(int(receipt["gas_used"]))
    # Validators are paid too, by the reports that agreed with consensus.
    assert any(v.address in expected for v in network.validators)
    # Claiming again pays nothing.
    again = claim(network, one)
    assert again.get("nothing_to_claim") is True
    assert token.balance_of(one.address) - before[one.address] == expected[one.address]

    # Epoch 2: new clips; the claims are cumulative, each pays only the new part.
    uploads = {
        one.address: upload(
            network,
            one,
            [(_clip(folder, "a3", _scene("orange", "square", 21)), "An orange square.")],
        ),
        two.address: upload(
            network, two, [(_clip(folder, "b3", _scene("red", "star", 22)), "A red star.")]
        ),
    }
    before = {wallet.address: token.balance_of(wallet.address) for wallet in wallets}
    summary2, expected2 = run_epoch(network, 2, uploads, accounts)
    assert summary2["previous_epoch"] == 1
    assert one.address in expected2
    assert two.address in expected2
    # A validator sends contributor one's claim: the leaf's account is paid, not the sender.
    sender = network.validators[0]
    sender_before = token.balance_of(sender.address)
    receipt = claim(network, sender, "--beneficiary", one.address)
    assert token.balance_of(one.address) - before[one.address] == expected2[one.address]
    assert token.balance_of(sender.address) == sender_before
    gas["later claim"].append(int(receipt["gas_used"]))
    receipt = claim(network, two)
    assert token.balance_of(two.address) - before[two.address] == expected2[two.address]
    gas["later claim"].append(int(receipt["gas_used"]))
    # Contributor three earned nothing new: nothing to claim, balance unchanged.
    assert three.address not in expected2
    assert claim(network, three).get("nothing_to_claim") is True
    assert token.balance_of(three.address) == before[three.address]

    # The gas of the real claims (README, benchmarks): a first claim by an account with
    # no SHOT pays for two fresh storage slots (docs/decisions/0002).
    print(f"claim gas from the end-to-end run: {json.dumps(gas)}")
    assert all(60_000 < used <= 100_000 for used in gas["first claim"]), gas
    assert all(40_000 < used <= 85_000 for used in gas["later claim"]), gas
