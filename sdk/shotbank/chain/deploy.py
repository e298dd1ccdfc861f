"""Deploy and wire Shotbank's four contracts from the shipped artifacts.

One code path for py-evm unit tests, anvil integration tests and ``make up``. Order:

1. ``ShotToken(treasury, genesisSupply, emissionRatePerSecond, owner=deployer)``
2. ``ValidatorRegistry(token, minStake, unbondingDelay, owner=deployer)``
3. ``RewardDistributor(token, registry, admin, guardian, challengeWindow, maxSnapshotAge)``
4. ``DatasetMarket(token, distributor, treasury, validatorPool, admin, bps...)``
5. ``setRewardDistributor(distributor)`` on ShotToken and on ValidatorRegistry
6. ``DatasetMarket.grantRole(LISTER_ROLE, lister)`` when the deployer is the market's admin

The token and registry stay owned by the deployer (their only owner action is the
one-time wiring above); hand them over with ``transfer_ownership`` if needed.
"""

from __future__ import annotations

from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from pydantic import BaseModel, ConfigDict, Field, model_validator
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.types import TxParams, Wei

from shotbank.chain.abi import describe_revert, load_artifact
from shotbank.chain.contracts import (
    DatasetMarket,
    RewardDistributor,
    ShotToken,
    ValidatorRegistry,
    _sign_send_wait,
    send_call,
)
from shotbank.chain.deployments import Deployment
from shotbank.chain.errors import ChainConfigError, TransactionRevertedError

__all__ = ["DeployParams", "deploy_all", "deploy_contract"]

_ETHER = 10**18


class DeployParams(BaseModel):
    """Constructor parameters; the defaults suit a local dev chain."""

    model_config = ConfigDict(frozen=True)

    genesis_supply: int = Field(default=100_000_000 * _ETHER, ge=0)
    emission_rate_per_second: int = Field(default=1 * _ETHER, ge=0)
    min_stake: int = Field(default=1_000 * _ETHER, gt=0)
    unbonding_delay_s: int = Field(default=7 * 24 * 3600, gt=0, le=365 * 24 * 3600)
    challenge_window_s: int = Field(default=3600, ge=60, le=30 * 24 * 3600)
    max_snapshot_age_blocks: int = Field(default=1000, gt=0, le=50_000)
    contributor_bps: int = Field(default=7_000, ge=0, le=10_000)
    validator_bps: int = Field(default=2_000, ge=0, le=10_000)
    treasury_bps: int = Field(default=1_000, ge=0, le=10_000)
    validator_pool: str | None = None
    """Receiver of the validators' share; defaults to the treasury."""
    admin: str | None = None
    """Admin of RewardDistributor and DatasetMarket; defaults to the deployer."""
    lister: str | None = None
    """Granted the market's LISTER_ROLE; defaults to the admin."""

    @model_validator(mode="after")
    def _split_sums(self) -> DeployParams:
        if self.contributor_bps + self.validator_bps + self.treasury_bps != 10_000:
            raise ValueError("revenue split must sum to 10,000 bps")
        return self


def deploy_contract(w3: Web3, deployer: LocalAccount, name: str, *args: Any) -> tuple[str, int]:
    """Deploy the shipped artifact ``name`` with constructor ``args``.

    Returns ``(checksum address, block number)``. Raises
    :class:`TransactionRevertedError` with the decoded error if the constructor reverts.
    """
    artifact = load_artifact(name)
    if artifact.bytecode in ("0x", ""):
        raise ChainConfigError(f"artifact {name!r} has no bytecode (an interface?)")
    constructor = next((e for e in artifact.abi if e.get("type") == "constructor"), None)
    types = [str(i["type"]) for i in constructor.get("inputs", [])] if constructor else []
    if len(types) != len(args):
        raise ChainConfigError(f"{name} takes {len(types)} constructor arguments, got {len(args)}")
    data = HexBytes(artifact.bytecode) + abi_encode(types, list(args))
    params: TxParams = {"from": deployer.address, "data": data, "value": Wei(0)}
    try:
        gas = int(w3.eth.estimate_gas(params))
    except ContractLogicError as exc:
        reason = describe_revert(exc.data if isinstance(exc.data, str) else None)
        raise TransactionRevertedError(f"deploying {name} would revert: {reason}") from exc
    receipt = _sign_send_wait(w3, deployer, {**params, "gas": gas * 6 // 5}, timeout_s=120)
    address = receipt.get("contractAddress")
    if not address:
        raise TransactionRevertedError(f"deploying {name} produced no contract")
    return str(to_checksum_address(address)), int(receipt["blockNumber"])


def deploy_all(
    w3: Web3,
    deployer: LocalAccount,
    *,
    treasury: str,
    guardian: str,
    params: DeployParams | None = None,
) -> Deployment:
    """Deploy and wire ShotToken, ValidatorRegistry, RewardDistributor and DatasetMarket.

    Returns the :class:`Deployment` (chain id, first block, addresses); saving it is the
    caller's choice (:func:`~shotbank.chain.deployments.save_deployment`).
    """
    p = params or DeployParams()
    treasury = to_checksum_address(treasury)
    guardian = to_checksum_address(guardian)
    admin = to_checksum_address(p.admin) if p.admin else deployer.address
    lister = to_checksum_address(p.lister) if p.lister else admin
    pool = to_checksum_address(p.validator_pool) if p.validator_pool else treasury

    token_address, start_block = deploy_contract(
        w3,
        deployer,
        "ShotToken",
        treasury,
        p.genesis_supply,
        p.emission_rate_per_second,
        deployer.address,
    )
    registry_address, _ = deploy_contract(
        w3,
        deployer,
        "ValidatorRegistry",
        token_address,
        p.min_stake,
        p.unbonding_delay_s,
        deployer.address,
    )
    distributor_address, _ = deploy_contract(
        w3,
        deployer,
        "RewardDistributor",
        token_address,
        registry_address,
        admin,
        guardian,
        p.challenge_window_s,
        p.max_snapshot_age_blocks,
    )
    market_address, _ = deploy_contract(
        w3,
        deployer,
        "DatasetMarket",
        token_address,
        distributor_address,
        treasury,
        pool,
        admin,
        p.contributor_bps,
        p.validator_bps,
        p.treasury_bps,
    )

    token = ShotToken(w3, token_address)
    registry = ValidatorRegistry(w3, registry_address)
    market = DatasetMarket(w3, market_address)
    send_call(w3, deployer, token.set_reward_distributor(distributor_address))
    send_call(w3, deployer, registry.set_reward_distributor(distributor_address))
    if admin == deployer.address:
        send_call(w3, deployer, market.grant_role(market.lister_role(), lister))

    return Deployment(
        chain_id=int(w3.eth.chain_id),
        start_block=start_block,
        contracts={
            ShotToken.NAME: token_address,
            ValidatorRegistry.NAME: registry_address,
            RewardDistributor.NAME: distributor_address,
            DatasetMarket.NAME: market_address,
        },
    )
