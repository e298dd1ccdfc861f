"""Net motion of camera paths: synthetic moves of known kind, and invariances."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shotbank.annotation import CameraPath, Keyframe, PathMotion, camera_path_motion
from shotbank.annotation.vocabulary import CameraMovement, MovementDirection, PositionScale
from tests.sdk.annotation.poses import (
    LOOK_NORTH,
    Mat,
    Quat,
    Vec,
    axis_angle_quat,
    look_at,
    matmul,
    matrix_quat,
    matvec,
    quat_matrix,
    quat_mul,
    rodrigues,
)

M = CameraMovement
D = MovementDirection
NORTH = matrix_quat(LOOK_NORTH)  # level camera looking along world +y, z up


def path_of(
    poses: list[tuple[Vec, Mat]],
    *,
    focal: list[float] | None = None,
    scale: PositionScale = PositionScale.METRIC,
) -> CameraPath:
    keyframes = [
        Keyframe(
            time_s=i / 10,
            position_m=position,
            orientation_wxyz=matrix_quat(rotation),
            focal_length_mm=focal[i] if focal else None,
        )
        for i, (position, rotation) in enumerate(poses)
    ]
    return CameraPath(keyframes=tuple(keyframes), position_scale=scale)


def turned(axis: Vec, degrees: float) -> Mat:
    """LOOK_NORTH turned about one of the camera's own axes."""
    return matmul(LOOK_NORTH, rodrigues(axis, math.radians(degrees)))


def dominant(path: CameraPath) -> tuple[CameraMovement, MovementDirection | None]:
    estimate = camera_path_motion(path).dominant_movement()
    return estimate.movement, estimate.direction


STEPS = range(11)


@pytest.mark.parametrize(("sign", "direction"), [(1, D.RIGHT), (-1, D.LEFT)])
def test_pan(sign: int, direction: MovementDirection) -> None:
    path = path_of([((0, 0, 0), turned((0, 1, 0), sign * 4 * i)) for i in STEPS])
    motion = camera_path_motion(path)
    assert motion.pan_right_deg == pytest.approx(sign * 40)
    assert motion.tilt_up_deg == pytest.approx(0, abs=1e-9)
    assert motion.translation_direction is None
    assert dominant(path) == (M.PAN, direction)


@pytest.mark.parametrize(("sign", "direction"), [(1, D.UP), (-1, D.DOWN)])
def test_tilt(sign: int, direction: MovementDirection) -> None:
    path = path_of([((0, 0, 0), turned((1, 0, 0), sign * 3 * i)) for i in STEPS])
    assert camera_path_motion(path).tilt_up_deg == pytest.approx(sign * 30)
    assert dominant(path) == (M.TILT, direction)


def test_roll_is_measured_clockwise_from_behind() -> None:
    path = path_of([((0, 0, 0), turned((0, 0, 1), 2 * i)) for i in STEPS])
    motion = camera_path_motion(path)
    assert motion.roll_cw_deg == pytest.approx(20)
    # The camera's right-hand axis now points down a little: clockwise seen from behind.
    right = quat_matrix(path.keyframes[-1].orientation_wxyz)
    assert right[2][0] < 0  # world z (up) component of the camera's x axis


@pytest.mark.parametrize(
    ("step", "movement", "direction"),
    [
        ((0.2, 0, 0), M.TRUCK, D.RIGHT),  # world +x is the camera's right
        ((-0.2, 0, 0), M.TRUCK, D.LEFT),
        ((0, 0, 0.2), M.PEDESTAL, D.UP),
        ((0, 0, -0.2), M.PEDESTAL, D.DOWN),
        ((0, 0.2, 0), M.DOLLY, D.IN),
        ((0, -0.2, 0), M.DOLLY, D.OUT),
    ],
)
def test_translations(step: Vec, movement: CameraMovement, direction: MovementDirection) -> None:
    path = path_of([(tuple(c * i for c in step), LOOK_NORTH) for i in STEPS])  # type: ignore[misc]
    motion = camera_path_motion(path)
    assert motion.path_length == pytest.approx(2.0)
    assert dominant(path) == (movement, direction)
    assert math.hypot(motion.right, motion.up, motion.forward) == pytest.approx(2.0)


