"""Reward chain plumbing: the transaction outbox and the RewardDistributor's indexed events.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from backend.core.db import Wei

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "reward_claim",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("account", AutoString(length=42), nullable=False),
        sa.Column("amount", Wei(), nullable=False),
        sa.Column("block_hash", AutoString(length=66), nullable=False),
        sa.Column("tx_hash", AutoString(length=66), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index", name=op.f("pk_reward_claim")),
    )
    with op.batch_alter_table("reward_claim", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reward_claim_account"), ["account"], unique=False)

    op.create_table(
        "reward_funding",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("source", AutoString(length=42), nullable=False),
        sa.Column("amount", Wei(), nullable=False),
        sa.Column("total_funded", Wei(), nullable=False),
        sa.Column("block_hash", AutoString(length=66), nullable=False),
        sa.Column("tx_hash", AutoString(length=66), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index", name=op.f("pk_reward_funding")),
    )
    op.create_table(
        "reward_root",
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("root", AutoString(length=66), nullable=False),
        sa.Column("cumulative_total", Wei(), nullable=False),
        sa.Column("snapshot_block", sa.BigInteger(), nullable=False),
        sa.Column("claimable_at", sa.BigInteger(), nullable=False),
        sa.Column("signed_stake", Wei(), nullable=False),
        sa.Column("total_stake", Wei(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", AutoString(length=66), nullable=False),
        sa.Column("tx_hash", AutoString(length=66), nullable=False),
        sa.Column("cancelled", sa.String(length=16), nullable=True),
        sa.Column("cancelled_by", AutoString(length=42), nullable=True),
        sa.Column("challenged_validator", AutoString(length=42), nullable=True),
        sa.Column("cancelled_block", sa.BigInteger(), nullable=True),
        sa.Column("cancelled_log_index", sa.BigInteger(), nullable=True),
        sa.Column("cancelled_tx_hash", AutoString(length=66), nullable=True),
        sa.PrimaryKeyConstraint("epoch", name=op.f("pk_reward_root")),
    )
    with op.batch_alter_table("reward_root", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reward_root_block_number"), ["block_number"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reward_root_cancelled_block"), ["cancelled_block"], unique=False
        )

    op.create_table(
        "reward_source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("distributor_address", AutoString(length=42), nullable=False),
        sa.Column("start_block", sa.BigInteger(), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("indexer", AutoString(length=128), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_source")),
    )
    op.create_table(
        "tx_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("sender", AutoString(length=42), nullable=False),
        sa.Column("key", AutoString(length=200), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("to_address", AutoString(length=42), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("value", Wei(), nullable=False),
        sa.Column("gas", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("last_sent_at", sa.Float(), nullable=True),
        sa.Column("mined_hash", AutoString(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", AutoString(length=66), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tx_outbox")),
        sa.UniqueConstraint("chain_id", "sender", "key", name="uq_tx_outbox_chain_id_sender_key"),
        sa.UniqueConstraint(
            "chain_id", "sender", "nonce", name="uq_tx_outbox_chain_id_sender_nonce"
        ),
    )
    with op.batch_alter_table("tx_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tx_outbox_chain_id_sender_status_nonce",
            ["chain_id", "sender", "status", "nonce"],
            unique=False,
        )

    op.create_table(
        "tx_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.Integer(), nullable=False),
        sa.Column("tx_hash", AutoString(length=66), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("max_fee_per_gas", Wei(), nullable=False),
        sa.Column("max_priority_fee_per_gas", Wei(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tx_id"], ["tx_outbox.id"], name=op.f("fk_tx_attempt_tx_id_tx_outbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tx_attempt")),
        sa.UniqueConstraint("tx_hash", name=op.f("uq_tx_attempt_tx_hash")),
    )
    with op.batch_alter_table("tx_attempt", schema=None) as batch_op:
        batch_op.create_index("ix_tx_attempt_tx_id_id", ["tx_id", "id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("tx_attempt", schema=None) as batch_op:
        batch_op.drop_index("ix_tx_attempt_tx_id_id")

    op.drop_table("tx_attempt")
    with op.batch_alter_table("tx_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_tx_outbox_chain_id_sender_status_nonce")

    op.drop_table("tx_outbox")
    op.drop_table("reward_source")
    with op.batch_alter_table("reward_root", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reward_root_cancelled_block"))
        batch_op.drop_index(batch_op.f("ix_reward_root_block_number"))

    op.drop_table("reward_root")
    op.drop_table("reward_funding")
    with op.batch_alter_table("reward_claim", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reward_claim_account"))

    op.drop_table("reward_claim")
