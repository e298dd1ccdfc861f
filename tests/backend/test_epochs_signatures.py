"""Validators co-sign a closed epoch's root: ``POST /validator/epochs/{n}/signatures``.

Through real HTTP with real SIWE sessions; signatures are the SDK's EIP-712 signatures
in the ValidatorRegistry's domain. The stake snapshot is written through its store as the
chain sync would (three validators with 1,000, 2,000 and 3,000 SHOT).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from backend.models.epochs import EpochStatus
from backend.services import epochs
from shotbank.chain.eip712 import EpochRoot, sign_epoch_root
from tests.backend.conftest import SettingsFactory
from tests.backend.epochs_world import (
    SHOT,
    EpochWorld,
    address,
    fake_deployment,
    make_world,
    scores,
)
from tests.backend.live import Caller, LiveServer, ServerFactory

STAKES = (1_000 * SHOT, 2_000 * SHOT, 3_000 * SHOT)


@pytest.fixture
def validators() -> list[LocalAccount]:
    """Three validator keys (staked in ``world``)."""
    return [Account.create() for _ in STAKES]


@pytest.fixture
def world(upload_settings: SettingsFactory, validators: list[LocalAccount]) -> Iterator[EpochWorld]:
    """Epoch 1 closed with a root, epoch 2 closed empty, epoch 3 open; validators staked."""
    built = make_world(upload_settings(ingest_workers=0), fake_deployment())
    built.index_stakes(
        {account.address: stake for account, stake in zip(validators, STAKES, strict=True)}
    )
    built.index_funding(1_000 * SHOT)
    built.decide(address(), [(account.address, scores(0.8)) for account in validators])
    assert epochs.close_epoch(built.engine, settings=built.settings).status == EpochStatus.CLOSED
    assert epochs.close_epoch(built.engine, settings=built.settings).status == EpochStatus.EMPTY
    yield built
    built.engine.dispose()


@pytest.fixture
def server(live: ServerFactory, world: EpochWorld) -> LiveServer:
    """The backend serving the world's database."""
    return live(world.settings)


def _post(caller: Caller, number: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = caller.http.post(f"/api/v1/validator/epochs/{number}/signatures", json=body)
    return response.status_code, response.json()


def _code(answer: tuple[int, dict[str, Any]]) -> tuple[int, str]:
    return answer[0], answer[1]["error"]["code"]


def test_signatures_count_their_stake_until_the_quorum_and_a_repeat_answers_the_same(
    world: EpochWorld,
    server: LiveServer,
    caller_for: Callable[[LiveServer, LocalAccount], Caller],
    validators: list[LocalAccount],
) -> None:
    small, _middle, large = validators
    first = world.signature(small, 1).model_dump()

    status, receipt = _post(caller_for(server, small), 1, first)
    assert status == 201
    assert receipt == {
        "epoch": 1,
        "signed_stake": str(1_000 * SHOT),
        "total_stake": str(6_000 * SHOT),
        "quorum_reached": False,
    }
    # A byte-identical repeat (a node retrying after a lost answer): 200, same answer.
    assert _post(caller_for(server, small), 1, first) == (200, receipt)

    status, receipt = _post(caller_for(server, large), 1, world.signature(large, 1).model_dump())
    # 4,000 of 6,000 SHOT is exactly 2/3: the distributor's quorum.
    assert (status, receipt["signed_stake"], receipt["quorum_reached"]) == (
        201,
        str(4_000 * SHOT),
        True,
    )
    summary = server_get(server, "/api/v1/epochs/1")
    assert summary["signatures"]["signers"] == sorted(
        (small.address, large.address), key=lambda a: int(a, 16)
    )
    assert summary["status"] == "closed"


def test_signatures_that_are_not_the_callers_over_the_published_root_are_refused(
    world: EpochWorld,
    server: LiveServer,
    caller_for: Callable[[LiveServer, LocalAccount], Caller],
    validators: list[LocalAccount],
) -> None:
    small, middle, _large = validators
    caller = caller_for(server, middle)
    epoch = world.epoch(1)
    assert epoch.root is not None
    assert epoch.cumulative_total is not None
    own = world.signature(middle, 1).model_dump()

    # Another validator's signature sent by this one (forged or misrouted).
    assert _code(_post(caller, 1, world.signature(small, 1).model_dump())) == (
        422,
        "invalid_signature",
    )
    # A root or total the epoch did not publish: the node must not have signed it.
    assert _code(_post(caller, 1, own | {"root": "0x" + "ab" * 32})) == (
        409,
        "epoch_root_mismatch",
    )
    assert _code(_post(caller, 1, own | {"cumulative_total": "1"})) == (
        409,
        "epoch_root_mismatch",
    )
    # Signed for another epoch number (or another deployment): recovers to someone else.
    other_epoch = sign_epoch_root(
        middle,
        EpochRoot(epoch=7, root=epoch.root, cumulative_total=epoch.cumulative_total),
        chain_id=31337,
        verifying_contract=world.registry,
    )
    assert _code(_post(caller, 1, own | {"signature": "0x" + other_epoch.signature.hex()})) == (
        422,
        "invalid_signature",
    )
    other_registry = sign_epoch_root(
        middle,
        EpochRoot(epoch=1, root=epoch.root, cumulative_total=epoch.cumulative_total),
        chain_id=31337,
        verifying_contract=address(),
    )
    assert _code(_post(caller, 1, own | {"signature": "0x" + other_registry.signature.hex()})) == (
        422,
        "invalid_signature",
    )
    # Malformed: the contract would refuse these too.
    assert _code(_post(caller, 1, own | {"signature": "0x" + "00" * 65})) == (
        422,
        "invalid_signature",
    )
    assert _code(_post(caller, 1, own | {"signature": "0x1234"}))[0] == 422
    assert _code(_post(caller, 1, own | {"extra": 1})) == (422, "validation_error")

    # Empty and open epochs take no signatures; an unknown one is not found.
    assert _code(_post(caller, 2, own)) == (409, "epoch_not_signable")
    assert _code(_post(caller, 3, own)) == (409, "epoch_not_signable")
    assert _code(_post(caller, 99, own)) == (404, "epoch_not_found")

    # A key that signs correctly but holds no stake.
    outsider = Account.create()
    assert _code(
        _post(caller_for(server, outsider), 1, world.signature(outsider, 1).model_dump())
    ) == (403, "validator_not_staked")
    # No session at all.
    anonymous = server_post(server, "/api/v1/validator/epochs/1/signatures", own)
    assert anonymous[0] == 401
    # None of that stored anything.
    assert server_get(server, "/api/v1/epochs/1")["signatures"]["signers"] == []
    assert _post(caller, 1, own)[0] == 201


def server_get(server: LiveServer, path: str) -> dict[str, Any]:
    """``GET path`` without a session; the JSON answer (200 required)."""
    response = httpx.get(server.url + path, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def server_post(server: LiveServer, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """``POST path`` without a session."""
    response = httpx.post(server.url + path, json=body, timeout=10)
    return response.status_code, response.json()
