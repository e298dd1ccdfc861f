"""Baseline: the empty schema every later revision builds on.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Creating it gives a fresh database its ``alembic_version`` row, so ``/api/v1/health``
can report which schema revision the database is at.
"""

from collections.abc import Sequence

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision (no tables yet)."""


def downgrade() -> None:
    """Revert this revision (no tables yet)."""
