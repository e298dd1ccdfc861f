"""Licences bought on the DatasetMarket under ``/licences`` (``docs/api/datasets.md``).

``GET /licences`` lists the caller's own (SIWE session or signed request);
``GET /licences/{address}`` anyone's, without authentication: purchases are public on
chain anyway. A licence appears once its purchase is ``SHOTBANK_CHAIN_CONFIRMATIONS``
blocks deep (``backend.services.marketsync``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, status

from backend.api.deps import RequesterDep, SessionDep
from backend.errors import ErrorResponse
from backend.models.licences import LicenceList
from backend.services import licences

Address = Annotated[
    str, Path(pattern=r"^0x[0-9a-fA-F]{40}$", description="A wallet address (any case).")
]

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    status.HTTP_401_UNAUTHORIZED: {"model": ErrorResponse},
}

router = APIRouter(prefix="/licences", tags=["licences"], responses=_ERRORS)


@router.get("")
def read_my_licences(db: SessionDep, caller: RequesterDep) -> LicenceList:
    """The caller's licences, newest first (at most 1000)."""
    return licences.licences_of(db, address=caller)


@router.get("/{address}")
def read_licences(address: Address, db: SessionDep) -> LicenceList:
    """The licences of ``address``, newest first (at most 1000); public."""
    return licences.licences_of(db, address=address)
