"""Sign-in (SIWE nonces, sessions) and resumable uploads (tus).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 19:19:07.154582
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "auth_nonce",
        sa.Column("nonce", AutoString(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("consumed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("nonce"),
    )
    with op.batch_alter_table("auth_nonce", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_nonce_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "auth_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", AutoString(length=64), nullable=False),
        sa.Column("address", AutoString(length=42), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_session_address"), ["address"], unique=False)

    op.create_table(
        "upload",
        sa.Column("id", AutoString(length=32), nullable=False),
        sa.Column("owner", AutoString(length=42), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("filename", AutoString(length=1024), nullable=True),
        sa.Column("metadata_json", AutoString(length=65536), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("sha256", AutoString(length=64), nullable=True),
        sa.Column("cid", AutoString(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("upload", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_upload_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_upload_owner"), ["owner"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("upload", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upload_owner"))
        batch_op.drop_index(batch_op.f("ix_upload_created_at"))

    op.drop_table("upload")
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_session_address"))

    op.drop_table("auth_session")
    with op.batch_alter_table("auth_nonce", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_nonce_expires_at"))

    op.drop_table("auth_nonce")
