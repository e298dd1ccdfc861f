"""Checks of an annotation against facts only known once the media has been probed."""

from __future__ import annotations

import math
from typing import Final

from shotbank.annotation.errors import (
    NO_AUDIO_TRACK_ERROR,
    OUTSIDE_CLIP_ERROR,
    FieldIssue,
    MediaMismatchError,
)
from shotbank.annotation.models import Annotation

__all__ = ["DURATION_TOLERANCE_S", "media_issues", "validate_against_media"]

#: Slack allowed past the clip's end, for rounding of timestamps (1 ms).
DURATION_TOLERANCE_S: Final = 1e-3


def media_issues(
    annotation: Annotation,
    duration_s: float,
    *,
    has_audio: bool | None = None,
    tolerance_s: float = DURATION_TOLERANCE_S,
) -> list[FieldIssue]:
    """The problems :func:`validate_against_media` would raise, as a list (maybe empty)."""
    if not (math.isfinite(duration_s) and duration_s > 0.0):
        raise ValueError(f"duration_s must be a positive finite number, not {duration_s!r}")
    if not (math.isfinite(tolerance_s) and tolerance_s >= 0.0):
        raise ValueError(f"tolerance_s must be a non-negative finite number, not {tolerance_s!r}")
    issues: list[FieldIssue] = []
    path = annotation.camera.path
    if path is not None:
        late = [i for i, k in enumerate(path.keyframes) if k.time_s > duration_s + tolerance_s]
        if late:
            first = late[0]
            more = f" (and {len(late) - 1} later keyframes)" if len(late) > 1 else ""
            issues.append(
                FieldIssue(
                    loc=("camera", "path", "keyframes", first, "time_s"),
                    type=OUTSIDE_CLIP_ERROR,
                    msg=(
                        f"keyframe {first + 1} is at {path.keyframes[first].time_s:g} s, "
                        f"after the end of the clip ({duration_s:g} s long){more}; the "
                        "camera path must lie within the clip"
                    ),
                )
            )
    if has_audio is False and annotation.audio is not None:
        issues.append(
            FieldIssue(
                loc=("audio",),
                type=NO_AUDIO_TRACK_ERROR,
                msg="the clip has no audio track, but the annotation describes its sound; "
                "remove the audio section or upload the clip with its sound",
            )
        )
    return issues


def validate_against_media(
    annotation: Annotation,
    duration_s: float,
    *,
    has_audio: bool | None = None,
    tolerance_s: float = DURATION_TOLERANCE_S,
) -> None:
    """Check ``annotation`` against the probed clip, raising :class:`MediaMismatchError`.

    ``duration_s`` is the clip's duration; every camera-path keyframe must lie within
    it (``tolerance_s`` of slack for timestamp rounding). ``has_audio=False`` (the clip
    has no audio stream) makes an audio section an error; ``None`` skips that check.
    The error's ``issues`` carry field locations like pydantic's, for a 422 answer.
    """
    issues = media_issues(annotation, duration_s, has_audio=has_audio, tolerance_s=tolerance_s)
    if issues:
        raise MediaMismatchError(issues)