def test_translation_direction_is_a_unit_vector_in_the_camera_frame() -> None:
    path = path_of([((0, 0, 0), LOOK_NORTH), ((1, 1, 0), LOOK_NORTH)])
    assert camera_path_motion(path).translation_direction == pytest.approx(
        (math.sqrt(0.5), 0, math.sqrt(0.5))
    )


@pytest.mark.parametrize(("end", "direction"), [(70.0, D.IN), (17.5, D.OUT)])
def test_zoom(end: float, direction: MovementDirection) -> None:
    focal = [35 + (end - 35) * i / 10 for i in STEPS]
    path = path_of([((0, 0, 0), LOOK_NORTH) for _ in STEPS], focal=focal)
    motion = camera_path_motion(path)
    assert motion.zoom_ratio == pytest.approx(end / 35)
    assert dominant(path) == (M.ZOOM, direction)


def test_zoom_and_dolly_of_equal_magnification_score_alike() -> None:
    zoom = path_of([((0, 0, 0), LOOK_NORTH)] * 2, focal=[35, 35 * 1.1])
    dolly = path_of([((0, 0, 0), LOOK_NORTH), ((0, 0.3 * math.log(1.1) * 10, 0), LOOK_NORTH)])
    z = camera_path_motion(zoom).components_deg()[M.ZOOM]
    d = camera_path_motion(dolly).components_deg()[M.DOLLY]
    assert z == pytest.approx(d)


@pytest.mark.parametrize(("sense", "direction"), [(1, D.CCW), (-1, D.CW)])
def test_orbit_around_a_subject(sense: int, direction: MovementDirection) -> None:
    poses = []
    for i in range(37):
        angle = -math.pi / 2 + sense * math.radians(5 * i)  # start south of the subject
        eye = (4 * math.cos(angle), 4 * math.sin(angle), 1.6)
        poses.append((eye, look_at(eye, (0, 0, 1.6))))
    path = path_of(poses)
    motion = camera_path_motion(path)
    assert motion.pan_right_deg == pytest.approx(-sense * 180, abs=1e-6)
    assert motion.right * sense > 0  # counter-clockwise from above moves to the right
    assert motion.forward == pytest.approx(0, abs=0.05)
    assert dominant(path) == (M.ORBIT, direction)


def test_small_jitter_is_static() -> None:
    poses = [((0.001 * (-1) ** i, 0, 0), turned((0, 1, 0), 0.2 * (-1) ** i)) for i in STEPS]
    estimate = camera_path_motion(path_of(poses)).dominant_movement()
    assert estimate.movement is M.STATIC
    assert estimate.direction is None
    assert camera_path_motion(path_of(poses)).rotation_path_deg == pytest.approx(4.0, abs=1e-6)


def test_arbitrary_scale_needs_a_reference_distance() -> None:
    path = path_of(
        [((0, 0, 0), LOOK_NORTH), ((0.5, 0, 0), LOOK_NORTH)], scale=PositionScale.ARBITRARY
    )
    motion = camera_path_motion(path)
    with pytest.raises(ValueError, match="arbitrary scale"):
        motion.dominant_movement()
    assert motion.dominant_movement(reference_distance=1.0).movement is M.TRUCK


def test_share_tells_how_dominant_the_movement_is() -> None:
    poses = [((0.1 * i, 0, 0), turned((1, 0, 0), 0.5 * i)) for i in STEPS]
    estimate = camera_path_motion(path_of(poses)).dominant_movement()
    assert estimate.movement is M.TRUCK
    assert 0.5 < estimate.share < 1.0
    assert estimate.magnitude_deg == pytest.approx(math.degrees(1 / 3))


