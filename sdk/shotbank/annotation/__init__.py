"""Annotation schema v1: the structured description a contributor gives with each clip.

The backend validates uploads with it, the scoring node compares clips against it and
trainers read it from dataset manifests, so it lives in the SDK.

- :mod:`~shotbank.annotation.vocabulary` -- the closed, versioned vocabularies
- :mod:`~shotbank.annotation.models` -- :class:`Annotation` and its sections
- :mod:`~shotbank.annotation.camera_path` -- keyframes and the RealEstate10K text format
- :mod:`~shotbank.annotation.motion` -- net motion of a camera path, for scoring
- :mod:`~shotbank.annotation.canonical` -- canonical JSON (RFC 8785) and the hash
- :mod:`~shotbank.annotation.schema` -- the JSON Schema served by the backend
- :mod:`~shotbank.annotation.media` -- checks against the probed media (duration)
- :mod:`~shotbank.annotation.fields` -- text, tag and CID field types
- :mod:`~shotbank.annotation.errors` -- the exception tree and error codes

Typical use::

    annotation = Annotation.model_validate_json(raw)   # pydantic ValidationError -> 422
    validate_against_media(annotation, duration_s=probe.duration_s)
    digest = annotation_hash(annotation)                # 0x + keccak256, for EIP-712
"""

from shotbank.annotation.camera_path import (
    MAX_KEYFRAMES,
    QUATERNION_TOLERANCE,
    CameraPath,
    Keyframe,
    format_camera_path_text,
    parse_camera_path_text,
)
from shotbank.annotation.canonical import annotation_hash, canonical_json
from shotbank.annotation.errors import (
    AnnotationError,
    CameraPathFormatError,
    FieldIssue,
    MediaMismatchError,
)
from shotbank.annotation.media import validate_against_media
from shotbank.annotation.models import (
    SCHEMA_VERSION,
    Annotation,
    Audio,
    AudioMeasurements,
    Camera,
    Lens,
    Lighting,
    Rights,
    Scene,
)
from shotbank.annotation.motion import MotionEstimate, PathMotion, camera_path_motion
from shotbank.annotation.schema import ANNOTATION_SCHEMA_PATH, annotation_json_schema
from shotbank.annotation.vocabulary import VOCABULARY_VERSION, vocabularies

__all__ = [
    "ANNOTATION_SCHEMA_PATH",
    "MAX_KEYFRAMES",
    "QUATERNION_TOLERANCE",
    "SCHEMA_VERSION",
    "VOCABULARY_VERSION",
    "Annotation",
    "AnnotationError",
    "Audio",
    "AudioMeasurements",
    "Camera",
    "CameraPath",
    "CameraPathFormatError",
    "FieldIssue",
    "Keyframe",
    "Lens",
    "Lighting",
    "MediaMismatchError",
    "MotionEstimate",
    "PathMotion",
    "Rights",
    "Scene",
    "annotation_hash",
    "annotation_json_schema",
    "camera_path_motion",
    "canonical_json",
    "format_camera_path_text",
    "parse_camera_path_text",
    "validate_against_media",
    "vocabularies",
]
