"""Verifying a closed epoch before co-signing it: real inputs, a real distributor on anvil.

The epochs here are built the way the backend publishes them: ``EpochInputs`` over real
(if made-up) clips and validators, ``shotbank.rewards.allocate`` for the result, and the
``EpochSummary`` JSON of ``GET /epochs/{n}``; the funding is real ``fund`` transactions
on the deployed RewardDistributor, and a previous root is really submitted on chain.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from scoring.node.client import ValidatorClient, ValidatorConfig
from scoring.node.epochs import ChainView, EpochCosigner, verify_epoch
from scoring.node.errors import EpochRefusedError
from scoring.node.metrics import NodeMetrics
from scoring.node.signing_record import SigningRecord
from shotbank.chain.contracts import RewardDistributor, send_call
from shotbank.chain.eip712 import EpochRoot, bundle_signatures, sign_epoch_root
from shotbank.client import RetryPolicy
from shotbank.client.models import EpochSummary, PublishedEpochInputs
from shotbank.rewards import EpochInputs, EpochResult, allocate, inputs_hash
from tests.scoring.node.conftest import SHOT, StakedChain

CHAIN = 31337


def summary_of(inputs: EpochInputs, result: EpochResult, **changes: Any) -> EpochSummary:
    """The ``GET /epochs/{n}`` body the backend publishes for ``inputs``, as JSON."""
    accepted = sum(1 for clip in inputs.clips if clip.accepted)
    body: dict[str, Any] = {
        "epoch": inputs.epoch,
        "status": "closed",
        "opened_at": "2026-11-21T10:00:00Z",
        "closed_at": "2026-11-22T10:00:00Z",
        "chain_id": inputs.chain_id,
        "distributor": inputs.distributor,
        "rule": inputs.rule.model_dump(mode="json"),
        "funding_block": inputs.funding_block,
        "funded_total": str(inputs.funded_total),
        "previous_epoch": inputs.previous_epoch,
        "previous_cumulative_total": str(inputs.previous_cumulative_total),
        "pool": str(result.pool),
        "contributor_pool": str(result.contributor_pool),
        "validator_pool": str(result.validator_pool),
        "allocated": str(result.allocated),
        "carry": str(result.carry),
        "root": result.root,
        "cumulative_total": str(result.cumulative_total),
        "inputs_sha256": inputs_hash(inputs),
        "clips": {"accepted": accepted, "rejected": len(inputs.clips) - accepted},
        "accounts": len(result.cumulative),
        "signatures": {"signed_stake": "0", "total_stake": "0", "signers": []},
        "submission": {
            "snapshot_block": None,
            "tx_hash": None,
            "block_number": None,
            "claimable_at": None,
        },
    }
    body.update(changes)
    return EpochSummary.model_validate_json(json.dumps(body))


@dataclass
class Epoch:
    """One published epoch: inputs, the backend's result, its summary."""

    inputs: EpochInputs
    result: EpochResult
    summary: EpochSummary

    @property
    def published(self) -> PublishedEpochInputs:
        return PublishedEpochInputs(inputs=self.inputs, result=self.result)


@dataclass
class Ledger:
    """The deployed contracts, a funded distributor and made-up contributors."""

    chain: StakedChain
    distributor: RewardDistributor
    view: ChainView
    contributors: list[str]
    validators: list[str]

    def fund(self, amount: int) -> int:
        """Fund the distributor with ``amount``; the block it landed in."""
        treasury = self.chain.treasury
        send_call(
            self.chain.w3, treasury, self.chain.token.approve(self.distributor.address, amount)
        )
        receipt = send_call(self.chain.w3, treasury, self.distributor.fund(amount))
        return int(receipt["blockNumber"])

    def epoch(
        self,
        number: int,
        block: int,
        *,
        previous: Epoch | None = None,
        funded_total: int | None = None,
        previous_cumulative: dict[str, int] | None = None,
        **summary_changes: Any,
    ) -> Epoch:
        """An epoch with three accepted clips, one rejected, two validators."""
        clips = [
            {"clip_id": secrets.token_hex(16), "contributor": c, "accepted": True, "quality_bps": q}
            for c, q in zip(self.contributors, (9000, 6000, 7500), strict=True)
        ]
        clips.append(
            {
                "clip_id": secrets.token_hex(16),
                "contributor": self.contributors[0],
                "accepted": False,
                "quality_bps": 1000,
            }
        )
        if previous_cumulative is None:
            previous_cumulative = dict(previous.result.cumulative) if previous else {}
        inputs = EpochInputs.model_validate(
            {
                "chain_id": CHAIN,
                "distributor": self.distributor.address,
                "epoch": number,
                "rule": {"version": "shotbank-rewards/1"},
                "funding_block": block,
                "funded_total": (
                    funded_total
                    if funded_total is not None
                    else self.distributor.contract.functions.totalFunded().call(
                        block_identifier=block
                    )
                ),
                "previous_epoch": previous.inputs.epoch if previous else None,
                "previous_cumulative": previous_cumulative,
                "clips": clips,
                "validators": [
                    {"address": self.validators[0], "reports": 4, "agreed_reports": 4},
                    {"address": self.validators[1], "reports": 4, "agreed_reports": 3},
                ],
            }
        )
        result = allocate(inputs)
        return Epoch(inputs, result, summary_of(inputs, result, **summary_changes))


