"""Net motion of a camera path, in the camera's own frame, for comparison with the label.

:func:`camera_path_motion` integrates a path step by step: each step's translation is
expressed in the camera frame at the middle of the step, and each step's rotation is
the relative rotation in the camera frame, so a curved dolly is still "forward" and an
orbit is "sideways while turning". The result does not depend on the world frame the
path was given in (any rigid transform of the whole path gives the same numbers), nor
on the speed at which the path is travelled.

Signs follow the operator's view: ``right``/``up``/``forward`` translations, pan
right, tilt up, roll clockwise (the camera turning clockwise as seen from behind it,
so the picture turns counter-clockwise), zoom in (focal length growing).

:meth:`PathMotion.dominant_movement` turns those numbers into one term of the camera
movement vocabulary. To compare rotations (degrees) with translations (metres) it uses,
to first order, the angle under which a point at ``reference_distance`` ``d`` in front
of the camera moves: ``t / d`` radians (not ``atan(t / d)``, which would saturate at 90
degrees while rotations do not). Forward translation and zoom are both measured by the
magnification they cause at that distance, again to first order: ``t / d`` and
``ln(ratio)`` radians, so a dolly and a zoom of the same visual strength score the
same. Only pan, tilt, truck,
pedestal, dolly, zoom, orbit and static are recognised: a crane shows up as pedestal
(often with tilt), and handheld or drone are not directions but styles -- the scorer
decides what counts as agreement.
"""

from __future__ import annotations

import itertools
import math
from typing import Final

from pydantic import BaseModel, ConfigDict

from shotbank.annotation import _geometry as g
from shotbank.annotation.camera_path import CameraPath
from shotbank.annotation.vocabulary import CameraMovement, MovementDirection, PositionScale

__all__ = [
    "DEFAULT_MIN_ANGLE_DEG",
    "DEFAULT_ORBIT_RATIO",
    "DEFAULT_REFERENCE_DISTANCE_M",
    "MotionEstimate",
    "PathMotion",
    "camera_path_motion",
]

#: Distance (metres) at which translations are turned into apparent angles by default.
DEFAULT_REFERENCE_DISTANCE_M: Final = 3.0
#: Below this apparent angle (degrees) for every component, the path counts as static.
DEFAULT_MIN_ANGLE_DEG: Final = 2.0
#: Sideways translation and pan in opposite senses, each at least this share of the
#: strongest component, make an orbit. Circling a subject at distance r gives a pan of
#: d / r times the truck, so 0.3 finds orbits of radius up to about 3.3 reference
#: distances (10 m by default); wider arcs read as a truck.
DEFAULT_ORBIT_RATIO: Final = 0.3

_M = CameraMovement
_D = MovementDirection
_POSITIVE: Final = {
    _M.PAN: _D.RIGHT,
    _M.TILT: _D.UP,
    _M.TRUCK: _D.RIGHT,
    _M.PEDESTAL: _D.UP,
    _M.DOLLY: _D.IN,
    _M.ZOOM: _D.IN,
}
_NEGATIVE: Final = {
    _M.PAN: _D.LEFT,
    _M.TILT: _D.DOWN,
    _M.TRUCK: _D.LEFT,
    _M.PEDESTAL: _D.DOWN,
    _M.DOLLY: _D.OUT,
    _M.ZOOM: _D.OUT,
}


