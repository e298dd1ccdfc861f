"""Data shapes of the backend: table models and the public schemas built on them.

Every module that defines a ``table=True`` model is imported here, so that importing
``backend.models`` registers all tables on ``SQLModel.metadata`` (Alembic's autogenerate
and the migrations-match-models test rely on it).
"""

from backend.models import (
    auth,
    blobs,
    clips,
    datasets,
    epochs,
    licences,
    modelruns,
    rewardchain,
    scoring,
    stakes,
    uploads,
)

__all__ = [
    "auth",
    "blobs",
    "clips",
    "datasets",
    "epochs",
    "licences",
    "modelruns",
    "rewardchain",
    "scoring",
    "stakes",
    "uploads",
]
