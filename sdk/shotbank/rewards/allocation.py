"""Rules ``shotbank-rewards/1`` and ``/2``: epoch inputs in; amounts, cumulative map and root out.

Pure, deterministic and integer-only (no float anywhere, every division rounds down), so
the backend, every validator node and anyone with the published inputs compute the same
root. The rule, step by step, is in ``docs/api/rewards.md``; the reasons are in decision
record 0005. The result does not depend on the order of clips, validators, sales or map
entries. Rule /2 is rule /1 with one step first: each dataset sale's amount goes to the
contributors of the sold version, pro rata to their samples; the rest of the pool is
shared exactly as rule /1 shares a whole pool.
"""

from __future__ import annotations

import hashlib
import json
from typing import Final

from eth_utils.crypto import keccak

from shotbank.chain.merkle import REWARD_LEAF_ENCODING, StandardMerkleTree, node_hash
from shotbank.rewards.errors import RewardsError
from shotbank.rewards.models import (
    BPS,
    MAX_ACCOUNTS,
    MAX_AMOUNT,
    MAX_CLIPS,
    MAX_PREVIOUS_ACCOUNTS,
    MAX_SALE_VERSIONS,
    MAX_SALES,
    MAX_VALIDATORS,
    MAX_VERSION_CONTRIBUTORS,
    RULE_VERSIONS,
    Allocation,
    EpochInputs,
    EpochResult,
    address_key,
    check_sales,
)

__all__ = [
    "all_proofs",
    "allocate",
    "build_rewards_tree",
    "canonical_json",
    "inputs_hash",
    "proofs",
    "sales_shares",
    "water_fill",
]

_ADDRESS_PAD: Final = bytes(12)


