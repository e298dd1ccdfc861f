"""Global camera motion between sampled frames, and its agreement with the annotation.

:func:`estimate_motion` measures how the picture moves between consecutive sampled
frames (:class:`scoring.frames.SampledFrames`), on grayscale frames scaled to a fixed
working size so every threshold means the same at any resolution:

1. corners (``cv2.goodFeaturesToTrack``) tracked into the next frame with pyramidal
   Lucas-Kanade (``cv2.calcOpticalFlowPyrLK``), kept only when tracking them back lands
   where they started (forward-backward check);
2. a similarity transform (translation, uniform scale, rotation) fitted to the tracks
   with RANSAC (``cv2.estimateAffinePartial2D``), so a subject moving across the frame
   is outvoted by the background;
3. too few corners or too few inliers: phase correlation (``cv2.phaseCorrelate``) gives
   the translation alone; a weak correlation peak leaves the pair unusable.

Each usable pair gives rates in the camera operator's terms (the signs of
:mod:`shotbank.annotation.motion`): ``pan_right_per_s`` in frame widths per second,
``tilt_up_per_s`` in frame heights per second, ``zoom_in_per_s`` in natural-log scale per
second, ``measured_rotation_deg_s`` (roll, clockwise as seen from behind the camera) in
degrees per second. A camera panning **left** makes the content move **right** in the
frame, so the measured content displacement enters ``pan_right_per_s`` with its sign
flipped; tilting up moves content down (image y grows downwards), so ``tilt_up_per_s``
keeps the sign of the content's y displacement.

The clip's motion is the median of each rate over the pairs (one bad pair cannot flip
it); each rate's *consistency* is the share of pairs with non-negligible motion on that
component that agree in sign with the median. Rates are compared with the static
thresholds of :class:`CameraThresholds`, which double as units: the strongest rate in
threshold units is the dominant movement.

What 2D global motion cannot tell apart, by construction: a pan (camera turning) from a
truck (camera sliding sideways), a tilt from a pedestal or crane, a zoom from a dolly --
without parallax they move the picture alike. :func:`score_camera` therefore treats
pan~truck, tilt~pedestal~crane and zoom~dolly as the same image-plane motion and
compares their directions (a truck left moves content right like a pan left; a dolly in
magnifies like a zoom in). An orbit shows up as horizontal motion of the background.

The vocabulary has no roll: a clip whose dominant motion is rotation about the lens
axis is classified ``handheld`` (free motion with no vocabulary direction), and the
measured roll is reported in ``measured_rotation_deg_s``. ``handheld`` is also the class
of unsteady footage: per-pair motion well above the static thresholds whose net motion
is small or whose pairs disagree in direction (jitter).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from scoring.frames import SampledFrames
from scoring.report import ComponentScore, Reason
from shotbank.annotation.models import Camera
from shotbank.annotation.motion import camera_path_motion
from shotbank.annotation.vocabulary import CameraMovement, MovementDirection, PositionScale

__all__ = [
    "MAX_FRAMES",
    "CameraThresholds",
    "MotionEstimate",
    "estimate_motion",
    "movement_label",
    "score_camera",
]

#: Most frames one estimate looks at (the sampler's own ceiling).
MAX_FRAMES: Final = 64

_M = CameraMovement
_D = MovementDirection
Gray = npt.NDArray[np.uint8]
Axis = Literal["horizontal", "vertical", "depth"]

#: Image-plane motion of each directional movement (see the module docstring).
_AXIS_OF: Final[dict[CameraMovement, Axis]] = {
    _M.PAN: "horizontal",
    _M.TRUCK: "horizontal",
    _M.TILT: "vertical",
    _M.PEDESTAL: "vertical",
    _M.CRANE: "vertical",
    _M.ZOOM: "depth",
    _M.DOLLY: "depth",
}
#: The term :func:`estimate_motion` reports for each axis.
_MEASURED_OF: Final[dict[Axis, CameraMovement]] = {
    "horizontal": _M.PAN,
    "vertical": _M.TILT,
    "depth": _M.ZOOM,
}
#: The axis of each measured rate (roll has none: see the module docstring).
_AXIS_OF_RATE: Final[dict[str, Axis]] = {"pan": "horizontal", "tilt": "vertical", "zoom": "depth"}
_SIGN_OF: Final[dict[MovementDirection, int]] = {
    _D.RIGHT: 1,
    _D.LEFT: -1,
    _D.UP: 1,
    _D.DOWN: -1,
    _D.IN: 1,
    _D.OUT: -1,
}
_DIRECTION_OF: Final[dict[Axis, tuple[MovementDirection, MovementDirection]]] = {
    "horizontal": (_D.RIGHT, _D.LEFT),
    "vertical": (_D.UP, _D.DOWN),
    "depth": (_D.IN, _D.OUT),
}


class CameraThresholds(BaseModel):
    """Every number the camera estimate and score depend on (embedded in a model profile).

    The static thresholds are also the units in which components are compared: a pan of
    0.02 frame widths per second is as strong as a zoom of 0.02 log-scale per second
    (which moves the frame's edge by 1 % of its width per second) and a roll of
    1.5 degrees per second (which moves a corner by about 1.6 % of the width per second).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Measurement.
    work_side: int = Field(default=160, ge=64, le=1280)
    """Longer side (pixels) of the grayscale frames motion is measured on; pixel
    thresholds below are at this size. 160 px keeps the estimate 3x cheaper than 320 px
    (14 ms against 46 ms for 8 frames of 640x360) with the same classifications on the
    clips of :mod:`scoring.clipgen`: a global move spans many corners, so sub-pixel
    precision per corner is not needed."""
    max_features: int = Field(default=100, ge=20, le=5000)
    """Most corners tracked per pair (100 at 160 px is the density 400 gave at 320 px;
    tracking them is most of the estimate's cost)."""
    min_features: int = Field(default=30, ge=3, le=5000)
    """Fewer corners than this: phase correlation instead of tracking."""
    min_inliers: int = Field(default=20, ge=3, le=5000)
    """Fewest RANSAC inliers for a fitted transform to be used."""
    min_inlier_ratio: float = Field(default=0.5, gt=0.0, le=1.0)
    """Lowest share of tracked corners agreeing with the fit. Measured at 160 px: clean
    camera moves 0.94-1.0, pure noise 0.25-0.33 (at 320 px, still shots with sensor
    grain measured 0.54-0.8)."""
    ransac_reproj_px: float = Field(default=1.0, gt=0.0, le=20.0)
    """RANSAC inlier distance, pixels at working size."""
    max_forward_backward_px: float = Field(default=0.5, gt=0.0, le=20.0)
    """Largest distance between a corner and its track followed back, pixels."""
    min_phase_response: float = Field(default=0.3, ge=0.0, le=1.0)
    """Weakest phase-correlation peak trusted. Measured at 160 px on textured canvases:
    pans and tilts 0.92-0.96, still scenes 0.97-1.0, noise 0.0-0.16; rolls and zooms
    (which it cannot model) 0.34-0.87, against 0.07-0.27 at 320 px, so at this size the
    fallback is trusted only for frames with too few corners to track."""

    min_texture_std: float = Field(default=4.0, ge=0.0, le=128.0)
    """Least luma standard deviation of both frames for phase correlation to be tried
    (a flat grey pair measured a 0.86 "peak")."""

    # Classification.
    static_translation_per_s: float = Field(default=0.02, gt=0.0, le=1.0)
    """Pan/tilt rate (frame widths or heights per second) below which there is none:
    a fifth of the frame over a 10 s clip. Grain on a still shot measured under 0.007."""
    static_zoom_per_s: float = Field(default=0.02, gt=0.0, le=1.0)
    """Zoom rate (log-scale per second) below which there is none (measured noise on
    still shots under 0.01)."""
    static_rotation_deg_s: float = Field(default=1.5, gt=0.0, le=90.0)
    """Roll rate (degrees per second) below which there is none; a still shot with few
    corners measured single pairs up to 1.3 deg/s, hence the margin."""
    min_consistency: float = Field(default=0.7, ge=0.0, le=1.0)
    """Share of moving pairs that must agree in sign for a directional movement: 5 of
    7 pairs; fewer reads as handheld."""
    handheld_jitter: float = Field(default=2.0, gt=0.0, le=100.0)
    """Median per-pair motion (in static-threshold units) above which a clip without net
    motion is handheld rather than static."""
    full_confidence: float = Field(default=0.5, gt=0.0, le=1.0)
    """Estimate confidence from which a score is taken at face value; below it the
    score is pulled towards 0.5 in proportion."""

    # Score values.
    match_value: float = Field(default=1.0, ge=0.0, le=1.0)
    """Declared movement and direction measured."""
    secondary_value: float = Field(default=0.6, ge=0.0, le=1.0)
    """The declared component is clearly present in the right direction, but another
    one dominates (a diagonal move, a pan with a zoom)."""
    direction_mismatch_value: float = Field(default=0.05, ge=0.0, le=1.0)
    """The declared movement measured going the other way."""
    movement_mismatch_value: float = Field(default=0.1, ge=0.0, le=1.0)
    """A different movement (or none) measured."""
    unsteady_value: float = Field(default=0.4, ge=0.0, le=1.0)
    """Declared a steady or directional movement, measured unsteady (handheld)."""
    orbit_value: float = Field(default=0.75, ge=0.0, le=1.0)
    """Declared orbit, measured horizontal motion: 2D motion cannot confirm the arc."""
    handheld_steady_value: float = Field(default=0.7, ge=0.0, le=1.0)
    """Declared handheld, measured steady or directional (stabilised handheld exists)."""
    drone_moving_value: float = Field(default=0.7, ge=0.0, le=1.0)
    """Declared drone, measured any motion: a drone has no direction to check."""
    drone_static_value: float = Field(default=0.4, ge=0.0, le=1.0)
    """Declared drone, measured static (a hover)."""
    path_mismatch_value: float = Field(default=0.2, ge=0.0, le=1.0)
    """Cap on the score when the annotation's camera path moves otherwise than measured."""
    path_min_angle_deg: float = Field(default=3.0, gt=0.0, le=90.0)
    """A camera path moving less than this apparent angle in all is static."""
    path_reference_distance: float = Field(default=1.0, gt=0.0, le=1e6)
    """Distance, in an arbitrary-scale path's own units, at which its translations are
    turned into apparent angles: SLAM reconstructions are usually normalised so the scene
    sits about one unit away; metric paths use the SDK's default (3 m)."""


class MotionEstimate(BaseModel):
    """The camera motion measured over a clip's sampled frames (see the module).

    Not to be confused with the SDK's ``shotbank.annotation.motion.MotionEstimate``, the
    dominant movement of a declared camera path, which :func:`score_camera` compares
    this one with.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    pairs: int = Field(ge=0, le=MAX_FRAMES)
    """Consecutive frame pairs looked at."""
    usable_pairs: int = Field(ge=0, le=MAX_FRAMES)
    """Pairs whose motion could be measured (0: nothing could be)."""
    pan_right_per_s: float
    """Median horizontal rate, frame widths per second; positive: camera turns (or
    moves) right, content moves left."""
    tilt_up_per_s: float
    """Median vertical rate, frame heights per second; positive: camera turns (or
    rises) up, content moves down."""
    zoom_in_per_s: float
    """Median natural-log scale change per second; positive: content grows (zoom or
    dolly in)."""
    measured_rotation_deg_s: float
    """Median roll, degrees per second, clockwise as seen from behind the camera (the
    picture turns counter-clockwise)."""
    pan_consistency: float = Field(ge=0.0, le=1.0)
    """Share of pairs moving horizontally that agree with the median's sign."""
    tilt_consistency: float = Field(ge=0.0, le=1.0)
    zoom_consistency: float = Field(ge=0.0, le=1.0)
    rotation_consistency: float = Field(ge=0.0, le=1.0)
    jitter: float = Field(ge=0.0)
    """Median over pairs of the pair's strongest rate, in static-threshold units."""
    movement: CameraMovement
    """``static``, ``pan``, ``tilt``, ``zoom`` or ``handheld`` (unsteady, or a roll)."""
    direction: MovementDirection | None
    """Direction of a pan/tilt/zoom; ``None`` otherwise."""
    confidence: float = Field(ge=0.0, le=1.0)
    """Share of usable pairs times their median fit quality (inlier share)."""

    @property
    def label(self) -> str:
        """``"pan-left"``, ``"static"``... as messages write it."""
        return movement_label(self.movement, self.direction)


def movement_label(movement: CameraMovement, direction: MovementDirection | None) -> str:
    """A movement and its direction as people read them: ``"pan-left"``, ``"static"``."""
    return movement.value if direction is None else f"{movement.value}-{direction.value}"


@dataclass(frozen=True)
class _PairMotion:
    """One pair's rates (camera terms, per second) and how well they were fitted."""

    pan: float
    tilt: float
    zoom: float
    roll: float
    quality: float


def _working_gray(frame: npt.NDArray[np.uint8], side: int) -> Gray:
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    scale = side / max(height, width)
    if scale >= 1.0:
        return np.ascontiguousarray(gray)
    size = (max(round(width * scale), 8), max(round(height * scale), 8))
    return np.ascontiguousarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA))


