"""The allocation rule's inputs and result, as published with every epoch.

Every model is frozen and refuses unknown fields. Amounts are token base units: Python
``int`` in the model, **decimal strings** in JSON (the HTTP API sends them that way, and
JavaScript numbers cannot hold them); on input both an ``int`` and a decimal string are
accepted. Addresses are accepted in any case and stored in their EIP-55 checksum form.

:class:`EpochInputs` is canonical: clips are kept in clip-id order, validators and
``previous_cumulative`` in address order (the address as a number, which is the order of
its lower-case hex), so two parties that gathered the same facts in a different order
hold equal inputs, the same JSON and the same :func:`~shotbank.rewards.inputs_hash`.
Rule ``shotbank-rewards/2`` adds the DatasetMarket (``market``), the epoch's dataset sales
(``sales``, in chain order) and the sample counts of the sold versions (``versions``, by
version id, then address); the JSON of a rule /1 input has none of these members, so it
is byte for byte what rule /1 wrote.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sized
from itertools import pairwise
from typing import Annotated, Any, Final, Literal

from eth_utils.address import to_checksum_address
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from shotbank.chain.merkle import MAX_LEAVES, StandardMerkleTree, rewards_tree
from shotbank.rewards.errors import RewardsError

__all__ = [
    "BPS",
    "DEFAULT_CONTRIBUTOR_CAP_BPS",
    "DEFAULT_VALIDATOR_SHARE_BPS",
    "MAX_ACCOUNTS",
    "MAX_AMOUNT",
    "MAX_CLIPS",
    "MAX_PREVIOUS_ACCOUNTS",
    "MAX_SALES",
    "MAX_SALE_VERSIONS",
    "MAX_VALIDATORS",
    "MAX_VERSION_CONTRIBUTORS",
    "MAX_VERSION_SAMPLES",
    "RULE_VERSION",
    "RULE_VERSIONS",
    "RULE_VERSION_1",
    "Address",
    "Allocation",
    "Amount",
    "ClipEntry",
    "ClipId",
    "EpochInputs",
    "EpochResult",
    "RewardRule",
    "SaleEntry",
    "ValidatorEntry",
    "VersionId",
    "address_key",
    "check_sales",
]

#: The first rule: emission, slashing and sales all in one pool (epochs closed before /2).
RULE_VERSION_1: Final = "shotbank-rewards/1"
#: The rule new epochs are closed under: the contributor share of each dataset sale goes
#: to the contributors of the sold version (``docs/api/rewards.md``, "Dataset sales").
RULE_VERSION: Final = "shotbank-rewards/2"
#: Every rule version :func:`~shotbank.rewards.allocate` computes.
RULE_VERSIONS: Final = (RULE_VERSION_1, RULE_VERSION)
#: Basis points in one whole.
BPS: Final = 10_000
#: Default share of the pool paid to validators (10 %).
DEFAULT_VALIDATOR_SHARE_BPS: Final = 1_000
#: Default cap of one contributor's amount, as a share of the contributor pool (25 %).
DEFAULT_CONTRIBUTOR_CAP_BPS: Final = 2_500
#: Largest amount: a ``uint256``.
MAX_AMOUNT: Final = 2**256 - 1
#: Most clips in one epoch (docs/api/rewards.md).
MAX_CLIPS: Final = 1_000_000
#: Most validators in one epoch (docs/api/rewards.md).
MAX_VALIDATORS: Final = 100_000
#: Most addresses in ``previous_cumulative`` (docs/api/rewards.md).
MAX_PREVIOUS_ACCOUNTS: Final = 10_000_000
#: Most dataset sales in one epoch (docs/api/rewards.md).
MAX_SALES: Final = 100_000
#: Most sold versions in one epoch (docs/api/rewards.md).
MAX_SALE_VERSIONS: Final = 10_000
#: Most contributor entries in ``versions``, all versions together (docs/api/rewards.md).
MAX_VERSION_CONTRIBUTORS: Final = 1_000_000
#: Most samples in one version (``shotbank.datasets.format.MAX_SAMPLES``).
MAX_VERSION_SAMPLES: Final = 1_000_000
#: Most accounts a rewards tree holds (:data:`shotbank.chain.merkle.MAX_LEAVES`): an
#: epoch whose cumulative map is larger is refused by :func:`~shotbank.rewards.allocate`.
MAX_ACCOUNTS: Final = MAX_LEAVES
_MAX_DECIMAL_DIGITS: Final = len(str(MAX_AMOUNT))
_MAX_BLOCK: Final = 2**63
_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
#: Checksum forms remembered (about 200 bytes each).
_CHECKSUM_CACHE: Final = 1 << 16
_LIMITS: Final = {
    "clips": MAX_CLIPS,
    "validators": MAX_VALIDATORS,
    "previous_cumulative": MAX_PREVIOUS_ACCOUNTS,
    "sales": MAX_SALES,
    "versions": MAX_SALE_VERSIONS,
}
#: Members only rule /2 inputs have (absent from a rule /1 input's JSON).
_V2_MEMBERS: Final = ("market", "sales", "versions")


def _parse_amount(value: object) -> int:
    # A plain validator rather than pydantic's int: lax int parsing would take floats,
    # booleans, "1_000", " 12 " or "+3", none of which is a base-unit amount.
    if isinstance(value, bool):
        raise ValueError("an amount is an integer, not a boolean")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, str):
        if not (0 < len(value) <= _MAX_DECIMAL_DIGITS and value.isascii() and value.isdigit()):
            raise ValueError(f"an amount is a decimal string of digits only, got {value[:90]!r}")
        amount = int(value)
    else:
        raise ValueError(f"an amount is an integer or a decimal string, got {type(value).__name__}")
    if not 0 <= amount <= MAX_AMOUNT:
        # Not the number itself: a huge one could not even be printed (int digit limit).
        side = "a negative number" if amount < 0 else f"a {amount.bit_length()}-bit number"
        raise ValueError(f"an amount is a uint256 (0 ... 2**256 - 1), got {side}")
    return amount


#: Token base units: ``int`` in Python, a decimal string in JSON; input takes either.
Amount = Annotated[
    int,
    PlainValidator(_parse_amount, json_schema_input_type=int | str),
    PlainSerializer(str, return_type=str, when_used="json"),
]


@functools.lru_cache(maxsize=_CHECKSUM_CACHE)
def _checksum_of(value: str) -> str:
    # Cached: one contributor appears in many sold versions (and epochs), and the
    # keccak of the EIP-55 checksum is most of what validating inputs costs.
    return str(to_checksum_address(value))


def _checksum_address(value: str) -> str:
    # eth_utils' ``is_address`` (6.x) accepts a mixed-case address whose EIP-55 checksum
    # is wrong; here mixed case must be the right checksum, as EIP-55 intends, so that a
    # mistyped address is refused instead of being paid.
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"not an address (0x and 40 hex digits): {value[:50]!r}")
    checksummed = _checksum_of(value)
    digits = value[2:]
    if digits != digits.lower() and digits != digits.upper() and value != checksummed:
        raise ValueError(f"address {value!r} has a wrong EIP-55 checksum")
    return checksummed


#: An address: ``0x`` and 40 hex digits, all lower case, all upper case or with a valid
#: EIP-55 checksum on input; its checksum form once validated.
Address = Annotated[str, Field(max_length=42), AfterValidator(_checksum_address)]
#: A clip id as the backend issues them: 32 lower-case hex characters.
ClipId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
#: A dataset version's on-chain id: ``0x`` and its version hash (64 lower-case hex).
VersionId = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]
_TxHash = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]
_SampleCount = Annotated[int, Field(ge=1, le=MAX_VERSION_SAMPLES)]
_Bps = Annotated[int, Field(ge=0, le=BPS)]


def address_key(address: str) -> int:
    """Sort key of an address: its value as a number (the order of its lower-case hex)."""
    return int(address, 16)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RewardRule(_Frozen):
    """The rule's version and parameters, published with every epoch."""

    version: Literal["shotbank-rewards/1", "shotbank-rewards/2"] = RULE_VERSION
    validator_share_bps: _Bps = DEFAULT_VALIDATOR_SHARE_BPS
    contributor_cap_bps: Annotated[int, Field(ge=1, le=BPS)] = DEFAULT_CONTRIBUTOR_CAP_BPS


