"""Thin typed wrappers of Shotbank's four contracts.

Reads return plain Python values (or small pydantic models for structs). Writes do not
send anything: they return a :class:`ContractCall` (target, calldata, value) that the
caller hands to an :class:`~shotbank.chain.outbox.Outbox` (``call.intent(key)``) or, in
scripts and tests, to :func:`send_call`. So every state change can go through the
crash-safe path and nothing here owns a private key.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any, ClassVar, Final, Self

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from pydantic import BaseModel, ConfigDict, Field
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.types import TxParams, TxReceipt, Wei

from shotbank.chain.abi import describe_revert, load_abi
from shotbank.chain.deployments import Deployment
from shotbank.chain.eip712 import EpochRoot, EpochRootSignature
from shotbank.chain.errors import TransactionRevertedError, TransactionTimeoutError
from shotbank.chain.outbox import TxIntent

__all__ = [
    "ContractCall",
    "DatasetMarket",
    "DatasetVersion",
    "RewardDistributor",
    "RootStatus",
    "ShotToken",
    "StoredEpochRoot",
    "ValidatorRegistry",
    "send_call",
]


def _bytes32(value: str | bytes) -> bytes:
    raw = bytes(HexBytes(value))
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


class ContractCall(BaseModel):
    """A state-changing call, ready to send: target, calldata and value."""

    model_config = ConfigDict(frozen=True)

    to: str
    data: str
    value: int = Field(default=0, ge=0)
    description: str = ""

    def intent(self, key: str, *, gas: int | None = None) -> TxIntent:
        """This call as an outbox intent with idempotency key ``key``."""
        return TxIntent(key=key, to=self.to, data=self.data, value=self.value, gas=gas)


def _revert_message(exc: ContractLogicError) -> str:
    data = exc.data if isinstance(exc.data, str) else None
    if isinstance(exc, ContractCustomError) or (data and data.startswith("0x")):
        return describe_revert(data)
    return str(exc)


#: Gas added to every estimate on top of 20 % (see :func:`send_call`).
GAS_HEADROOM: Final = 25_000


def send_call(
    w3: Web3, account: LocalAccount, call: ContractCall, *, timeout_s: float = 60.0
) -> TxReceipt:
    """Sign and send ``call`` from ``account`` now and wait for its receipt.

    For scripts, deployment and tests; services use the outbox. Raises
    :class:`TransactionRevertedError` with the decoded custom error if the call would
    revert or was mined with status 0.
    """
    params: TxParams = {
        "from": account.address,
        "to": to_checksum_address(call.to),
        "data": HexBytes(call.data),
        "value": Wei(call.value),
    }
    try:
        gas = int(w3.eth.estimate_gas(params))
    except ContractLogicError as exc:
        raise TransactionRevertedError(
            f"{call.description or 'call'} would revert: {_revert_message(exc)}"
        ) from exc
    # Nodes estimate against the latest block, where a checkpoint written earlier in the
    # same block is updated in place; mined in the next block the same call writes a new
    # slot (about 20,000 gas more). Unused gas is refunded, so the headroom costs nothing.
    limit = gas * 6 // 5 + GAS_HEADROOM
    return _sign_send_wait(w3, account, {**params, "gas": limit}, timeout_s=timeout_s)


def _sign_send_wait(
    w3: Web3, account: LocalAccount, params: TxParams, *, timeout_s: float
) -> TxReceipt:
    block = w3.eth.get_block("latest")
    tip = int(w3.eth.max_priority_fee)
    tx: dict[str, Any] = {
        **params,
        "type": 2,
        "chainId": int(w3.eth.chain_id),
        "nonce": int(w3.eth.get_transaction_count(account.address, "pending")),
        "maxPriorityFeePerGas": tip,
        "maxFeePerGas": int(block.get("baseFeePerGas", 0) or 0) * 2 + tip,
    }
    tx.pop("from", None)
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s, poll_latency=0.05)
    except Exception as exc:
        if type(exc).__name__ == "TimeExhausted":
            raise TransactionTimeoutError(f"no receipt for 0x{bytes(tx_hash).hex()}") from exc
        raise
    if receipt["status"] != 1:
        raise TransactionRevertedError(f"transaction 0x{bytes(tx_hash).hex()} reverted")
    return receipt


class _Wrapper:
    """Common part: the web3 contract object for one deployed address."""

    NAME: ClassVar[str]

    def __init__(self, w3: Web3, address: str) -> None:
        """Wrap the contract at ``address`` with the shipped ABI."""
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.contract: Contract = w3.eth.contract(address=self.address, abi=load_abi(self.NAME))

    @classmethod
    def from_deployment(cls, w3: Web3, deployment: Deployment) -> Self:
        """The instance listed in ``deployment``."""
        return cls(w3, deployment.address(cls.NAME))

    def _read(self, function: str, *args: Any) -> Any:
        return self.contract.functions[function](*args).call()

    def _write(self, function: str, *args: Any, value: int = 0) -> ContractCall:
        data = self.contract.encode_abi(function, args=list(args))
        return ContractCall(
            to=self.address, data=data, value=value, description=f"{self.NAME}.{function}"
        )

    def __repr__(self) -> str:
        """``Name(0x...)``."""
        return f"{self.NAME}({self.address})"


class ShotToken(_Wrapper):
    """The SHOT ERC-20 (with ERC-2612 permit and the emission schedule)."""

    NAME = "ShotToken"

    def name(self) -> str:
        """Token name."""
        return str(self._read("name"))

    def symbol(self) -> str:
        """Token symbol."""
        return str(self._read("symbol"))

    def decimals(self) -> int:
        """Decimals (18)."""
        return int(self._read("decimals"))

    def total_supply(self) -> int:
        """Total supply in wei."""
        return int(self._read("totalSupply"))

    def balance_of(self, account: str) -> int:
        """Balance of ``account`` in wei."""
        return int(self._read("balanceOf", to_checksum_address(account)))

    def allowance(self, owner: str, spender: str) -> int:
        """What ``spender`` may still pull from ``owner``."""
        return int(
            self._read("allowance", to_checksum_address(owner), to_checksum_address(spender))
        )

    def nonces(self, owner: str) -> int:
        """ERC-2612 permit nonce of ``owner``."""
        return int(self._read("nonces", to_checksum_address(owner)))

    def max_supply(self) -> int:
        """Hard cap on total supply."""
        return int(self._read("MAX_SUPPLY"))

    def genesis_supply(self) -> int:
        """Supply minted to the treasury at construction."""
        return int(self._read("genesisSupply"))

    def releasable_emission(self) -> int:
        """Emission the RewardDistributor may mint now."""
        return int(self._read("releasableEmission"))

    def emission_minted(self) -> int:
        """Emission minted so far."""
        return int(self._read("emissionMinted"))

    def reward_distributor(self) -> str:
        """The only address allowed to mint emission."""
        return str(self._read("rewardDistributor"))

    def owner(self) -> str:
        """Current owner."""
        return str(self._read("owner"))

    def transfer(self, to: str, amount: int) -> ContractCall:
        """Transfer ``amount`` to ``to``."""
        return self._write("transfer", to_checksum_address(to), amount)

    def approve(self, spender: str, amount: int) -> ContractCall:
        """Allow ``spender`` to pull ``amount``."""
        return self._write("approve", to_checksum_address(spender), amount)

    def set_reward_distributor(self, distributor: str) -> ContractCall:
        """Set the RewardDistributor (once; owner only)."""
        return self._write("setRewardDistributor", to_checksum_address(distributor))

    def transfer_ownership(self, new_owner: str) -> ContractCall:
        """Start a two-step ownership transfer (the new owner must accept)."""
        return self._write("transferOwnership", to_checksum_address(new_owner))


class ValidatorRegistry(_Wrapper):
    """Staking, stake snapshots, slashing, and the EIP-712 domain of epoch roots."""

    NAME = "ValidatorRegistry"

    def token(self) -> str:
        """The staking token."""
        return str(self._read("token"))

    def min_stake(self) -> int:
        """Smallest positive active stake."""
        return int(self._read("minStake"))

    def unbonding_delay(self) -> int:
        """Seconds between an unstake request and the withdrawal."""
        return int(self._read("unbondingDelay"))

    def reward_distributor(self) -> str:
        """Where slashed stake goes."""
        return str(self._read("rewardDistributor"))

    def epoch_root_typehash(self) -> bytes:
        """``EPOCH_ROOT_TYPEHASH`` as the contract holds it."""
        return bytes(self._read("EPOCH_ROOT_TYPEHASH"))

    def epoch_root_digest(self, epoch_root: EpochRoot) -> bytes:
        """The EIP-712 digest the contract computes for ``epoch_root``."""
        return bytes(
            self._read(
                "epochRootDigest",
                epoch_root.epoch,
                _bytes32(epoch_root.root),
                epoch_root.cumulative_total,
            )
        )

    def verify_epoch_root_signatures(
        self,
        epoch_root: EpochRoot,
        snapshot_block: int,
        signatures: Sequence[EpochRootSignature],
    ) -> tuple[int, int]:
        """``(signed stake, total stake)`` at ``snapshot_block``, as the contract counts it."""
        signed, total = self._read(
            "verifyEpochRootSignatures",
            epoch_root.epoch,
            _bytes32(epoch_root.root),
            epoch_root.cumulative_total,
            snapshot_block,
            [s.signature for s in signatures],
        )
        return int(signed), int(total)

    def stake_of(self, validator: str) -> int:
        """Active stake of ``validator`` now."""
        return int(self._read("stakeOf", to_checksum_address(validator)))

    def stake_at(self, validator: str, block_number: int) -> int:
        """Active stake of ``validator`` at the end of past block ``block_number``."""
        return int(self._read("stakeAt", to_checksum_address(validator), block_number))

    def total_stake(self) -> int:
        """Total active stake now."""
        return int(self._read("totalStake"))

    def total_stake_at(self, block_number: int) -> int:
        """Total active stake at the end of past block ``block_number``."""
        return int(self._read("totalStakeAt", block_number))

    def bonded_stake_of(self, validator: str) -> int:
        """Active plus unbonding stake of ``validator``."""
        return int(self._read("bondedStakeOf", to_checksum_address(validator)))

    def unbonding_of(self, validator: str) -> tuple[int, int]:
        """``(amount, release time)`` of ``validator``'s unbonding stake."""
        amount, release = self._read("unbondingOf", to_checksum_address(validator))
        return int(amount), int(release)

    def is_active_validator(self, validator: str) -> bool:
        """Whether ``validator`` is in the active set."""
        return bool(self._read("isActiveValidator", to_checksum_address(validator)))

    def active_validators(self) -> dict[str, int]:
        """Active validators and their active stake."""
        validators, stakes = self._read("activeValidators")
        return {str(v): int(s) for v, s in zip(validators, stakes, strict=True)}

    def is_slashed(self, validator: str, epoch: int) -> bool:
        """Whether ``validator`` was slashed for ``epoch``."""
        return bool(self._read("isSlashed", to_checksum_address(validator), epoch))

    def stake(self, amount: int) -> ContractCall:
        """Stake ``amount`` (approve the registry on the token first)."""
        return self._write("stake", amount)

    def request_unstake(self, amount: int) -> ContractCall:
        """Move ``amount`` of active stake into unbonding."""
        return self._write("requestUnstake", amount)

    def withdraw(self) -> ContractCall:
        """Withdraw unbonded stake once the delay has passed."""
        return self._write("withdraw")

    def set_reward_distributor(self, distributor: str) -> ContractCall:
        """Set the RewardDistributor (once; owner only)."""
        return self._write("setRewardDistributor", to_checksum_address(distributor))

    def slash(
        self,
        validator: str,
        epoch: int,
        first: tuple[str, int, bytes],
        second: tuple[str, int, bytes],
    ) -> ContractCall:
        """Slash ``validator`` with two ``(root, cumulativeTotal, signature)`` for ``epoch``."""
        return self._write(
            "slash",
            epoch,
            to_checksum_address(validator),
            (_bytes32(first[0]), first[1], first[2]),
            (_bytes32(second[0]), second[1], second[2]),
        )

    def owner(self) -> str:
        """Current owner."""
        return str(self._read("owner"))

    def transfer_ownership(self, new_owner: str) -> ContractCall:
        """Start a two-step ownership transfer (the new owner must accept)."""
        return self._write("transferOwnership", to_checksum_address(new_owner))


