"""Real samples for the dataset tests: small MP4/MKV clips encoded with PyAV and the
records the backend would make of them (content CID, SHA-256, probed facts, a valid
annotation, scores, contributor, licence)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import av

from ingest.cid import cid_of_bytes, digest_file
from shotbank.annotation import Annotation
from shotbank.datasets import ManifestRow, SampleRecord
from tests.ingest.mediagen import ClipSpec, make_clip

__all__ = [
    "CONTRIBUTORS",
    "BuiltSample",
    "annotation_document",
    "build_sample",
    "build_samples",
    "clip_key",
    "placed_rows",
    "record_for_bytes",
]

#: Contributors of the generated samples, in lower case (records hold the checksum form).
CONTRIBUTORS = (
    "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
    "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc",
    "0x90f79bf6eb2c4f870365e785982e1f101e93b906",
)
#: Camera movements with the direction each needs (None: none).
_MOVEMENTS = (
    ("static", None),
    ("pan", "left"),
    ("tilt", "up"),
    ("dolly", "in"),
    ("truck", "right"),
)
_LIGHTING = ("natural", "high_key", "low_key")


def clip_key(number: int, *, salt: str = "") -> str:
    """A clip id (32 hex digits) derived from ``number``: stable, unordered by number."""
    return hashlib.sha256(f"{salt}clip-{number}".encode()).hexdigest()[:32]


def annotation_document(number: int) -> dict[str, Any]:
    """A valid schema-v1 annotation, as validated and dumped by the SDK's model."""
    movement, direction = _MOVEMENTS[number % len(_MOVEMENTS)]
    document = {
        "schema_version": "1",
        "scene": {
            "description": f"Sample {number}: waves roll onto an empty beach — «été».",
            "setting": "exterior",
            "tags": ["beach", f"take {number}"],
        },
        "camera": {"movement": movement, **({"direction": direction} if direction else {})},
        "lighting": {"setup": _LIGHTING[number % len(_LIGHTING)]},
        "rights": {
            "licence": "cc0-1.0",
            "model_release": "not_required",
            "location_release": "not_required",
        },
    }
    dumped: dict[str, Any] = Annotation.model_validate(document).model_dump(
        mode="json", exclude_none=True
    )
    return dumped


def _media_facts(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        return {
            "duration_s": round(float(container.duration or 0) / av.time_base, 3),
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "fps": float(video.average_rate or 0),
            "video_codec": video.codec_context.name,
            "audio_codec": audio.codec_context.name if audio is not None else None,
            "audio": audio is not None,
        }


def record_for_bytes(number: int, data: bytes, *, ext: str = "mp4", **changes: Any) -> SampleRecord:
    """A valid record of clip ``number`` whose bytes are ``data`` (no media decoding:
    for tests of the format itself); ``changes`` override fields before validation."""
    key = clip_key(number)
    annotation = annotation_document(number)
    fields: dict[str, Any] = {
        "key": key,
        "clip_id": key,
        "cid": cid_of_bytes(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "ext": ext,
        "media": {"duration_s": 1.5, "width": 160, "height": 120, "fps": 12.0, "audio": True},
        "annotation": annotation,
        "scores": {"quality": 0.75, "components": {"aesthetic": 0.5}, "flags": [], "reasons": []},
        "contributor": CONTRIBUTORS[number % len(CONTRIBUTORS)],
        "licence": annotation["rights"],
        "accepted_at": datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC) + timedelta(minutes=number),
    }
    fields.update(changes)
    return SampleRecord.model_validate(fields)


@dataclass(frozen=True)
class BuiltSample:
    """A clip file and its record."""

    record: SampleRecord
    path: Path

    def open(self) -> BinaryIO:
        """The clip's bytes (the packer's opener)."""
        return self.path.open("rb")

    @property
    def pack_input(self) -> tuple[SampleRecord, Any]:
        """``(record, opener)`` as :func:`backend.services.packing.pack_version` takes it."""
        return self.record, self.open


def build_sample(
    directory: Path, number: int, spec: ClipSpec | None = None, *, salt: str = ""
) -> BuiltSample:
    """Encode clip ``number`` into ``directory`` and describe it as the backend would."""
    spec = spec or ClipSpec(width=160, height=120, seconds=1.0, fps=12)
    ext = {"mp4": "mp4", "matroska": "mkv", "mov": "mov", "webm": "webm"}[spec.format]
    key = clip_key(number, salt=salt)
    path = make_clip(directory / f"{key}.{ext}", spec)
    digest = digest_file(path)
    annotation = annotation_document(number)
    record = SampleRecord(
        key=key,
        clip_id=key,
        cid=digest.cid,
        sha256=digest.sha256,
        size_bytes=digest.size,
        ext=ext,
        media=_media_facts(path),
        annotation=annotation,
        scores={
            "quality": round(0.5 + number % 5 / 10, 2),
            "components": {"aesthetic": 0.7, "technical": 0.8},
            "flags": [],
            "reasons": [],
        },
        contributor=CONTRIBUTORS[number % len(CONTRIBUTORS)],
        licence=annotation["rights"],
        accepted_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC) + timedelta(seconds=number),
    )
    return BuiltSample(record=record, path=path)


def build_samples(
    directory: Path, count: int, *, seconds: tuple[float, ...] = (1.0, 2.0, 0.5), salt: str = ""
) -> list[BuiltSample]:
    """``count`` samples of varied length (hence size); every fourth one is Matroska."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        build_sample(
            directory,
            number,
            ClipSpec(
                format="matroska" if number % 4 == 3 else "mp4",
                width=160,
                height=120,
                fps=12,
                seconds=seconds[number % len(seconds)],
            ),
            salt=salt,
        )
        for number in range(count)
    ]


def placed_rows(samples: list[BuiltSample], shard: str = "shard-000000.tar") -> list[ManifestRow]:
    """The samples' records as manifest rows, all in one shard."""
    return [sample.record.place(shard) for sample in samples]
