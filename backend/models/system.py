"""Public schemas of the service's own state: health and version."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

#: ``ok`` when every dependency answers as expected, ``degraded`` otherwise.
HealthState = Literal["ok", "degraded"]

ContractName = Annotated[str, Field(min_length=1, max_length=64)]
Address = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]


class DatabaseHealth(BaseModel):
    """Whether the database answers, and which schema revision it is at."""

    reachable: bool
    revision: str | None = Field(default=None, max_length=64)


class ChainHealth(BaseModel):
    """Whether the chain node answers, and what it reports."""

    reachable: bool
    chain_id: int | None = None
    block: int | None = None


class HealthPublic(BaseModel):
    """Answer of ``GET /api/v1/health``."""

    status: HealthState
    db: DatabaseHealth
    chain: ChainHealth


class VersionPublic(BaseModel):
    """Answer of ``GET /api/v1/version``: what code runs against which contracts."""

    version: str = Field(max_length=64)
    commit: str | None = Field(default=None, max_length=40)
    chain_id: int
    start_block: int | None = None
    contracts: dict[ContractName, Address] = Field(default_factory=dict, max_length=64)
