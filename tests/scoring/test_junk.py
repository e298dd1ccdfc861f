"""Junk detectors on real encoded clips whose defect (or lack of one) is known."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from scoring.clipgen import (
    camera_move_frames,
    noise_frames,
    scene_frames,
    solid_frames,
    textured_canvas,
    write_clip,
)
from scoring.frames import SampledFrames, sample_frames
from scoring.junk import JunkThresholds, detect_junk
from scoring.report import Flag, FlagResult
from scoring.synthetic import Scene
from shotbank.annotation.vocabulary import LightingSetup

Image = npt.NDArray[np.uint8]
SIZE = (320, 240)
SECONDS = 2.0


def _gain(frames: Iterable[Image], gain: float) -> Iterator[Image]:
    for frame in frames:
        yield np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def _blurred(frames: Iterable[Image], sigma: float) -> Iterator[Image]:
    for frame in frames:
        yield cv2.GaussianBlur(frame, (0, 0), sigma).astype(np.uint8)


@pytest.fixture(scope="module")
def canvas() -> Image:
    return textured_canvas(640, 480, seed=5)


@pytest.fixture(scope="module")
def sampled(tmp_path_factory: pytest.TempPathFactory, canvas: Image) -> dict[str, SampledFrames]:
    """Every clip of this module, encoded to H.264 and sampled (8 frames) once."""
    folder = tmp_path_factory.mktemp("junk")

    def pan() -> Iterator[Image]:
        return camera_move_frames(canvas, "pan_left", seconds=SECONDS, size=SIZE)

    still = next(camera_move_frames(canvas, "static", seconds=SECONDS, size=SIZE))
    silhouette = Scene("red", "star", LightingSetup.SILHOUETTE)
    clips: dict[str, Iterable[Image]] = {
        "black": solid_frames(seconds=SECONDS, size=SIZE),
        "grey": solid_frames((128, 128, 128), seconds=SECONDS, size=SIZE),
        "white": solid_frames((255, 255, 255), seconds=SECONDS, size=SIZE),
        "repeated": [still] * round(SECONDS * 24),
        "noise": noise_frames(seconds=SECONDS, size=SIZE),
        "blurred": _blurred(pan(), 15.0),
        "soft": _blurred(pan(), 5.0),
        "blown": _gain(pan(), 8.0),
        "pan": pan(),
        "scene": scene_frames(Scene("blue", "square", LightingSetup.NATURAL), seconds=SECONDS),
        "low_key": scene_frames(Scene("green", "circle", LightingSetup.LOW_KEY), seconds=SECONDS),
        "silhouette": scene_frames(silhouette, seconds=SECONDS),
        "short": camera_move_frames(canvas, "pan_left", seconds=0.5, size=SIZE),
    }
    return {
        name: sample_frames(write_clip(folder / f"{name}.mp4", frames))
        for name, frames in clips.items()
    }


def _flags(
    frames: SampledFrames, *, lighting: LightingSetup | None = None
) -> dict[Flag, FlagResult]:
    results = detect_junk(frames, duration_s=frames.duration, lighting=lighting)
    return {result.flag: result for result in results}


def test_a_black_clip_is_flagged_black_only(sampled: dict[str, SampledFrames]) -> None:
    flags = _flags(sampled["black"])
    assert set(flags) == {Flag.BLACK}
    assert flags[Flag.BLACK].measure == 1.0
    assert flags[Flag.BLACK].reason.code == "junk.black"
    assert "100% of sampled frames are black" in flags[Flag.BLACK].reason.message


def test_a_uniform_grey_clip_is_flagged_black(sampled: dict[str, SampledFrames]) -> None:
    flags = _flags(sampled["grey"])
    assert set(flags) == {Flag.BLACK}
    assert "median luma 128" in flags[Flag.BLACK].reason.message


def test_one_frame_repeated_is_frozen(sampled: dict[str, SampledFrames]) -> None:
    flags = _flags(sampled["repeated"])
    assert set(flags) == {Flag.FROZEN}
    assert flags[Flag.FROZEN].measure == 1.0
    assert flags[Flag.FROZEN].reason.code == "junk.frozen"


def test_a_held_shot_with_sensor_grain_is_a_legitimate_static_shot(
    sampled: dict[str, SampledFrames],
) -> None:
    # scene_frames adds grain of sigma 3 to a still scene: a tripod shot, not a freeze.
    assert _flags(sampled["scene"]) == {}


def test_noise_is_flagged_noise_and_not_frozen(sampled: dict[str, SampledFrames]) -> None:
    flags = _flags(sampled["noise"])
    assert set(flags) == {Flag.NOISE}
    assert flags[Flag.NOISE].reason.code == "junk.noise"


def test_a_heavily_blurred_clip_is_flagged_blur(sampled: dict[str, SampledFrames]) -> None:
    flags = _flags(sampled["blurred"])
    assert set(flags) == {Flag.BLUR}
    assert flags[Flag.BLUR].measure == 1.0


def test_a_soft_clip_is_not_extreme_blur(sampled: dict[str, SampledFrames]) -> None:
    assert _flags(sampled["soft"]) == {}


def test_a_blown_out_clip_is_flagged_exposure(sampled: dict[str, SampledFrames]) -> None:
    flags = _flags(sampled["blown"])
    assert set(flags) == {Flag.EXPOSURE}
    assert flags[Flag.EXPOSURE].reason.code == "junk.exposure"


def test_a_white_clip_is_an_exposure_fault_not_black(sampled: dict[str, SampledFrames]) -> None:
    assert set(_flags(sampled["white"])) == {Flag.EXPOSURE}


def test_a_declared_look_tolerates_moderate_clipping_but_not_extreme(
    sampled: dict[str, SampledFrames],
) -> None:
    # 8x gain clips about 80% of the pixels: a fault, unless the look is declared.
    assert Flag.EXPOSURE in _flags(sampled["blown"], lighting=LightingSetup.NATURAL)
    assert _flags(sampled["blown"], lighting=LightingSetup.HIGH_KEY) == {}
    assert Flag.EXPOSURE in _flags(sampled["white"], lighting=LightingSetup.HIGH_KEY)


@pytest.mark.parametrize("name", ["pan", "scene", "low_key", "silhouette"])
def test_normal_clips_flag_nothing(sampled: dict[str, SampledFrames], name: str) -> None:
    lighting = {"low_key": LightingSetup.LOW_KEY, "silhouette": LightingSetup.SILHOUETTE}
    assert _flags(sampled[name], lighting=lighting.get(name)) == {}
    assert _flags(sampled[name]) == {}


def test_a_short_clip_is_flagged_too_short(sampled: dict[str, SampledFrames]) -> None:
    flags = _flags(sampled["short"])
    assert set(flags) == {Flag.TOO_SHORT}
    assert flags[Flag.TOO_SHORT].measure == pytest.approx(0.5, abs=0.05)
    assert "shorter than the 1 s minimum" in flags[Flag.TOO_SHORT].reason.message


def test_thresholds_decide(sampled: dict[str, SampledFrames]) -> None:
    strict = JunkThresholds(min_duration_s=5.0, blur_max_sharpness=0.5)
    flags = detect_junk(sampled["pan"], duration_s=sampled["pan"].duration, thresholds=strict)
    assert {f.flag for f in flags} == {Flag.BLUR, Flag.TOO_SHORT}


def test_a_single_frame_cannot_be_frozen(sampled: dict[str, SampledFrames]) -> None:
    frames = sampled["repeated"]
    one = SampledFrames(
        frames=frames.frames[:1],
        timestamps=frames.timestamps[:1],
        targets=frames.targets[:1],
        duration=frames.duration,
        width=frames.width,
        height=frames.height,
        decoded=1,
    )
    assert detect_junk(one, duration_s=frames.duration) == ()


def test_no_frames_is_an_error() -> None:
    empty = SampledFrames(
        frames=(), timestamps=(), targets=(), duration=1.0, width=8, height=8, decoded=0
    )
    with pytest.raises(ValueError, match="no frames"):
        detect_junk(empty, duration_s=1.0)
