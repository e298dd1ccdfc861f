"""Clips: submissions binding a complete upload to an annotation.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 19:55:18.728273
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from backend.core.db import Wei

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "clip",
        sa.Column("id", AutoString(length=32), nullable=False),
        sa.Column("owner", AutoString(length=42), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reasons_json", sa.Text(), nullable=False),
        sa.Column("upload_id", AutoString(length=32), nullable=False),
        sa.Column("filename", AutoString(length=1024), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", AutoString(length=64), nullable=False),
        sa.Column("content_key", AutoString(length=64), nullable=True),
        sa.Column("cid", AutoString(length=128), nullable=False),
        sa.Column("annotation_json", sa.Text(), nullable=False),
        sa.Column("annotation_hash", AutoString(length=66), nullable=False),
        sa.Column("media_json", sa.Text(), nullable=True),
        sa.Column("poster_cid", AutoString(length=128), nullable=True),
        sa.Column("idempotency_key", AutoString(length=128), nullable=True),
        sa.Column("request_hash", AutoString(length=64), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("scores_json", sa.Text(), nullable=True),
        sa.Column("reward_wei", Wei(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clip")),
        sa.UniqueConstraint("content_key", name=op.f("uq_clip_content_key")),
        sa.UniqueConstraint("owner", "idempotency_key", name="uq_clip_owner_idempotency_key"),
        sa.UniqueConstraint("upload_id", name=op.f("uq_clip_upload_id")),
    )
    with op.batch_alter_table("clip", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clip_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_clip_owner"), ["owner"], unique=False)
        batch_op.create_index(
            "ix_clip_owner_created_at_id", ["owner", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_clip_owner_status_created_at", ["owner", "status", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_clip_sha256"), ["sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_clip_status"), ["status"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("clip", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clip_status"))
        batch_op.drop_index(batch_op.f("ix_clip_sha256"))
        batch_op.drop_index("ix_clip_owner_status_created_at")
        batch_op.drop_index("ix_clip_owner_created_at_id")
        batch_op.drop_index(batch_op.f("ix_clip_owner"))
        batch_op.drop_index(batch_op.f("ix_clip_created_at"))

    op.drop_table("clip")