@pytest.fixture
def ledger(staked_chain: StakedChain) -> Ledger:
    distributor = RewardDistributor.from_deployment(staked_chain.w3, staked_chain.deployment)
    return Ledger(
        chain=staked_chain,
        distributor=distributor,
        view=ChainView(staked_chain.w3, registry=staked_chain.registry.address),
        contributors=[Account.create().address for _ in range(3)],
        validators=[Account.create().address for _ in range(2)],
    )


def verify(ledger: Ledger, epoch: Epoch, **options: Any) -> EpochRoot:
    values: dict[str, Any] = {
        "chain_id": CHAIN,
        "chain": ledger.view,
        "previous": None,
        "previous_signed": None,
    }
    values.update(options)
    return verify_epoch(epoch.summary, epoch.published, **values)


def refusal(ledger: Ledger, epoch: Epoch, **options: Any) -> EpochRefusedError:
    with pytest.raises(EpochRefusedError) as caught:
        verify(ledger, epoch, **options)
    return caught.value


# --- the first epoch ---------------------------------------------------------------------


def test_a_consistent_epoch_verifies_to_its_published_root_and_total(ledger: Ledger) -> None:
    block = ledger.fund(1_000 * SHOT)
    first = ledger.epoch(1, block)
    assert first.result.root is not None
    assert verify(ledger, first) == EpochRoot(
        epoch=1, root=first.result.root, cumulative_total=first.result.cumulative_total
    )
    assert first.result.cumulative_total == 1_000 * SHOT - first.result.carry


def test_funded_total_is_read_at_the_funding_block_not_at_the_head(ledger: Ledger) -> None:
    block = ledger.fund(1_000 * SHOT)
    ledger.fund(500 * SHOT)  # later funding belongs to the next epoch
    assert ledger.distributor.total_funded() == 1_500 * SHOT
    assert verify(ledger, ledger.epoch(1, block)).epoch == 1
    # Inputs claiming today's total at the old block allocate money that was not there.
    inflated = ledger.epoch(1, block, funded_total=1_500 * SHOT)
    refused = refusal(ledger, inflated)
    assert refused.reason == "funded_total"
    assert str(refused) == (
        f"epoch 1: published funded_total {1_500 * SHOT} but RewardDistributor.totalFunded() "
        f"at block {block} is {1_000 * SHOT}"
    )


def test_a_summary_whose_funding_differs_from_its_inputs_is_refused(ledger: Ledger) -> None:
    block = ledger.fund(1_000 * SHOT)
    epoch = ledger.epoch(1, block, funding_block=block - 1)
    assert refusal(ledger, epoch).reason == "funded_total"


def test_a_published_root_the_inputs_do_not_give_is_refused_with_both_roots(
    ledger: Ledger,
) -> None:
    block = ledger.fund(1_000 * SHOT)
    honest = ledger.epoch(1, block)
    forged = "0x" + "5a" * 32
    epoch = Epoch(
        honest.inputs, honest.result, summary_of(honest.inputs, honest.result, root=forged)
    )
    refused = refusal(ledger, epoch)
    assert refused.reason == "root"
    assert str(refused) == f"epoch 1: published root {forged} but inputs give {honest.result.root}"


