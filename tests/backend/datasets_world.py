"""Building blocks of the dataset tests: real clips, really ingested, really decided.

A clip here is a real MP4 (made with PyAV) bound to an annotation, taken through the
real ingest (``backend.services.ingest``: probe, move into the blob store, media facts)
and decided by the real consensus (``backend.services.consensus.decide_clip``) on one
validator report. Only what comes between -- upload rows, leases and the signed report
intake, tested elsewhere -- is written as rows.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.core.config import Settings
from backend.models.clips import Clip, ClipStatus
from backend.models.scoring import ClipScoring, DecisionTrigger, Lease, LeaseState, Report
from backend.models.uploads import Upload, UploadState
from backend.services import consensus, ingest
from backend.services.uploads import upload_file
from ingest.blobstore import LocalBlobStore
from ingest.cid import digest_file
from scoring.report import ClipScores, Component, ComponentScore, ModelIdentity
from shotbank.annotation import Annotation, annotation_hash, canonical_json

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
VALIDATOR = "0x" + "7a" * 20
MODEL = ModelIdentity(
    model="shotbank-tiny",
    weights_sha256=hashlib.sha256(b"shotbank-tiny weights").hexdigest(),
    preprocessing="1-0123456789ab",
)

BASE: dict[str, Any] = {
    "schema_version": "1",
    "scene": {"description": "Waves roll onto an empty beach.", "setting": "exterior"},
    "camera": {"movement": "static"},
    "lighting": {"setup": "natural"},
    "audio": {"genre": "ambience", "dialogue": False, "recording": "field"},
    "rights": {
        "licence": "cc0-1.0",
        "model_release": "not_required",
        "location_release": "not_required",
    },
}


def annotation(**sections: Mapping[str, Any]) -> dict[str, Any]:
    """:data:`BASE` with each named section updated by the given fields."""
    doc = copy.deepcopy(BASE)
    for name, fields in sections.items():
        doc[name] = {**doc[name], **fields}
    return doc


def verdict(quality: float, components: Mapping[str, float] | None = None) -> ClipScores:
    """A validator's scores: every component at ``quality`` unless given."""
    values = {component: quality for component in Component}
    values.update({Component(name): value for name, value in (components or {}).items()})
    return ClipScores(
        scores={component: ComponentScore(value=value) for component, value in values.items()},
        quality=quality,
        pass_threshold=0.5,
        passed=quality >= 0.5,
        model=MODEL,
    )


@dataclass
class DatasetWorld:
    """A migrated database, its blob store, and ways to fill them with decided clips."""

    settings: Settings
    engine: Engine
    blobs: LocalBlobStore

    def ingested(self, data: bytes, *, owner: str, doc: Mapping[str, Any], now: datetime) -> str:
        """A clip of ``owner`` with ``data`` and ``doc``, through the real ingest (queued)."""
        upload_id = secrets.token_hex(16)
        path = upload_file(self.settings, upload_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digest = digest_file(path)
        parsed = Annotation.model_validate(doc)
        with Session(self.engine) as db:
            db.add(
                Upload(
                    id=upload_id,
                    owner=owner,
                    length=len(data),
                    offset=len(data),
                    state=UploadState.CONSUMED,
                    filename="clip.mp4",
                    created_at=now,
                    expires_at=now + timedelta(days=1),
                    completed_at=now,
                    sha256=digest.sha256,
                    cid=digest.cid,
                )
            )
            clip = Clip(
                owner=owner,
                upload_id=upload_id,
                filename="clip.mp4",
                size_bytes=len(data),
                sha256=digest.sha256,
                content_key=digest.sha256,
                cid=digest.cid,
                annotation_json=canonical_json(parsed).decode(),
                annotation_hash=annotation_hash(parsed),
                created_at=now,
                updated_at=now,
            )
            db.add(clip)
            db.commit()
            clip_id = clip.id
        claimed = ingest.claim_next(self.engine, now=now)
        assert claimed == clip_id
        ingest.process_clip(
            self.engine, settings=self.settings, blobs=self.blobs, clip_id=clip_id, now=now
        )
        with Session(self.engine) as db:
            done = db.get(Clip, clip_id)
            assert done is not None
            assert done.status == ClipStatus.QUEUED, done.reasons_json
        return clip_id

    def decide(self, clip_id: str, scores: ClipScores, *, now: datetime) -> ClipStatus:
        """Decide the queued clip on one validator report of ``scores``."""
        with Session(self.engine) as db:
            clip = db.get(Clip, clip_id)
            assert clip is not None
            db.add(
                ClipScoring(
                    clip_id=clip_id,
                    first_leased_at=now - timedelta(minutes=4),
                    consensus_deadline=now + timedelta(hours=1),
                )
            )
            lease = Lease(
                clip_id=clip_id,
                validator=VALIDATOR,
                state=LeaseState.REPORTED,
                annotation_hash=clip.annotation_hash,
                issued_at=now - timedelta(minutes=4),
                expires_at=now + timedelta(minutes=6),
                deadline=int((now + timedelta(minutes=6)).timestamp()),
                ended_at=now,
            )
            db.add(lease)
            db.flush()
            db.add(
                Report(
                    lease_id=lease.id,
                    clip_id=clip_id,
                    validator=VALIDATOR,
                    outcome=scores.outcome.value,
                    quality=scores.quality,
                    passed=scores.passed,
                    flags=0,
                    weights_sha256=MODEL.weights_sha256,
                    scores_json=scores.canonical_json().decode(),
                    signature="0x" + "11" * 65,
                    stake_wei=10**20,
                    snapshot_block=1,
                    deadline=lease.deadline,
                    created_at=now,
                )
            )
            db.flush()
            status = consensus.decide_clip(db, clip=clip, trigger=DecisionTrigger.QUORUM, now=now)
            db.commit()
        assert status is not None
        return status

    def accepted(
        self,
        data: bytes,
        *,
        owner: str,
        doc: Mapping[str, Any] | None = None,
        scores: ClipScores | None = None,
        now: datetime = NOW,
    ) -> str:
        """A clip taken through ingest and consensus; asserts the decision."""
        clip_id = self.ingested(data, owner=owner, doc=doc or BASE, now=now)
        chosen = scores or verdict(0.9)
        status = self.decide(clip_id, chosen, now=now)
        assert status == (ClipStatus.ACCEPTED if chosen.passed else ClipStatus.REJECTED)
        return clip_id

    def blob_path(self, clip_id: str) -> Path:
        """Where the clip's bytes are stored."""
        with Session(self.engine) as db:
            clip = db.get(Clip, clip_id)
            assert clip is not None
            return self.blobs.path_for(clip.cid)
