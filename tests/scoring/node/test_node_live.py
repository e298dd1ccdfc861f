"""Validator nodes against a live backend: real chain, real uploads, real scoring, real reports.

The backend is uvicorn serving the real app (ingest worker, chain sync, consensus) on a
fresh anvil with the contracts deployed and three validators staked; a contributor
uploads real clips through tus and ``POST /clips``; the nodes run the in-project model,
here on threads of the test process (``test_node_process.py`` runs them as processes).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from prometheus_client.parser import text_string_to_metric_families

from scoring.clipgen import scene_frames, tone, write_clip
from scoring.node.config import NodeSettings
from scoring.node.engine import Engine
from scoring.node.node import ValidatorNode
from scoring.report import ClipScores
from scoring.signing import score_report_message
from scoring.synthetic import Scene
from shotbank.annotation.vocabulary import LightingSetup
from shotbank.chain.eip712 import recover_score_report_signer
from tests.scoring.node.conftest import Contribute, Network, node_settings, wait_for

pytestmark = pytest.mark.slow

DECIDED = {"accepted", "rejected", "failed"}


@dataclass
class RunningNode:
    """A started node working on a thread."""

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
def run_node() -> Iterator[Callable[[NodeSettings, LocalAccount], RunningNode]]:
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


def _indexed(node: ValidatorNode, clip_id: str) -> bool:
    engine = node.engine
    assert isinstance(engine, Engine)
    return clip_id in engine.index


def _metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_three_nodes_decide_every_clip_once_each_with_verifiable_reports_and_catch_a_copy(
    network: Network,
    clip_files: list[tuple[Path, dict[str, Any]]],
    contribute: Contribute,
    run_node: Callable[[NodeSettings, LocalAccount], RunningNode],
    tmp_path: Path,
    free_tcp_port: int,
) -> None:
    contributor, clip_ids = contribute(clip_files)
    # One node decodes in a worker process and serves metrics; the others use a thread.
    nodes = [
        run_node(
            node_settings(
                network,
                tmp_path / f"node-{n}",
                workers=int(n == 0),
                metrics_port=free_tcp_port if n == 0 else 0,
                embeddings_sync_s=0.5,
            ),
            validator,
        )
        for n, validator in enumerate(network.validators)
    ]
    wait_for(
        "every clip decided",
        lambda: all(contributor.status(c) in DECIDED for c in clip_ids),
        timeout_s=120,
    )
    config = network.config()
    statuses = {}
    for clip_id in clip_ids:
        body = contributor.reports(clip_id)
        statuses[clip_id] = body["status"]
        reports = body["reports"]
        signers = [r["validator"] for r in reports]
        assert len(reports) == 2  # the quorum, and no more
        assert len(set(signers)) == len(signers), "a validator reported a clip twice"
        clip = contributor.clip(clip_id)
        for report in reports:
            scores = ClipScores.model_validate(report["scores"])
            assert (scores.model.model, scores.model.tag) == ("shotbank-tiny", "synthetic-v1")
            message = score_report_message(
                lease_id=report["lease_id"],
                clip_id=clip_id,
                content_cid=clip["cid"],
                annotation_hash=clip["annotation_hash"],
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
    assert statuses == {true_clip: "accepted", mislabelled: "rejected", black: "rejected"}

    # Every node's session is revoked; a re-encoded copy of the accepted clip arrives.
    # The nodes sign in again, and their duplicate index (synced from the backend's
    # accepted embeddings) catches the copy.
    for handle in nodes:
        token = handle.node.client.token
        logout = httpx.post(
            f"{network.url}/api/v1/auth/logout",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert logout.status_code in (200, 204), logout.text
    wait_for(
        "the accepted clip in every node's duplicate index",
        lambda: all(_indexed(handle.node, true_clip) for handle in nodes),
    )
    copy = write_clip(
        tmp_path / "copy.mp4",
        scene_frames(Scene("red", "circle", LightingSetup.NATURAL), seconds=2.5),
        audio=tone(300.0, seconds=2.5),
        crf=28,
        preset="medium",
        fps=30,
    )
    copier, (copy_id,) = contribute([(copy, clip_files[0][1])])
    wait_for("the copy decided", lambda: copier.status(copy_id) in DECIDED, timeout_s=120)
    copy_reports = copier.reports(copy_id)
    assert copy_reports["status"] == "rejected"
    assert "junk.duplicate" in {r["code"] for r in copy_reports["reasons"]}
    for report in copy_reports["reports"]:
        flags = ClipScores.model_validate(report["scores"]).flags
        # (crf 28 also smooths the sensor noise away, so "frozen" may fire as well)
        assert ("duplicate", true_clip) in [(f.flag, f.duplicate_of) for f in flags]

    first = nodes[0].node
    wait_for("the first node's last report", lambda: first.in_flight == 0)
    samples = _metrics(free_tcp_port)
    for handle in nodes:
        handle.halt()
    assert sum(handle.node.counts.submitted for handle in nodes) == 2 * (len(clip_ids) + 1)
    assert all(handle.node.counts.refused == 0 for handle in nodes)

    # The first node's metrics tell the same story as its counts.
    counts = first.counts
    assert samples[("shotbank_validator_leases_total", (("event", "leased"),))] == counts.leased
    submitted = sum(
        value
        for (name, _), value in samples.items()
        if name == "shotbank_validator_reports_submitted_total"
    )
    assert submitted == counts.submitted > 0
    assert samples[("shotbank_validator_fetch_bytes_total", ())] > 0
    assert samples[("shotbank_validator_score_seconds_count", ())] == counts.scored
    assert samples[("shotbank_validator_stake_wei", ())] == 100 * 10**18
    assert samples[("shotbank_validator_in_flight", ())] == 0
