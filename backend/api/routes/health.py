"""``GET /health``: is the service and what it depends on working?"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from backend.api.deps import EngineDep, SettingsDep, Web3Dep
from backend.models.system import HealthPublic
from backend.services import system

router = APIRouter(tags=["system"])


@router.get(
    "/health",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": HealthPublic}},
)
def read_health(
    response: Response, settings: SettingsDep, engine: EngineDep, w3: Web3Dep
) -> HealthPublic:
    """Report database and chain health; answers 503 while anything is degraded."""
    result = system.health(engine=engine, w3=w3, expected_chain_id=settings.chain_id)
    if result.status != "ok":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return result