def test_a_published_cumulative_total_the_inputs_do_not_give_is_refused(ledger: Ledger) -> None:
    block = ledger.fund(1_000 * SHOT)
    honest = ledger.epoch(1, block)
    total = str(honest.result.cumulative_total + 1)
    epoch = Epoch(
        honest.inputs,
        honest.result,
        summary_of(honest.inputs, honest.result, cumulative_total=total),
    )
    refused = refusal(ledger, epoch)
    assert refused.reason == "root"
    assert "published cumulative_total" in str(refused)


@pytest.mark.parametrize(
    "change",
    [
        {"chain_id": 1},
        {"distributor": "0x" + "12" * 20},
        {"epoch": 2},
        {
            "rule": {
                "version": "shotbank-rewards/1",
                "validator_share_bps": 0,
                "contributor_cap_bps": 2500,
            }
        },
        {"root": None},
    ],
    ids=["chain", "distributor", "epoch-number", "rule", "no-root"],
)
def test_a_summary_that_is_not_about_these_inputs_is_refused(
    ledger: Ledger, change: dict[str, Any]
) -> None:
    block = ledger.fund(1_000 * SHOT)
    honest = ledger.epoch(1, block)
    epoch = Epoch(honest.inputs, honest.result, summary_of(honest.inputs, honest.result, **change))
    assert refusal(ledger, epoch).reason == "identity"


def test_a_distributor_the_registry_does_not_name_is_refused(
    ledger: Ledger, dev_keys: list[LocalAccount]
) -> None:
    # Consistent inputs and summary, but about a contract of the backend's own choosing.
    block = ledger.fund(1_000 * SHOT)
    impostor = ledger.epoch(1, block)
    inputs = impostor.inputs.model_copy(update={"distributor": dev_keys[9].address})
    result = allocate(inputs)
    refused = refusal(ledger, Epoch(inputs, result, summary_of(inputs, result)))
    assert refused.reason == "identity"
    assert "is not the RewardDistributor" in str(refused)


# --- building on the previous epoch ------------------------------------------------------


def two_epochs(ledger: Ledger, **second: Any) -> tuple[Epoch, Epoch]:
    first = ledger.epoch(1, ledger.fund(1_000 * SHOT))
    return first, ledger.epoch(2, ledger.fund(400 * SHOT), previous=first, **second)


def test_the_second_epoch_builds_on_the_first_and_adds_to_it(
    ledger: Ledger, tmp_path: Path
) -> None:
    first, second = two_epochs(ledger)
    with SigningRecord.in_state_dir(tmp_path) as record:
        signed = record.record_or_refuse(
            CHAIN,
            first.summary.distributor,
            1,
            first.summary.root or "",
            first.result.cumulative_total,
        )
        root = verify(ledger, second, previous=first.summary, previous_signed=signed)
    assert root.cumulative_total == second.result.cumulative_total > first.result.cumulative_total
    for address, amount in first.result.cumulative.items():
        assert second.result.cumulative[address] >= amount


def test_a_previous_map_that_does_not_sum_to_the_previous_total_is_refused(
    ledger: Ledger,
) -> None:
    first, second = two_epochs(ledger)
    inflated = dict(first.result.cumulative)
    richest = max(inflated, key=lambda a: inflated[a])
    inflated[richest] += 7
    padded = ledger.epoch(
        2, second.inputs.funding_block, previous=first, previous_cumulative=inflated
    )
    refused = refusal(ledger, padded, previous=first.summary)
    assert refused.reason == "previous_cumulative"
    assert f"published cumulative_total {first.result.cumulative_total}" in str(refused)


def test_a_reshuffled_previous_map_with_the_same_total_is_refused_by_the_previous_root(
    ledger: Ledger,
) -> None:
    first, second = two_epochs(ledger)
    moved = dict(first.result.cumulative)
    a, b = sorted(moved)[:2]
    moved[a], moved[b] = moved[a] - 5, moved[b] + 5
    shuffled = ledger.epoch(
        2, second.inputs.funding_block, previous=first, previous_cumulative=moved
    )
    refused = refusal(ledger, shuffled, previous=first.summary)
    assert refused.reason == "previous_cumulative"
    assert f"epoch 1 published root {first.result.root}" in str(refused)


