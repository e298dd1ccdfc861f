"""Validator stake snapshot: stakes, their events, their source, the indexer's checkpoint.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from backend.core.db import Wei

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "validator_stake",
        sa.Column("address", AutoString(length=42), nullable=False),
        sa.Column("bonded_wei", Wei(), nullable=False),
        sa.Column("unbonding_wei", Wei(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_validator_stake")),
    )
    op.create_table(
        "validator_stake_event",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("address", AutoString(length=42), nullable=False),
        sa.Column("event", AutoString(length=32), nullable=False),
        sa.Column("amount_wei", Wei(), nullable=False),
        sa.Column("bonded_wei", Wei(), nullable=False),
        sa.Column("unbonding_wei", Wei(), nullable=False),
        sa.Column("block_hash", AutoString(length=66), nullable=False),
        sa.Column("transaction_hash", AutoString(length=66), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index", name=op.f("pk_validator_stake_event")),
    )
    with op.batch_alter_table("validator_stake_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_validator_stake_event_address"), ["address"], unique=False
        )
    op.create_table(
        "stake_source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("registry_address", AutoString(length=42), nullable=False),
        sa.Column("start_block", sa.BigInteger(), nullable=False),
        sa.Column("min_stake_wei", Wei(), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("indexer", AutoString(length=128), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stake_source")),
    )
    op.create_table(
        "chain_checkpoint",
        sa.Column("name", AutoString(length=128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", AutoString(length=66), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_chain_checkpoint")),
    )
    op.create_table(
        "chain_block",
        sa.Column("name", AutoString(length=128), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", AutoString(length=66), nullable=False),
        sa.PrimaryKeyConstraint("name", "block_number", name=op.f("pk_chain_block")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("chain_block")
    op.drop_table("chain_checkpoint")
    op.drop_table("stake_source")
    with op.batch_alter_table("validator_stake_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_validator_stake_event_address"))
    op.drop_table("validator_stake_event")
    op.drop_table("validator_stake")
