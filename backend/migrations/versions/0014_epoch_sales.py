"""Epoch sales (rule shotbank-rewards/2): what dataset sales gave each epoch and account.

``epoch.sales_pool`` and ``epoch.sales_allocated`` are the result's totals of the
epoch's dataset sales, ``epoch_allocation.sales_amount`` an account's part of them.
All nullable: epochs closed before this revision (rule /1) keep NULL, which reads as 0
(rule /1 earmarks nothing).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.core.db import Wei

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("epoch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sales_pool", Wei(), nullable=True))
        batch_op.add_column(sa.Column("sales_allocated", Wei(), nullable=True))
    with op.batch_alter_table("epoch_allocation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sales_amount", Wei(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("epoch_allocation", schema=None) as batch_op:
        batch_op.drop_column("sales_amount")
    with op.batch_alter_table("epoch", schema=None) as batch_op:
        batch_op.drop_column("sales_allocated")
        batch_op.drop_column("sales_pool")