class ClipEntry(_Frozen):
    """One clip decided in the epoch: its contributor, the decision and its quality."""

    clip_id: ClipId
    contributor: Address
    accepted: bool
    #: Consensus quality in basis points; only accepted clips weigh.
    quality_bps: _Bps


class ValidatorEntry(_Frozen):
    """One validator's reports on the clips decided in the epoch."""

    address: Address
    reports: Annotated[int, Field(ge=0, le=MAX_CLIPS)]
    #: Reports that matched the consensus decision.
    agreed_reports: Annotated[int, Field(ge=0, le=MAX_CLIPS)]

    @model_validator(mode="after")
    def _agreed_within_reports(self) -> ValidatorEntry:
        if self.agreed_reports > self.reports:
            raise RewardsError(
                f"validator {self.address} has {self.agreed_reports} agreed reports "
                f"but only {self.reports} reports"
            )
        return self


class SaleEntry(_Frozen):
    """One dataset licence sale of the epoch: a ``LicencePurchased`` event of the market.

    ``amount`` is its ``contributorShare``, the part of the price the market paid into
    the pool; rule /2 gives it to the contributors of version ``version_id``.
    """

    tx_hash: _TxHash
    log_index: Annotated[int, Field(ge=0, lt=_MAX_BLOCK)]
    block_number: Annotated[int, Field(ge=0, lt=_MAX_BLOCK)]
    version_id: VersionId
    amount: Amount