class RootStatus(IntEnum):
    """``IRewardDistributor.RootStatus``."""

    NONE = 0
    PENDING = 1
    CLAIMABLE = 2
    SUPERSEDED = 3
    VETOED = 4
    CANCELLED = 5


class StoredEpochRoot(BaseModel):
    """``IRewardDistributor.EpochRoot`` as stored on chain."""

    model_config = ConfigDict(frozen=True)

    root: str
    cumulative_total: int
    snapshot_block: int
    claimable_at: int
    status: RootStatus


class RewardDistributor(_Wrapper):
    """Epoch roots co-signed by validators, and claims against them."""

    NAME = "RewardDistributor"

    def token(self) -> str:
        """The reward token."""
        return str(self._read("token"))

    def registry(self) -> str:
        """The ValidatorRegistry."""
        return str(self._read("registry"))

    def challenge_window(self) -> int:
        """Seconds from submission to claimable."""
        return int(self._read("challengeWindow"))

    def max_snapshot_age(self) -> int:
        """Oldest allowed snapshot block, counted back from the submission block."""
        return int(self._read("maxSnapshotAge"))

    def total_funded(self) -> int:
        """Total SHOT added to the pool."""
        return int(self._read("totalFunded"))

    def total_claimed(self) -> int:
        """Total SHOT paid out."""
        return int(self._read("totalClaimed"))

    def claimed(self, account: str) -> int:
        """Cumulative amount already paid to ``account``."""
        return int(self._read("claimed", to_checksum_address(account)))

    def last_epoch(self) -> int:
        """Highest epoch submitted so far."""
        return int(self._read("lastEpoch"))

    def claimable_epoch(self) -> int:
        """Epoch whose root claims verify against now (0 if none)."""
        return int(self._read("claimableEpoch"))

    def claimable_root(self) -> str:
        """Root claims verify against now (zero if none)."""
        return "0x" + bytes(self._read("claimableRoot")).hex()

    def root_status(self, epoch: int) -> RootStatus:
        """Status of ``epoch``'s root."""
        return RootStatus(int(self._read("rootStatus", epoch)))

    def epoch_root(self, epoch: int) -> StoredEpochRoot:
        """Stored record of ``epoch``'s root."""
        root, total, snapshot, claimable_at, status = self._read("epochRoot", epoch)
        return StoredEpochRoot(
            root="0x" + bytes(root).hex(),
            cumulative_total=int(total),
            snapshot_block=int(snapshot),
            claimable_at=int(claimable_at),
            status=RootStatus(int(status)),
        )

    def paused(self) -> bool:
        """Whether claims and submissions are paused."""
        return bool(self._read("paused"))

    def submit_root(
        self,
        epoch_root: EpochRoot,
        snapshot_block: int,
        signatures: Sequence[EpochRootSignature],
    ) -> ContractCall:
        """Submit ``epoch_root`` with signatures ordered by signer.

        Order them with :func:`~shotbank.chain.eip712.bundle_signatures`.
        """
        return self._write(
            "submitRoot",
            epoch_root.epoch,
            _bytes32(epoch_root.root),
            epoch_root.cumulative_total,
            snapshot_block,
            [s.signature for s in signatures],
        )

    def claim(self, account: str, cumulative_amount: int, proof: Sequence[str]) -> ContractCall:
        """Pay ``account`` up to ``cumulative_amount`` with a Merkle ``proof``."""
        return self._write(
            "claim",
            to_checksum_address(account),
            cumulative_amount,
            [_bytes32(p) for p in proof],
        )

    def fund(self, amount: int) -> ContractCall:
        """Add ``amount`` SHOT to the pool (approve first)."""
        return self._write("fund", amount)

    def draw_emission(self) -> ContractCall:
        """Mint all released emission into the pool."""
        return self._write("drawEmission")

    def veto(self, epoch: int) -> ContractCall:
        """Veto the Pending root of ``epoch`` (guardian or admin)."""
        return self._write("veto", epoch)

    def challenge(
        self,
        epoch: int,
        validator: str,
        conflicting_root: str,
        conflicting_total: int,
        signature_over_pending: bytes,
        signature_over_conflicting: bytes,
    ) -> ContractCall:
        """Cancel a Pending root with proof that one of its signers equivocated."""
        return self._write(
            "challenge",
            epoch,
            to_checksum_address(validator),
            _bytes32(conflicting_root),
            conflicting_total,
            signature_over_pending,
            signature_over_conflicting,
        )

    def pause(self) -> ContractCall:
        """Pause claims and submissions (guardian or admin)."""
        return self._write("pause")

    def unpause(self) -> ContractCall:
        """Resume claims and submissions (guardian or admin)."""
        return self._write("unpause")


