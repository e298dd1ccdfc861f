"""``GET /api/v1/rewards/{address}``: earned, claimed, claimable, pending and the claim.

The view is read from the database alone; the last test takes it to a real chain: the
proof it serves is sent to ``RewardDistributor.claim`` by the contributor, over two
epochs, and the wallet's balance rises by exactly what the view said was claimable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from pydantic import HttpUrl
from web3 import Web3

from backend.core.config import Settings
from backend.main import create_app
from backend.models.epochs import EpochStatus
from backend.services import epochs
from backend.services.submitter import Submitter
from shotbank.chain.contracts import send_call
from shotbank.chain.devnode import AnvilNode
from tests.backend.conftest import SettingsFactory
from tests.backend.epochs_world import (
    CHALLENGE_WINDOW_S,
    SHOT,
    ChainWorld,
    EpochWorld,
    address,
    fake_deployment,
    make_chain_world,
    make_world,
    scores,
)


def _client_settings(settings: Settings, closed_port: int) -> Settings:
    """``settings`` for an app that only serves: no chain, no operator (the test drives
    the chain sync and the submitter itself)."""
    return settings.model_copy(
        update={
            "chain_rpc_url": HttpUrl(f"http://127.0.0.1:{closed_port}"),
            "operator_key": None,
        }
    )


@pytest.fixture
def world(upload_settings: SettingsFactory) -> Iterator[EpochWorld]:
    """A SQLite database with a deployment on paper and funding indexed."""
    built = make_world(upload_settings(ingest_workers=0), fake_deployment())
    built.index_funding(1_000 * SHOT)
    yield built
    built.engine.dispose()


@pytest.fixture
def api(world: EpochWorld, closed_port: int) -> Iterator[TestClient]:
    """The app on ``world``'s database."""
    with TestClient(create_app(_client_settings(world.settings, closed_port))) as client:
        yield client


def _rewards(api: TestClient, account: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/rewards/{account}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_anything_but_a_20_byte_hex_address_is_invalid(api: TestClient) -> None:
    for bad in ("0x123", "abc", "0x" + "a" * 39, "0x" + "a" * 41, "0x" + "g" * 40, "a" * 42):
        response = api.get(f"/api/v1/rewards/{bad}")
        assert (response.status_code, response.json()["error"]["code"]) == (
            422,
            "invalid_address",
        ), bad


def test_an_address_that_never_earned_has_nothing(api: TestClient) -> None:
    assert _rewards(api, address()) | {"address": None} == {
        "address": None,
        "earned": "0",
        "claimed": "0",
        "claimable": "0",
        "pending": "0",
        "claim": None,
        "epochs": [],
    }


def test_earnings_of_a_closed_epoch_are_pending_until_its_root_is_claimable(
    world: EpochWorld, api: TestClient
) -> None:
    alice = address()
    validators = [address() for _ in range(3)]
    world.decide(alice, [(v, scores(0.8)) for v in validators])
    closed = epochs.close_epoch(world.engine, settings=world.settings)
    assert closed.status == EpochStatus.CLOSED

    body = _rewards(api, alice.lower())
    with_case = _rewards(api, alice.upper().replace("0X", "0x"))
    assert body == with_case
    assert body["address"] == alice
    earned = int(body["earned"])
    assert earned > 0
    assert (body["claimed"], body["claimable"], body["pending"], body["claim"]) == (
        "0",
        "0",
        str(earned),
        None,
    )
    assert body["epochs"] == [
        {
            "epoch": 1,
            "amount": str(earned),
            "sales_amount": "0",
            "cumulative": str(earned),
            "status": "closed",
        }
    ]
    # A validator earned by agreeing, too.
    assert int(_rewards(api, validators[0])["earned"]) > 0


@pytest.fixture
def chain_world(
    upload_settings: SettingsFactory, anvil: AnvilNode, anvil_w3: Web3, dev_keys: list[LocalAccount]
) -> Iterator[ChainWorld]:
    """Contracts, stakes and funding on a fresh anvil."""
    built = make_chain_world(upload_settings, anvil, anvil_w3, dev_keys, ingest_workers=0)
    yield built
    built.engine.dispose()


def _claim(world: ChainWorld, account: LocalAccount, claim: dict[str, Any]) -> int:
    """Send the served claim from ``account``; how much its balance rose."""
    before = world.token.balance_of(account.address)
    call = world.distributor_contract.claim(
        account.address, int(claim["cumulative_amount"]), claim["proof"]
    )
    send_call(world.w3, account, call)
    return world.token.balance_of(account.address) - before


def _submit_and_wait(world: ChainWorld, number: int, submitter: Submitter) -> None:
    _small, middle, large = world.validators
    assert world.sign(number, middle, large)
    world.advance(submitter)
    assert world.epoch(number).status == EpochStatus.SUBMITTED
    world.pass_time(CHALLENGE_WINDOW_S + 1)
    world.advance(submitter)
    assert world.epoch(number).status == EpochStatus.CLAIMABLE


def test_the_served_claim_pays_exactly_the_claimable_amount_epoch_after_epoch(
    chain_world: ChainWorld, dev_keys: list[LocalAccount], closed_port: int
) -> None:
    world = chain_world
    contributor = dev_keys[7]
    votes = [(v.address, scores(0.9)) for v in world.validators]
    submitter = Submitter(world.engine, world.settings)
    with TestClient(create_app(_client_settings(world.settings, closed_port))) as api:
        world.decide(contributor.address, votes)
        world.sync()
        first = epochs.close_epoch(world.engine, settings=world.settings)
        _submit_and_wait(world, 1, submitter)

        body = _rewards(api, contributor.address)
        earned_one = int(body["earned"])
        assert body["claimable"] == body["earned"]
        assert body["pending"] == "0"
        assert body["claim"] == {
            "epoch": 1,
            "root": first.root,
            "cumulative_amount": str(earned_one),
            "proof": body["claim"]["proof"],
            "distributor": world.distributor,
            "chain_id": 31337,
        }
        assert _claim(world, contributor, body["claim"]) == earned_one
        world.sync()
        body = _rewards(api, contributor.address)
        assert (body["claimed"], body["claimable"], body["claim"]) == (str(earned_one), "0", None)

        # A second epoch: the contributor earns again; the root is cumulative.
        world.decide(contributor.address, votes)
        world.decide(contributor.address, votes)
        world.sync()
        epochs.close_epoch(world.engine, settings=world.settings)
        body = _rewards(api, contributor.address)
        earned_two = int(body["earned"]) - earned_one
        assert earned_two > 0
        assert (body["claimable"], body["pending"]) == ("0", str(earned_two))
        _submit_and_wait(world, 2, submitter)
        body = _rewards(api, contributor.address)
        assert body["claimable"] == str(earned_two)
        assert body["claim"]["cumulative_amount"] == str(earned_one + earned_two)
        assert [(e["epoch"], e["status"]) for e in body["epochs"]] == [
            (2, "claimable"),
            (1, "superseded"),
        ]
        assert _claim(world, contributor, body["claim"]) == earned_two
        world.sync()
        body = _rewards(api, contributor.address)
        assert (body["claimed"], body["claimable"], body["pending"], body["claim"]) == (
            str(earned_one + earned_two),
            "0",
            "0",
            None,
        )
