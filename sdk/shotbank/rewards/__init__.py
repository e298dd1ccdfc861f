"""The reward allocation rules (``shotbank-rewards/1`` and ``/2``), shared by the backend and
validator nodes.

``allocate(inputs)`` turns an epoch's published :class:`EpochInputs` into an
:class:`EpochResult`: the pool, each clip's and account's amount, the cumulative map and
the root of its rewards tree (``shotbank.chain.merkle.rewards_tree``, the tree
``RewardDistributor.claim`` verifies). ``proofs(result)`` gives every account's claim
proof; ``inputs_hash(inputs)`` the SHA-256 published with the epoch. The rule is written
out in ``docs/api/rewards.md``; the reasons behind it in decision record 0005.
"""

from shotbank.rewards.allocation import (
    all_proofs,
    allocate,
    build_rewards_tree,
    canonical_json,
    inputs_hash,
    proofs,
    sales_shares,
    water_fill,
)
from shotbank.rewards.errors import RewardsError
from shotbank.rewards.models import (
    BPS,
    DEFAULT_CONTRIBUTOR_CAP_BPS,
    DEFAULT_VALIDATOR_SHARE_BPS,
    MAX_ACCOUNTS,
    MAX_CLIPS,
    MAX_PREVIOUS_ACCOUNTS,
    MAX_SALE_VERSIONS,
    MAX_SALES,
    MAX_VALIDATORS,
    MAX_VERSION_CONTRIBUTORS,
    RULE_VERSION,
    RULE_VERSION_1,
    RULE_VERSIONS,
    Allocation,
    Amount,
    ClipEntry,
    EpochInputs,
    EpochResult,
    RewardRule,
    SaleEntry,
    ValidatorEntry,
)

__all__ = [
    "BPS",
    "DEFAULT_CONTRIBUTOR_CAP_BPS",
    "DEFAULT_VALIDATOR_SHARE_BPS",
    "MAX_ACCOUNTS",
    "MAX_CLIPS",
    "MAX_PREVIOUS_ACCOUNTS",
    "MAX_SALES",
    "MAX_SALE_VERSIONS",
    "MAX_VALIDATORS",
    "MAX_VERSION_CONTRIBUTORS",
    "RULE_VERSION",
    "RULE_VERSIONS",
    "RULE_VERSION_1",
    "Allocation",
    "Amount",
    "ClipEntry",
    "EpochInputs",
    "EpochResult",
    "RewardRule",
    "RewardsError",
    "SaleEntry",
    "ValidatorEntry",
    "all_proofs",
    "allocate",
    "build_rewards_tree",
    "canonical_json",
    "inputs_hash",
    "proofs",
    "sales_shares",
    "water_fill",
]