class MotionEstimate(BaseModel):
    """The dominant movement of a path, as a vocabulary term with its direction."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    movement: CameraMovement
    """Dominant movement (static, pan, tilt, truck, pedestal, dolly, zoom or orbit)."""
    direction: MovementDirection | None
    """Its direction (``None`` for static)."""
    magnitude_deg: float
    """Apparent angle of the dominant component (the pan's, for an orbit)."""
    share: float
    """The dominant component's part of all components' apparent angles, 0-1."""
    components_deg: dict[CameraMovement, float]
    """Signed apparent angle of every component (positive: right/up/in)."""


class PathMotion(BaseModel):
    """Net motion of a camera path, integrated in the camera frame (see the module)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    duration_s: float
    """Time from the first to the last keyframe."""
    right: float
    """Translation to the camera's right, in the path's position units."""
    up: float
    """Translation towards the camera's up."""
    forward: float
    """Translation along the viewing direction."""
    pan_right_deg: float
    """Rotation about the camera's vertical axis; positive turns the view right."""
    tilt_up_deg: float
    """Rotation about the camera's horizontal axis; positive turns the view up."""
    roll_cw_deg: float
    """Rotation about the viewing axis; positive is clockwise seen from behind."""
    zoom_ratio: float | None
    """Last over first known focal length; ``None`` without two focal lengths."""
    path_length: float
    """Distance travelled along the path (sum of step lengths)."""
    rotation_path_deg: float
    """Total angle turned along the path (sum of step angles); shake makes it large."""
    position_scale: PositionScale
    """Unit of ``right``/``up``/``forward``/``path_length``."""

    @property
    def translation_direction(self) -> tuple[float, float, float] | None:
        """Unit vector (right, up, forward) of the net translation; ``None`` if none."""
        length = math.hypot(self.right, self.up, self.forward)
        if length == 0.0:
            return None
        return (self.right / length, self.up / length, self.forward / length)

    def components_deg(self, *, reference_distance: float | None = None) -> dict[_M, float]:
        """Signed apparent angle of each component (pan, tilt, truck, pedestal, dolly, zoom).

        ``reference_distance`` is in the path's position units; it defaults to
        :data:`DEFAULT_REFERENCE_DISTANCE_M` for metric paths and must be given for
        paths of arbitrary scale.
        """
        if reference_distance is None:
            if self.position_scale is not PositionScale.METRIC:
                raise ValueError(
                    "the path's positions have an arbitrary scale: pass reference_distance "
                    "in the path's units"
                )
            reference_distance = DEFAULT_REFERENCE_DISTANCE_M
        if not (math.isfinite(reference_distance) and reference_distance > 0.0):
            raise ValueError("reference_distance must be positive and finite")
        d = reference_distance
        zoom = math.degrees(math.log(self.zoom_ratio)) if self.zoom_ratio else 0.0
        return {
            _M.PAN: self.pan_right_deg,
            _M.TILT: self.tilt_up_deg,
            _M.TRUCK: math.degrees(self.right / d),
            _M.PEDESTAL: math.degrees(self.up / d),
            _M.DOLLY: math.degrees(self.forward / d),
            _M.ZOOM: zoom,
        }

    def dominant_movement(
        self,
        *,
        reference_distance: float | None = None,
        min_angle_deg: float = DEFAULT_MIN_ANGLE_DEG,
        orbit_ratio: float = DEFAULT_ORBIT_RATIO,
    ) -> MotionEstimate:
        """The vocabulary term that best describes the path (see the module docstring)."""
        components = self.components_deg(reference_distance=reference_distance)
        strengths = {movement: abs(angle) for movement, angle in components.items()}
        total = sum(strengths.values())
        strongest = max(strengths, key=lambda movement: strengths[movement])
        peak = strengths[strongest]
        if peak < min_angle_deg:
            return MotionEstimate(
                movement=_M.STATIC,
                direction=None,
                magnitude_deg=peak,
                share=1.0,
                components_deg=components,
            )
        pan, truck = components[_M.PAN], components[_M.TRUCK]
        if (
            strengths[_M.PAN] >= orbit_ratio * peak
            and strengths[_M.TRUCK] >= orbit_ratio * peak
            and pan * truck < 0.0
        ):
            # Moving right while turning left keeps a subject in front centred: seen
            # from above the camera circles it counter-clockwise, and vice versa.
            return MotionEstimate(
                movement=_M.ORBIT,
                direction=_D.CCW if pan < 0.0 else _D.CW,
                magnitude_deg=abs(pan),
                share=(abs(pan) + abs(truck)) / total,
                components_deg=components,
            )
        angle = components[strongest]
        return MotionEstimate(
            movement=strongest,
            direction=(_POSITIVE if angle > 0.0 else _NEGATIVE)[strongest],
            magnitude_deg=peak,
            share=peak / total,
            components_deg=components,
        )


def camera_path_motion(path: CameraPath) -> PathMotion:
    """Integrate ``path`` into its net motion in the camera frame (see the module)."""
    right = up = forward = 0.0
    rotation = [0.0, 0.0, 0.0]
    path_length = rotation_path = 0.0
    keyframes = path.keyframes
    for before, after in itertools.pairwise(keyframes):
        step = g.sub(after.position_m, before.position_m)
        path_length += g.norm(step)
        middle = g.quat_midpoint(before.orientation_wxyz, after.orientation_wxyz)
        local = g.quat_rotate(g.quat_conjugate(middle), step)
        right += local[0]
        up -= local[1]  # the camera's +y points down
        forward += local[2]
        relative = g.quat_multiply(
            g.quat_conjugate(before.orientation_wxyz), after.orientation_wxyz
        )
        vector = g.quat_to_rotation_vector(relative)
        rotation_path += g.norm(vector)
        for axis in range(3):
            rotation[axis] += vector[axis]
    focal = [k.focal_length_mm for k in keyframes if k.focal_length_mm is not None]
    # Rotation about +x (right) lifts the view (+z towards -y); about +y (down) turns it
    # right; about +z (forward) turns the right-hand side down, i.e. clockwise.
    return PathMotion(
        duration_s=keyframes[-1].time_s - keyframes[0].time_s,
        right=right,
        up=up,
        forward=forward,
        pan_right_deg=math.degrees(rotation[1]),
        tilt_up_deg=math.degrees(rotation[0]),
        roll_cw_deg=math.degrees(rotation[2]),
        zoom_ratio=focal[-1] / focal[0] if len(focal) >= 2 else None,
        path_length=path_length,
        rotation_path_deg=math.degrees(rotation_path),
        position_scale=path.position_scale,
    )
