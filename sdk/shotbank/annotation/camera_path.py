"""Camera paths: timed keyframes, and the one-pose-per-line text format of RealEstate10K.

Conventions (the same as OpenCV and RealEstate10K):

- the **camera frame** has +x to the right of the image, +y down, +z along the
  viewing direction;
- a keyframe's ``position_m`` is the camera centre in the world frame, and its
  ``orientation_wxyz`` is the unit quaternion that rotates camera-frame vectors into
  the world frame (camera-to-world); the world frame itself is whatever the source
  used, only its consistency along the path matters;
- the text format's 3x4 matrix ``[R | t]`` is world-to-camera:
  ``x_camera = R @ x_world + t``, so ``position = -R.T @ t`` and the orientation is
  ``R.T``.

A text file starts with a line naming the source video (URL or id), then one line per
pose::

    https://www.youtube.com/watch?v=...
    45211000 0.48 0.85 0.5 0.5 0 0 r00 r01 r02 t0 r10 r11 r12 t1 r20 r21 r22 t2

timestamp (microseconds), focal lengths and principal point normalised by the image
width/height, two distortion terms, then the matrix row-major. The header line is
optional here. SLAM-derived positions (as in RealEstate10K) have no metric scale, so
parsed paths default to :attr:`PositionScale.ARBITRARY`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Annotated, Final

from pydantic import AfterValidator, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from shotbank.annotation import _geometry as g
from shotbank.annotation._base import StrictModel
from shotbank.annotation.errors import (
    KEYFRAMES_NOT_ORDERED_ERROR,
    QUATERNION_NOT_UNIT_ERROR,
    CameraPathFormatError,
)
from shotbank.annotation.fields import vocabulary_term
from shotbank.annotation.vocabulary import PositionScale

__all__ = [
    "FOCAL_LENGTH_MM_MAX",
    "FOCAL_LENGTH_MM_MIN",
    "MAX_CAMERA_PATH_LINE_CHARS",
    "MAX_CAMERA_PATH_TEXT_CHARS",
    "MAX_KEYFRAMES",
    "MAX_POSITION_M",
    "MAX_TIME_S",
    "QUATERNION_TOLERANCE",
    "ROTATION_TOLERANCE",
    "CameraPath",
    "Keyframe",
    "format_camera_path_text",
    "parse_camera_path_text",
    "world_to_camera_matrix",
]

#: Most keyframes one path may have (about 5.5 minutes at 30 poses per second).
MAX_KEYFRAMES: Final = 10_000
#: Latest keyframe time accepted before the clip's duration is known (24 hours).
MAX_TIME_S: Final = 86_400.0
#: Largest absolute coordinate of a position (1000 km).
MAX_POSITION_M: Final = 1_000_000.0
FOCAL_LENGTH_MM_MIN: Final = 0.5
FOCAL_LENGTH_MM_MAX: Final = 5000.0
#: Largest accepted deviation of an orientation quaternion's length from 1.
QUATERNION_TOLERANCE: Final = 1e-3
#: Largest accepted entry of ``R @ R.T - I`` for a rotation read from a text file.
ROTATION_TOLERANCE: Final = 1e-3
#: Size limits of a camera path text file (characters in all, and per line).
MAX_CAMERA_PATH_TEXT_CHARS: Final = 8_000_000
MAX_CAMERA_PATH_LINE_CHARS: Final = 1024

_FIELDS_PER_POSE: Final = 19
# ASCII digits only: Python's float() and int() would also take "٣" or "1_000".
_NUMBER_RE: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER_RE: Final = re.compile(r"\+?[0-9]+")

Coordinate = Annotated[float, Field(ge=-MAX_POSITION_M, le=MAX_POSITION_M)]


def _unit_quaternion(
    q: tuple[float, float, float, float],
) -> tuple[float, float, float, float]:
    length = g.quat_norm(q)
    if not abs(length - 1.0) <= QUATERNION_TOLERANCE:
        raise PydanticCustomError(
            QUATERNION_NOT_UNIT_ERROR,
            "must be a unit quaternion (w, x, y, z): its length is {length}, more than "
            "{tolerance} away from 1",
            {"length": f"{length:.6g}", "tolerance": QUATERNION_TOLERANCE},
        )
    return g.quat_canonical(q)


class Keyframe(StrictModel):
    """The camera's pose (and optionally focal length) at one instant of the clip."""

    time_s: float = Field(ge=0.0, le=MAX_TIME_S)
    """Seconds from the start of the clip."""
    position_m: tuple[Coordinate, Coordinate, Coordinate]
    """Camera centre (x, y, z) in the world frame, in metres (see the path's scale)."""
    orientation_wxyz: Annotated[tuple[float, float, float, float], AfterValidator(_unit_quaternion)]
    """Camera-to-world rotation as a unit quaternion (w, x, y, z); stored normalised
    with w >= 0. Camera frame: +x right, +y down, +z forward."""
    focal_length_mm: float | None = Field(
        default=None, ge=FOCAL_LENGTH_MM_MIN, le=FOCAL_LENGTH_MM_MAX
    )
    """Focal length at this instant (for zooms), in millimetres."""


