"""Fixtures of the chain-layer tests: contracts deployed on real chains."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from shotbank.chain.deploy import DeployParams, deploy_all
from shotbank.chain.deployments import Deployment

#: Short windows so tests can travel past them.
TEST_PARAMS = DeployParams(
    challenge_window_s=60, unbonding_delay_s=600, max_snapshot_age_blocks=100
)


@pytest.fixture
def anvil_deployment(anvil_w3: Web3, dev_keys: list[LocalAccount]) -> Deployment:
    """All four contracts on the fresh anvil: deployer 0, treasury 1, guardian 2."""
    return deploy_all(
        anvil_w3,
        dev_keys[0],
        treasury=dev_keys[1].address,
        guardian=dev_keys[2].address,
        params=TEST_PARAMS,
    )
