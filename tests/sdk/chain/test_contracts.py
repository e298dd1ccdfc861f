"""Deployment and the contract wrappers against the real contracts (py-evm and anvil)."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from shotbank.chain.contracts import (
    DatasetMarket,
    RewardDistributor,
    ShotToken,
    ValidatorRegistry,
    send_call,
)
from shotbank.chain.deploy import DeployParams, deploy_all
from shotbank.chain.deployments import Deployment
from shotbank.chain.errors import TransactionRevertedError

from .conftest import TEST_PARAMS

ETHER = 10**18


def test_deploy_all_wires_the_four_contracts_on_pyevm(
    pyevm_w3: Web3, pyevm_keys: list[LocalAccount]
) -> None:
    deployer, treasury, guardian = pyevm_keys[:3]
    deployment = deploy_all(
        pyevm_w3, deployer, treasury=treasury.address, guardian=guardian.address
    )
    assert deployment.chain_id == pyevm_w3.eth.chain_id
    assert set(deployment.contracts) == {
        "ShotToken",
        "ValidatorRegistry",
        "RewardDistributor",
        "DatasetMarket",
    }
    token = ShotToken.from_deployment(pyevm_w3, deployment)
    registry = ValidatorRegistry.from_deployment(pyevm_w3, deployment)
    distributor = RewardDistributor.from_deployment(pyevm_w3, deployment)
    market = DatasetMarket.from_deployment(pyevm_w3, deployment)
    defaults = DeployParams()
    assert token.balance_of(treasury.address) == defaults.genesis_supply
    assert token.reward_distributor() == distributor.address
    assert registry.reward_distributor() == distributor.address
    assert registry.token() == token.address
    assert registry.min_stake() == defaults.min_stake
    assert distributor.registry() == registry.address
    assert distributor.challenge_window() == defaults.challenge_window_s
    assert market.reward_distributor() == distributor.address
    assert market.treasury() == treasury.address
    assert market.validator_pool() == treasury.address
    assert market.revenue_split() == (7_000, 2_000, 1_000)
    assert market.has_role(market.lister_role(), deployer.address)
    assert pyevm_w3.eth.get_code(token.address) != b""
    assert deployment.start_block <= pyevm_w3.eth.block_number


def test_deploy_params_refuse_a_split_that_does_not_sum() -> None:
    with pytest.raises(ValueError, match="10,000"):
        DeployParams(contributor_bps=5_000, validator_bps=2_000, treasury_bps=2_000)


@pytest.mark.chain
def test_dataset_purchase_pays_the_split_and_grants_a_licence(
    anvil_w3: Web3, anvil_deployment: Deployment, dev_keys: list[LocalAccount]
) -> None:
    deployer, treasury, trainer = dev_keys[0], dev_keys[1], dev_keys[5]
    token = ShotToken.from_deployment(anvil_w3, anvil_deployment)
    market = DatasetMarket.from_deployment(anvil_w3, anvil_deployment)
    distributor = RewardDistributor.from_deployment(anvil_w3, anvil_deployment)
    version_id, manifest = "0x" + "01" * 32, "0x" + "02" * 32
    price = 50 * ETHER
    send_call(anvil_w3, deployer, market.list_version(version_id, manifest, price, "ipfs://terms"))
    assert market.version(version_id).price == price
    send_call(anvil_w3, treasury, token.transfer(trainer.address, price))
    send_call(anvil_w3, trainer, token.approve(market.address, price))
    treasury_before = token.balance_of(treasury.address)
    send_call(anvil_w3, trainer, market.purchase(version_id, price))
    contributor, validators, to_treasury = market.split_of(price)
    assert market.has_licence(trainer.address, version_id)
    assert distributor.total_funded() == contributor
    assert token.balance_of(treasury.address) - treasury_before == validators + to_treasury
    with pytest.raises(TransactionRevertedError, match="DatasetMarketAlreadyLicensed"):
        send_call(anvil_w3, trainer, market.purchase(version_id, price))


@pytest.mark.chain
def test_deploy_all_on_anvil_records_the_first_block(
    anvil_w3: Web3, dev_keys: list[LocalAccount]
) -> None:
    anvil_w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    deployment = deploy_all(
        anvil_w3,
        dev_keys[0],
        treasury=dev_keys[1].address,
        guardian=dev_keys[2].address,
        params=TEST_PARAMS,
    )
    assert deployment.chain_id == 31337
    assert deployment.start_block == 2
    token_receipt_block = anvil_w3.eth.get_block(deployment.start_block, full_transactions=True)
    assert any(tx.get("to") is None for tx in token_receipt_block["transactions"])  # type: ignore[union-attr]
