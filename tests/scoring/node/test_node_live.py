"""Validator nodes against a live backend: real chain, real uploads, real scoring, real reports.

The backend is uvicorn serving the real app (ingest worker, chain sync, consensus) on a
fresh anvil with the contracts deployed and three validators staked; a contributor
uploads real clips through tus and ``POST /clips``; the nodes run the in-project model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from scoring.clipgen import scene_frames, solid_frames, tone, write_clip
from scoring.node.config import NodeSettings
from scoring.node.node import ValidatorNode
from scoring.report import ClipScores
from scoring.signing import score_report_message
from scoring.synthetic import Scene
from shotbank.chain.deployments import save_deployment
from shotbank.chain.eip712 import recover_score_report_signer
from shotbank.client import ShotbankClient
from tests.backend.live import LiveServer, ServerFactory
from tests.scoring.node.conftest import StakedChain

pytestmark = pytest.mark.slow

DECIDED = {"accepted", "rejected", "failed"}
SOUND = {"genre": "ambience", "dialogue": False, "recording": "studio"}
RIGHTS = {"licence": "cc0-1.0", "model_release": "not_required", "location_release": "not_required"}


def annotation(description: str, lighting: str = "natural") -> dict[str, Any]:
    return {
        "schema_version": "1",
        "scene": {"description": description, "setting": "interior"},
        "camera": {"movement": "static"},
        "lighting": {"setup": lighting},
        "audio": SOUND,
        "rights": RIGHTS,
    }


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, dict[str, Any]]]:
    """Three tiny real clips with their annotations: one true, one mislabelled, one black."""
    folder = tmp_path_factory.mktemp("node-clips")
    sound = tone(300.0, seconds=2.5)
    red_circle = write_clip(
        folder / "red-circle.mp4",
        scene_frames(Scene("red", "circle", "natural"), seconds=2.5),
        audio=sound,
    )
    blue_square = write_clip(
        folder / "blue-square.mp4",
        scene_frames(Scene("blue", "square", "natural"), seconds=2.5, seed=1),
        audio=sound,
    )
    black = write_clip(folder / "black.mp4", solid_frames(seconds=2.5), audio=sound)
    return [
        (red_circle, annotation("A red circle.")),
        (blue_square, annotation("A red circle.")),
        (black, annotation("A green star.")),
    ]


@dataclass
class Network:
    """A live backend on a staked chain, and the validators' keys."""

    server: LiveServer
    chain: StakedChain
    validators: list[LocalAccount]

    @property
    def url(self) -> str:
        return self.server.url