def _unprefixed_lower(key: object) -> object:
    if isinstance(key, str):
        lowered = key.lower()
        return lowered[2:] if lowered.startswith("0x") else lowered
    return key


class EpochInputs(_Frozen):
    """Everything :func:`~shotbank.rewards.allocate` needs, published at ``/epochs/{n}/inputs``.

    ``funded_total`` is ``RewardDistributor.totalFunded()`` at ``funding_block``;
    ``previous_cumulative`` is the cumulative map of ``previous_epoch`` (the last epoch
    whose amounts this one builds on; ``None`` and an empty map for the first).
    """

    chain_id: Annotated[int, Field(ge=1, lt=2**64)]
    distributor: Address
    epoch: Annotated[int, Field(ge=1, lt=2**64)]
    rule: RewardRule
    funding_block: Annotated[int, Field(ge=0, lt=_MAX_BLOCK)]
    funded_total: Amount
    previous_epoch: Annotated[int, Field(ge=1, lt=2**64)] | None
    previous_cumulative: dict[Address, Amount] = Field(max_length=MAX_PREVIOUS_ACCOUNTS)
    clips: tuple[ClipEntry, ...] = Field(max_length=MAX_CLIPS)
    validators: tuple[ValidatorEntry, ...] = Field(max_length=MAX_VALIDATORS)
    #: Rule /2: the DatasetMarket whose sales are listed (``None``: the deployment has none).
    market: Address | None = None
    #: Rule /2: the epoch's dataset sales, in chain order (block, then log index).
    sales: tuple[SaleEntry, ...] = Field(default=(), max_length=MAX_SALES)
    #: Rule /2: samples per contributor of every sold version (and of no other).
    versions: dict[VersionId, dict[Address, _SampleCount]] = Field(
        default_factory=dict, max_length=MAX_SALE_VERSIONS
    )

    @field_validator(
        "clips", "validators", "previous_cumulative", "sales", "versions", mode="before"
    )
    @classmethod
    def _within_limits(cls, value: Any, info: ValidationInfo) -> Any:
        # Checked before the items are validated (pydantic's max_length stops only once
        # the limit is passed), so an oversized list costs nothing to refuse.
        limit = _LIMITS[str(info.field_name)]
        if isinstance(value, Sized) and len(value) > limit:
            raise ValueError(f"{info.field_name}: at most {limit} entries, got {len(value)}")
        return value

    @field_validator("previous_cumulative", mode="before")
    @classmethod
    def _no_address_twice(cls, value: Any) -> Any:
        # Validation turns every key into its checksum form, so two spellings of one
        # address would silently collapse into one entry (the last wins): refuse instead.
        if isinstance(value, Mapping):
            seen: set[object] = set()
            for key in value:
                normal = _unprefixed_lower(key)
                if normal in seen:
                    raise RewardsError(f"previous_cumulative lists address {key!r} twice")
                seen.add(normal)
        return value

    @field_validator("previous_cumulative", mode="after")
    @classmethod
    def _accounts_in_order(cls, value: dict[str, int]) -> dict[str, int]:
        return dict(sorted(value.items(), key=lambda item: address_key(item[0])))

    @field_validator("versions", mode="before")
    @classmethod
    def _versions_within_limits(cls, value: Any) -> Any:
        # Before validation, like _within_limits: the entries of all versions together
        # are bounded, and one contributor spelled twice in a version is refused rather
        # than collapsed (see _no_address_twice).
        if isinstance(value, Mapping):
            entries = 0
            for version, contributors in value.items():
                if not isinstance(contributors, Mapping):
                    continue
                entries += len(contributors)
                if entries > MAX_VERSION_CONTRIBUTORS:
                    raise ValueError(
                        f"versions: at most {MAX_VERSION_CONTRIBUTORS} contributor entries "
                        "in all versions together"
                    )
                seen: set[object] = set()
                for key in contributors:
                    normal = _unprefixed_lower(key)
                    if normal in seen:
                        raise RewardsError(f"version {version!r} lists address {key!r} twice")
                    seen.add(normal)
        return value

    @field_validator("versions", mode="after")
    @classmethod
    def _versions_in_order(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        for version, contributors in value.items():
            if not contributors:
                raise RewardsError(f"version {version} has no contributors")
        return {
            version: dict(sorted(value[version].items(), key=lambda item: address_key(item[0])))
            for version in sorted(value)
        }

    @field_validator("sales", mode="after")
    @classmethod
    def _sales_in_order(cls, value: tuple[SaleEntry, ...]) -> tuple[SaleEntry, ...]:
        ordered = tuple(
            sorted(value, key=lambda sale: (sale.block_number, sale.log_index, sale.tx_hash))
        )
        seen: set[tuple[str, int]] = set()
        for sale in ordered:
            if (sale.tx_hash, sale.log_index) in seen:
                raise RewardsError(f"sale {sale.tx_hash}:{sale.log_index} is listed twice")
            seen.add((sale.tx_hash, sale.log_index))
        return ordered

    @field_validator("clips", mode="after")
    @classmethod
    def _clips_in_order(cls, value: tuple[ClipEntry, ...]) -> tuple[ClipEntry, ...]:
        ordered = tuple(sorted(value, key=lambda clip: clip.clip_id))
        for before, after in pairwise(ordered):
            if before.clip_id == after.clip_id:
                raise RewardsError(f"clip {after.clip_id} is listed twice")
        return ordered

    @field_validator("validators", mode="after")
    @classmethod
    def _validators_in_order(cls, value: tuple[ValidatorEntry, ...]) -> tuple[ValidatorEntry, ...]:
        ordered = tuple(sorted(value, key=lambda v: address_key(v.address)))
        for before, after in pairwise(ordered):
            if before.address == after.address:
                raise RewardsError(f"validator {after.address} is listed twice")
        return ordered

    @model_validator(mode="after")
    def _consistent(self) -> EpochInputs:
        if self.previous_epoch is None and self.previous_cumulative:
            raise RewardsError("previous_cumulative is not empty but previous_epoch is None")
        if self.previous_epoch is not None and self.previous_epoch >= self.epoch:
            raise RewardsError(
                f"previous_epoch {self.previous_epoch} is not before epoch {self.epoch}"
            )
        previous_total = self.previous_cumulative_total
        if self.funded_total < previous_total:
            raise RewardsError(
                f"funded_total {self.funded_total} is below the previous cumulative total "
                f"{previous_total}: earlier epochs allocated more than was ever funded"
            )
        check_sales(self)
        return self

    @model_serializer(mode="wrap")
    def _rule_v1_form(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A rule /1 input is written without the members rule /2 added, so its JSON,
        # and the inputs_sha256 published for it, stay exactly what rule /1 produced.
        data: dict[str, Any] = handler(self)
        if self.rule.version == RULE_VERSION_1:
            for name in _V2_MEMBERS:
                data.pop(name, None)
        return data

    @property
    def previous_cumulative_total(self) -> int:
        """Everything allocated by earlier epochs: the sum of ``previous_cumulative``."""
        return sum(self.previous_cumulative.values())

    @property
    def sales_total(self) -> int:
        """The contributor shares of the epoch's sales: the sum of ``sales`` amounts."""
        return sum(sale.amount for sale in self.sales)


def check_sales(inputs: EpochInputs) -> None:
    """:class:`RewardsError` unless the sales and versions of ``inputs`` fit together.

    Rule /1 has none; under rule /2 sales need a ``market``, every sale is at or before
    ``funding_block``, every
    sold version is in ``versions`` and every version there was sold, no sale is listed
    twice, and the sales add up to at most the pool.
    """
    if inputs.rule.version == RULE_VERSION_1:
        if inputs.sales or inputs.versions or inputs.market is not None:
            raise RewardsError(f"rule {RULE_VERSION_1} has no market, sales or versions")
        return
    if inputs.sales and inputs.market is None:
        raise RewardsError("sales are listed but no market")
    sold = set()
    seen: set[tuple[str, int]] = set()
    for sale in inputs.sales:
        if sale.block_number > inputs.funding_block:
            raise RewardsError(
                f"sale {sale.tx_hash}:{sale.log_index} at block {sale.block_number} is after "
                f"the funding block {inputs.funding_block}"
            )
        if (sale.tx_hash, sale.log_index) in seen:
            raise RewardsError(f"sale {sale.tx_hash}:{sale.log_index} is listed twice")
        seen.add((sale.tx_hash, sale.log_index))
        sold.add(sale.version_id)
    listed = set(inputs.versions)
    if sold - listed:
        raise RewardsError(f"sold version {min(sold - listed)} is not in versions")
    if listed - sold:
        raise RewardsError(f"version {min(listed - sold)} is listed but was not sold")
    if any(not contributors for contributors in inputs.versions.values()):
        raise RewardsError("a sold version has no contributors")
    pool = inputs.funded_total - inputs.previous_cumulative_total
    if inputs.sales_total > pool:
        raise RewardsError(
            f"the epoch's sales add up to {inputs.sales_total}, more than its pool {pool}"
        )


class Allocation(_Frozen):
    """One account's amounts in an epoch:
    ``amount = contributor_amount + validator_amount + sales_amount``."""

    address: Address
    contributor_amount: Amount
    validator_amount: Amount
    #: Rule /2: the account's part of the epoch's dataset sales (0 under rule /1).
    sales_amount: Amount = 0
    amount: Amount
    #: ``previous_cumulative[address] + amount``: the account's leaf in the epoch's tree.
    cumulative: Amount


class EpochResult(_Frozen):
    """What :func:`~shotbank.rewards.allocate` computes from :class:`EpochInputs`.

    ``allocations`` lists the accounts with a non-zero ``amount`` in address order;
    ``clip_amounts`` every clip of the inputs (0 for a rejected one) in clip-id order;
    ``cumulative`` every account with a non-zero cumulative amount in address order.
    ``root`` is ``None`` when the epoch allocates nothing. Results compare equal by
    their fields; the rewards tree :func:`~shotbank.rewards.allocate` built is kept
    (not serialised) so that :meth:`tree` and :func:`~shotbank.rewards.proofs` do not
    build it again.
    """

    previous_cumulative_total: Amount
    pool: Amount
    contributor_pool: Amount
    validator_pool: Amount
    allocated: Amount
    carry: Amount
    #: Rule /2: the sum of the sales' amounts (0 under rule /1).
    sales_pool: Amount = 0
    #: Rule /2: what the sales gave the versions' contributors (``sales_pool`` less
    #: rounding, which joins the general pool).
    sales_allocated: Amount = 0
    clip_amounts: dict[ClipId, Amount] = Field(max_length=MAX_CLIPS)
    allocations: tuple[Allocation, ...] = Field(max_length=MAX_ACCOUNTS)
    cumulative: dict[Address, Amount] = Field(max_length=MAX_ACCOUNTS)
    cumulative_total: Amount
    root: Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")] | None

    _tree: StandardMerkleTree | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        """Equal when every field is equal (the cached tree is derived data)."""
        if not isinstance(other, EpochResult):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # dict fields: results are not hashable

    def tree(self) -> StandardMerkleTree | None:
        """The epoch's rewards tree (``None`` without a root).

        The one :func:`~shotbank.rewards.allocate` built, or for a result read from JSON
        one rebuilt from ``cumulative``; :class:`RewardsError` if its root is not ``root``.
        """
        if self.root is None:
            return None
        if self._tree is None:
            if not self.cumulative:
                raise RewardsError("the result has a root but no cumulative amounts")
            self._tree = rewards_tree(self.cumulative)
        if self._tree.root != self.root:
            raise RewardsError(
                f"the cumulative amounts give root {self._tree.root}, the result says {self.root}"
            )
        return self._tree
