"""Public validator reputation under ``/validators``: stake, reports, agreement rate and
mean quality deviation from consensus (``backend.services.reputation``)."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, status

from backend.api.deps import SessionDep
from backend.errors import ErrorResponse
from backend.models.scoring import MAX_PAGE_SIZE, ValidatorPage, ValidatorView
from backend.services import reputation

#: Default page size of ``GET /validators``.
DEFAULT_PAGE_SIZE: Final = 50

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    status.HTTP_404_NOT_FOUND: {"model": ErrorResponse}
}

router = APIRouter(prefix="/validators", tags=["validators"], responses=_ERRORS)


@router.get("")
def list_validators(
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(min_length=42, max_length=42)] = None,
) -> ValidatorPage:
    """Validators with decided reports, by address; pass ``next_cursor`` on."""
    return reputation.list_validators(db, limit=limit, after=cursor)


@router.get("/{address}")
def read_validator(address: str, db: SessionDep) -> ValidatorView:
    """One validator's stake and reputation (any letter case of the address)."""
    return reputation.validator_view(db, address=address)
