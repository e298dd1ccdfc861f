"""``GET /version``: which code runs against which contracts."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.deps import SettingsDep
from backend.models.system import VersionPublic
from backend.services import system

router = APIRouter(tags=["system"])


@router.get("/version")
def read_version(settings: SettingsDep) -> VersionPublic:
    """Package version, git commit (if known), chain id and deployed contract addresses."""
    return system.version_info(
        chain_id=settings.chain_id,
        deployments_path=settings.deployments_path,
        commit=settings.git_commit,
    )
