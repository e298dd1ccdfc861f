"""The ``/api/v1`` router: every resource's routes, mounted in one place."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.routes import (
    auth,
    clips,
    dataset_files,
    dataset_versions,
    datasets,
    epochs,
    health,
    licences,
    models,
    rewards,
    schemas,
    uploads,
    validator,
    validator_config,
    validators,
    version,
)
from backend.errors import ErrorResponse

API_PREFIX = "/api/v1"

api_router = APIRouter(
    responses={
        422: {"model": ErrorResponse, "description": "Invalid request"},
        500: {"model": ErrorResponse, "description": "Internal error"},
    }
)
api_router.include_router(health.router)
api_router.include_router(version.router)
api_router.include_router(auth.router)
api_router.include_router(uploads.router)
api_router.include_router(clips.router)
api_router.include_router(schemas.router)
api_router.include_router(validator_config.router)
api_router.include_router(validator.router)
api_router.include_router(validators.router)
api_router.include_router(epochs.router)
api_router.include_router(epochs.validator_router)
api_router.include_router(rewards.router)
api_router.include_router(datasets.router)
api_router.include_router(dataset_files.router)
api_router.include_router(dataset_versions.router)
api_router.include_router(licences.router)
api_router.include_router(models.router)