class CameraPath(StrictModel):
    """Timed keyframes of the camera, strictly increasing in time."""

    # The minimum is checked by the validator: pydantic's own check would count only the
    # keyframes that are valid and report "at least 2 ... not 1" for a bad second one.
    keyframes: tuple[Keyframe, ...] = Field(
        max_length=MAX_KEYFRAMES, json_schema_extra={"minItems": 2}
    )
    """At least 2 and at most 10,000 keyframes, in increasing time order."""
    position_scale: Annotated[PositionScale, vocabulary_term(PositionScale)] = PositionScale.METRIC
    """'metric' when positions are metres, 'arbitrary' when their scale is unknown."""

    @field_validator("keyframes")
    @classmethod
    def _time_ordered(cls, keyframes: tuple[Keyframe, ...]) -> tuple[Keyframe, ...]:
        if len(keyframes) < 2:
            raise PydanticCustomError(
                "too_short",
                "a camera path needs at least 2 keyframes, found {count}",
                {"count": len(keyframes)},
            )
        for index in range(1, len(keyframes)):
            before, after = keyframes[index - 1].time_s, keyframes[index].time_s
            if after == before:
                raise PydanticCustomError(
                    KEYFRAMES_NOT_ORDERED_ERROR,
                    "keyframes {first} and {second} are both at {time} s; each keyframe "
                    "needs its own time",
                    {"first": index, "second": index + 1, "time": f"{after:g}"},
                )
            if after < before:
                raise PydanticCustomError(
                    KEYFRAMES_NOT_ORDERED_ERROR,
                    "keyframe {second} (at {after} s) comes before keyframe {first} (at "
                    "{before} s); keyframes must be in increasing time order",
                    {
                        "first": index,
                        "second": index + 1,
                        "after": f"{after:g}",
                        "before": f"{before:g}",
                    },
                )
        return keyframes

    @property
    def start_s(self) -> float:
        """Time of the first keyframe."""
        return self.keyframes[0].time_s

    @property
    def end_s(self) -> float:
        """Time of the last keyframe."""
        return self.keyframes[-1].time_s


def world_to_camera_matrix(keyframe: Keyframe) -> tuple[tuple[float, ...], ...]:
    """The 3x4 world-to-camera matrix ``[R | t]`` of a keyframe, row-major."""
    rotation = g.transpose(g.quat_to_matrix(keyframe.orientation_wxyz))
    t = g.mat_vec(rotation, keyframe.position_m)
    return tuple((*row, -ti) for row, ti in zip(rotation, t, strict=True))


