"""Blob quarantine: damaged blobs recorded in the database instead of process memory.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "blob_quarantine",
        sa.Column("cid", AutoString(length=128), nullable=False),
        sa.Column("reason", AutoString(length=512), nullable=False),
        sa.Column("detected_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("cid"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("blob_quarantine")
