"""Registered fine-tuning runs (models) and the dataset versions they were trained on.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "model_run",
        sa.Column("hash", AutoString(length=64), nullable=False),
        sa.Column("registrant", AutoString(length=42), nullable=False),
        sa.Column("record_json", sa.Text(), nullable=False),
        sa.Column("summary_json", sa.Text(), nullable=False),
        sa.Column("base_model_name", AutoString(length=100), nullable=False),
        sa.Column("base_model_tag", AutoString(length=100), nullable=True),
        sa.Column("base_weights_sha256", AutoString(length=64), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_model_run")),
    )
    with op.batch_alter_table("model_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_run_base_weights_sha256"), ["base_weights_sha256"], unique=False
        )
        batch_op.create_index(
            "ix_model_run_registered_at_hash", ["registered_at", "hash"], unique=False
        )
        batch_op.create_index(
            "ix_model_run_registrant_registered_at",
            ["registrant", "registered_at", "hash"],
            unique=False,
        )
    op.create_table(
        "model_run_version",
        sa.Column("model_hash", AutoString(length=64), nullable=False),
        sa.Column("version_id", AutoString(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_hash"],
            ["model_run.hash"],
            name=op.f("fk_model_run_version_model_hash_model_run"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_version.id"],
            name=op.f("fk_model_run_version_version_id_dataset_version"),
        ),
        sa.PrimaryKeyConstraint("model_hash", "version_id", name=op.f("pk_model_run_version")),
    )
    with op.batch_alter_table("model_run_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_run_version_version_id"), ["version_id"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("model_run_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_run_version_version_id"))
    op.drop_table("model_run_version")
    with op.batch_alter_table("model_run", schema=None) as batch_op:
        batch_op.drop_index("ix_model_run_registrant_registered_at")
        batch_op.drop_index("ix_model_run_registered_at_hash")
        batch_op.drop_index(batch_op.f("ix_model_run_base_weights_sha256"))
    op.drop_table("model_run")