# --- invariances ------------------------------------------------------------------------

floats = st.floats(-1.0, 1.0)
axes = st.tuples(floats, floats, floats).filter(lambda v: math.hypot(*v) > 0.1)


@st.composite
def random_paths(draw: st.DrawFn) -> list[tuple[Vec, Quat]]:
    count = draw(st.integers(2, 12))
    poses: list[tuple[Vec, Quat]] = []
    position: Vec = (0.0, 0.0, 0.0)
    orientation = NORTH
    for _ in range(count):
        poses.append((position, orientation))
        step = draw(st.tuples(floats, floats, floats))
        position = (position[0] + step[0], position[1] + step[1], position[2] + step[2])
        turn = axis_angle_quat(draw(axes), draw(st.floats(-0.5, 0.5)))
        orientation = quat_mul(orientation, turn)
    return poses


def build(poses: list[tuple[Vec, Quat]], times: list[float] | None = None) -> CameraPath:
    return CameraPath(
        keyframes=tuple(
            Keyframe(
                time_s=times[i] if times else i, position_m=position, orientation_wxyz=orientation
            )
            for i, (position, orientation) in enumerate(poses)
        )
    )


def same_motion(a: PathMotion, b: PathMotion, *, sign: float = 1.0) -> None:
    for name in ("right", "up", "forward", "pan_right_deg", "tilt_up_deg", "roll_cw_deg"):
        assert getattr(b, name) == pytest.approx(sign * getattr(a, name), abs=1e-7), name
    assert b.path_length == pytest.approx(a.path_length)
    assert b.rotation_path_deg == pytest.approx(a.rotation_path_deg, abs=1e-7)


@settings(max_examples=80, deadline=None)
@given(random_paths(), axes, st.floats(-math.pi, math.pi), st.tuples(*[st.floats(-100, 100)] * 3))
def test_fuzz_motion_does_not_depend_on_the_world_frame(
    poses: list[tuple[Vec, Quat]], axis: Vec, angle: float, shift: Vec
) -> None:
    world = axis_angle_quat(axis, angle)
    rotation = quat_matrix(world)
    moved = []
    for position, orientation in poses:
        p = matvec(rotation, position)
        moved.append(
            ((p[0] + shift[0], p[1] + shift[1], p[2] + shift[2]), quat_mul(world, orientation))
        )
    same_motion(camera_path_motion(build(poses)), camera_path_motion(build(moved)))


@settings(max_examples=80, deadline=None)
@given(random_paths())
def test_fuzz_reversed_path_has_opposite_motion(poses: list[tuple[Vec, Quat]]) -> None:
    forward = camera_path_motion(build(poses))
    backward = camera_path_motion(build(poses[::-1]))
    same_motion(forward, backward, sign=-1.0)


@settings(max_examples=40, deadline=None)
@given(random_paths(), st.floats(0.01, 100))
def test_fuzz_motion_does_not_depend_on_speed(poses: list[tuple[Vec, Quat]], rate: float) -> None:
    slow = camera_path_motion(build(poses))
    fast = camera_path_motion(build(poses, [i * rate for i in range(len(poses))]))
    same_motion(slow, fast)
    assert fast.duration_s == pytest.approx((len(poses) - 1) * rate)


@pytest.mark.parametrize(("radius", "movement"), [(8.0, M.ORBIT), (15.0, M.TRUCK)])
def test_wide_arcs_read_as_trucks(radius: float, movement: CameraMovement) -> None:
    poses = []
    for i in range(10):
        angle = -math.pi / 2 + math.radians(2 * i)
        eye = (radius * math.cos(angle), radius * math.sin(angle), 0.0)
        poses.append((eye, look_at(eye, (0, 0, 0))))
    assert dominant(path_of(poses))[0] is movement
