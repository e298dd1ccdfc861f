"""Registered fine-tuned models and their lineage under ``/models`` (``docs/api/models.md``).

Registering (``POST``) needs a SIWE session or a signed request (``Authorization:
Shotbank-Signature ...``, as for shard downloads) whose address holds a licence for the
run's dataset version (operators exempt); the body is the run record (``run.json``), at most
:data:`MODEL_MAX_BODY_BYTES` (413 above, from ``backend.api.limits``). Reading models and
lineage is public: lineage is what lets contributors see the models their clips trained.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Response, status

from backend.api.deps import RequesterDep, SessionDep, SettingsDep
from backend.errors import ErrorResponse
from backend.models.modelruns import (
    DEFAULT_LINEAGE_LIMIT,
    DEFAULT_MODEL_PAGE,
    MAX_LINEAGE_LIMIT,
    MAX_MODEL_PAGE,
    LineageView,
    ModelPage,
    ModelView,
)
from backend.services import modelruns
from shotbank.runs import MAX_RUN_RECORD_BYTES, SHA256_PATTERN, RunRecord

__all__ = ["MODEL_MAX_BODY_BYTES", "router"]

#: Largest body of ``POST /models`` (a run record; the default cap is smaller).
MODEL_MAX_BODY_BYTES: Final = MAX_RUN_RECORD_BYTES
_ADDRESS_PATTERN: Final = r"^0x[0-9a-fA-F]{40}$"

ModelHash = Annotated[
    str, Path(pattern=SHA256_PATTERN, description="The model: its weights' SHA-256.")
]

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": ErrorResponse}
    for code in (
        status.HTTP_401_UNAUTHORIZED,
        status.HTTP_402_PAYMENT_REQUIRED,
        status.HTTP_404_NOT_FOUND,
        status.HTTP_409_CONFLICT,
        status.HTTP_413_CONTENT_TOO_LARGE,
    )
}

router = APIRouter(prefix="/models", tags=["models"], responses=_ERRORS)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={status.HTTP_200_OK: {"model": ModelView, "description": "Registered before"}},
)
def register_model(
    record: RunRecord,
    response: Response,
    db: SessionDep,
    settings: SettingsDep,
    caller: RequesterDep,
) -> ModelView:
    """Register a fine-tuning run's model (201; 200 when this very record was registered
    by the caller before)."""
    registered = modelruns.register_model(
        db, settings, record=record, registrant=caller, now=datetime.now(UTC)
    )
    if not registered.created:
        response.status_code = status.HTTP_200_OK
    return registered.view


@router.get("")
def list_models(
    db: SessionDep,
    registrant: Annotated[str | None, Query(pattern=_ADDRESS_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_MODEL_PAGE)] = DEFAULT_MODEL_PAGE,
    before: Annotated[str | None, Query(pattern=SHA256_PATTERN)] = None,
) -> ModelPage:
    """Registered models, newest first; pass ``next_before`` as ``before`` for more."""
    return modelruns.list_models(db, limit=limit, registrant=registrant, before=before)


@router.get("/{model_hash}")
def read_model(model_hash: ModelHash, db: SessionDep) -> ModelView:
    """A registered model: base model, hyperparameters, metrics, output, versions."""
    return modelruns.model_view(db, model_hash=model_hash)


@router.get("/{model_hash}/lineage")
def read_lineage(
    model_hash: ModelHash,
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LINEAGE_LIMIT)] = DEFAULT_LINEAGE_LIMIT,
) -> LineageView:
    """The dataset versions and contributors (with sample counts) behind a model."""
    return modelruns.lineage(db, model_hash=model_hash, limit=limit)
