"""Epoch funding breakdown: where each closed epoch's pool came from.

Epochs closed before this revision keep ``funding_json`` NULL: the indexed ``Funded``
rows they were closed from may have changed since (a new distributor, a re-index), so a
breakdown computed now could disagree with the pool they published.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("epoch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("funding_json", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("epoch", schema=None) as batch_op:
        batch_op.drop_column("funding_json")
