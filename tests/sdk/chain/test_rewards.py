"""Python-signed epoch roots and Python-built proofs against the real RewardDistributor."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from shotbank.chain.contracts import (
    RewardDistributor,
    RootStatus,
    ShotToken,
    ValidatorRegistry,
    send_call,
)
from shotbank.chain.deployments import Deployment
from shotbank.chain.eip712 import (
    EpochRoot,
    EpochRootSignature,
    bundle_signatures,
    epoch_root_digest,
    sign_epoch_root,
    type_hash,
)
from shotbank.chain.errors import TransactionRevertedError
from shotbank.chain.merkle import rewards_tree

from .conftest import TEST_PARAMS

ETHER = 10**18
STAKES = (1_000 * ETHER, 2_000 * ETHER, 3_000 * ETHER)


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response
    return response.get("result")


class Setup:
    """Deployed contracts with three staked validators and a funded reward pool."""

    def __init__(self, w3: Web3, deployment: Deployment, keys: list[LocalAccount]) -> None:
        self.w3 = w3
        self.treasury = keys[1]
        self.validators = keys[3:6]
        self.contributors = keys[6:9]
        self.token = ShotToken.from_deployment(w3, deployment)
        self.registry = ValidatorRegistry.from_deployment(w3, deployment)
        self.distributor = RewardDistributor.from_deployment(w3, deployment)
        for validator, stake in zip(self.validators, STAKES, strict=True):
            send_call(w3, self.treasury, self.token.transfer(validator.address, stake))
            send_call(w3, validator, self.token.approve(self.registry.address, stake))
            send_call(w3, validator, self.registry.stake(stake))
        funding = 10_000 * ETHER
        send_call(w3, self.treasury, self.token.approve(self.distributor.address, funding))
        send_call(w3, self.treasury, self.distributor.fund(funding))
        rpc(w3, "evm_mine")
        self.snapshot_block = w3.eth.block_number - 1

    def sign_all(
        self, root: EpochRoot, signers: list[LocalAccount] | None = None, **domain: Any
    ) -> list[EpochRootSignature]:
        options = {"chain_id": 31337, "verifying_contract": self.registry.address, **domain}
        return [sign_epoch_root(v, root, **options) for v in signers or self.validators]

    def pass_challenge_window(self) -> None:
        rpc(self.w3, "evm_increaseTime", TEST_PARAMS.challenge_window_s + 1)
        rpc(self.w3, "evm_mine")


@pytest.fixture
def setup(anvil_w3: Web3, anvil_deployment: Deployment, dev_keys: list[LocalAccount]) -> Setup:
    return Setup(anvil_w3, anvil_deployment, dev_keys)


@pytest.mark.chain
def test_contract_type_hash_and_digest_equal_the_shared_json_definition(setup: Setup) -> None:
    root = EpochRoot(epoch=3, root="0x" + "cd" * 32, cumulative_total=12345)
    assert setup.registry.epoch_root_typehash() == type_hash("EpochRoot")
    assert setup.registry.epoch_root_digest(root) == epoch_root_digest(
        root, chain_id=31337, verifying_contract=setup.registry.address
    )


@pytest.mark.chain
def test_python_signed_root_is_accepted_and_python_proofs_pay_out(setup: Setup) -> None:
    amounts = {
        setup.contributors[0].address: 120 * ETHER,
        setup.contributors[1].address: 7 * ETHER + 3,
        setup.contributors[2].address: 1,
        "0x" + "42" * 20: 55 * ETHER,
    }
    tree = rewards_tree(amounts)
    root = EpochRoot(epoch=1, root=tree.root, cumulative_total=sum(amounts.values()))
    bundle = bundle_signatures(
        root,
        [s.signature for s in reversed(setup.sign_all(root))],
        chain_id=31337,
        verifying_contract=setup.registry.address,
    )
    assert setup.registry.verify_epoch_root_signatures(root, setup.snapshot_block, bundle) == (
        sum(STAKES),
        sum(STAKES),
    )
    submitter = setup.contributors[2]  # anyone may submit
    send_call(
        setup.w3, submitter, setup.distributor.submit_root(root, setup.snapshot_block, bundle)
    )
    assert setup.distributor.root_status(1) is RootStatus.PENDING
    stored = setup.distributor.epoch_root(1)
    assert (stored.root, stored.cumulative_total) == (tree.root, root.cumulative_total)

    setup.pass_challenge_window()
    assert setup.distributor.root_status(1) is RootStatus.CLAIMABLE
    assert setup.distributor.claimable_root() == tree.root

    for contributor in setup.contributors:
        amount = amounts[contributor.address]
        before = setup.token.balance_of(contributor.address)
        proof = tree.get_proof([contributor.address, amount])
        # A third party pays the claim; the tokens still go to the leaf's account.
        send_call(
            setup.w3, setup.treasury, setup.distributor.claim(contributor.address, amount, proof)
        )
        assert setup.token.balance_of(contributor.address) - before == amount
        assert setup.distributor.claimed(contributor.address) == amount

    first = setup.contributors[0]
    proof = tree.get_proof([first.address, amounts[first.address]])
    with pytest.raises(TransactionRevertedError, match="RewardDistributorNothingToClaim"):
        send_call(
            setup.w3, first, setup.distributor.claim(first.address, amounts[first.address], proof)
        )
    with pytest.raises(TransactionRevertedError, match="RewardDistributorInvalidProof"):
        send_call(setup.w3, first, setup.distributor.claim(first.address, 10**30, proof))


@pytest.mark.chain
def test_second_epoch_pays_only_the_cumulative_difference(setup: Setup) -> None:
    account = setup.contributors[0].address
    for epoch, cumulative in ((1, 10 * ETHER), (2, 25 * ETHER)):
        tree = rewards_tree({account: cumulative, "0x" + "42" * 20: 1})
        root = EpochRoot(epoch=epoch, root=tree.root, cumulative_total=cumulative + 1)
        bundle = bundle_signatures(
            root,
            [s.signature for s in setup.sign_all(root)],
            chain_id=31337,
            verifying_contract=setup.registry.address,
        )
        rpc(setup.w3, "evm_mine")
        snapshot = setup.w3.eth.block_number - 1
        send_call(setup.w3, setup.treasury, setup.distributor.submit_root(root, snapshot, bundle))
        setup.pass_challenge_window()
        before = setup.token.balance_of(account)
        proof = tree.get_proof([account, cumulative])
        send_call(setup.w3, setup.treasury, setup.distributor.claim(account, cumulative, proof))
        paid = setup.token.balance_of(account) - before
        assert paid == (10 * ETHER if epoch == 1 else 15 * ETHER)


@pytest.mark.chain
@pytest.mark.parametrize(
    ("domain", "expected_error"),
    [
        (
            {"chain_id": 1},
            "ValidatorRegistryNotValidatorAtSnapshot|ValidatorRegistrySignersNotAscending",
        ),
        (
            {"verifying_contract": "0x" + "11" * 20},
            "ValidatorRegistryNotValidatorAtSnapshot|ValidatorRegistrySignersNotAscending",
        ),
    ],
)
def test_signatures_for_another_domain_are_rejected(
    setup: Setup, domain: dict[str, Any], expected_error: str
) -> None:
    tree = rewards_tree({setup.contributors[0].address: ETHER})
    root = EpochRoot(epoch=1, root=tree.root, cumulative_total=ETHER)
    wrong = setup.sign_all(root, **domain)
    ordered = sorted(wrong, key=lambda s: int(s.signer, 16))
    with pytest.raises(TransactionRevertedError, match=expected_error):
        send_call(
            setup.w3,
            setup.treasury,
            setup.distributor.submit_root(root, setup.snapshot_block, ordered),
        )
    assert setup.distributor.root_status(1) is RootStatus.NONE


@pytest.mark.chain
def test_signers_below_two_thirds_of_stake_do_not_reach_quorum(setup: Setup) -> None:
    tree = rewards_tree({setup.contributors[0].address: ETHER})
    root = EpochRoot(epoch=1, root=tree.root, cumulative_total=ETHER)
    # 1,000 + 2,000 of 6,000 staked is half: not enough.
    signatures = setup.sign_all(root, signers=setup.validators[:2])
    bundle = bundle_signatures(
        root,
        [s.signature for s in signatures],
        chain_id=31337,
        verifying_contract=setup.registry.address,
    )
    with pytest.raises(TransactionRevertedError, match="RewardDistributorQuorumNotReached"):
        send_call(
            setup.w3,
            setup.treasury,
            setup.distributor.submit_root(root, setup.snapshot_block, bundle),
        )


@pytest.mark.chain
def test_unsorted_bundle_is_rejected_by_the_contract(setup: Setup) -> None:
    tree = rewards_tree({setup.contributors[0].address: ETHER})
    root = EpochRoot(epoch=1, root=tree.root, cumulative_total=ETHER)
    bundle = bundle_signatures(
        root,
        [s.signature for s in setup.sign_all(root)],
        chain_id=31337,
        verifying_contract=setup.registry.address,
    )
    with pytest.raises(TransactionRevertedError, match="ValidatorRegistrySignersNotAscending"):
        send_call(
            setup.w3,
            setup.treasury,
            setup.distributor.submit_root(root, setup.snapshot_block, list(reversed(bundle))),
        )
