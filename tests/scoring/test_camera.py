"""Camera motion measured on real encoded clips whose move is known, and its score."""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from scoring.camera import (
    MAX_FRAMES,
    CameraThresholds,
    MotionEstimate,
    estimate_motion,
    score_camera,
)
from scoring.clipgen import (
    DEFAULT_FPS,
    Move,
    camera_move_frames,
    solid_frames,
    textured_canvas,
    write_clip,
)
from scoring.frames import SampledFrames, sample_frames
from shotbank.annotation import Camera, CameraPath, Keyframe
from shotbank.annotation.vocabulary import CameraMovement, MovementDirection, PositionScale

M = CameraMovement
D = MovementDirection
Image = npt.NDArray[np.uint8]

SIZE = (320, 240)
SECONDS = 2.0
#: The clip's first and last frames are (count - 1) / fps apart: the move's full span.
SPAN_S = (round(SECONDS * DEFAULT_FPS) - 1) / DEFAULT_FPS
EXTENT = 0.35  # clipgen's default
MOVES: tuple[Move, ...] = (
    "static",
    "pan_left",
    "pan_right",
    "tilt_up",
    "tilt_down",
    "zoom_in",
    "zoom_out",
    "roll_cw",
)


@pytest.fixture(scope="module")
def canvas() -> Image:
    return textured_canvas(640, 480, seed=3)


