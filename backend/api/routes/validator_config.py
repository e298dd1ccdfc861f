"""``GET /validator/config``: what a validator node needs before it leases work."""

from __future__ import annotations

from fastapi import APIRouter, status

from backend.api.deps import SessionDep, SettingsDep, Web3Dep
from backend.errors import ErrorResponse
from backend.models.stakes import ValidatorConfigPublic
from backend.services import stakes

router = APIRouter(tags=["validator"])


@router.get(
    "/validator/config",
    responses={
        status.HTTP_503_SERVICE_UNAVAILABLE: {
            "model": ErrorResponse,
            "description": "Nothing deployed yet, or the chain node did not answer",
        }
    },
)
def read_validator_config(
    db: SessionDep, settings: SettingsDep, w3: Web3Dep
) -> ValidatorConfigPublic:
    """Chain, ValidatorRegistry (the reports' EIP-712 verifying contract), minimum stake,
    the stake snapshot's block, quorum and lease terms. Public."""
    return stakes.validator_config(db, settings=settings, w3=w3)
