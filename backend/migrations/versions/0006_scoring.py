"""Scoring: leases, reports, clip scoring bookkeeping, reputation, accepted embeddings.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from backend.core.db import Wei

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = sa.text("state = 'active'")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "lease",
        sa.Column("id", AutoString(length=32), nullable=False),
        sa.Column("clip_id", AutoString(length=32), nullable=False),
        sa.Column("validator", AutoString(length=42), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("annotation_hash", AutoString(length=66), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["clip_id"], ["clip.id"], name=op.f("fk_lease_clip_id_clip")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lease")),
    )
    with op.batch_alter_table("lease", schema=None) as batch_op:
        batch_op.create_index(
            "uq_lease_active_clip_validator",
            ["clip_id", "validator"],
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        )
        batch_op.create_index("ix_lease_clip_id_state", ["clip_id", "state"], unique=False)
        batch_op.create_index("ix_lease_state_expires_at", ["state", "expires_at"], unique=False)
        batch_op.create_index("ix_lease_validator_state", ["validator", "state"], unique=False)

    op.create_table(
        "report",
        sa.Column("id", AutoString(length=32), nullable=False),
        sa.Column("lease_id", AutoString(length=32), nullable=False),
        sa.Column("clip_id", AutoString(length=32), nullable=False),
        sa.Column("validator", AutoString(length=42), nullable=False),
        sa.Column("outcome", AutoString(length=16), nullable=False),
        sa.Column("quality", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.Column("weights_sha256", AutoString(length=64), nullable=False),
        sa.Column("scores_json", sa.Text(), nullable=False),
        sa.Column("signature", AutoString(length=132), nullable=False),
        sa.Column("stake_wei", Wei(), nullable=False),
        sa.Column("snapshot_block", sa.BigInteger(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("agreed", sa.Boolean(), nullable=True),
        sa.Column("quality_deviation", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["clip_id"], ["clip.id"], name=op.f("fk_report_clip_id_clip")),
        sa.ForeignKeyConstraint(["lease_id"], ["lease.id"], name=op.f("fk_report_lease_id_lease")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report")),
        sa.UniqueConstraint("clip_id", "validator", name="uq_report_clip_id_validator"),
        sa.UniqueConstraint("lease_id", name=op.f("uq_report_lease_id")),
    )
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_validator_created_at_id", ["validator", "created_at", "id"], unique=False
        )

    op.create_table(
        "clip_scoring",
        sa.Column("clip_id", AutoString(length=32), nullable=False),
        sa.Column("first_leased_at", UTCDateTime(), nullable=False),
        sa.Column("consensus_deadline", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["clip_id"], ["clip.id"], name=op.f("fk_clip_scoring_clip_id_clip")
        ),
        sa.PrimaryKeyConstraint("clip_id", name=op.f("pk_clip_scoring")),
    )
    with op.batch_alter_table("clip_scoring", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_clip_scoring_consensus_deadline"), ["consensus_deadline"], unique=False
        )

    op.create_table(
        "validator_reputation",
        sa.Column("address", AutoString(length=42), nullable=False),
        sa.Column("decided_reports", sa.Integer(), nullable=False),
        sa.Column("agreements", sa.Integer(), nullable=False),
        sa.Column("deviation_sum", sa.Float(), nullable=False),
        sa.Column("deviation_count", sa.Integer(), nullable=False),
        sa.Column("last_report_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_validator_reputation")),
    )

    op.create_table(
        "clip_embedding",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("clip_id", AutoString(length=32), nullable=False),
        sa.Column("weights_sha256", AutoString(length=64), nullable=False),
        sa.Column("model", AutoString(length=100), nullable=False),
        sa.Column("embedding", sa.Text(), nullable=False),
        sa.Column("report_id", AutoString(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clip_id"], ["clip.id"], name=op.f("fk_clip_embedding_clip_id_clip")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_clip_embedding")),
        sa.UniqueConstraint("clip_id", "weights_sha256", name="uq_clip_embedding_clip_id_weights"),
    )
    with op.batch_alter_table("clip_embedding", schema=None) as batch_op:
        batch_op.create_index(
            "ix_clip_embedding_weights_sha256_seq", ["weights_sha256", "seq"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("clip_embedding", schema=None) as batch_op:
        batch_op.drop_index("ix_clip_embedding_weights_sha256_seq")
    op.drop_table("clip_embedding")
    op.drop_table("validator_reputation")
    with op.batch_alter_table("clip_scoring", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clip_scoring_consensus_deadline"))
    op.drop_table("clip_scoring")
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_index("ix_report_validator_created_at_id")
    op.drop_table("report")
    with op.batch_alter_table("lease", schema=None) as batch_op:
        batch_op.drop_index("ix_lease_validator_state")
        batch_op.drop_index("ix_lease_state_expires_at")
        batch_op.drop_index("ix_lease_clip_id_state")
        batch_op.drop_index("uq_lease_active_clip_validator")
    op.drop_table("lease")