def _number(token: str, line: int, what: str) -> float:
    if not _NUMBER_RE.fullmatch(token):
        shown = token if len(token) <= 20 else token[:19] + "…"
        raise CameraPathFormatError(f"{what} {shown!r} is not a finite number", line=line)
    value = float(token)
    if not math.isfinite(value):
        raise CameraPathFormatError(f"{what} {token!r} is out of range", line=line)
    return value


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _parse_pose(
    tokens: Sequence[str],
    line: int,
    *,
    sensor_width_mm: float | None,
    rotation_tolerance: float,
) -> tuple[tuple[float, float, float], tuple[float, float, float, float], float | None]:
    fx, fy, _cx, _cy, _k1, _k2 = (
        _number(token, line, name)
        for token, name in zip(tokens[1:7], ("fx", "fy", "cx", "cy", "k1", "k2"), strict=True)
    )
    if fx <= 0.0 or fy <= 0.0:
        raise CameraPathFormatError("focal lengths fx and fy must be positive", line=line)
    m = [_number(token, line, "matrix entry") for token in tokens[7:19]]
    rotation: g.Mat3 = ((m[0], m[1], m[2]), (m[4], m[5], m[6]), (m[8], m[9], m[10]))
    translation: g.Vec3 = (m[3], m[7], m[11])
    error = g.orthonormality_error(rotation)
    if not error <= rotation_tolerance:
        raise CameraPathFormatError(
            f"the 3x3 part of the matrix is not a rotation: R @ R.T differs from the "
            f"identity by {error:.3g} (at most {rotation_tolerance:g} allowed)",
            line=line,
        )
    if g.determinant(rotation) < 0.0:
        raise CameraPathFormatError(
            "the 3x3 part of the matrix is a reflection (determinant -1), not a rotation",
            line=line,
        )
    camera_to_world = g.transpose(rotation)
    centre = g.mat_vec(camera_to_world, translation)
    position = (-centre[0] + 0.0, -centre[1] + 0.0, -centre[2] + 0.0)
    focal = fx * sensor_width_mm if sensor_width_mm is not None else None
    return position, g.matrix_to_quat(camera_to_world), focal


def parse_camera_path_text(
    text: str,
    *,
    fps: float | None = None,
    sensor_width_mm: float | None = None,
    position_scale: PositionScale = PositionScale.ARBITRARY,
    rebase_time: bool = True,
    rotation_tolerance: float = ROTATION_TOLERANCE,
    max_keyframes: int = MAX_KEYFRAMES,
) -> CameraPath:
    """Read a RealEstate10K-style camera path (one pose per line) into a :class:`CameraPath`.

    ``fps``: when ``None`` the first column is a timestamp in microseconds (as in
    RealEstate10K); otherwise it is a frame number and the time is ``frame / fps``.
    ``rebase_time``: RealEstate10K timestamps count from the start of the source video,
    so by default times are shifted to make the first pose ``t = 0``.
    ``sensor_width_mm``: the normalised ``fx`` times this width gives each keyframe's
    focal length in mm; without it keyframes carry no focal length.
    ``position_scale``: what the translation units mean (SLAM paths have no scale).

    Blank lines are ignored; a first line holding one token that is not a number is the
    source header. Raises :class:`CameraPathFormatError` naming the line of the first
    problem: wrong field count, a token that is not a finite number, a matrix that is
    not a rotation (``rotation_tolerance``), times not strictly increasing, fewer than
    2 or more than ``max_keyframes`` poses, or a file over the size limits.
    """
    if fps is not None and not (math.isfinite(fps) and fps > 0.0):
        raise ValueError(f"fps must be a positive finite number, not {fps!r}")
    if sensor_width_mm is not None and not (
        math.isfinite(sensor_width_mm) and sensor_width_mm > 0.0
    ):
        raise ValueError(f"sensor_width_mm must be positive and finite, not {sensor_width_mm!r}")
    if not 2 <= max_keyframes <= MAX_KEYFRAMES:
        raise ValueError(f"max_keyframes must be between 2 and {MAX_KEYFRAMES}")
    if len(text) > MAX_CAMERA_PATH_TEXT_CHARS:
        raise CameraPathFormatError(
            f"the file is too large: at most {MAX_CAMERA_PATH_TEXT_CHARS:,} characters"
        )

    times: list[int | float] = []
    pose_lines: list[int] = []
    poses: list[tuple[g.Vec3, g.Quat, float | None]] = []
    first_content_line = True
    for number, raw in enumerate(text.split("\n"), start=1):
        if len(raw) > MAX_CAMERA_PATH_LINE_CHARS:
            raise CameraPathFormatError(
                f"the line is too long: at most {MAX_CAMERA_PATH_LINE_CHARS} characters",
                line=number,
            )
        tokens = raw.split()
        if not tokens:
            continue
        is_header = first_content_line and len(tokens) == 1 and not _NUMBER_RE.fullmatch(tokens[0])
        first_content_line = False
        if is_header:
            continue
        if len(tokens) != _FIELDS_PER_POSE:
            raise CameraPathFormatError(
                f"expected {_FIELDS_PER_POSE} numbers (timestamp, fx, fy, cx, cy, k1, k2 "
                f"and a 3x4 matrix), found {len(tokens)}",
                line=number,
            )
        if len(poses) == max_keyframes:
            raise CameraPathFormatError(
                f"too many poses: at most {max_keyframes:,} (one per line) are accepted",
                line=number,
            )
        stamp: int | float
        if _INTEGER_RE.fullmatch(tokens[0]):
            stamp = int(tokens[0])
        else:
            stamp = _number(tokens[0], number, "timestamp")
            if fps is not None and not stamp.is_integer():
                raise CameraPathFormatError(
                    f"frame number {tokens[0]!r} is not a whole number", line=number
                )
        if stamp < 0:
            raise CameraPathFormatError("the timestamp must not be negative", line=number)
        if times and stamp <= times[-1]:
            relation = "repeats" if stamp == times[-1] else "is earlier than"
            raise CameraPathFormatError(
                f"timestamp {tokens[0]} {relation} the previous pose's; poses must be in "
                "strictly increasing time order",
                line=number,
            )
        poses.append(
            _parse_pose(
                tokens,
                number,
                sensor_width_mm=sensor_width_mm,
                rotation_tolerance=rotation_tolerance,
            )
        )
        times.append(stamp)
        pose_lines.append(number)

    if len(poses) < 2:
        raise CameraPathFormatError(f"a camera path needs at least 2 poses, found {len(poses)}")

    origin = times[0] if rebase_time else 0
    keyframes: list[Keyframe] = []
    for index, (stamp, (position, orientation, focal)) in enumerate(zip(times, poses, strict=True)):
        offset = stamp - origin
        time_s = offset / fps if fps is not None else offset / 1_000_000
        try:
            keyframes.append(
                Keyframe(
                    time_s=time_s,
                    position_m=position,
                    orientation_wxyz=orientation,
                    focal_length_mm=focal,
                )
            )
        except ValidationError as exc:
            raise CameraPathFormatError(_first_error(exc), line=pose_lines[index]) from None
    return CameraPath(keyframes=tuple(keyframes), position_scale=position_scale)


