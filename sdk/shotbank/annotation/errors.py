"""Exceptions of the annotation package, and the error codes of its validation messages.

Validating an annotation document (``Annotation.model_validate_json``) raises pydantic's
``ValidationError``, whose entries carry a location (``("camera", "direction")``), a
human sentence and a stable ``type``; the types this package adds are the ``*_ERROR``
constants below. What cannot be checked by the model alone raises one of these::

    ShotbankError
    └── AnnotationError
        ├── CameraPathFormatError (+ValueError)   a camera-path text file cannot be read
        └── MediaMismatchError (+ValueError)      annotation contradicts the probed media

Both subclasses offer :meth:`AnnotationError.errors`, entries shaped like pydantic's
(``type``, ``loc``, ``msg``), so a service can answer all of them the same way (422).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from shotbank.errors import ShotbankError

__all__ = [
    "ATTRIBUTION_REQUIRED_ERROR",
    "CAMERA_PATH_FORMAT_ERROR",
    "DIRECTION_MISMATCH_ERROR",
    "DUPLICATE_VALUE_ERROR",
    "INVALID_CID_ERROR",
    "INVALID_TEXT_ERROR",
    "KEYFRAMES_NOT_ORDERED_ERROR",
    "NO_AUDIO_TRACK_ERROR",
    "OUTSIDE_CLIP_ERROR",
    "QUATERNION_NOT_UNIT_ERROR",
    "READ_ONLY_FIELD_ERROR",
    "TEXT_TOO_SHORT_ERROR",
    "UNKNOWN_TERM_ERROR",
    "UNSUPPORTED_SCHEMA_VERSION_ERROR",
    "AnnotationError",
    "CameraPathFormatError",
    "FieldIssue",
    "MediaMismatchError",
]

UNKNOWN_TERM_ERROR: Final = "unknown_term"
"""A value outside its closed vocabulary."""
UNSUPPORTED_SCHEMA_VERSION_ERROR: Final = "unsupported_schema_version"
"""``schema_version`` is not one this SDK knows."""
DIRECTION_MISMATCH_ERROR: Final = "direction_mismatch"
"""The direction does not fit the movement (or is missing/superfluous)."""
ATTRIBUTION_REQUIRED_ERROR: Final = "attribution_required"
"""The licence requires attribution but none is given."""
DUPLICATE_VALUE_ERROR: Final = "duplicate_value"
"""A list holds the same value twice."""
INVALID_CID_ERROR: Final = "invalid_cid"
"""A content identifier is not a valid CIDv0/CIDv1 (base32, sha2-256)."""
INVALID_TEXT_ERROR: Final = "invalid_text"
"""Free text holds characters it may not (control characters, tag punctuation)."""
TEXT_TOO_SHORT_ERROR: Final = "text_too_short"
"""Free text is too short once surrounding white space is removed."""
KEYFRAMES_NOT_ORDERED_ERROR: Final = "keyframes_not_ordered"
"""Keyframes are not strictly increasing in time."""
QUATERNION_NOT_UNIT_ERROR: Final = "quaternion_not_unit"
"""An orientation quaternion's length is not 1 within the tolerance."""
READ_ONLY_FIELD_ERROR: Final = "read_only_field"
"""A contributor tried to set a fact that ingest measures."""
OUTSIDE_CLIP_ERROR: Final = "outside_clip"
"""A keyframe lies after the end of the clip."""
NO_AUDIO_TRACK_ERROR: Final = "no_audio_track"
"""The annotation describes audio but the clip has no audio track."""
CAMERA_PATH_FORMAT_ERROR: Final = "camera_path_format"
"""A camera-path text file is malformed."""


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """One problem at one place of an annotation: where, what (code) and a sentence."""

    loc: tuple[str | int, ...]
    type: str
    msg: str


class AnnotationError(ShotbankError):
    """Base class of every error raised by :mod:`shotbank.annotation`.

    ``issues`` lists the field-level problems (at least one).
    """

    def __init__(self, issues: Sequence[FieldIssue]) -> None:
        if not issues:
            raise ValueError("an AnnotationError needs at least one issue")
        self.issues: tuple[FieldIssue, ...] = tuple(issues)
        super().__init__("; ".join(issue.msg for issue in self.issues))

    def errors(self) -> list[dict[str, object]]:
        """The issues as pydantic-style dicts: ``{"type", "loc", "msg"}``."""
        return [{"type": i.type, "loc": i.loc, "msg": i.msg} for i in self.issues]


class CameraPathFormatError(AnnotationError, ValueError):
    """A one-pose-per-line camera path file cannot be read.

    ``line`` is the 1-based line number of the offending line (``None`` when the
    problem concerns the whole file, e.g. its size).
    """

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.line = line
        text = f"line {line}: {message}" if line is not None else message
        super().__init__([FieldIssue(("camera", "path"), CAMERA_PATH_FORMAT_ERROR, text)])


class MediaMismatchError(AnnotationError, ValueError):
    """The annotation contradicts facts measured on the media (e.g. its duration)."""