def _shaky_frames(canvas: Image) -> Iterator[Image]:
    """A handheld-like clip: the view jumps back and forth between sampled frames (the
    sampler takes frames 3, 9, 15...), with no net direction."""
    height, width = canvas.shape[:2]
    for index in range(round(SECONDS * DEFAULT_FPS)):
        dx = 10.0 if (index // 6) % 2 == 0 else -10.0
        dy = 6.0 if (index // 12) % 2 == 0 else -6.0
        x0, y0 = width / 4 + dx, height / 4 + dy
        matrix = np.array([[0.5, 0.0, -x0 * 0.5], [0.0, 0.5, -y0 * 0.5]])
        yield cv2.warpAffine(canvas, matrix, SIZE, flags=cv2.INTER_AREA).astype(np.uint8)


def _diagonal_frames(canvas: Image) -> Iterator[Image]:
    """The window slides left (a pan left) fast and up (a tilt up) slowly."""
    height, width = canvas.shape[:2]
    count = round(SECONDS * DEFAULT_FPS)
    for index in range(count):
        t = index / (count - 1) - 0.5
        x0 = width / 4 - t * 0.3 * width / 2
        y0 = height / 4 - t * 0.1 * height / 2
        matrix = np.array([[0.5, 0.0, -x0 * 0.5], [0.0, 0.5, -y0 * 0.5]])
        yield cv2.warpAffine(canvas, matrix, SIZE, flags=cv2.INTER_AREA).astype(np.uint8)


def _subject_frames(canvas: Image) -> Iterator[Image]:
    """A still view with a textured block (a fifth of the frame) crossing it left to right."""
    background = next(camera_move_frames(canvas, "static", seconds=SECONDS, size=SIZE))
    subject = textured_canvas(96, 96, seed=11)
    count = round(SECONDS * DEFAULT_FPS)
    for index in range(count):
        frame = background.copy()
        x = 10 + round(index * (SIZE[0] - 96 - 20) / (count - 1))
        frame[70:166, x : x + 96] = subject
        yield frame


@pytest.fixture(scope="module")
def sampled(tmp_path_factory: pytest.TempPathFactory, canvas: Image) -> dict[str, SampledFrames]:
    """Every clip of this module, encoded to H.264 and sampled (8 frames) once."""
    folder = tmp_path_factory.mktemp("camera")
    clips: dict[str, Iterator[Image]] = {
        move: camera_move_frames(canvas, move, seconds=SECONDS, size=SIZE) for move in MOVES
    }
    clips["shaky"] = _shaky_frames(canvas)
    clips["diagonal"] = _diagonal_frames(canvas)
    clips["subject"] = _subject_frames(canvas)
    clips["black"] = solid_frames(seconds=SECONDS, size=SIZE)
    return {
        name: sample_frames(write_clip(folder / f"{name}.mp4", frames))
        for name, frames in clips.items()
    }


@pytest.fixture(scope="module")
def estimates(sampled: dict[str, SampledFrames]) -> dict[str, MotionEstimate]:
    return {name: estimate_motion(frames) for name, frames in sampled.items()}


def _yaw(degrees: float) -> tuple[float, float, float, float]:
    """Camera-to-world rotation of a camera turned right by ``degrees`` about its own
    vertical axis (+y points down in the camera frame, so this is a pan right)."""
    half = math.radians(degrees) / 2
    return (math.cos(half), 0.0, math.sin(half), 0.0)


def _pan_path(total_deg: float) -> CameraPath:
    return CameraPath(
        keyframes=tuple(
            Keyframe(
                time_s=i * 0.2,
                position_m=(0.0, 0.0, 0.0),
                orientation_wxyz=_yaw(total_deg * i / 10),
            )
            for i in range(11)
        )
    )


def _camera(
    movement: CameraMovement, direction: MovementDirection | None = None, **more: object
) -> Camera:
    return Camera.model_validate({"movement": movement, "direction": direction, **more})


# --- the estimate ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("move", "movement", "direction"),
    [
        ("static", M.STATIC, None),
        ("pan_left", M.PAN, D.LEFT),
        ("pan_right", M.PAN, D.RIGHT),
        ("tilt_up", M.TILT, D.UP),
        ("tilt_down", M.TILT, D.DOWN),
        ("zoom_in", M.ZOOM, D.IN),
        ("zoom_out", M.ZOOM, D.OUT),
    ],
)
def test_a_known_move_is_classified_with_its_direction(
    estimates: dict[str, MotionEstimate],
    move: str,
    movement: CameraMovement,
    direction: MovementDirection | None,
) -> None:
    estimate = estimates[move]
    assert (estimate.movement, estimate.direction) == (movement, direction)
    assert estimate.usable_pairs == estimate.pairs == 7
    assert estimate.confidence > 0.9


def test_a_pan_left_moves_the_content_right_and_measures_its_speed(
    estimates: dict[str, MotionEstimate],
) -> None:
    # The window travels 35 % of its width over the clip, leftwards: the camera pans left.
    speed = EXTENT / SPAN_S
    assert estimates["pan_left"].pan_right_per_s == pytest.approx(-speed, rel=0.03)
    assert estimates["pan_right"].pan_right_per_s == pytest.approx(speed, rel=0.03)
    assert estimates["pan_left"].pan_consistency == 1.0
    assert abs(estimates["pan_left"].tilt_up_per_s) < 0.005
    assert abs(estimates["pan_left"].zoom_in_per_s) < 0.005


def test_tilt_and_zoom_rates_match_the_generated_move(
    estimates: dict[str, MotionEstimate],
) -> None:
    assert estimates["tilt_up"].tilt_up_per_s == pytest.approx(EXTENT / SPAN_S, rel=0.03)
    assert estimates["zoom_in"].zoom_in_per_s == pytest.approx(
        math.log1p(EXTENT) / SPAN_S, rel=0.03
    )
    assert estimates["zoom_out"].zoom_in_per_s == pytest.approx(
        -math.log1p(EXTENT) / SPAN_S, rel=0.03
    )


def test_a_roll_is_measured_clockwise_and_classified_handheld(
    estimates: dict[str, MotionEstimate],
) -> None:
    estimate = estimates["roll_cw"]
    assert estimate.measured_rotation_deg_s == pytest.approx(EXTENT * 90 / SPAN_S, rel=0.05)
    assert estimate.movement is M.HANDHELD
    assert estimate.direction is None


def test_a_static_shot_has_no_motion(estimates: dict[str, MotionEstimate]) -> None:
    estimate = estimates["static"]
    assert estimate.jitter < 0.1
    assert abs(estimate.pan_right_per_s) < 0.001


def test_a_subject_crossing_a_still_view_is_not_a_pan(
    estimates: dict[str, MotionEstimate],
) -> None:
    estimate = estimates["subject"]
    assert estimate.movement is M.STATIC
    assert abs(estimate.pan_right_per_s) < 0.005


def test_shaking_without_net_direction_is_handheld(estimates: dict[str, MotionEstimate]) -> None:
    estimate = estimates["shaky"]
    assert estimate.movement is M.HANDHELD
    assert estimate.pan_consistency < CameraThresholds().min_consistency
    assert estimate.jitter > CameraThresholds().handheld_jitter


def test_phase_correlation_fallback_keeps_the_sign(sampled: dict[str, SampledFrames]) -> None:
    # Asking for more corners than any frame has forces the phase-correlation path.
    only_phase = CameraThresholds(min_features=5000, max_features=5000)
    left = estimate_motion(sampled["pan_left"], thresholds=only_phase)
    assert (left.movement, left.direction) == (M.PAN, D.LEFT)
    assert left.pan_right_per_s == pytest.approx(-EXTENT / SPAN_S, rel=0.05)
    down = estimate_motion(sampled["tilt_down"], thresholds=only_phase)
    assert (down.movement, down.direction) == (M.TILT, D.DOWN)


def test_featureless_frames_cannot_be_measured(estimates: dict[str, MotionEstimate]) -> None:
    estimate = estimates["black"]
    assert estimate.usable_pairs == 0
    assert estimate.confidence == 0.0
    score = score_camera(estimate, _camera(M.STATIC))
    assert score.value is None
    assert [r.code for r in score.reasons] == ["camera.not_measurable"]


def test_the_estimate_is_repeatable(sampled: dict[str, SampledFrames]) -> None:
    assert estimate_motion(sampled["zoom_in"]) == estimate_motion(sampled["zoom_in"])


def test_too_many_frames_are_refused() -> None:
    frame = np.zeros((8, 8, 3), np.uint8)
    count = MAX_FRAMES + 1
    frames = SampledFrames(
        frames=(frame,) * count,
        timestamps=tuple(float(i) for i in range(count)),
        targets=tuple(float(i) for i in range(count)),
        duration=float(count),
        width=8,
        height=8,
        decoded=count,
    )
    with pytest.raises(ValueError, match="at most"):
        estimate_motion(frames)


# --- the score ------------------------------------------------------------------------


def test_a_declared_pan_left_measured_pan_left_scores_high(
    estimates: dict[str, MotionEstimate],
) -> None:
    score = score_camera(estimates["pan_left"], _camera(M.PAN, D.LEFT))
    assert score.value is not None
    assert score.value >= 0.95
    assert [r.code for r in score.reasons] == ["camera.movement_match"]
    assert score.measured["movement"] == "pan-left"
    assert score.measured["pan_right_per_s"] == pytest.approx(-EXTENT / SPAN_S, rel=0.03)


def test_a_declared_pan_left_moving_right_is_a_direction_mismatch(
    estimates: dict[str, MotionEstimate],
) -> None:
    score = score_camera(estimates["pan_right"], _camera(M.PAN, D.LEFT))
    assert score.value is not None
    assert score.value < 0.1
    (reason,) = score.reasons
    assert reason.code == "camera.direction_mismatch"
    assert reason.message == "camera movement declared pan-left, measured pan-right"


def test_a_declared_static_shot_that_pans_is_a_movement_mismatch(
    estimates: dict[str, MotionEstimate],
) -> None:
    score = score_camera(estimates["pan_right"], _camera(M.STATIC))
    assert score.value is not None
    assert score.value <= 0.1
    assert score.reasons[0].code == "camera.movement_mismatch"
    assert "declared static, measured pan-right" in score.reasons[0].message


def test_a_declared_pan_on_a_static_shot_is_a_movement_mismatch(
    estimates: dict[str, MotionEstimate],
) -> None:
    score = score_camera(estimates["static"], _camera(M.PAN, D.LEFT))
    assert score.value is not None
    assert score.value <= 0.1
    assert score.reasons[0].code == "camera.movement_mismatch"


def test_a_static_shot_declared_static_scores_high(estimates: dict[str, MotionEstimate]) -> None:
    score = score_camera(estimates["static"], _camera(M.STATIC))
    assert score.value == pytest.approx(1.0)
    assert score.reasons[0].code == "camera.movement_match"


@pytest.mark.parametrize(
    ("move", "movement", "direction"),
    [
        ("pan_left", M.TRUCK, D.LEFT),
        ("pan_right", M.TRUCK, D.RIGHT),
        ("tilt_up", M.PEDESTAL, D.UP),
        ("tilt_down", M.CRANE, D.DOWN),
        ("zoom_in", M.DOLLY, D.IN),
        ("zoom_out", M.DOLLY, D.OUT),
    ],
)
def test_moves_with_the_same_picture_motion_are_compatible(
    estimates: dict[str, MotionEstimate],
    move: str,
    movement: CameraMovement,
    direction: MovementDirection,
) -> None:
    score = score_camera(estimates[move], _camera(movement, direction))
    assert score.value is not None
    assert score.value >= 0.95
    assert score.reasons[0].code == "camera.movement_match"
    assert "(the same motion in the picture)" in score.reasons[0].message


@pytest.mark.parametrize(
    ("move", "movement", "direction"),
    [("pan_left", M.TRUCK, D.RIGHT), ("zoom_in", M.DOLLY, D.OUT), ("tilt_up", M.CRANE, D.DOWN)],
)
def test_compatible_moves_still_compare_direction(
    estimates: dict[str, MotionEstimate],
    move: str,
    movement: CameraMovement,
    direction: MovementDirection,
) -> None:
    score = score_camera(estimates[move], _camera(movement, direction))
    assert score.value is not None
    assert score.value < 0.1
    assert score.reasons[0].code == "camera.direction_mismatch"


def test_a_declared_move_present_beside_a_stronger_one_scores_partly(
    estimates: dict[str, MotionEstimate],
) -> None:
    diagonal = estimates["diagonal"]
    assert (diagonal.movement, diagonal.direction) == (M.PAN, D.LEFT)
    partly = score_camera(diagonal, _camera(M.TILT, D.UP))
    assert partly.value == pytest.approx(CameraThresholds().secondary_value)
    assert partly.reasons[0].code == "camera.movement_match"
    assert "with tilt-up as well" in partly.reasons[0].message
    wrong_way = score_camera(diagonal, _camera(M.TILT, D.DOWN))
    assert wrong_way.reasons[0].code == "camera.direction_mismatch"


def test_handheld_is_accepted_for_shaky_footage_and_not_for_a_tripod_claim(
    estimates: dict[str, MotionEstimate],
) -> None:
    assert score_camera(estimates["shaky"], _camera(M.HANDHELD)).value == pytest.approx(1.0)
    tripod = score_camera(estimates["shaky"], _camera(M.STATIC))
    assert tripod.value == pytest.approx(CameraThresholds().unsteady_value)
    assert tripod.reasons[0].code == "camera.movement_mismatch"


def test_drone_and_orbit_accept_motion_modestly(estimates: dict[str, MotionEstimate]) -> None:
    th = CameraThresholds()
    assert score_camera(estimates["zoom_in"], _camera(M.DRONE)).value == pytest.approx(
        th.drone_moving_value
    )
    hover = score_camera(estimates["static"], _camera(M.DRONE))
    assert hover.value == pytest.approx(th.drone_static_value)
    orbit = score_camera(estimates["pan_right"], _camera(M.ORBIT, D.CW))
    assert orbit.value == pytest.approx(th.orbit_value)
    assert score_camera(estimates["zoom_in"], _camera(M.ORBIT, D.CW)).reasons[0].code == (
        "camera.movement_mismatch"
    )


def test_a_camera_path_disagreeing_with_the_measured_direction_is_flagged(
    estimates: dict[str, MotionEstimate],
) -> None:
    # The declared movement agrees with the picture, but the path pans the other way.
    score = score_camera(estimates["pan_left"], _camera(M.PAN, D.LEFT, path=_pan_path(20.0)))
    codes = [r.code for r in score.reasons]
    assert codes == ["camera.movement_match", "camera.path_mismatch"]
    assert score.reasons[1].message == "camera path moves pan-right, measured pan-left"
    assert score.value is not None
    assert score.value <= CameraThresholds().path_mismatch_value


def test_a_camera_path_agreeing_with_the_picture_keeps_the_score(
    estimates: dict[str, MotionEstimate],
) -> None:
    score = score_camera(estimates["pan_left"], _camera(M.PAN, D.LEFT, path=_pan_path(-20.0)))
    assert [r.code for r in score.reasons] == ["camera.movement_match", "camera.path_match"]
    assert score.value is not None
    assert score.value >= 0.95


def test_an_arbitrary_scale_truck_path_is_compared_too(
    estimates: dict[str, MotionEstimate],
) -> None:
    # A SLAM-like path sliding right: content moves left, as a pan right would move it.
    path = CameraPath(
        keyframes=tuple(
            Keyframe(time_s=i * 0.2, position_m=(0.05 * i, 0.0, 0.0), orientation_wxyz=(1, 0, 0, 0))
            for i in range(11)
        ),
        position_scale=PositionScale.ARBITRARY,
    )
    agrees = score_camera(estimates["pan_right"], _camera(M.TRUCK, D.RIGHT, path=path))
    assert agrees.reasons[-1].code == "camera.path_match"
    disagrees = score_camera(estimates["tilt_up"], _camera(M.TILT, D.UP, path=path))
    assert disagrees.reasons[-1].code == "camera.path_mismatch"
    assert disagrees.reasons[-1].message == "camera path moves truck-right, measured tilt-up"


def test_a_static_path_against_a_moving_picture_is_a_mismatch(
    estimates: dict[str, MotionEstimate],
) -> None:
    score = score_camera(estimates["zoom_in"], _camera(M.ZOOM, D.IN, path=_pan_path(0.5)))
    assert score.reasons[-1].code == "camera.path_mismatch"
    assert score.reasons[-1].message == "camera path moves static, measured zoom-in"


def test_low_confidence_pulls_the_score_towards_the_middle(
    estimates: dict[str, MotionEstimate],
) -> None:
    unsure = estimates["pan_right"].model_copy(update={"confidence": 0.25})
    score = score_camera(unsure, _camera(M.PAN, D.LEFT))
    direction_mismatch = CameraThresholds().direction_mismatch_value
    assert score.value == pytest.approx(0.5 + (direction_mismatch - 0.5) * 0.5)


def test_thresholds_are_frozen_and_refuse_unknown_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        CameraThresholds.model_validate({"static_pan": 0.1})
    with pytest.raises(ValueError, match="frozen"):
        CameraThresholds().min_consistency = 0.1  # type: ignore[misc]


def test_score_values_stay_in_the_unit_interval(estimates: dict[str, MotionEstimate]) -> None:
    cameras = [
        _camera(M.STATIC),
        _camera(M.HANDHELD),
        _camera(M.DRONE),
        _camera(M.PAN, D.LEFT),
        _camera(M.ZOOM, D.OUT),
        _camera(M.ORBIT, D.CCW),
    ]
    for estimate in estimates.values():
        for camera in cameras:
            value = score_camera(estimate, camera).value
            assert value is None or 0.0 <= value <= 1.0
