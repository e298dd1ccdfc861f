"""The node's own stake, read from the ValidatorRegistry on chain before it leases anything.

The backend decides with its stake snapshot (confirmed events); the node asks the chain
directly, so an operator who forgot to stake hears it at start-up, with what to do,
instead of from a stream of 403s.
"""

from __future__ import annotations

from dataclasses import dataclass

from scoring.node.errors import NotStakedError
from shotbank.chain.contracts import ValidatorRegistry
from shotbank.chain.rpc import RetryPolicy, connect

__all__ = ["StakeStatus", "read_stake", "require_stake"]


@dataclass(frozen=True, slots=True)
class StakeStatus:
    """One address's standing in the registry, read at ``block``."""

    address: str
    registry: str
    chain_id: int
    block: int
    active_stake_wei: int
    bonded_stake_wei: int
    min_stake_wei: int
    active: bool

    @property
    def staked(self) -> bool:
        """Whether the address is an active validator with at least the minimum stake."""
        return self.active and self.active_stake_wei >= self.min_stake_wei > 0


def read_stake(
    rpc_url: str, *, chain_id: int, registry: str, address: str, timeout_s: float = 10.0
) -> StakeStatus:
    """Read ``address``'s stake from the registry at ``registry`` on ``chain_id``.

    Raises the SDK's chain errors: :class:`~shotbank.chain.errors.NodeUnavailableError`
    (RPC unreachable), :class:`~shotbank.chain.errors.ChainIdMismatchError` (the RPC
    serves another chain than the backend's).
    """
    w3 = connect(
        rpc_url, expected_chain_id=chain_id, policy=RetryPolicy(attempts=3, timeout_s=timeout_s)
    )
    contract = ValidatorRegistry(w3, registry)
    return StakeStatus(
        address=address,
        registry=contract.address,
        chain_id=chain_id,
        block=int(w3.eth.block_number),
        active_stake_wei=contract.stake_of(address),
        bonded_stake_wei=contract.bonded_stake_of(address),
        min_stake_wei=contract.min_stake(),
        active=contract.is_active_validator(address),
    )


def _shot(wei: int) -> str:
    whole, fraction = divmod(wei, 10**18)
    return f"{whole:,}" + (f".{fraction:018d}".rstrip("0") if fraction else "")


def require_stake(status: StakeStatus) -> StakeStatus:
    """``status`` when staked; else :class:`NotStakedError` saying what to do."""
    if status.staked:
        return status
    unbonding = status.bonded_stake_wei - status.active_stake_wei
    detail = f"active stake {_shot(status.active_stake_wei)} SHOT"
    if unbonding:
        detail += f", {_shot(unbonding)} SHOT unbonding (no longer counts)"
    raise NotStakedError(
        f"{status.address} is not an active validator in ValidatorRegistry {status.registry} "
        f"(chain {status.chain_id}, block {status.block}: {detail}); stake at least "
        f"{_shot(status.min_stake_wei)} SHOT with ValidatorRegistry.stake(amount) (approve "
        "the registry on ShotToken first), wait for the backend to confirm it, then start "
        "the node again"
    )
