"""Alembic schema migrations of the backend database (revisions live in ``versions/``)."""