def _tracked_similarity(
    before: Gray, after: Gray, th: CameraThresholds
) -> tuple[npt.NDArray[np.float64], float] | None:
    """The 2x3 similarity mapping ``before`` onto ``after`` and its inlier share."""
    corners = cv2.goodFeaturesToTrack(
        before, maxCorners=th.max_features, qualityLevel=0.01, minDistance=4, blockSize=5
    )
    if corners is None or len(corners) < th.min_features:
        return None
    # Three pyramid levels with a 15 px window follow moves of up to about 60 px at a
    # 160 px working size (0.4 frame widths between samples); a fourth level would be
    # smaller than the window.
    ahead, status, _ = cv2.calcOpticalFlowPyrLK(
        before, after, corners, np.empty_like(corners), winSize=(15, 15), maxLevel=3
    )
    back, status_back, _ = cv2.calcOpticalFlowPyrLK(
        after, before, ahead, np.empty_like(corners), winSize=(15, 15), maxLevel=3
    )
    drift = np.linalg.norm((back - corners).reshape(-1, 2), axis=1)
    kept = (status.ravel() == 1) & (status_back.ravel() == 1) & (drift < th.max_forward_backward_px)
    if int(kept.sum()) < th.min_inliers:
        return None
    # OpenCV's RANSAC seeds its own generator with a constant, so the fit is repeatable:
    # two validators measuring the same frames get the same numbers.
    matrix, inliers = cv2.estimateAffinePartial2D(
        corners[kept],
        ahead[kept],
        method=cv2.RANSAC,
        ransacReprojThreshold=th.ransac_reproj_px,
        maxIters=2000,
        confidence=0.99,
    )
    if matrix is None or inliers is None:
        return None
    count = int(inliers.sum())
    ratio = count / int(kept.sum())
    if count < th.min_inliers or ratio < th.min_inlier_ratio:
        return None
    return np.asarray(matrix, np.float64), ratio