class DatasetVersion(BaseModel):
    """``IDatasetMarket.DatasetVersion``."""

    model_config = ConfigDict(frozen=True)

    manifest_hash: str
    price: int
    listed: bool
    terms_uri: str


class DatasetMarket(_Wrapper):
    """Dataset version listings and licence purchases."""

    NAME = "DatasetMarket"

    def lister_role(self) -> bytes:
        """``LISTER_ROLE``."""
        return bytes(self._read("LISTER_ROLE"))

    def has_role(self, role: bytes, account: str) -> bool:
        """Whether ``account`` holds ``role``."""
        return bool(self._read("hasRole", role, to_checksum_address(account)))

    def token(self) -> str:
        """The payment token."""
        return str(self._read("token"))

    def reward_distributor(self) -> str:
        """The RewardDistributor funded with the contributor share."""
        return str(self._read("rewardDistributor"))

    def treasury(self) -> str:
        """Receiver of the treasury share."""
        return str(self._read("treasury"))

    def validator_pool(self) -> str:
        """Receiver of the validators' share."""
        return str(self._read("validatorPool"))

    def revenue_split(self) -> tuple[int, int, int]:
        """``(contributor, validator, treasury)`` bps."""
        c, v, t = self._read("revenueSplit")
        return int(c), int(v), int(t)

    def split_of(self, price: int) -> tuple[int, int, int]:
        """How a sale at ``price`` is split."""
        c, v, t = self._read("splitOf", price)
        return int(c), int(v), int(t)

    def version(self, version_id: str | bytes) -> DatasetVersion:
        """The listed version ``version_id`` (reverts when unknown)."""
        manifest, price, listed, terms = self._read("version", _bytes32(version_id))
        return DatasetVersion(
            manifest_hash="0x" + bytes(manifest).hex(),
            price=int(price),
            listed=bool(listed),
            terms_uri=str(terms),
        )

    def has_licence(self, buyer: str, version_id: str | bytes) -> bool:
        """Whether ``buyer`` holds a licence for ``version_id``."""
        return bool(self._read("hasLicence", to_checksum_address(buyer), _bytes32(version_id)))

    def grant_role(self, role: bytes, account: str) -> ContractCall:
        """Grant ``role`` to ``account`` (admin only)."""
        return self._write("grantRole", role, to_checksum_address(account))

    def list_version(
        self, version_id: str | bytes, manifest_hash: str | bytes, price: int, terms_uri: str
    ) -> ContractCall:
        """List a dataset version (lister only)."""
        return self._write(
            "listVersion", _bytes32(version_id), _bytes32(manifest_hash), price, terms_uri
        )

    def set_version_price(self, version_id: str | bytes, price: int) -> ContractCall:
        """Change a version's price (lister only)."""
        return self._write("setVersionPrice", _bytes32(version_id), price)

    def set_version_listed(self, version_id: str | bytes, listed: bool) -> ContractCall:
        """Put a version on or off sale (lister only)."""
        return self._write("setVersionListed", _bytes32(version_id), listed)

    def purchase(self, version_id: str | bytes, max_price: int) -> ContractCall:
        """Buy a licence for the caller (approve ``max_price`` first)."""
        return self._write("purchase", _bytes32(version_id), max_price)
