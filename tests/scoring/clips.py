"""Clips whose every frame says which frame it is, for checking what the sampler returns.

Each picture carries its frame index as 8 black-or-white blocks (bit 7 leftmost) across
its top half, big enough to survive H.264 at any quality, and a hue that turns with time
in its bottom half. Clips with sound come from the ingest suite's generator
(:mod:`tests.ingest.mediagen`); this one only adds pictures that encode time.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

BITS = 8


def timecode_picture(index: int, width: int, height: int) -> npt.NDArray[np.uint8]:
    """The picture of frame ``index``: its bits on top, a time-coloured band below."""
    picture = np.zeros((height, width, 3), np.uint8)
    block = width // BITS
    for bit in range(BITS):
        if index >> (BITS - 1 - bit) & 1:
            picture[: height // 2, bit * block : (bit + 1) * block] = 255
    picture[height // 2 :] = (index * 3 % 256, 128, 255 - index * 3 % 256)
    return picture


def read_timecode(picture: npt.NDArray[np.uint8]) -> int:
    """The frame index a (decoded, possibly scaled) timecode picture shows."""
    height, width = picture.shape[:2]
    block = width // BITS
    top = picture[: height // 2].mean(axis=2)
    index = 0
    for bit in range(BITS):
        middle = top[
            height // 8 : height * 3 // 8, bit * block + block // 4 : (bit + 1) * block - block // 4
        ]
        index = index << 1 | int(middle.mean() > 128)
    return index


def make_timecode_clip(
    path: Path,
    *,
    seconds: float = 4.0,
    fps: int = 25,
    width: int = 320,
    height: int = 240,
    keyint: int = 50,
    bframes: int = 2,
) -> Path:
    """An H.264 MP4 of ``timecode_picture(i)`` frames, one keyframe every ``keyint``
    frames and B-frames (so decode order differs from display order)."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream(
            "libx264",
            rate=fps,
            options={
                "preset": "ultrafast",
                "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes={bframes}",
            },
        )
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(
                timecode_picture(index, width, height), format="rgb24"
            )
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path