def test_a_previous_root_other_than_the_one_this_node_signed_is_refused(
    ledger: Ledger, tmp_path: Path
) -> None:
    # The backend republished epoch 1 consistently with a reshuffled map, but this node
    # signed the original: it holds to what it signed.
    first, second = two_epochs(ledger)
    moved = dict(first.result.cumulative)
    a, b = sorted(moved)[:2]
    moved[a], moved[b] = moved[a] - 5, moved[b] + 5
    rewritten = ledger.epoch(
        2, second.inputs.funding_block, previous=first, previous_cumulative=moved
    )
    rewritten_first = summary_of(
        first.inputs,
        first.result,
        root=allocate_root(moved),
        cumulative_total=str(sum(moved.values())),
    )
    with SigningRecord.in_state_dir(tmp_path) as record:
        signed = record.record_or_refuse(
            CHAIN,
            first.summary.distributor,
            1,
            first.result.root or "",
            first.result.cumulative_total,
        )
        refused = refusal(ledger, rewritten, previous=rewritten_first, previous_signed=signed)
    assert refused.reason == "previous_cumulative"
    assert f"this node signed root {first.result.root}" in str(refused)


def test_a_previous_root_other_than_the_one_on_chain_is_refused(
    ledger: Ledger, dev_keys: list[LocalAccount]
) -> None:
    first, second = two_epochs(ledger)
    # Epoch 1's honest root goes on chain, signed by the only (so all the) stake.
    validator = dev_keys[4]
    ledger.chain.stake(validator)
    w3 = ledger.chain.w3
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    snapshot = w3.eth.block_number - 1
    epoch_root = EpochRoot(
        epoch=1, root=first.result.root or "", cumulative_total=first.result.cumulative_total
    )
    registry = ledger.chain.registry.address
    signature = sign_epoch_root(validator, epoch_root, chain_id=CHAIN, verifying_contract=registry)
    bundle = bundle_signatures(
        epoch_root, [signature.signature], chain_id=CHAIN, verifying_contract=registry
    )
    send_call(w3, dev_keys[0], ledger.distributor.submit_root(epoch_root, snapshot, bundle))
    assert verify(ledger, second, previous=first.summary).epoch == 2
    # A backend that rewrote epoch 1 everywhere it publishes it cannot rewrite the chain.
    moved = dict(first.result.cumulative)
    a, b = sorted(moved)[:2]
    moved[a], moved[b] = moved[a] - 5, moved[b] + 5
    rewritten = ledger.epoch(
        2, second.inputs.funding_block, previous=first, previous_cumulative=moved
    )
    rewritten_first = summary_of(
        first.inputs,
        first.result,
        root=allocate_root(moved),
        cumulative_total=str(sum(moved.values())),
    )
    refused = refusal(ledger, rewritten, previous=rewritten_first)
    assert refused.reason == "previous_cumulative"
    assert f"root on chain is {first.result.root}" in str(refused)


def test_an_epoch_building_on_an_unpublished_epoch_is_refused(ledger: Ledger) -> None:
    _, second = two_epochs(ledger)
    assert refusal(ledger, second, previous=None).reason == "previous_cumulative"


def allocate_root(cumulative: dict[str, int]) -> str:
    from shotbank.rewards import build_rewards_tree

    return build_rewards_tree(cumulative).root


def test_a_backend_that_cannot_be_reached_costs_one_round_and_signs_nothing(
    tmp_path: Path, closed_port: int, dev_keys: list[LocalAccount]
) -> None:
    client = ValidatorClient(
        f"http://127.0.0.1:{closed_port}", retry=RetryPolicy(attempts=1), timeout=2
    )
    config = ValidatorConfig(
        chain_id=CHAIN,
        validator_registry="0x" + "11" * 20,
        min_stake_wei=1,
        quorum=2,
        lease_ttl_s=60,
        max_jobs_per_lease=1,
        report_version=1,
    )
    cosigner = EpochCosigner(
        client=client,
        account=dev_keys[4],
        config=config,
        rpc_url=f"http://127.0.0.1:{closed_port}",
        record=SigningRecord.in_state_dir(tmp_path),
        metrics=NodeMetrics(),
    )
    try:
        assert cosigner.run_once() == []
        assert cosigner.run_once() == []
    finally:
        cosigner.close()
        client.close()
    text = cosigner.metrics.exposition().decode()
    assert 'shotbank_validator_failures_total{stage="epochs"} 2.0' in text
    assert "shotbank_validator_epochs_signed_total 0.0" in text
