"""Datasets: definitions, frozen versions and their immutable membership.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "dataset",
        sa.Column("id", AutoString(length=32), nullable=False),
        sa.Column("slug", AutoString(length=64), nullable=False),
        sa.Column("title", AutoString(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("filter_json", sa.Text(), nullable=False),
        sa.Column("licence_terms", sa.Text(), nullable=False),
        sa.Column("created_by", AutoString(length=42), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "dataset_version",
        sa.Column("id", AutoString(length=32), nullable=False),
        sa.Column("dataset_id", AutoString(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version_hash", AutoString(length=64), nullable=True),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("shard_bytes", sa.BigInteger(), nullable=False),
        sa.Column("shard_count", sa.Integer(), nullable=True),
        sa.Column("storage_path", AutoString(length=1024), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", AutoString(length=42), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("ready_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["dataset.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "number", name="uq_dataset_version_number"),
        sa.UniqueConstraint("version_hash"),
    )
    op.create_index(
        op.f("ix_dataset_version_dataset_id"), "dataset_version", ["dataset_id"], unique=False
    )
    op.create_index(op.f("ix_dataset_version_status"), "dataset_version", ["status"], unique=False)
    op.create_table(
        "dataset_version_sample",
        sa.Column("version_id", AutoString(length=32), nullable=False),
        sa.Column("clip_id", AutoString(length=32), nullable=False),
        sa.Column("contributor", AutoString(length=42), nullable=False),
        sa.ForeignKeyConstraint(["clip_id"], ["clip.id"]),
        sa.ForeignKeyConstraint(["version_id"], ["dataset_version.id"]),
        sa.PrimaryKeyConstraint("version_id", "clip_id"),
    )
    op.create_index(
        op.f("ix_dataset_version_sample_contributor"),
        "dataset_version_sample",
        ["contributor"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(
        op.f("ix_dataset_version_sample_contributor"), table_name="dataset_version_sample"
    )
    op.drop_table("dataset_version_sample")
    op.drop_index(op.f("ix_dataset_version_status"), table_name="dataset_version")
    op.drop_index(op.f("ix_dataset_version_dataset_id"), table_name="dataset_version")
    op.drop_table("dataset_version")
    op.drop_table("dataset")
