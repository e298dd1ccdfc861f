"""Validator routes under ``/validator``: leases, reports and accepted clips' embeddings.

The contract is ``docs/api/validator.md``; the decisions (and why concurrent requests
cannot break them) are in ``backend.services.leases``, ``reports`` and ``consensus``.
``GET /validator/config`` lives in ``validator_config``.

Leasing work and reading embeddings need an active stake in the snapshot (403
``validator_not_staked`` otherwise); report intake checks the stake itself, after the
signature, in the contract's order. Reading one's own leases and reports and returning
a lease need only a session: a validator that just unstaked can still shut down
cleanly.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, Query, Response, status

from backend.api.deps import CurrentAddress, SessionDep, SettingsDep
from backend.errors import ErrorResponse
from backend.models.scoring import (
    ID_PATTERN,
    MAX_EMBEDDING_PAGE,
    MAX_JOBS_LIMIT,
    MAX_PAGE_SIZE,
    SHA256_PATTERN,
    EmbeddingPage,
    LeaseBatch,
    LeaseRequest,
    OwnReportPage,
    ReportReceipt,
    ReportSubmission,
)
from backend.models.stakes import StakeSnapshot
from backend.services import consensus, leases, reports, stakes

#: Default page sizes.
DEFAULT_PAGE_SIZE: Final = 20
DEFAULT_EMBEDDING_PAGE: Final = 500

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": ErrorResponse}
    for code in (
        status.HTTP_401_UNAUTHORIZED,
        status.HTTP_403_FORBIDDEN,
        status.HTTP_404_NOT_FOUND,
        status.HTTP_409_CONFLICT,
        status.HTTP_503_SERVICE_UNAVAILABLE,
    )
}

router = APIRouter(prefix="/validator", tags=["validator"], responses=_ERRORS)


def current_validator(address: CurrentAddress, db: SessionDep) -> StakeSnapshot:
    """The signed-in address's stake, if it is an active validator (403 otherwise)."""
    return stakes.require_validator(db, address)


CurrentValidator = Annotated[StakeSnapshot, Depends(current_validator)]


@router.post("/leases")
def lease_jobs(
    validator: CurrentValidator,
    db: SessionDep,
    settings: SettingsDep,
    body: Annotated[LeaseRequest | None, Body()] = None,
) -> LeaseBatch:
    """Lease up to ``max_jobs`` clips to score (at most ``max_jobs_per_lease``), drawn at
    random among the oldest eligible ones; none means nothing to do before
    ``retry_after_s``."""
    wanted = (body or LeaseRequest()).max_jobs
    issued = leases.issue_leases(
        db, settings=settings, validator=validator.address, max_jobs=wanted
    )
    return LeaseBatch(leases=issued, retry_after_s=None if issued else settings.lease_retry_after_s)


@router.get("/leases")
def list_leases(address: CurrentAddress, db: SessionDep) -> LeaseBatch:
    """The caller's live leases of clips still undecided (a restarted node resumes them)."""
    return LeaseBatch(leases=leases.active_leases(db, validator=address, limit=MAX_JOBS_LIMIT))


@router.delete("/leases/{lease_id}", status_code=status.HTTP_204_NO_CONTENT)
def return_lease(lease_id: str, address: CurrentAddress, db: SessionDep) -> Response:
    """Give an unfinished lease back (idempotent); a reported one is 409 ``lease_reported``."""
    leases.return_lease(db, validator=address, lease_id=lease_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/reports", status_code=status.HTTP_201_CREATED)
def submit_report(
    body: ReportSubmission, address: CurrentAddress, db: SessionDep, settings: SettingsDep
) -> ReportReceipt:
    """Submit a signed report on a leased clip; checked in the contract's order."""
    return reports.submit_report(db, settings=settings, validator=address, body=body)


@router.get("/reports")
def list_reports(
    address: CurrentAddress,
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=32)] = None,
) -> OwnReportPage:
    """The caller's own reports, newest first (others' stay hidden until decided)."""
    return reports.own_reports(db, validator=address, limit=limit, cursor=cursor)


@router.get("/embeddings")
def list_embeddings(
    _validator: CurrentValidator,
    db: SessionDep,
    weights_sha256: Annotated[str, Query(pattern=SHA256_PATTERN, max_length=64)],
    after: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", max_length=18)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_EMBEDDING_PAGE)] = DEFAULT_EMBEDDING_PAGE,
) -> EmbeddingPage:
    """Accepted clips' embeddings under the model weights ``weights_sha256``, in
    acceptance order after cursor ``after``, for the validator's near-duplicate index."""
    return consensus.embeddings_page(
        db,
        weights_sha256=weights_sha256,
        limit=limit,
        after=int(after) if after is not None else None,
    )
