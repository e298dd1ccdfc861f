"""Reward epochs: epochs, their clips, accounts (with proofs), validators and signatures.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from backend.core.db import Wei

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "epoch",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=True),
        sa.Column("distributor", AutoString(length=42), nullable=True),
        sa.Column("rule_json", sa.Text(), nullable=True),
        sa.Column("funding_block", sa.BigInteger(), nullable=True),
        sa.Column("funded_total", Wei(), nullable=True),
        sa.Column("previous_epoch", sa.BigInteger(), nullable=True),
        sa.Column("previous_cumulative_total", Wei(), nullable=True),
        sa.Column("pool", Wei(), nullable=True),
        sa.Column("contributor_pool", Wei(), nullable=True),
        sa.Column("validator_pool", Wei(), nullable=True),
        sa.Column("allocated", Wei(), nullable=True),
        sa.Column("carry", Wei(), nullable=True),
        sa.Column("cumulative_total", Wei(), nullable=True),
        sa.Column("root", AutoString(length=66), nullable=True),
        sa.Column("inputs_sha256", AutoString(length=64), nullable=True),
        sa.Column("accepted_clips", sa.Integer(), nullable=False),
        sa.Column("rejected_clips", sa.Integer(), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("snapshot_block", sa.BigInteger(), nullable=True),
        sa.Column("signed_stake", Wei(), nullable=True),
        sa.Column("total_stake", Wei(), nullable=True),
        sa.Column("submit_attempt", sa.Integer(), nullable=False),
        sa.Column("root_tx_id", sa.Integer(), nullable=True),
        sa.Column("tx_hash", AutoString(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("claimable_at", UTCDateTime(), nullable=True),
        sa.Column("emission_done", sa.Boolean(), nullable=False),
        sa.Column("emission_tx_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["emission_tx_id"], ["tx_outbox.id"], name=op.f("fk_epoch_emission_tx_id_tx_outbox")
        ),
        sa.ForeignKeyConstraint(
            ["root_tx_id"], ["tx_outbox.id"], name=op.f("fk_epoch_root_tx_id_tx_outbox")
        ),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_epoch")),
    )
    with op.batch_alter_table("epoch", schema=None) as batch_op:
        batch_op.create_index("ix_epoch_status_number", ["status", "number"], unique=False)

    op.create_table(
        "epoch_allocation",
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("address", AutoString(length=42), nullable=False),
        sa.Column("contributor_amount", Wei(), nullable=False),
        sa.Column("validator_amount", Wei(), nullable=False),
        sa.Column("amount", Wei(), nullable=False),
        sa.Column("cumulative", Wei(), nullable=False),
        sa.Column("proof_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["epoch"], ["epoch.number"], name=op.f("fk_epoch_allocation_epoch_epoch")
        ),
        sa.PrimaryKeyConstraint("epoch", "address", name=op.f("pk_epoch_allocation")),
    )
    with op.batch_alter_table("epoch_allocation", schema=None) as batch_op:
        batch_op.create_index(
            "ix_epoch_allocation_address_epoch", ["address", "epoch"], unique=False
        )

    op.create_table(
        "epoch_clip",
        sa.Column("clip_id", AutoString(length=32), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("contributor", AutoString(length=42), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("quality_bps", sa.Integer(), nullable=False),
        sa.Column("amount", Wei(), nullable=False),
        sa.ForeignKeyConstraint(["clip_id"], ["clip.id"], name=op.f("fk_epoch_clip_clip_id_clip")),
        sa.ForeignKeyConstraint(
            ["epoch"], ["epoch.number"], name=op.f("fk_epoch_clip_epoch_epoch")
        ),
        sa.PrimaryKeyConstraint("clip_id", name=op.f("pk_epoch_clip")),
    )
    with op.batch_alter_table("epoch_clip", schema=None) as batch_op:
        batch_op.create_index("ix_epoch_clip_epoch_clip_id", ["epoch", "clip_id"], unique=False)

    op.create_table(
        "epoch_document",
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("inputs_json", sa.Text(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["epoch"], ["epoch.number"], name=op.f("fk_epoch_document_epoch_epoch")
        ),
        sa.PrimaryKeyConstraint("epoch", name=op.f("pk_epoch_document")),
    )
    op.create_table(
        "epoch_signature",
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("validator", AutoString(length=42), nullable=False),
        sa.Column("signature", AutoString(length=132), nullable=False),
        sa.Column("stake_wei", Wei(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["epoch"], ["epoch.number"], name=op.f("fk_epoch_signature_epoch_epoch")
        ),
        sa.PrimaryKeyConstraint("epoch", "validator", name=op.f("pk_epoch_signature")),
    )
    op.create_table(
        "epoch_validator",
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("address", AutoString(length=42), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("agreed_reports", sa.Integer(), nullable=False),
        sa.Column("amount", Wei(), nullable=False),
        sa.ForeignKeyConstraint(
            ["epoch"], ["epoch.number"], name=op.f("fk_epoch_validator_epoch_epoch")
        ),
        sa.PrimaryKeyConstraint("epoch", "address", name=op.f("pk_epoch_validator")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("epoch_validator")
    op.drop_table("epoch_signature")
    op.drop_table("epoch_document")
    with op.batch_alter_table("epoch_clip", schema=None) as batch_op:
        batch_op.drop_index("ix_epoch_clip_epoch_clip_id")

    op.drop_table("epoch_clip")
    with op.batch_alter_table("epoch_allocation", schema=None) as batch_op:
        batch_op.drop_index("ix_epoch_allocation_address_epoch")

    op.drop_table("epoch_allocation")
    with op.batch_alter_table("epoch", schema=None) as batch_op:
        batch_op.drop_index("ix_epoch_status_number")

    op.drop_table("epoch")