def _wait(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def _staked_in_snapshot(url: str, address: str) -> bool:
    response = httpx.get(f"{url}/api/v1/validators/{address}", timeout=5)
    return response.status_code == 200 and bool(response.json()["is_active"])


@pytest.fixture
def network(
    live: ServerFactory,
    upload_settings: Callable[..., Any],
    staked_chain: StakedChain,
    dev_keys: list[LocalAccount],
) -> Network:
    """The backend (quorum 2) on the chain, with validators ``dev_keys[4:7]`` staked."""
    validators = dev_keys[4:7]
    for validator in validators:
        staked_chain.stake(validator)
    settings = upload_settings(
        chain_rpc_url=staked_chain.url,
        chain_confirmations=0,
        chain_poll_s=0.05,
        consensus_quorum=2,
        lease_retry_after_s=1,
        ingest_poll_s=0.1,
        ingest_min_short_side=240,
    )
    settings.deployments_path.parent.mkdir(parents=True, exist_ok=True)
    save_deployment(settings.deployments_path, staked_chain.deployment)
    server = live(settings)
    for validator in validators:
        _wait("the stake snapshot", lambda v=validator: _staked_in_snapshot(server.url, v.address))
    return Network(server=server, chain=staked_chain, validators=validators)


def node_settings(network: Network, state_dir: Path, **overrides: Any) -> NodeSettings:
    values: dict[str, Any] = {
        "api_url": network.url,
        "rpc_url": network.chain.url,
        "model": "shotbank-tiny",
        "pretrained": "synthetic-v1",
        "device": "cpu",
        "precision": "fp32",
        "workers": 0,
        "max_leases": 2,
        "metrics_port": 0,
        "poll_interval_s": 0.2,
        "status_interval_s": 1.0,
        "shutdown_grace_s": 5.0,
        "state_dir": state_dir,
    }
    values.update(overrides)
    return NodeSettings(**values)


@dataclass
class RunningNode:
    node: ValidatorNode
    thread: threading.Thread
    stop: threading.Event
    errors: list[BaseException]

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the node did not stop"
        assert self.errors == []


@pytest.fixture
def run_node() -> Iterator[Callable[..., RunningNode]]:
    """Start validator nodes on threads (stopped at the end of the test)."""
    running: list[RunningNode] = []

    def start(settings: NodeSettings, account: LocalAccount) -> RunningNode:
        node = ValidatorNode(settings, account)
        node.start()
        stop = threading.Event()
        errors: list[BaseException] = []

        def work() -> None:
            try:
                node.run(stop)
            except BaseException as exc:  # surfaced by halt()
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


def contribute(network: Network, files: list[tuple[Path, dict[str, Any]]]) -> list[str]:
    """Upload ``files`` as a fresh contributor; the clip ids once ingest queued them."""
    contributor: LocalAccount = Account.create()
    ids = []
    with ShotbankClient(network.url) as client:
        client.sign_in(contributor)
        for path, document in files:
            upload = client.upload(path)
            ids.append(client.create_clip(upload.upload_id, document).id)
        for clip_id in ids:
            clip = client.wait_for_clip(clip_id, timeout_s=60, interval_s=0.1)
            assert clip.status == "queued", (clip.status, clip.reasons)
    return ids


def clip_status(network: Network, clip_id: str) -> str:
    response = httpx.get(f"{network.url}/api/v1/clips/{clip_id}/reports", timeout=5)
    if response.status_code == 200:
        return str(response.json()["status"])
    return "undecided"


def test_three_nodes_decide_every_clip_once_each_with_verifiable_reports(
    network: Network, clip_files: list[tuple[Path, dict[str, Any]]], tmp_path: Path, run_node: Any
) -> None:
    clip_ids = contribute(network, clip_files)
    nodes = [
        run_node(node_settings(network, tmp_path / f"node-{n}"), validator)
        for n, validator in enumerate(network.validators)
    ]
    _wait(
        "every clip decided",
        lambda: all(clip_status(network, c) in DECIDED for c in clip_ids),
        timeout_s=120,
    )
    for handle in nodes:
        handle.halt()

    config = httpx.get(f"{network.url}/api/v1/validator/config", timeout=5).json()
    statuses = {}
    for clip_id in clip_ids:
        body = httpx.get(f"{network.url}/api/v1/clips/{clip_id}/reports", timeout=5).json()
        statuses[clip_id] = body["status"]
        reports = body["reports"]
        signers = [r["validator"] for r in reports]
        assert len(reports) == 2  # the quorum, and no more
        assert len(set(signers)) == len(signers), "a validator reported a clip twice"
        for report in reports:
            scores = ClipScores.model_validate(report["scores"])
            assert scores.model.model == "shotbank-tiny"
            lease_clip = _clip(network, clip_id)
            message = score_report_message(
                lease_id=report["lease_id"],
                clip_id=clip_id,
                content_cid=lease_clip["cid"],
                annotation_hash=lease_clip["annotation_hash"],
                scores=scores,
                deadline=report["deadline"],
            )
            signer = recover_score_report_signer(
                message,
                bytes.fromhex(report["signature"].removeprefix("0x")),
                chain_id=config["chain_id"],
                verifying_contract=config["validator_registry"],
            )
            assert signer == report["validator"]
    true_clip, mislabelled, black = clip_ids
    assert statuses[true_clip] == "accepted"
    assert statuses[mislabelled] == "rejected"
    assert statuses[black] == "rejected"
    submitted = sum(handle.node.counts.submitted for handle in nodes)
    assert submitted == 2 * len(clip_ids)
    assert all(handle.node.in_flight == 0 for handle in nodes)


def _clip(network: Network, clip_id: str) -> dict[str, Any]:
    response = httpx.get(f"{network.url}/api/v1/clips/{clip_id}", timeout=5)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
