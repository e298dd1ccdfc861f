"""Real clips whose truth is known: camera moves, junk, synthetic scenes, sound.

The detectors are tested, benchmarked and demonstrated on clips made here, encoded to
H.264/AAC MP4 with PyAV exactly like a contributor's upload:

- :func:`camera_move_frames` slides (or scales) a crop window across a large textured
  picture: a window moving left is a camera panning left, so the picture content moves
  right in the frame; a window shrinking around its centre is a zoom in;
- :func:`scene_frames` holds a :class:`scoring.synthetic.Scene` (what the in-project
  model knows) with sensor noise, so the clip is neither frozen nor identical frames;
- :func:`solid_frames`, :func:`noise_frames`: junk;
- :func:`tone`, :func:`white_noise`, :func:`silence`: mono sound at a known level;
- :func:`write_clip` encodes any of them (plus optional sound) to a file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Final, Literal

import av
import cv2
import numpy as np
import numpy.typing as npt

from scoring.synthetic import Scene, render

__all__ = [
    "Move",
    "camera_move_frames",
    "noise_frames",
    "scene_frames",
    "silence",
    "solid_frames",
    "textured_canvas",
    "tone",
    "white_noise",
    "write_clip",
]

Image = npt.NDArray[np.uint8]
Samples = npt.NDArray[np.float32]
Move = Literal[
    "static",
    "pan_left",
    "pan_right",
    "tilt_up",
    "tilt_down",
    "zoom_in",
    "zoom_out",
    "roll_cw",
    "roll_ccw",
]
DEFAULT_FPS: Final = 24


def textured_canvas(width: int, height: int, *, seed: int = 0) -> Image:
    """A picture with structure at every scale (blobs, edges, fine grain): good for
    tracking features, never uniform anywhere."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(height // 32, 2), max(width // 32, 2), 3), np.uint8)
    canvas = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    for _ in range(max(width * height // 6000, 12)):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            radius = int(rng.integers(4, max(min(width, height) // 12, 6)))
            cv2.circle(canvas, centre, radius, colour, -1, lineType=cv2.LINE_AA)
        else:
            corner = (centre[0] + int(rng.integers(8, 60)), centre[1] + int(rng.integers(8, 60)))
            cv2.rectangle(canvas, centre, corner, colour, -1)
    grain = np.asarray(rng.normal(0, 6, canvas.shape), np.float32)
    result: Image = np.clip(canvas + grain, 0, 255).astype(np.uint8)
    return result


def camera_move_frames(
    canvas: Image,
    move: Move,
    *,
    seconds: float = 2.0,
    fps: int = DEFAULT_FPS,
    size: tuple[int, int] = (320, 240),
    extent: float = 0.35,
) -> Iterator[Image]:
    """Frames of a camera ``move`` over ``canvas`` at ``size`` (width, height).

    ``extent`` is how far the move goes over the whole clip: for pans/tilts the share of
    the window's width/height travelled, for zooms the relative change of the window's
    size, for rolls a fraction of 90 degrees. The window starts centred.
    """
    out_w, out_h = size
    canvas_h, canvas_w = canvas.shape[:2]
    base_w, base_h = canvas_w * 0.5, canvas_h * 0.5
    count = max(round(seconds * fps), 2)
    for index in range(count):
        t = index / (count - 1) - 0.5  # -0.5 .. 0.5 so the move is centred on the canvas
        cx, cy, scale, angle = canvas_w / 2, canvas_h / 2, 1.0, 0.0
        if move == "pan_left":
            cx -= t * extent * base_w
        elif move == "pan_right":
            cx += t * extent * base_w
        elif move == "tilt_up":
            cy -= t * extent * base_h
        elif move == "tilt_down":
            cy += t * extent * base_h
        elif move == "zoom_in":
            scale = math.exp(-t * math.log1p(extent))
        elif move == "zoom_out":
            scale = math.exp(t * math.log1p(extent))
        elif move == "roll_cw":
            angle = t * extent * 90.0
        elif move == "roll_ccw":
            angle = -t * extent * 90.0
        w = base_w * scale
        # The window (cx, cy, w, h, angle) on the canvas mapped onto the output frame.
        matrix = cv2.getRotationMatrix2D((cx, cy), angle, out_w / w)
        matrix[0, 2] += out_w / 2 - cx
        matrix[1, 2] += out_h / 2 - cy
        frame: Image = cv2.warpAffine(
            canvas, matrix, (out_w, out_h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT
        ).astype(np.uint8, copy=False)
        yield frame


def scene_frames(
    scene: Scene,
    *,
    seconds: float = 2.0,
    fps: int = DEFAULT_FPS,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
    noise: float = 3.0,
) -> Iterator[Image]:
    """A held shot of ``scene`` (fixed placement) with per-frame sensor noise."""
    rng = np.random.default_rng(seed)
    picture = render(scene, width=size[0], height=size[1], rng=rng).astype(np.float32)
    for _ in range(max(round(seconds * fps), 1)):
        grain = rng.normal(0, noise, picture.shape).astype(np.float32)
        yield np.clip(picture + grain, 0, 255).astype(np.uint8)


def solid_frames(
    colour: tuple[int, int, int] = (0, 0, 0),
    *,
    seconds: float = 2.0,
    fps: int = DEFAULT_FPS,
    size: tuple[int, int] = (320, 240),
) -> Iterator[Image]:
    """Frames of one flat colour (black by default)."""
    frame = np.empty((size[1], size[0], 3), np.uint8)
    frame[:] = colour
    for _ in range(max(round(seconds * fps), 1)):
        yield frame


def noise_frames(
    *,
    seconds: float = 2.0,
    fps: int = DEFAULT_FPS,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
) -> Iterator[Image]:
    """Independent uniform noise in every pixel of every frame (a dead or jammed feed)."""
    rng = np.random.default_rng(seed)
    for _ in range(max(round(seconds * fps), 1)):
        yield rng.integers(0, 256, (size[1], size[0], 3), np.uint8)


def tone(
    hz: float = 440.0, *, seconds: float = 2.0, rate: int = 48_000, dbfs: float = -20.0
) -> Samples:
    """A sine of peak level ``dbfs``."""
    t = np.arange(round(seconds * rate), dtype=np.float64) / rate
    return (10 ** (dbfs / 20) * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def white_noise(
    *, seconds: float = 2.0, rate: int = 48_000, dbfs: float = -20.0, seed: int = 0
) -> Samples:
    """Gaussian noise with RMS level ``dbfs`` (clipped to [-1, 1])."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0, 10 ** (dbfs / 20), round(seconds * rate))
    return np.clip(samples, -1, 1).astype(np.float32)


def silence(*, seconds: float = 2.0, rate: int = 48_000) -> Samples:
    """Digital silence."""
    return np.zeros(round(seconds * rate), np.float32)


def write_clip(
    path: Path,
    frames: Iterable[Image],
    *,
    fps: int = DEFAULT_FPS,
    audio: Samples | None = None,
    audio_rate: int = 48_000,
    crf: int = 18,
    preset: str = "veryfast",
) -> Path:
    """Encode RGB ``frames`` (all the same even size) and optional mono ``audio`` in
    [-1, 1] to an H.264/AAC MP4 at ``path``."""
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps, options={"crf": str(crf), "preset": preset})
        assert isinstance(video, av.VideoStream)
        video.pix_fmt = "yuv420p"
        sound: av.AudioStream | None = None
        if audio is not None:
            stream = out.add_stream("aac", rate=audio_rate, layout="mono")
            assert isinstance(stream, av.AudioStream)
            sound = stream
        first = True
        for index, picture in enumerate(frames):
            if first:
                video.height, video.width = picture.shape[:2]
                first = False
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            out.mux(video.encode(frame))
        if first:
            raise ValueError("no frames to write")
        out.mux(video.encode(None))
        if sound is not None and audio is not None:
            chunk = 1024
            clipped = np.clip(audio, -1, 1).astype(np.float32)
            for start in range(0, len(clipped), chunk):
                part = clipped[start : start + chunk]
                aframe = av.AudioFrame.from_ndarray(part[None, :], format="flt", layout="mono")
                aframe.sample_rate = audio_rate
                aframe.pts = start
                aframe.time_base = Fraction(1, audio_rate)
                out.mux(sound.encode(aframe))
            out.mux(sound.encode(None))
    return path
