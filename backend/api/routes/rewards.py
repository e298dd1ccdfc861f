"""A wallet's rewards under ``/rewards`` (public; ``backend.services.rewards``)."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.deps import SessionDep
from backend.models.epochs import RewardsView
from backend.services import rewards

# 422 invalid_address is declared for every route by the /api/v1 router.
router = APIRouter(prefix="/rewards", tags=["rewards"])


@router.get("/{address}")
def read_rewards(address: str, db: SessionDep) -> RewardsView:
    """Earned, claimed, claimable and pending amounts of ``address`` (any letter case),
    the claim it can send now (with its Merkle proof) and the epochs it earned in."""
    return rewards.rewards_of(db, address=address[:100])