def canonical_json(inputs: EpochInputs) -> bytes:
    """The inputs as canonical JSON: sorted keys, no spaces, amounts as decimal strings."""
    return json.dumps(
        inputs.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


def inputs_hash(inputs: EpochInputs) -> str:
    """SHA-256 (lower-case hex) of :func:`canonical_json`: the ``inputs_sha256`` of an epoch."""
    return hashlib.sha256(canonical_json(inputs)).hexdigest()


def water_fill(pool: int, weights: dict[str, int], cap: int) -> dict[str, int]:
    """Each account's budget out of ``pool``: pro rata to its weight, none above ``cap``.

    Accounts are walked by weight descending (ties: address ascending) with ``R = pool``
    and ``WS = sum(weights)``; while ``R * W > cap * WS`` (its pro-rata share of what is
    left exceeds the cap) the account gets ``cap`` and leaves the walk (``R -= cap``,
    ``WS -= W``), so its excess is shared by the rest; everyone after gets
    ``R * W // WS`` of the same ``R`` and ``WS``. The budgets sum to at most ``pool``.
    """
    remaining = pool
    weight_sum = sum(weights.values())
    order = sorted(weights.items(), key=lambda item: (-item[1], address_key(item[0])))
    budgets: dict[str, int] = {}
    index = 0
    while index < len(order) and remaining * order[index][1] > cap * weight_sum:
        address, weight = order[index]
        budgets[address] = cap
        remaining -= cap
        weight_sum -= weight
        index += 1
    for address, weight in order[index:]:
        # weight_sum is 0 only when every account left has weight 0.
        budgets[address] = remaining * weight // weight_sum if weight_sum else 0
    return budgets


def _check(inputs: EpochInputs) -> None:
    # The models refuse all of this on validation; checked again because a caller may
    # build inputs with ``model_construct`` and a wrong root must never come out.
    if inputs.rule.version not in RULE_VERSIONS:
        raise RewardsError(f"unknown rule {inputs.rule.version!r}, these are {RULE_VERSIONS}")
    if len(inputs.clips) > MAX_CLIPS:
        raise RewardsError(f"more than {MAX_CLIPS} clips")
    if len(inputs.validators) > MAX_VALIDATORS:
        raise RewardsError(f"more than {MAX_VALIDATORS} validators")
    if len(inputs.previous_cumulative) > MAX_PREVIOUS_ACCOUNTS:
        raise RewardsError(f"more than {MAX_PREVIOUS_ACCOUNTS} previous accounts")
    if len(inputs.sales) > MAX_SALES:
        raise RewardsError(f"more than {MAX_SALES} sales")
    if len(inputs.versions) > MAX_SALE_VERSIONS:
        raise RewardsError(f"more than {MAX_SALE_VERSIONS} sold versions")
    if sum(len(contributors) for contributors in inputs.versions.values()) > (
        MAX_VERSION_CONTRIBUTORS
    ):
        raise RewardsError(f"more than {MAX_VERSION_CONTRIBUTORS} version contributor entries")
    if len({clip.clip_id for clip in inputs.clips}) != len(inputs.clips):
        raise RewardsError("a clip is listed twice")
    if len({v.address for v in inputs.validators}) != len(inputs.validators):
        raise RewardsError("a validator is listed twice")
    for validator in inputs.validators:
        if not 0 <= validator.agreed_reports <= validator.reports:
            raise RewardsError(
                f"validator {validator.address} has {validator.agreed_reports} agreed reports "
                f"but {validator.reports} reports"
            )
    if inputs.funded_total < inputs.previous_cumulative_total:
        raise RewardsError(
            f"funded_total {inputs.funded_total} is below the previous cumulative total "
            f"{inputs.previous_cumulative_total}"
        )
    check_sales(inputs)


def sales_shares(inputs: EpochInputs) -> dict[str, int]:
    """Rule /2's dataset-sales step: each account's part of the epoch's sales.

    The amounts of the sales of one version are added up and the sum is shared among
    the version's contributors pro rata to their samples, ``sum * samples // samples
    of the version``, with no cap (they own the samples sold); what the floors leave
    joins the general pool. Summed per version first so that the cost is one division
    per contributor entry, not one per sale and entry. Empty under rule /1.
    """
    sold: dict[str, int] = {}
    for sale in inputs.sales:
        sold[sale.version_id] = sold.get(sale.version_id, 0) + sale.amount
    shares: dict[str, int] = {}
    for version, amount in sold.items():
        counts = inputs.versions[version]
        total = sum(counts.values())
        for address, samples in counts.items():
            share = amount * samples // total
            if share:
                shares[address] = shares.get(address, 0) + share
    return shares


def allocate(inputs: EpochInputs) -> EpochResult:
    """Apply the inputs' rule (/1 or /2) to ``inputs``; :class:`RewardsError` if inconsistent.

    Also builds the rewards tree (kept in the result for :func:`proofs`). Guarantees:
    ``allocated + carry == pool`` with ``carry >= 0``; ``sales_allocated <= sales_pool
    <= pool``; no contributor's ``contributor_amount`` exceeds ``contributor_pool *
    contributor_cap_bps // 10000`` (sales amounts are not capped);
    ``cumulative_total == previous_cumulative_total + allocated <= funded_total``.
    """
    _check(inputs)
    rule = inputs.rule
    previous_total = inputs.previous_cumulative_total
    pool = inputs.funded_total - previous_total

    # Dataset sales first (rule /2): they are earmarked for the sold versions' owners.
    sales_amounts = sales_shares(inputs)
    sales_allocated = sum(sales_amounts.values())
    sales_pool = inputs.sales_total
    # The general pool, shared as rule /1 shares a whole pool.
    general = pool - sales_allocated

    # Contributors: weight = sum of the quality of their accepted clips.
    weights: dict[str, int] = {}
    for clip in inputs.clips:
        if clip.accepted:
            weights[clip.contributor] = weights.get(clip.contributor, 0) + clip.quality_bps
    contributor_pool = general * (BPS - rule.validator_share_bps) // BPS if weights else 0
    cap = contributor_pool * rule.contributor_cap_bps // BPS
    budgets = water_fill(contributor_pool, weights, cap)

    clip_amounts: dict[str, int] = {}
    contributor_amounts: dict[str, int] = {}
    for clip in sorted(inputs.clips, key=lambda c: c.clip_id):
        weight = weights.get(clip.contributor, 0)
        amount = (
            budgets[clip.contributor] * clip.quality_bps // weight
            if clip.accepted and weight
            else 0
        )
        clip_amounts[clip.clip_id] = amount
        if amount:
            contributor_amounts[clip.contributor] = (
                contributor_amounts.get(clip.contributor, 0) + amount
            )

    # Validators: paid by the reports that agreed with the consensus decision.
    total_agreed = sum(v.agreed_reports for v in inputs.validators)
    validator_pool = general * rule.validator_share_bps // BPS if total_agreed else 0
    validator_amounts: dict[str, int] = {}
    for validator in inputs.validators:
        amount = validator_pool * validator.agreed_reports // total_agreed if total_agreed else 0
        if amount:
            validator_amounts[validator.address] = amount

    accounts = sorted(
        contributor_amounts.keys() | validator_amounts.keys() | sales_amounts.keys(),
        key=address_key,
    )
    cumulative = dict(inputs.previous_cumulative)
    allocations: list[Allocation] = []
    allocated = 0
    for address in accounts:
        from_clips = contributor_amounts.get(address, 0)
        from_reports = validator_amounts.get(address, 0)
        from_sales = sales_amounts.get(address, 0)
        amount = from_clips + from_reports + from_sales
        allocated += amount
        cumulative[address] = cumulative.get(address, 0) + amount
        allocations.append(
            Allocation.model_construct(
                address=address,
                contributor_amount=from_clips,
                validator_amount=from_reports,
                sales_amount=from_sales,
                amount=amount,
                cumulative=cumulative[address],
            )
        )
    cumulative = {
        address: amount
        for address, amount in sorted(cumulative.items(), key=lambda item: address_key(item[0]))
        if amount
    }
    if len(cumulative) > MAX_ACCOUNTS:
        raise RewardsError(
            f"{len(cumulative)} accounts with a cumulative amount: a rewards tree holds at "
            f"most {MAX_ACCOUNTS}"
        )
    carry = pool - allocated
    # Cannot fail: budgets sum to at most the contributor pool, validator amounts to at
    # most the validator pool, sales shares to at most the sales (<= pool, checked), and
    # the two pools to at most what the sales leave. Kept as a guard.
    if carry < 0 or sales_allocated > sales_pool or contributor_pool + validator_pool > general:
        raise RewardsError(f"over-allocation: {allocated} allocated out of a pool of {pool}")
    tree = build_rewards_tree(cumulative) if allocated else None
    # Built without validation: every value above is computed here from validated
    # inputs, and validating a million clip amounts again would dominate the run time.
    result = EpochResult.model_construct(
        previous_cumulative_total=previous_total,
        pool=pool,
        contributor_pool=contributor_pool,
        validator_pool=validator_pool,
        allocated=allocated,
        carry=carry,
        sales_pool=sales_pool,
        sales_allocated=sales_allocated,
        clip_amounts=clip_amounts,
        allocations=tuple(allocations),
        cumulative=cumulative,
        cumulative_total=previous_total + allocated,
        root=tree.root if tree is not None else None,
    )
    result._tree = tree
    return result


def build_rewards_tree(cumulative: dict[str, int]) -> StandardMerkleTree:
    """``shotbank.chain.merkle.rewards_tree(cumulative)``: the same tree, about 4x faster.

    For a map whose keys are checksum addresses (the dump shows them as given) and whose
    values are non-zero uint256 amounts, as :func:`allocate` produces. It hashes each
    leaf from its ABI encoding written out (``abi.encode(address, uint256)`` is the
    address left-padded to 32 bytes, then the amount as 32 big-endian bytes) instead of
    normalising and ABI-encoding every value three times, then lays the tree out exactly
    as ``StandardMerkleTree.of`` does: values in ascending address order, leaves sorted
    by hash (stable), a complete binary tree in an array with the leaves at the end in
    reverse order. The tests check root and dump against ``rewards_tree`` byte for byte.
    """
    if not cumulative:
        raise RewardsError("a rewards tree needs at least one account")
    if len(cumulative) > MAX_ACCOUNTS:
        raise RewardsError(f"a rewards tree holds at most {MAX_ACCOUNTS} accounts")
    keyed = sorted(
        (address_key(address), address, amount) for address, amount in cumulative.items()
    )
    ordered = [(address, amount) for _, address, amount in keyed]
    hashed: list[tuple[bytes, int]] = []
    previous_key = -1
    for value_index, (key, address, amount) in enumerate(keyed):
        if not (len(address) == 42 and address.startswith("0x")) or not 0 < amount <= MAX_AMOUNT:
            raise RewardsError(f"not a rewards leaf: {address!r} -> {amount!r}")
        if key == previous_key:
            # Two spellings of one address would be two leaves paying one account twice.
            raise RewardsError(f"account {address} appears twice")
        previous_key = key
        encoded = _ADDRESS_PAD + bytes.fromhex(address[2:]) + amount.to_bytes(32, "big")
        hashed.append((keccak(keccak(encoded)), value_index))
    hashed.sort(key=lambda item: item[0])  # stable, like StandardMerkleTree.of
    size = 2 * len(hashed) - 1
    nodes: list[bytes] = [b""] * size
    tree_index = [0] * len(ordered)
    for leaf_index, (leaf, value_index) in enumerate(hashed):
        nodes[size - 1 - leaf_index] = leaf
        tree_index[value_index] = size - 1 - leaf_index
    for i in range(size - 1 - len(hashed), -1, -1):
        nodes[i] = node_hash(nodes[2 * i + 1], nodes[2 * i + 2])
    values = [((address, amount), tree_index[i]) for i, (address, amount) in enumerate(ordered)]
    return StandardMerkleTree(nodes, values, REWARD_LEAF_ENCODING)


def all_proofs(tree: StandardMerkleTree) -> dict[str, list[str]]:
    """The proof of every account of a rewards tree, keyed by checksum address.

    One pass over the tree's public dump: each proof is the sibling path from the
    account's leaf to the root, read off the node array with no hashing, so all ``n``
    proofs cost ``O(n log n)`` list appends. ``StandardMerkleTree.get_proof`` instead
    re-encodes and re-hashes the leaf and re-verifies the path for every call.
    """
    if tuple(tree.leaf_encoding) != REWARD_LEAF_ENCODING:
        raise RewardsError(f"not a rewards tree: leaves are {list(tree.leaf_encoding)}")
    dump = tree.dump()
    nodes: list[str] = dump["tree"]
    result: dict[str, list[str]] = {}
    for entry in dump["values"]:
        index: int = entry["treeIndex"]
        proof: list[str] = []
        while index > 0:
            # Left children sit at odd indexes, right children at even ones.
            proof.append(nodes[index + 1] if index % 2 else nodes[index - 1])
            index = (index - 1) // 2
        result[entry["value"][0]] = proof
    return result


def proofs(result: EpochResult) -> dict[str, list[str]]:
    """The claim proof of every account in ``result.cumulative`` (empty without a root).

    Computed once when an epoch closes and stored, so that serving a proof is a lookup.
    """
    tree = result.tree()
    return all_proofs(tree) if tree is not None else {}