def _format_float(value: float) -> str:
    return repr(float(value) + 0.0)


def format_camera_path_text(
    path: CameraPath,
    *,
    intrinsics: tuple[float, float, float, float],
    source: str = "shotbank",
    sensor_width_mm: float | None = None,
    fps: float | None = None,
) -> str:
    """Write ``path`` in the one-pose-per-line format :func:`parse_camera_path_text` reads.

    ``intrinsics`` are ``(fx, fy, cx, cy)`` normalised by the image width/height. When
    ``sensor_width_mm`` is given, a keyframe's focal length replaces ``fx``
    (``focal / sensor_width``) and ``fy`` is scaled by the same factor. Times are
    written in whole microseconds, or as frame numbers when ``fps`` is given (each
    keyframe must then fall on its own frame). Floats are written in their shortest
    exact form, so parsing the text gives the path back up to the rounding of the
    quaternion-matrix conversions (about 1e-15 relative).
    """
    if not source or any(char.isspace() for char in source):
        raise ValueError("source must be one non-empty token without white space")
    fx0, fy0, cx, cy = intrinsics
    lines = [source]
    last_stamp: int | None = None
    for keyframe in path.keyframes:
        stamp = round(keyframe.time_s * (1_000_000 if fps is None else fps))
        if last_stamp is not None and stamp <= last_stamp:
            raise ValueError(
                f"keyframes at {keyframe.time_s:g} s and before fall on the same "
                f"{'microsecond' if fps is None else 'frame'}"
            )
        last_stamp = stamp
        fx, fy = fx0, fy0
        if sensor_width_mm is not None and keyframe.focal_length_mm is not None:
            fx = keyframe.focal_length_mm / sensor_width_mm
            fy = fy0 * fx / fx0
        matrix = world_to_camera_matrix(keyframe)
        numbers = [fx, fy, cx, cy, 0.0, 0.0, *(v for row in matrix for v in row)]
        lines.append(" ".join([str(stamp), *(_format_float(v) for v in numbers)]))
    return "\n".join(lines) + "\n"
