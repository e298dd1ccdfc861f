"""The clip generator writes real clips whose picture and sound are what it says."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from scoring import clipgen
from scoring.frames import decode_audio, sample_clip
from scoring.synthetic import Scene


def _shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in (a, b)]
    (dx, dy), _response = cv2.phaseCorrelate(grey[0], grey[1])
    return dx, dy


@pytest.mark.parametrize(
    ("move", "sign_x", "sign_y"),
    [("pan_left", 1, 0), ("pan_right", -1, 0), ("tilt_up", 0, 1), ("tilt_down", 0, -1)],
)
def test_camera_moves_shift_content_opposite_to_the_camera(
    tmp_path: Path, move: clipgen.Move, sign_x: int, sign_y: int
) -> None:
    canvas = clipgen.textured_canvas(960, 720, seed=1)
    path = clipgen.write_clip(tmp_path / "move.mp4", clipgen.camera_move_frames(canvas, move))
    frames = sample_clip(path).frames.frames
    dx, dy = _shift(frames[3], frames[4])
    assert np.sign(round(dx)) == sign_x
    assert np.sign(round(dy)) == sign_y


def test_scene_clip_has_sound_at_the_level_asked(tmp_path: Path) -> None:
    path = clipgen.write_clip(
        tmp_path / "scene.mp4",
        clipgen.scene_frames(Scene("red", "circle", "natural"), seconds=1.0),
        audio=clipgen.tone(1000.0, seconds=1.0, dbfs=-6.0),
    )
    track = decode_audio(path)
    middle = track.samples[len(track.samples) // 4 : 3 * len(track.samples) // 4]
    peak_dbfs = 20 * np.log10(np.abs(middle).max())
    assert -7.0 < peak_dbfs < -5.0
    frame = sample_clip(path).frames.frames[0]
    assert frame.shape == (240, 320, 3)


def test_writing_no_frames_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no frames"):
        clipgen.write_clip(tmp_path / "empty.mp4", iter(()))
