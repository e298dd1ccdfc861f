"""Dataset licences and listings from the DatasetMarket's events.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from backend.core.db import Wei

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "dataset_licence",
        sa.Column("tx_hash", AutoString(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("version_id", AutoString(length=66), nullable=False),
        sa.Column("buyer", AutoString(length=42), nullable=False),
        sa.Column("price", Wei(), nullable=False),
        sa.Column("contributor_share", Wei(), nullable=False),
        sa.Column("validator_share", Wei(), nullable=False),
        sa.Column("treasury_share", Wei(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", AutoString(length=66), nullable=False),
        sa.PrimaryKeyConstraint("tx_hash", "log_index", name=op.f("pk_dataset_licence")),
    )
    with op.batch_alter_table("dataset_licence", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dataset_licence_block_number"), ["block_number"], unique=False
        )
        batch_op.create_index(
            "ix_dataset_licence_version_id_buyer", ["version_id", "buyer"], unique=False
        )
    op.create_table(
        "dataset_listing",
        sa.Column("version_id", AutoString(length=66), nullable=False),
        sa.Column("manifest_hash", AutoString(length=66), nullable=False),
        sa.Column("price", Wei(), nullable=False),
        sa.Column("terms_uri", sa.Text(), nullable=False),
        sa.Column("lister", AutoString(length=42), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", AutoString(length=66), nullable=False),
        sa.Column("tx_hash", AutoString(length=66), nullable=False),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_dataset_listing")),
    )
    with op.batch_alter_table("dataset_listing", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dataset_listing_block_number"), ["block_number"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("dataset_listing", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_listing_block_number"))
    op.drop_table("dataset_listing")
    with op.batch_alter_table("dataset_licence", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_licence_version_id_buyer")
        batch_op.drop_index(batch_op.f("ix_dataset_licence_block_number"))
    op.drop_table("dataset_licence")