def _phase_translation(
    before: Gray, after: Gray, th: CameraThresholds
) -> tuple[float, float, float] | None:
    """Content translation (pixels) of ``after`` against ``before`` and its peak."""
    # On flat frames the normalised cross-power spectrum is all rounding noise, and its
    # "peak" can be as high as a true match's.
    if min(float(before.std()), float(after.std())) < th.min_texture_std:
        return None
    window = cv2.createHanningWindow((before.shape[1], before.shape[0]), cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(
        before.astype(np.float32), after.astype(np.float32), window
    )
    if not math.isfinite(response) or response < th.min_phase_response:
        return None
    return float(dx), float(dy), min(float(response), 1.0)


def _pair_motion(before: Gray, after: Gray, dt: float, th: CameraThresholds) -> _PairMotion | None:
    height, width = before.shape
    fitted = _tracked_similarity(before, after, th)
    if fitted is not None:
        matrix, quality = fitted
        centre = np.array([width / 2, height / 2, 1.0])
        dx, dy = matrix @ centre - centre[:2]  # how the frame's centre moved
        scale = math.hypot(matrix[0, 0], matrix[1, 0])
        # Positive angle in image coordinates (y down) turns content clockwise on screen,
        # which a camera rolling counter-clockwise causes.
        content_turn = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
        return _PairMotion(
            pan=-dx / width / dt,
            tilt=dy / height / dt,
            zoom=math.log(scale) / dt,
            roll=-content_turn / dt,
            quality=quality,
        )
    shifted = _phase_translation(before, after, th)
    if shifted is None:
        return None
    dx, dy, response = shifted
    # Phase correlation measures translation only: zoom and roll count as none.
    return _PairMotion(
        pan=-dx / width / dt, tilt=dy / height / dt, zoom=0.0, roll=0.0, quality=response
    )


def _consistency(rates: Sequence[float], median: float, threshold: float) -> float:
    moving = [rate for rate in rates if abs(rate) >= threshold / 2]
    if not moving:
        return 1.0
    sign = math.copysign(1.0, median) if median != 0.0 else 0.0
    return sum(1 for rate in moving if math.copysign(1.0, rate) == sign) / len(moving)


def estimate_motion(
    frames: SampledFrames, *, thresholds: CameraThresholds | None = None
) -> MotionEstimate:
    """The camera motion of a clip from its sampled frames (see the module docstring).

    Pairs whose frames are not later than the previous one are skipped; a clip with no
    usable pair (one frame, black or featureless frames) is reported ``static`` with
    ``usable_pairs == 0`` and confidence 0, which :func:`score_camera` does not score.
    """
    th = thresholds or CameraThresholds()
    if len(frames.frames) > MAX_FRAMES:
        raise ValueError(f"at most {MAX_FRAMES} frames, got {len(frames.frames)}")
    if len(frames.frames) != len(frames.timestamps):
        raise ValueError("frames and timestamps differ in number")
    gray = [_working_gray(frame, th.work_side) for frame in frames.frames]
    pairs = max(len(gray) - 1, 0)
    measured: list[_PairMotion] = []
    for index in range(pairs):
        before, after = gray[index], gray[index + 1]
        dt = frames.timestamps[index + 1] - frames.timestamps[index]
        if dt <= 0.0 or before.shape != after.shape:
            continue
        motion = _pair_motion(before, after, dt, th)
        if motion is not None:
            measured.append(motion)
    if not measured:
        return MotionEstimate(
            pairs=pairs,
            usable_pairs=0,
            pan_right_per_s=0.0,
            tilt_up_per_s=0.0,
            zoom_in_per_s=0.0,
            measured_rotation_deg_s=0.0,
            pan_consistency=0.0,
            tilt_consistency=0.0,
            zoom_consistency=0.0,
            rotation_consistency=0.0,
            jitter=0.0,
            movement=_M.STATIC,
            direction=None,
            confidence=0.0,
        )
    units = {
        "pan": th.static_translation_per_s,
        "tilt": th.static_translation_per_s,
        "zoom": th.static_zoom_per_s,
        "roll": th.static_rotation_deg_s,
    }
    rates = {name: [getattr(pair, name) for pair in measured] for name in units}
    median = {name: statistics.median(values) for name, values in rates.items()}
    consistency = {name: _consistency(rates[name], median[name], units[name]) for name in units}
    strength = {name: abs(median[name]) / units[name] for name in units}
    jitter = statistics.median(
        max(abs(getattr(pair, name)) / unit for name, unit in units.items()) for pair in measured
    )
    dominant = max(strength, key=lambda name: strength[name])
    movement, direction = _M.STATIC, None
    if strength[dominant] < 1.0:
        if jitter >= th.handheld_jitter:
            movement = _M.HANDHELD
    elif dominant == "roll" or consistency[dominant] < th.min_consistency:
        movement = _M.HANDHELD
    else:
        axis = _AXIS_OF_RATE[dominant]
        movement = _MEASURED_OF[axis]
        positive, negative = _DIRECTION_OF[axis]
        direction = positive if median[dominant] > 0.0 else negative
    quality = statistics.median(pair.quality for pair in measured)
    return MotionEstimate(
        pairs=pairs,
        usable_pairs=len(measured),
        pan_right_per_s=median["pan"],
        tilt_up_per_s=median["tilt"],
        zoom_in_per_s=median["zoom"],
        measured_rotation_deg_s=median["roll"],
        pan_consistency=consistency["pan"],
        tilt_consistency=consistency["tilt"],
        zoom_consistency=consistency["zoom"],
        rotation_consistency=consistency["roll"],
        jitter=jitter,
        movement=movement,
        direction=direction,
        confidence=min(len(measured) / pairs, 1.0) * quality,
    )


def _axis_component(
    estimate: MotionEstimate, axis: Axis, th: CameraThresholds
) -> tuple[float, float]:
    """The estimate's signed strength along ``axis`` (static-threshold units) and its
    consistency."""
    if axis == "horizontal":
        return estimate.pan_right_per_s / th.static_translation_per_s, estimate.pan_consistency
    if axis == "vertical":
        return estimate.tilt_up_per_s / th.static_translation_per_s, estimate.tilt_consistency
    return estimate.zoom_in_per_s / th.static_zoom_per_s, estimate.zoom_consistency


def _measured_axis(estimate: MotionEstimate) -> tuple[Axis, int] | None:
    for axis, movement in _MEASURED_OF.items():
        if estimate.movement is movement and estimate.direction is not None:
            return axis, _SIGN_OF[estimate.direction]
    return None


def _reason(code: str, message: str) -> Reason:
    return Reason(code=code, message=message)


def _directional(
    estimate: MotionEstimate, camera: Camera, th: CameraThresholds
) -> tuple[float, Reason]:
    """Score a declared pan/truck/tilt/pedestal/crane/zoom/dolly against the estimate."""
    axis = _AXIS_OF[camera.movement]
    assert camera.direction is not None  # the annotation model requires one
    sign = _SIGN_OF[camera.direction]
    declared = movement_label(camera.movement, camera.direction)
    measured = estimate.label
    base = f"camera movement declared {declared}, measured {measured}"
    if estimate.movement is _M.STATIC:
        return th.movement_mismatch_value, _reason("camera.movement_mismatch", base)
    found = _measured_axis(estimate)
    if found is not None and found[0] == axis:
        if found[1] == sign:
            same = _MEASURED_OF[axis] is camera.movement
            note = "" if same else " (the same motion in the picture)"
            return th.match_value, _reason("camera.movement_match", base + note)
        return th.direction_mismatch_value, _reason("camera.direction_mismatch", base)
    # Another axis dominates (or the camera is unsteady): is the declared one there too?
    component, consistency = _axis_component(estimate, axis, th)
    positive, negative = _DIRECTION_OF[axis]
    along = movement_label(_MEASURED_OF[axis], positive if component > 0 else negative)
    if abs(component) >= 1.0 and consistency >= th.min_consistency:
        if (component > 0) == (sign > 0):
            return th.secondary_value, _reason(
                "camera.movement_match", f"{base}, with {along} as well"
            )
        return th.direction_mismatch_value, _reason(
            "camera.direction_mismatch", f"{base}, with {along}"
        )
    if estimate.movement is _M.HANDHELD:
        return th.unsteady_value, _reason("camera.movement_mismatch", base + " (unsteady)")
    return th.movement_mismatch_value, _reason("camera.movement_mismatch", base)


def _declared_score(
    estimate: MotionEstimate, camera: Camera, th: CameraThresholds
) -> tuple[float, Reason]:
    declared = movement_label(camera.movement, camera.direction)
    base = f"camera movement declared {declared}, measured {estimate.label}"
    moving = estimate.movement is not _M.STATIC
    match camera.movement:
        case _M.STATIC:
            if not moving:
                return th.match_value, _reason("camera.movement_match", base)
            if estimate.movement is _M.HANDHELD:
                return th.unsteady_value, _reason("camera.movement_mismatch", base + " (unsteady)")
            return th.movement_mismatch_value, _reason("camera.movement_mismatch", base)
        case _M.HANDHELD:
            value = th.match_value if estimate.movement is _M.HANDHELD else th.handheld_steady_value
            return value, _reason("camera.movement_match", base)
        case _M.DRONE:
            if moving:
                return th.drone_moving_value, _reason("camera.movement_match", base)
            return th.drone_static_value, _reason("camera.movement_mismatch", base)
        case _M.ORBIT:
            if estimate.movement is _M.PAN:
                return th.orbit_value, _reason(
                    "camera.movement_match",
                    base + " (an orbit moves the picture sideways; its arc and direction "
                    "need parallax, which is not measured)",
                )
            return th.movement_mismatch_value, _reason("camera.movement_mismatch", base)
        case _:
            return _directional(estimate, camera, th)


def _path_check(estimate: MotionEstimate, camera: Camera, th: CameraThresholds) -> Reason | None:
    """Compare the annotation's camera path with the measured motion (None: not
    comparable, as for unsteady footage)."""
    if camera.path is None or estimate.movement is _M.HANDHELD:
        return None
    motion = camera_path_motion(camera.path)
    reference = (
        None if motion.position_scale is PositionScale.METRIC else th.path_reference_distance
    )
    dominant = motion.dominant_movement(
        reference_distance=reference, min_angle_deg=th.path_min_angle_deg
    )
    path_label = movement_label(dominant.movement, dominant.direction)
    expected: tuple[Axis, int] | None
    if dominant.movement is _M.STATIC:
        expected = None
    elif dominant.movement is _M.ORBIT:
        # The background turns with the pan component of the orbit.
        expected = ("horizontal", 1 if dominant.components_deg[_M.PAN] > 0 else -1)
    elif dominant.movement in _AXIS_OF and dominant.direction is not None:
        expected = (_AXIS_OF[dominant.movement], _SIGN_OF[dominant.direction])
    else:
        return None
    found = _measured_axis(estimate)
    message = f"camera path moves {path_label}, measured {estimate.label}"
    if expected == found:
        return _reason("camera.path_match", message)
    return _reason("camera.path_mismatch", message)


def score_camera(
    estimate: MotionEstimate, camera: Camera, *, thresholds: CameraThresholds | None = None
) -> ComponentScore:
    """How well the measured motion fits the declared camera movement (and path).

    Values come from :class:`CameraThresholds` (``match_value`` for a clear match, the
    mismatch values otherwise) and are pulled towards 0.5 when the estimate's confidence
    is below ``full_confidence``. A clip whose motion could not be measured at all is not
    scored (``None``, ``camera.not_measurable``).

    With a camera path in the annotation, the path's dominant movement
    (:meth:`shotbank.annotation.motion.PathMotion.dominant_movement`, mapped to its
    image-plane motion like the declared movement) must agree with the measured one in
    axis and direction: ``camera.path_match``, or ``camera.path_mismatch`` with the score
    capped at ``path_mismatch_value``. Unsteady (handheld) footage has no direction to
    compare and is not checked against the path.
    """
    th = thresholds or CameraThresholds()
    measured: dict[str, float | int | str | bool | None] = {
        "movement": estimate.label,
        "pan_right_per_s": round(estimate.pan_right_per_s, 5),
        "tilt_up_per_s": round(estimate.tilt_up_per_s, 5),
        "zoom_in_per_s": round(estimate.zoom_in_per_s, 5),
        "rotation_deg_s": round(estimate.measured_rotation_deg_s, 4),
        "pan_consistency": round(estimate.pan_consistency, 4),
        "tilt_consistency": round(estimate.tilt_consistency, 4),
        "zoom_consistency": round(estimate.zoom_consistency, 4),
        "jitter": round(estimate.jitter, 4),
        "usable_pairs": estimate.usable_pairs,
        "confidence": round(estimate.confidence, 4),
    }
    if estimate.usable_pairs == 0:
        return ComponentScore(
            value=None,
            reasons=(
                _reason(
                    "camera.not_measurable",
                    "camera motion could not be measured: no pair of sampled frames has "
                    "enough texture to track",
                ),
            ),
            measured=measured,
        )
    value, reason = _declared_score(estimate, camera, th)
    reasons = [reason]
    path = _path_check(estimate, camera, th)
    if path is not None:
        reasons.append(path)
        if path.code == "camera.path_mismatch":
            value = min(value, th.path_mismatch_value)
    weight = min(estimate.confidence / th.full_confidence, 1.0)
    value = 0.5 + (value - 0.5) * weight
    return ComponentScore(
        value=min(max(value, 0.0), 1.0), reasons=tuple(reasons), measured=measured
    )
