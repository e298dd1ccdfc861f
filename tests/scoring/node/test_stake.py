"""The node's own stake, read from the ValidatorRegistry on a real chain."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from scoring.node.errors import NotStakedError
from scoring.node.stake import StakeStatus, read_stake, require_stake
from shotbank.chain.errors import ChainIdMismatchError
from tests.scoring.node.conftest import MIN_STAKE, StakedChain


def _read(chain: StakedChain, address: str, *, chain_id: int = 31337) -> StakeStatus:
    return read_stake(
        chain.url,
        chain_id=chain_id,
        registry=chain.deployment.address("ValidatorRegistry"),
        address=address,
    )


def test_a_staked_key_passes_and_its_stake_is_read(
    staked_chain: StakedChain, dev_keys: list[LocalAccount]
) -> None:
    validator = dev_keys[4]
    staked_chain.stake(validator, 2 * MIN_STAKE)
    status = require_stake(_read(staked_chain, validator.address))
    assert status.active
    assert status.active_stake_wei == 2 * MIN_STAKE
    assert status.min_stake_wei == MIN_STAKE


def test_an_unstaked_key_is_refused_with_what_to_do(staked_chain: StakedChain) -> None:
    stranger = Account.create()
    status = _read(staked_chain, stranger.address)
    with pytest.raises(NotStakedError) as caught:
        require_stake(status)
    message = str(caught.value)
    assert stranger.address in message
    assert "stake at least 100 SHOT" in message
    assert staked_chain.deployment.address("ValidatorRegistry") in message


def test_stake_that_is_unbonding_no_longer_counts(
    staked_chain: StakedChain, dev_keys: list[LocalAccount]
) -> None:
    validator = dev_keys[5]
    staked_chain.stake(validator)
    staked_chain.request_unstake(validator, MIN_STAKE)
    status = _read(staked_chain, validator.address)
    with pytest.raises(NotStakedError, match="100 SHOT unbonding"):
        require_stake(status)


def test_an_rpc_of_another_chain_is_refused(staked_chain: StakedChain) -> None:
    with pytest.raises(ChainIdMismatchError):
        _read(staked_chain, Account.create().address, chain_id=1)
