"""``shotbank validator run`` as a process: refusals, SIGTERM, and a node killed mid-job.

Each node here is the installed console script in a subprocess, configured by
``SHOTBANK_VALIDATOR_*`` variables and keyed by ``SHOTBANK_PRIVATE_KEY``, against the
live backend of ``conftest.network``.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from scoring.node.node import ValidatorNode
from shotbank.cli.validator import EXIT_NOT_STAKED
from tests.backend.live import sign_in
from tests.scoring.node.conftest import (
    Contribute,
    Network,
    node_environment,
    node_settings,
    wait_for,
)

pytestmark = pytest.mark.slow

SHOTBANK = Path(sys.executable).with_name("shotbank")
DECIDED = {"accepted", "rejected", "failed"}


@pytest.fixture
def lease_ttl_s() -> int:
    """Short leases, so a killed node's leases expire within the test."""
    return 10


@dataclass
class NodeProcess:
    """A ``shotbank validator run`` subprocess and its output file."""

    process: subprocess.Popen[bytes]
    output: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait(self, timeout_s: float = 60) -> int:
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"the node did not exit in {timeout_s} s:\n{self.text()}")


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    """Start ``shotbank validator run`` processes (killed at the end of the test)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(network: Network, account: LocalAccount, name: str, **overrides: Any) -> NodeProcess:
        settings = node_settings(network, tmp_path / name, **overrides)
        output = tmp_path / f"{name}.log"
        with output.open("wb") as sink:
            process = subprocess.Popen(
                [str(SHOTBANK), "validator", "run"],
                env=node_environment(settings, account),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return NodeProcess(process, output)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


class ValidatorSession:
    """The validator's own view of its leases (a second session of the same wallet)."""

    def __init__(self, network: Network, account: LocalAccount) -> None:
        token = sign_in(network.url, account)
        self.http = httpx.Client(
            base_url=network.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def active_leases(self) -> list[dict[str, Any]]:
        response = self.http.get("/api/v1/validator/leases")
        assert response.status_code == 200, response.text
        leases: list[dict[str, Any]] = response.json()["leases"]
        return leases

    def reports(self) -> list[dict[str, Any]]:
        response = self.http.get("/api/v1/validator/reports", params={"limit": 100})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@pytest.fixture
def session_of(network: Network) -> Iterator[Callable[[LocalAccount], ValidatorSession]]:
    """Open a validator's own session (closed at the end of the test)."""
    opened: list[ValidatorSession] = []

    def open_session(account: LocalAccount) -> ValidatorSession:
        session = ValidatorSession(network, account)
        opened.append(session)
        return session

    yield open_session
    for session in opened:
        session.http.close()


def _final_counts(text: str) -> dict[str, int]:
    match = re.search(r"stopped: (.*)", text)
    assert match, text
    return {
        word: int(number)
        for number, word in (
            (m.group(2), m.group(1)) for m in re.finditer(r"([a-z]+) (\d+)", match.group(1))
        )
    }


def test_sigterm_returns_unfinished_leases_and_exits_0(
    network: Network,
    clip_files: list[tuple[Path, dict[str, Any]]],
    contribute: Contribute,
    spawn: Callable[..., NodeProcess],
    session_of: Callable[[LocalAccount], ValidatorSession],
) -> None:
    contribute(clip_files)
    validator = network.validators[0]
    own = session_of(validator)
    # A decode worker process takes seconds to start: the leases are still being worked
    # on when the signal arrives.
    node = spawn(network, validator, "sigterm", workers=1, max_leases=3, shutdown_grace_s=0)
    wait_for("the node's leases", lambda: len(own.active_leases()) > 0, timeout_s=90)
    node.process.send_signal(signal.SIGTERM)
    assert node.wait() == 0, node.text()
    text = node.text()
    counts = _final_counts(text)
    assert counts["returned"] >= 1, text
    assert counts["returned"] + counts["submitted"] + counts["refused"] == counts["leased"]
    assert own.active_leases() == []
    assert "received SIGTERM" in text


def test_a_killed_node_loses_only_its_leases(
    network: Network,
    clip_files: list[tuple[Path, dict[str, Any]]],
    contribute: Contribute,
    spawn: Callable[..., NodeProcess],
    session_of: Callable[[LocalAccount], ValidatorSession],
    tmp_path: Path,
) -> None:
    contributor, clip_ids = contribute(clip_files)
    doomed, *others = network.validators
    own = session_of(doomed)
    node = spawn(network, doomed, "killed", workers=1, max_leases=3)
    wait_for("the node's leases", lambda: len(own.active_leases()) > 0, timeout_s=90)
    node.process.kill()
    node.wait()
    held = {lease["clip_id"] for lease in own.active_leases()}
    assert held, "the killed node's leases should outlive it until they expire"

    # The other two validators decide everything, the killed node's clips included once
    # its leases have expired and been issued again.
    stop = threading.Event()
    nodes = []
    for n, account in enumerate(others):
        worker = ValidatorNode(node_settings(network, tmp_path / f"other-{n}"), account)
        worker.start()
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        thread.start()
        nodes.append((worker, thread))
    try:
        wait_for(
            "every clip decided",
            lambda: all(contributor.status(c) in DECIDED for c in clip_ids),
            timeout_s=120,
        )
    finally:
        stop.set()
        for _, thread in nodes:
            thread.join(timeout=60)
    assert own.active_leases() == []
    assert own.reports() == []  # it never got to report; nothing else was lost
    for clip_id in held:
        reporters = {r["validator"] for r in contributor.reports(clip_id)["reports"]}
        assert reporters == {account.address for account in others}


def test_an_unstaked_key_refuses_to_start(
    network: Network,
    spawn: Callable[..., NodeProcess],
    session_of: Callable[[LocalAccount], ValidatorSession],
    dev_keys: list[LocalAccount],
) -> None:
    stranger = dev_keys[8]
    node = spawn(network, stranger, "unstaked")
    assert node.wait() == EXIT_NOT_STAKED, node.text()
    text = node.text()
    assert f"{stranger.address} is not an active validator" in text
    assert "stake at least 100 SHOT" in text
    own = session_of(stranger)
    assert own.http.post("/api/v1/validator/leases", json={}).status_code == 403
