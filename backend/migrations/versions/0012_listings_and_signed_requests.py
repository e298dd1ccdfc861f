"""Version prices and on-chain listing state, listing changes, signed-request nonces.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from backend.core.db import Wei

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.add_column(sa.Column("price", Wei(), nullable=True))
    with op.batch_alter_table("dataset_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("price", Wei(), nullable=True))
        batch_op.add_column(sa.Column("listing_tx_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("listing_error", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("price_changes", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("listing_changes", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("dataset_version", schema=None) as batch_op:
        # The defaults only filled the existing rows; the models always set the values.
        batch_op.alter_column("price_changes", server_default=None)
        batch_op.alter_column("listing_changes", server_default=None)
    with op.batch_alter_table("dataset_listing", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("listed", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("dataset_listing", schema=None) as batch_op:
        batch_op.alter_column("listed", server_default=None)
    change = op.create_table(
        "dataset_listing_change",
        sa.Column("tx_hash", AutoString(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("version_id", AutoString(length=66), nullable=False),
        sa.Column("event", AutoString(length=32), nullable=False),
        sa.Column("price", Wei(), nullable=True),
        sa.Column("listed", sa.Boolean(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", AutoString(length=66), nullable=False),
        sa.PrimaryKeyConstraint("tx_hash", "log_index", name=op.f("pk_dataset_listing_change")),
    )
    with op.batch_alter_table("dataset_listing_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dataset_listing_change_block_number"), ["block_number"], unique=False
        )
        batch_op.create_index("ix_dataset_listing_change_version_id", ["version_id"], unique=False)
    # Listings indexed before this revision: their VersionListed is their first change,
    # so a later rollback of a price change can fall back to it.
    listing = sa.table(
        "dataset_listing",
        sa.column("tx_hash"),
        sa.column("log_index"),
        sa.column("version_id"),
        sa.column("price"),
        sa.column("block_number"),
        sa.column("block_hash"),
    )
    op.execute(
        change.insert().from_select(
            [
                "tx_hash",
                "log_index",
                "version_id",
                "event",
                "price",
                "listed",
                "block_number",
                "block_hash",
            ],
            sa.select(
                listing.c.tx_hash,
                listing.c.log_index,
                listing.c.version_id,
                sa.literal("VersionListed", AutoString(length=32)),
                listing.c.price,
                sa.true(),
                listing.c.block_number,
                listing.c.block_hash,
            ),
        )
    )
    op.create_table(
        "request_nonce",
        sa.Column("address", AutoString(length=42), nullable=False),
        sa.Column("nonce", AutoString(length=66), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("address", "nonce", name=op.f("pk_request_nonce")),
    )
    with op.batch_alter_table("request_nonce", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_request_nonce_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("request_nonce", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_nonce_expires_at"))
    op.drop_table("request_nonce")
    with op.batch_alter_table("dataset_listing_change", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_listing_change_version_id")
        batch_op.drop_index(batch_op.f("ix_dataset_listing_change_block_number"))
    op.drop_table("dataset_listing_change")
    with op.batch_alter_table("dataset_listing", schema=None) as batch_op:
        batch_op.drop_column("listed")
    with op.batch_alter_table("dataset_version", schema=None) as batch_op:
        batch_op.drop_column("listing_changes")
        batch_op.drop_column("price_changes")
        batch_op.drop_column("listing_error")
        batch_op.drop_column("listing_tx_id")
        batch_op.drop_column("price")
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.drop_column("price")
