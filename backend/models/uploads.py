"""Resumable uploads (tus 1.0): one row per upload, bytes in a file under ``upload_path``.

``offset`` is written only after the bytes before it are fsynced, so after a crash the
file may be longer than ``offset`` but never shorter; the extra tail is cut off before
the next write.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, String
from sqlmodel import Field, SQLModel


class UploadState(StrEnum):
    """Where an upload is in its life."""

    ACTIVE = "active"
    COMPLETE = "complete"
    CONSUMED = "consumed"
    """Complete and bound to a clip: its bytes belong to the clip now."""
    TERMINATED = "terminated"
    EXPIRED = "expired"


class Upload(SQLModel, table=True):
    """One tus upload owned by one wallet."""

    __tablename__ = "upload"

    id: str = Field(primary_key=True, max_length=32)
    owner: str = Field(max_length=42, index=True)
    length: int = Field(sa_type=BigInteger, ge=0)
    offset: int = Field(default=0, sa_type=BigInteger, ge=0)
    state: UploadState = Field(default=UploadState.ACTIVE, sa_type=String(16))
    filename: str | None = Field(default=None, max_length=1024)
    metadata_json: str = Field(default="{}", max_length=65_536)
    created_at: datetime = Field(index=True)
    expires_at: datetime
    completed_at: datetime | None = None
    sha256: str | None = Field(default=None, max_length=64)
    cid: str | None = Field(default=None, max_length=128)
