"""Blob-store state kept in the database: blobs found damaged (the quarantine).

A row means: the stored bytes of ``cid`` stopped hashing to ``cid``; the gateway refuses
to serve it until an operator has repaired or replaced the file and released the row
(``python -m backend.admin quarantine release CID``).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class BlobQuarantine(SQLModel, table=True):
    """One damaged blob, by canonical (base32) CID."""

    __tablename__ = "blob_quarantine"

    cid: str = Field(primary_key=True, max_length=128)
    reason: str = Field(max_length=512)
    detected_at: datetime
