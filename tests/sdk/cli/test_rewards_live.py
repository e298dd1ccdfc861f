"""``shotbank rewards`` against the real backend and a real chain, from close to claim.

The backend (uvicorn serving the real app: chain sync, root submitter) runs on a fresh
anvil with the contracts deployed, three validators staked and the pool funded
(``tests.backend.epochs_world``). Clips are decided by the real consensus, the epoch is
closed by the backend, two validators holding 2/3 of the stake co-sign its root over the
HTTP API, the backend submits it, the chain's clock passes the challenge window, and the
contributor claims with the CLI: the tokens that arrive are exactly the epoch's
allocation, recomputed here from the published inputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from click.testing import CliRunner, Result
from eth_account.signers.local import LocalAccount
from web3 import Web3

from backend.models.epochs import EpochStatus
from backend.services import epochs as backend_epochs
from shotbank.chain.devnode import AnvilNode
from shotbank.cli import main
from shotbank.cli.rewards import format_shot
from shotbank.client import ShotbankClient
from shotbank.rewards import allocate

# The backend suite's fixtures: settings on a tmp var dir and live uvicorn servers.
from tests.backend.conftest import (
    SettingsFactory,
    caller_for,
    closed_port,
    live,
    make_settings,
    upload_settings,
)
from tests.backend.epochs_world import CHALLENGE_WINDOW_S, ChainWorld, make_chain_world, scores
from tests.backend.live import Caller, LiveServer, ServerFactory
from tests.scoring.node.conftest import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.chain]

__all__ = ["caller_for", "closed_port", "live", "make_settings", "upload_settings"]


@pytest.fixture
def world(
    upload_settings: SettingsFactory,
    anvil: AnvilNode,
    anvil_w3: Web3,
    dev_keys: list[LocalAccount],
) -> Iterator[ChainWorld]:
    """Epoch 1 closed with a root over clips of ``dev_keys[1]`` (two) and ``dev_keys[2]``."""
    built = make_chain_world(upload_settings, anvil, anvil_w3, dev_keys, ingest_workers=0)
    v = [validator.address for validator in built.validators]
    first, second = dev_keys[1].address, dev_keys[2].address
    built.decide(first, [(v[0], scores(0.9)), (v[1], scores(0.8)), (v[2], scores(0.85))])
    built.decide(first, [(v[0], scores(0.6)), (v[1], scores(0.7)), (v[2], scores(0.3))])
    built.decide(second, [(v[0], scores(0.95)), (v[1], scores(0.9)), (v[2], scores(0.9))])
    built.decide(second, [(v[0], scores(0.1)), (v[1], scores(0.2)), (v[2], scores(0.1))])
    closed = backend_epochs.close_epoch(built.engine, settings=built.settings)
    assert closed.status == EpochStatus.CLOSED
    yield built
    built.engine.dispose()


def rewards(*args: str, key: LocalAccount | None = None) -> Result:
    env = {"SHOTBANK_PRIVATE_KEY": "0x" + bytes(key.key).hex()} if key is not None else {}
    return CliRunner().invoke(main, ["rewards", *args], env=env, catch_exceptions=False)


def claimable(server: LiveServer, address: str) -> int:
    with ShotbankClient(server.url) as client:
        return client.rewards(address).claimable


def test_a_contributor_claims_exactly_the_allocation_once_the_root_is_claimable(
    world: ChainWorld,
    live: ServerFactory,
    caller_for: Callable[[LiveServer, LocalAccount], Caller],
    dev_keys: list[LocalAccount],
) -> None:
    server = live(world.settings)
    contributor = dev_keys[1]
    # Anyone recomputes the allocation from the published inputs.
    with ShotbankClient(server.url) as client:
        published = client.epoch_inputs(1)
    expected = allocate(published.inputs).cumulative[contributor.address]
    assert expected == published.result.cumulative[contributor.address] > 0

    # Nothing is claimable before the root is on chain and past its window.
    waiting = rewards("claim", "--api", server.url, "--rpc-url", world.node.url, key=contributor)
    assert waiting.exit_code == 0, waiting.output
    assert "nothing to claim" in waiting.output
    assert f"{format_shot(expected)} pending" in waiting.output

    small, _middle, large = world.validators  # 1,000 + 3,000 of 6,000 SHOT: 2/3
    for validator in (small, large):
        answer = caller_for(server, validator).http.post(
            "/api/v1/validator/epochs/1/signatures",
            json=world.signature(validator, 1).model_dump(),
        )
        assert answer.status_code == 201, answer.text
    wait_for("the root on chain", lambda: len(world.root_submissions()) == 1, timeout_s=60)
    world.pass_time(CHALLENGE_WINDOW_S + 1)
    wait_for("the claim", lambda: claimable(server, contributor.address) > 0, timeout_s=60)

    shown = rewards("show", contributor.address, "--api", server.url, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["claimable"] == str(expected)

    before = world.token.balance_of(contributor.address)
    paid = rewards(
        "claim", "--api", server.url, "--rpc-url", world.node.url, "--json", key=contributor
    )
    assert paid.exit_code == 0, paid.output
    receipt = json.loads(paid.output)
    assert receipt["amount"] == str(expected)
    assert world.token.balance_of(contributor.address) == before + expected
    assert receipt["balance"] == str(before + expected)

    # Once the backend indexed the payment it offers nothing more; the CLI says so.
    wait_for("the claim indexed", lambda: claimable(server, contributor.address) == 0)
    again = rewards("claim", "--api", server.url, "--rpc-url", world.node.url, key=contributor)
    assert again.exit_code == 0, again.output
    assert f"nothing to claim for {contributor.address}" in again.output
    assert f"claimed {format_shot(expected)}" in again.output
    assert world.token.balance_of(contributor.address) == before + expected


def test_show_lists_the_epoch_a_validator_earned_in(world: ChainWorld, live: ServerFactory) -> None:
    server = live(world.settings)
    validator = world.validators[0].address
    result = rewards("show", validator, "--api", server.url)
    assert result.exit_code == 0, result.output
    summary = httpx.get(f"{server.url}/api/v1/epochs/1", timeout=10).json()
    with ShotbankClient(server.url) as client:
        earned = client.epoch_inputs(1).result.cumulative[validator]
    assert f"  earned     {format_shot(earned)}" in result.output
    assert any(line.split()[:2] == ["1", summary["status"]] for line in result.output.splitlines())
