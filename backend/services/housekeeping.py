"""Housekeeping: the periodic chores of a backend process.

:func:`run_housekeeping` runs every ``SHOTBANK_HOUSEKEEPING_INTERVAL_S`` in the
background runner (``backend.core.background``) of each serving process; every chore
is safe to run at any time, in several processes at once:

* unfinished uploads past their expiry are marked expired and their bytes deleted
  (``services.uploads.expire_uploads``);
* ingest claims whose worker died are handed back (``services.ingest.recover_stale``);
* files left in the upload folder by crashes are deleted
  (``services.ingest.sweep_leftovers``);
* temporary files of interrupted blob writes are deleted
  (``LocalBlobStore.sweep_temporary``, for the local store).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.core.config import Settings
from backend.services.ingest import recover_stale, sweep_leftovers
from backend.services.uploads import expire_uploads, utcnow
from ingest.blobstore import BlobStore, LocalBlobStore

__all__ = ["HousekeepingReport", "run_housekeeping"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HousekeepingReport:
    """What one round of housekeeping did (counts)."""

    uploads_expired: int = 0
    clips_recovered: int = 0
    leftover_files: int = 0
    blob_temp_files: int = 0


def run_housekeeping(
    engine: Engine, *, settings: Settings, blobs: BlobStore, now: datetime | None = None
) -> HousekeepingReport:
    """Run every chore once (see the module docstring) and report what was done."""
    moment = now or utcnow()
    with Session(engine) as db:
        expired = expire_uploads(db, settings=settings, now=moment)
    recovered = recover_stale(engine, settings=settings, now=moment, blobs=blobs)
    leftovers = sweep_leftovers(engine, settings=settings)
    temporary = blobs.sweep_temporary() if isinstance(blobs, LocalBlobStore) else 0
    report = HousekeepingReport(
        uploads_expired=expired,
        clips_recovered=recovered,
        leftover_files=leftovers,
        blob_temp_files=temporary,
    )
    if any(asdict(report).values()):
        logger.info("housekeeping: %s", report)
    return report
