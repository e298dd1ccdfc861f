"""Reward epochs under ``/epochs`` (public) and validators' root signatures under
``/validator/epochs`` (``docs/api/rewards.md``).

The decisions live in ``backend.services.epochs``; the submission of roots in
``backend.services.submitter``.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Response, status

from backend.api.deps import CurrentAddress, EngineDep, SessionDep, SettingsDep
from backend.errors import ErrorResponse
from backend.models.epochs import (
    MAX_EPOCH_PAGE,
    CurrentEpochView,
    EpochPage,
    EpochSummary,
    SignatureReceipt,
    SignatureSubmission,
)
from backend.services import epochs

#: Default page size of ``GET /epochs``.
DEFAULT_PAGE_SIZE: Final = 20
#: Largest epoch number accepted in a path (epochs are ``uint64`` on chain).
_MAX_EPOCH: Final = 2**63 - 1

EpochNumber = Annotated[int, Path(ge=1, le=_MAX_EPOCH, description="The epoch number.")]

router = APIRouter(
    prefix="/epochs",
    tags=["epochs"],
    responses={
        status.HTTP_404_NOT_FOUND: {"model": ErrorResponse},
        status.HTTP_409_CONFLICT: {"model": ErrorResponse},
    },
)

_VALIDATOR_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": ErrorResponse}
    for code in (
        status.HTTP_401_UNAUTHORIZED,
        status.HTTP_403_FORBIDDEN,
        status.HTTP_404_NOT_FOUND,
        status.HTTP_409_CONFLICT,
        status.HTTP_503_SERVICE_UNAVAILABLE,
    )
}

validator_router = APIRouter(
    prefix="/validator/epochs", tags=["validator"], responses=_VALIDATOR_ERRORS
)


@router.get("")
def list_epochs(
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_EPOCH_PAGE)] = DEFAULT_PAGE_SIZE,
    before: Annotated[int | None, Query(ge=1, le=_MAX_EPOCH)] = None,
) -> EpochPage:
    """Closed epochs, newest first; pass ``next_before`` as ``before`` for the next page."""
    return epochs.list_epochs(db, limit=limit, before=before)


@router.get("/current")
def read_current_epoch(engine: EngineDep, settings: SettingsDep) -> CurrentEpochView:
    """The open epoch: its number, when it opened and when it is scheduled to close."""
    return epochs.current_epoch(engine, settings=settings)


@router.get("/{number}")
def read_epoch(number: EpochNumber, db: SessionDep) -> EpochSummary:
    """A closed epoch: rule, pool, totals, root, signatures and submission."""
    return epochs.epoch_summary(db, number=number)


@router.get(
    "/{number}/inputs",
    response_class=Response,
    responses={
        status.HTTP_200_OK: {
            "content": {"application/json": {}},
            "description": "The epoch's EpochInputs, exactly as allocated, plus its result",
        }
    },
)
def read_epoch_inputs(number: EpochNumber, db: SessionDep) -> Response:
    """What ``shotbank.rewards.allocate`` took for this epoch (its canonical JSON, whose
    SHA-256 is ``inputs_sha256``) plus ``"result"``: recompute and compare."""
    body = epochs.epoch_inputs_json(db, number=number)
    return Response(content=body, media_type="application/json")


@validator_router.post("/{number}/signatures", status_code=status.HTTP_201_CREATED)
def submit_signature(
    number: EpochNumber,
    body: SignatureSubmission,
    address: CurrentAddress,
    db: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> SignatureReceipt:
    """Co-sign the epoch's published root (EIP-712 ``EpochRoot``); 200 with the same
    answer for a repeat of a stored signature."""
    receipt, stored = epochs.submit_signature(
        db, settings=settings, validator=address, number=number, body=body
    )
    if not stored:
        response.status_code = status.HTTP_200_OK
    return receipt
