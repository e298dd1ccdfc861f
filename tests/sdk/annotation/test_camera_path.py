"""Camera paths: keyframe rules, the RealEstate10K text format, and the clip-duration check."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shotbank.annotation import (
    Annotation,
    CameraPath,
    CameraPathFormatError,
    Keyframe,
    MediaMismatchError,
    format_camera_path_text,
    parse_camera_path_text,
    validate_against_media,
)
from shotbank.annotation.camera_path import MAX_CAMERA_PATH_TEXT_CHARS, world_to_camera_matrix
from shotbank.annotation.media import media_issues
from shotbank.annotation.vocabulary import PositionScale
from tests.sdk.annotation.poses import (
    LOOK_NORTH,
    Mat,
    Vec,
    axis_angle_quat,
    look_at,
    matmul,
    max_abs_diff,
    quat_matrix,
    re10k_line,
    rodrigues,
)

LEVEL = (0.7071067811865476, -0.7071067811865475, 0.0, 0.0)  # LOOK_NORTH as a quaternion


def keyframe(t: float, position: Vec = (0.0, 0.0, 0.0), **extra: Any) -> dict[str, Any]:
    return {"time_s": t, "position_m": list(position), "orientation_wxyz": list(LEVEL), **extra}


def path_errors(keyframes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        CameraPath.model_validate({"keyframes": keyframes})
    return caught.value.errors(include_url=False)


# --- keyframes -------------------------------------------------------------------------


def test_keyframes_in_time_order_are_accepted() -> None:
    path = CameraPath.model_validate({"keyframes": [keyframe(0), keyframe(0.5), keyframe(1)]})
    assert (path.start_s, path.end_s) == (0.0, 1.0)
    assert path.position_scale is PositionScale.METRIC


def test_keyframes_out_of_order_are_rejected() -> None:
    (error,) = path_errors([keyframe(0), keyframe(2), keyframe(1)])
    assert error["loc"] == ("keyframes",)
    assert error["type"] == "keyframes_not_ordered"
    assert error["msg"] == (
        "keyframe 3 (at 1 s) comes before keyframe 2 (at 2 s); keyframes must be in "
        "increasing time order"
    )


def test_keyframes_with_duplicate_timestamps_are_rejected() -> None:
    (error,) = path_errors([keyframe(0), keyframe(1.25), keyframe(1.25)])
    assert error["type"] == "keyframes_not_ordered"
    assert "both at 1.25 s" in error["msg"]


def test_a_path_needs_two_keyframes() -> None:
    (error,) = path_errors([keyframe(0)])
    assert error["type"] == "too_short"


def test_negative_time_is_rejected() -> None:
    (error,) = path_errors([keyframe(-0.1), keyframe(1)])
    assert error["loc"] == ("keyframes", 0, "time_s")


@pytest.mark.parametrize(
    "quaternion",
    [(1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0005), (0.5, 0.5, 0.5, 0.4995)],
)
def test_nearly_unit_quaternions_are_accepted_and_normalised(
    quaternion: tuple[float, ...],
) -> None:
    frame = Keyframe(time_s=0, position_m=(0, 0, 0), orientation_wxyz=quaternion)  # type: ignore[arg-type]
    assert math.isclose(math.hypot(*frame.orientation_wxyz), 1.0, abs_tol=1e-15)


@pytest.mark.parametrize(
    "quaternion", [(0.0, 0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.5), (0.999, 0.0, 0.0, 0.0), (2, 0, 0, 0)]
)
def test_non_unit_quaternions_are_rejected(quaternion: tuple[float, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        Keyframe(time_s=0, position_m=(0, 0, 0), orientation_wxyz=quaternion)  # type: ignore[arg-type]
    (error,) = caught.value.errors(include_url=False)
    assert error["loc"] == ("orientation_wxyz",)
    assert error["type"] == "quaternion_not_unit"
    assert "must be a unit quaternion (w, x, y, z)" in error["msg"]
    assert "more than 0.001 away from 1" in error["msg"]


def test_quaternion_sign_is_made_canonical() -> None:
    frame = Keyframe(time_s=0, position_m=(0, 0, 0), orientation_wxyz=(-0.6, 0.0, -0.8, 0.0))
    assert frame.orientation_wxyz == (0.6, 0.0, 0.8, 0.0)
    frame = Keyframe(time_s=0, position_m=(0, 0, 0), orientation_wxyz=(0.0, -1.0, 0.0, 0.0))
    assert frame.orientation_wxyz == (0.0, 1.0, 0.0, 0.0)


@given(
    st.tuples(*[st.floats(-1, 1, allow_subnormal=False)] * 4).filter(lambda q: math.hypot(*q) > 0.1)
)
def test_normalised_quaternions_are_fixed_points(q: tuple[float, float, float, float]) -> None:
    n = math.hypot(*q)
    unit = tuple(c / n for c in q)
    frame = Keyframe(time_s=0, position_m=(0, 0, 0), orientation_wxyz=unit)  # type: ignore[arg-type]
    again = Keyframe(time_s=0, position_m=(0, 0, 0), orientation_wxyz=frame.orientation_wxyz)
    assert again.orientation_wxyz == frame.orientation_wxyz
    assert frame.orientation_wxyz[0] >= 0.0


def test_focal_length_out_of_range_is_rejected() -> None:
    (error,) = path_errors([keyframe(0, focal_length_mm=0.1), keyframe(1)])
    assert error["loc"] == ("keyframes", 0, "focal_length_mm")


def test_more_than_10k_keyframes_are_rejected() -> None:
    (error,) = path_errors([keyframe(i / 30) for i in range(10_001)])
    assert error["type"] == "too_long"
    assert "10000" in error["msg"]


# --- RealEstate10K text format -----------------------------------------------------------


def synthetic_trajectory(count: int = 50) -> list[tuple[int, Mat, Vec]]:
    """A camera that climbs a helix while panning, tilting and rolling (known poses)."""
    poses = []
    for i in range(count):
        angle = 2 * math.pi * i / count
        rotation = matmul(
            LOOK_NORTH,
            matmul(
                rodrigues((0, 1, 0), 0.8 * angle), rodrigues((1, 0.2, 0.3), 0.3 * math.sin(angle))
            ),
        )
        centre = (3 * math.cos(angle), 3 * math.sin(angle), 0.1 * i - 2)
        poses.append((45_211_000 + 33_367 * i, rotation, centre))
    return poses


def trajectory_text(poses: list[tuple[int, Mat, Vec]], *, header: bool = True) -> str:
    lines = ["https://www.youtube.com/watch?v=0123456789a"] if header else []
    lines += [re10k_line(stamp, rotation, centre) for stamp, rotation, centre in poses]
    return "\n".join(lines) + "\n"


def test_synthetic_trajectory_is_recovered_from_text() -> None:
    poses = synthetic_trajectory()
    path = parse_camera_path_text(trajectory_text(poses))
    assert path.position_scale is PositionScale.ARBITRARY
    assert len(path.keyframes) == len(poses)
    for (stamp, rotation, centre), frame in zip(poses, path.keyframes, strict=True):
        assert frame.time_s == pytest.approx((stamp - poses[0][0]) / 1e6, abs=1e-12)
        assert frame.position_m == pytest.approx(centre, abs=1e-9)
        assert max_abs_diff(quat_matrix(frame.orientation_wxyz), rotation) < 1e-9
        assert frame.focal_length_mm is None


def test_orientation_from_text_is_the_expected_quaternion() -> None:
    # Camera looking north, then turned 30 degrees right about its own down axis.
    turn = rodrigues((0, 1, 0), math.radians(30))
    text = "\n".join(
        [
            re10k_line(0, LOOK_NORTH, (0, 0, 0)),
            re10k_line(1000, matmul(LOOK_NORTH, turn), (0, 0, 0)),
        ]
    )
    path = parse_camera_path_text(text)
    expected = axis_angle_quat((1, 0, 0), -math.pi / 2)
    assert path.keyframes[0].orientation_wxyz == pytest.approx(expected, abs=1e-9)
    # Right-multiplying a rotation about the camera's y axis turns the view eastwards.
    forward = quat_matrix(path.keyframes[1].orientation_wxyz)
    assert (forward[0][2], forward[1][2], forward[2][2]) == pytest.approx(
        (math.sin(math.radians(30)), math.cos(math.radians(30)), 0.0), abs=1e-9
    )


def test_header_line_is_optional() -> None:
    poses = synthetic_trajectory(5)
    with_header = parse_camera_path_text(trajectory_text(poses))
    without = parse_camera_path_text(trajectory_text(poses, header=False))
    assert with_header == without


def test_blank_lines_and_crlf_are_tolerated() -> None:
    poses = synthetic_trajectory(3)
    text = trajectory_text(poses).replace("\n", "\r\n\r\n")
    assert len(parse_camera_path_text(text).keyframes) == 3


def test_times_keep_the_source_offset_when_asked() -> None:
    path = parse_camera_path_text(trajectory_text(synthetic_trajectory(3)), rebase_time=False)
    assert path.start_s == pytest.approx(45.211)


def test_frame_numbers_with_fps() -> None:
    lines = [re10k_line(frame, LOOK_NORTH, (0, 0, 0)) for frame in (10, 12, 40)]
    path = parse_camera_path_text("\n".join(lines), fps=24)
    assert [k.time_s for k in path.keyframes] == pytest.approx([0, 2 / 24, 30 / 24])


def test_sensor_width_gives_focal_lengths_in_mm() -> None:
    line = re10k_line(0, LOOK_NORTH, (0, 0, 0), fx=0.5)
    path = parse_camera_path_text(line + "\n" + line.replace("0 ", "1000 ", 1), sensor_width_mm=36)
    assert [k.focal_length_mm for k in path.keyframes] == [18.0, 18.0]


def test_format_then_parse_gives_the_path_back() -> None:
    path = parse_camera_path_text(trajectory_text(synthetic_trajectory()), sensor_width_mm=24.89)
    text = format_camera_path_text(path, intrinsics=(0.9, 1.6, 0.5, 0.5), sensor_width_mm=24.89)
    again = parse_camera_path_text(
        text, sensor_width_mm=24.89, rebase_time=False, position_scale=path.position_scale
    )
    for a, b in zip(path.keyframes, again.keyframes, strict=True):
        assert a.time_s == b.time_s
        assert a.focal_length_mm == pytest.approx(b.focal_length_mm, rel=1e-15)
        assert a.position_m == pytest.approx(b.position_m, abs=1e-12)
        assert a.orientation_wxyz == pytest.approx(b.orientation_wxyz, abs=1e-12)


def test_world_to_camera_matrix_inverts_the_pose() -> None:
    rotation = look_at((1, -4, 2), (0, 0, 0))
    path = parse_camera_path_text("\n".join(re10k_line(i, rotation, (1, -4, 2)) for i in (0, 1)))
    matrix = world_to_camera_matrix(path.keyframes[0])
    # The camera centre maps to the camera-frame origin.
    centre = path.keyframes[0].position_m
    for row in matrix:
        assert sum(r * c for r, c in zip(row[:3], centre, strict=True)) + row[3] == pytest.approx(
            0, abs=1e-12
        )


unit_vectors = st.tuples(*[st.floats(-1, 1)] * 3).filter(lambda v: math.hypot(*v) > 0.1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            unit_vectors, st.floats(-math.pi, math.pi), st.tuples(*[st.floats(-1e3, 1e3)] * 3)
        ),
        min_size=2,
        max_size=20,
    )
)
def test_fuzz_any_rigid_pose_round_trips_through_text(
    poses: list[tuple[Vec, float, Vec]],
) -> None:
    lines = [
        re10k_line(i * 40_000, rodrigues(axis, angle), centre)
        for i, (axis, angle, centre) in enumerate(poses)
    ]
    path = parse_camera_path_text("\n".join(lines), position_scale=PositionScale.METRIC)
    for (axis, angle, centre), frame in zip(poses, path.keyframes, strict=True):
        assert frame.position_m == pytest.approx(centre, abs=1e-6)
        assert max_abs_diff(quat_matrix(frame.orientation_wxyz), rodrigues(axis, angle)) < 1e-9


def good_line(stamp: int = 0) -> str:
    return re10k_line(stamp, LOOK_NORTH, (0, 0, 0))


def parse_error(text: str, **options: Any) -> CameraPathFormatError:
    with pytest.raises(CameraPathFormatError) as caught:
        parse_camera_path_text(text, **options)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.errors()[0]["loc"] == ("camera", "path")
    assert error.errors()[0]["type"] == "camera_path_format"
    return error


def test_wrong_number_of_fields_names_the_line() -> None:
    text = "\n".join(["source", good_line(0), good_line(1000) + " 7"])
    error = parse_error(text)
    assert error.line == 3
    assert str(error) == (
        "line 3: expected 19 numbers (timestamp, fx, fy, cx, cy, k1, k2 and a 3x4 matrix), found 20"
    )


@pytest.mark.parametrize(
    "token", ["nan", "NaN", "inf", "-Infinity", "1e999", "1_0", "0x10", "one", "\u0663", "1e"]
)
def test_non_finite_or_malformed_numbers_are_rejected(token: str) -> None:
    fields = good_line(1000).split()
    fields[9] = token
    error = parse_error("\n".join([good_line(0), " ".join(fields)]))
    assert error.line == 2
    assert "matrix entry" in str(error)


def test_non_orthonormal_matrix_is_rejected() -> None:
    scaled = tuple(tuple(1.01 * v for v in row) for row in LOOK_NORTH)
    text = "\n".join([good_line(0), re10k_line(1000, scaled, (0, 0, 0))])  # type: ignore[arg-type]
    error = parse_error(text)
    assert error.line == 2
    assert "is not a rotation" in str(error)


def test_slightly_imprecise_rotation_within_tolerance_is_accepted() -> None:
    fields = good_line(1000).split()
    fields[7] = "1.0004"  # r00
    path = parse_camera_path_text("\n".join([good_line(0), " ".join(fields)]))
    assert math.isclose(math.hypot(*path.keyframes[1].orientation_wxyz), 1.0)


def test_reflection_is_rejected() -> None:
    mirrored = ((-1.0, 0.0, 0.0), LOOK_NORTH[1], LOOK_NORTH[2])
    error = parse_error("\n".join([good_line(0), re10k_line(1000, mirrored, (0, 0, 0))]))
    assert "reflection" in str(error)


@pytest.mark.parametrize(
    ("stamps", "wording"), [((0, 1000, 1000), "repeats"), ((0, 2000, 1000), "is earlier than")]
)
def test_timestamps_must_increase(stamps: tuple[int, ...], wording: str) -> None:
    error = parse_error("\n".join(good_line(s) for s in stamps))
    assert error.line == 3
    assert wording in str(error)


def test_negative_timestamp_is_rejected() -> None:
    assert "negative" in str(parse_error("\n".join([good_line(-5), good_line(0)])))


def test_fractional_frame_number_is_rejected_with_fps() -> None:
    fields = good_line(0).split()
    fields[0] = "1.5"
    assert "whole number" in str(parse_error("\n".join([" ".join(fields), good_line(3)]), fps=30))


def test_non_positive_focal_length_is_rejected() -> None:
    fields = good_line(1000).split()
    fields[1] = "0"
    assert "fx and fy must be positive" in str(
        parse_error("\n".join([good_line(0), " ".join(fields)]))
    )


def test_fewer_than_two_poses_are_rejected() -> None:
    assert "at least 2 poses, found 1" in str(parse_error("header\n" + good_line(0)))
    assert "found 0" in str(parse_error(""))


def test_100k_lines_are_refused_at_the_limit() -> None:
    line = "{} 1 1 .5 .5 0 0 1 0 0 0 0 1 0 0 0 0 1 0"
    text = "source\n" + "\n".join(line.format(i) for i in range(100_000))
    assert len(text) < MAX_CAMERA_PATH_TEXT_CHARS  # the pose count is what stops it
    error = parse_error(text)
    assert error.line == 10_002  # header + 10,000 accepted poses
    assert "too many poses: at most 10,000" in str(error)


def test_oversized_text_is_refused_before_parsing() -> None:
    error = parse_error("x" * (MAX_CAMERA_PATH_TEXT_CHARS + 1))
    assert error.line is None
    assert "too large" in str(error)


def test_overlong_line_is_refused() -> None:
    error = parse_error(good_line(0) + " " * 2000)
    assert error.line == 1
    assert "too long" in str(error)


def test_time_beyond_24_hours_names_the_line() -> None:
    text = "\n".join([good_line(0), good_line(90_000 * 1_000_000)])
    error = parse_error(text, rebase_time=False)
    assert error.line == 2
    assert "time_s" in str(error)


def test_parsed_path_fits_into_an_annotation(minimal_doc: dict[str, Any]) -> None:
    path = parse_camera_path_text(trajectory_text(synthetic_trajectory(10)))
    minimal_doc["camera"] = {"movement": "handheld", "path": path.model_dump(mode="json")}
    assert Annotation.model_validate(minimal_doc).camera.path == path


# --- within the clip's duration ------------------------------------------------------------


def annotated(document: dict[str, Any], times: list[float]) -> Annotation:
    document["camera"]["path"] = {"keyframes": [keyframe(t) for t in times]}
    return Annotation.model_validate(document)


def test_path_within_the_clip_passes(full_doc: dict[str, Any]) -> None:
    validate_against_media(annotated(full_doc, [0, 4.9, 5.0005]), 5.0)


def test_keyframe_after_the_end_of_the_clip_is_rejected(full_doc: dict[str, Any]) -> None:
    annotation = annotated(full_doc, [0, 4, 6, 7, 8])
    with pytest.raises(MediaMismatchError) as caught:
        validate_against_media(annotation, 5.0)
    (issue,) = caught.value.issues
    assert issue.loc == ("camera", "path", "keyframes", 2, "time_s")
    assert issue.type == "outside_clip"
    assert issue.msg == (
        "keyframe 3 is at 6 s, after the end of the clip (5 s long) (and 2 later keyframes); "
        "the camera path must lie within the clip"
    )
    assert caught.value.errors() == [{"type": "outside_clip", "loc": issue.loc, "msg": issue.msg}]


def test_audio_section_without_an_audio_track_is_rejected(full_doc: dict[str, Any]) -> None:
    annotation = Annotation.model_validate(full_doc)
    validate_against_media(annotation, 10.0, has_audio=True)
    validate_against_media(annotation, 10.0)
    with pytest.raises(MediaMismatchError, match="no audio track"):
        validate_against_media(annotation, 10.0, has_audio=False)


def test_annotation_without_path_or_audio_fits_any_clip(minimal_doc: dict[str, Any]) -> None:
    assert media_issues(Annotation.model_validate(minimal_doc), 0.1, has_audio=False) == []


@pytest.mark.parametrize("duration", [0.0, -1.0, math.nan, math.inf])
def test_nonsense_duration_is_a_programming_error(
    minimal_doc: dict[str, Any], duration: float
) -> None:
    with pytest.raises(ValueError, match="duration_s"):
        validate_against_media(Annotation.model_validate(minimal_doc), duration)


def test_timestamp_in_non_ascii_digits_is_rejected() -> None:
    fields = good_line(0).split()
    fields[0] = "\u0661\u0662"  # Arabic-Indic "12", which int() would accept
    error = parse_error("\n".join([" ".join(fields), good_line(100)]))
    assert error.line == 1
    assert "timestamp" in str(error)
