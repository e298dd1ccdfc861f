"""Fixtures of the stake-snapshot tests: contracts on a real anvil, staked validators, and
the backend database (SQLite, and PostgreSQL for the tests that take ``db_kind``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session
from web3 import Web3

from backend.core.config import Settings
from backend.core.db import create_db_engine
from backend.core.migrate import upgrade_to_head
from backend.models.stakes import (
    ChainBlock,
    ChainCheckpoint,
    StakeSource,
    ValidatorStake,
    ValidatorStakeEvent,
)
from backend.services.chainsync import ChainSync
from shotbank.chain.contracts import ShotToken, ValidatorRegistry, send_call
from shotbank.chain.deploy import DeployParams, deploy_all
from shotbank.chain.deployments import Deployment, save_deployment
from shotbank.chain.devnode import AnvilNode
from tests.backend.conftest import SettingsFactory

SHOT = 10**18
MIN_STAKE = 100 * SHOT
UNBONDING_DELAY_S = 600
PARAMS = DeployParams(min_stake=MIN_STAKE, unbonding_delay_s=UNBONDING_DELAY_S)


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    """A raw JSON-RPC call (anvil's test methods); fails the test on an error answer."""
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response
    return response.get("result")


@dataclass
class Chain:
    """Deployed contracts and funded validators on the ``anvil`` fixture's node."""

    w3: Web3
    node: AnvilNode
    deployment: Deployment
    registry: ValidatorRegistry
    token: ShotToken
    validators: list[LocalAccount]

    def stake(self, validator: LocalAccount, amount: int) -> None:
        send_call(self.w3, validator, self.token.approve(self.registry.address, amount))
        send_call(self.w3, validator, self.registry.stake(amount))

    def request_unstake(self, validator: LocalAccount, amount: int) -> None:
        self.settle()
        send_call(self.w3, validator, self.registry.request_unstake(amount))

    def settle(self) -> None:
        """Mine a block before a registry write that follows another one.

        anvil estimates gas on the latest block; a stake checkpoint written in that very
        block is updated in place there (cheap) but pushed anew in the next block, where
        the transaction runs (a fresh storage slot), so the estimate falls short.
        """
        rpc(self.w3, "evm_mine")

    def withdraw(self, validator: LocalAccount) -> None:
        rpc(self.w3, "evm_increaseTime", UNBONDING_DELAY_S + 1)
        rpc(self.w3, "evm_mine")
        send_call(self.w3, validator, self.registry.withdraw())

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            rpc(self.w3, "evm_mine")


@pytest.fixture
def chain(anvil: AnvilNode, anvil_w3: Web3, dev_keys: list[LocalAccount]) -> Chain:
    """All contracts (min stake 100 SHOT) and validators ``dev_keys[4:7]`` with 1,000 SHOT."""
    deployment = deploy_all(
        anvil_w3, dev_keys[0], treasury=dev_keys[1].address, guardian=dev_keys[2].address,
        params=PARAMS,
    )  # fmt: skip
    token = ShotToken.from_deployment(anvil_w3, deployment)
    validators = dev_keys[4:7]
    for validator in validators:
        send_call(anvil_w3, dev_keys[1], token.transfer(validator.address, 1_000 * SHOT))
    return Chain(
        w3=anvil_w3,
        node=anvil,
        deployment=deployment,
        registry=ValidatorRegistry.from_deployment(anvil_w3, deployment),
        token=token,
        validators=validators,
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    """Which database the test runs on."""
    kind: str = request.param
    return kind


@pytest.fixture
def db_overrides(db_kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The settings that select the ``db_kind`` database."""
    if db_kind == "postgresql":
        return {"database_url": request.getfixturevalue("postgres_url")}
    return {}


@pytest.fixture
def engine(make_settings: SettingsFactory, db_overrides: dict[str, Any]) -> Iterator[Engine]:
    """The migrated ``db_kind`` database, without any stake rows.

    The PostgreSQL database lives for the whole test session: the stake tables are
    emptied before and after each test.
    """
    engine = create_db_engine(make_settings(**db_overrides))
    upgrade_to_head(engine)
    _empty_stake_tables(engine)
    yield engine
    _empty_stake_tables(engine)
    engine.dispose()


@pytest.fixture
def chain_settings(
    make_settings: SettingsFactory, chain: Chain, db_overrides: dict[str, Any]
) -> Settings:
    """Settings on the ``chain`` node and its deployment, on the ``engine`` database."""
    settings = make_settings(
        chain_rpc_url=chain.node.url, chain_confirmations=0, chain_poll_s=0.05, **db_overrides
    )
    settings.deployments_path.parent.mkdir(parents=True, exist_ok=True)
    save_deployment(settings.deployments_path, chain.deployment)
    return settings


def _empty_stake_tables(engine: Engine) -> None:
    with Session(engine) as session:
        for table in (
            ValidatorStakeEvent,
            ValidatorStake,
            StakeSource,
            ChainBlock,
            ChainCheckpoint,
        ):
            session.execute(delete(table))
        session.commit()


@pytest.fixture
def sync(engine: Engine, chain_settings: Settings) -> ChainSync:
    """The stake-snapshot job over ``engine``, not started."""
    return ChainSync(engine, chain_settings)


def catch_up(sync: ChainSync, *, max_steps: int = 50) -> None:
    """Step the job until it reports nothing more to do."""
    for _ in range(max_steps):
        if not sync.step():
            return
    pytest.fail("the chain sync did not catch up")
