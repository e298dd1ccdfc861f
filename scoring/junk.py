"""Junk detectors: clips no annotation can make useful, found from the sampled frames.

:func:`detect_junk` returns one :class:`scoring.report.FlagResult` per detector that
fires (every flag but ``duplicate``, which needs the index of accepted clips). Frames are
measured as luma (``cv2.COLOR_RGB2GRAY``) scaled down to :attr:`JunkThresholds.work_side`
so each threshold means the same at any resolution. Per frame:

- *level* and *structure*: mean luma, and the standard deviation of the frame averaged
  down to 64 px wide (sensor grain averages out; shapes and shading do not);
- *sharpness*: the 99.9th percentile of the gradient magnitude after a 1-pixel Gaussian
  (grain smoothed away, edges kept), divided by the frame's 1-99 % luma range. A sharp
  step edge reads about 0.4 whatever its contrast; a Gaussian blur of sigma s brings it
  to about 0.4 / s;
- *neighbour correlation*: correlation of horizontally adjacent pixels; about 0.95+ for
  pictures, about 0 for independent noise (even after H.264);
- *clipped share*: pixels at or below ``clip_low`` or at or above ``clip_high``;
- and between consecutive frames, the mean absolute luma difference.

The detectors (thresholds in :class:`JunkThresholds`, figures measured on the clips of
:mod:`scoring.clipgen` encoded at crf 18):

- ``black``: most frames black (dark and without structure) or of one flat colour;
- ``frozen``: consecutive frames (nearly) pixel-identical. The threshold sits between
  what re-encoding a still picture leaves (mean difference under 0.01 luma levels) and
  what sensor grain gives a still scene (0.5-0.7 levels for grain of sigma 3): a held
  tripod shot of a still scene with natural grain is a legitimate static shot, not a
  frozen one. An encoder that removes the grain completely (crf 28 and above did for
  sigma 3) makes such a shot indistinguishable from a still picture, and it is flagged:
  as training data it is a still picture;
- ``noise``: frames without spatial structure (neighbour correlation near 0);
- ``blur``: every frame that has structure is extremely blurred;
- ``exposure``: most pixels clipped to black or white in most frames; a declared
  low-key, high-key or silhouette look clips on purpose, so for those only an extreme
  share counts;
- ``too_short``: the clip is shorter than ``min_duration_s``.

``black`` explains frozen and clipped frames, so ``frozen`` and ``exposure`` are not
raised on top of it; a white or blown-out flat frame counts towards ``exposure``, not
``black``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from scoring.frames import SampledFrames
from scoring.report import Flag, FlagResult, Reason
from shotbank.annotation.vocabulary import LightingSetup

__all__ = [
    "MAX_FRAMES",
    "STYLISED_EXPOSURE",
    "FrameStats",
    "JunkThresholds",
    "detect_junk",
    "frame_stats",
]

#: Most frames one call looks at (the sampler's own ceiling).
MAX_FRAMES: Final = 64
#: Lighting setups that clip highlights or shadows on purpose.
STYLISED_EXPOSURE: Final = frozenset(
    {LightingSetup.LOW_KEY, LightingSetup.HIGH_KEY, LightingSetup.SILHOUETTE}
)
_STRUCTURE_WIDTH: Final = 64

Luma = npt.NDArray[np.float32]


class JunkThresholds(BaseModel):
    """Every number the junk detectors depend on (embedded in a model profile).

    Luma levels are 0-255 at :attr:`work_side`. The measured figures quoted are from
    320x240 clips of :mod:`scoring.clipgen` encoded at crf 18, decoded by PyAV and
    measured at the default 160 px working size (which costs 6.5 ms for 8 frames of
    640x360 against 15 ms at 320 px).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    work_side: int = Field(default=160, ge=64, le=1280)
    """Longer side (pixels) frames are scaled down to before measuring."""

    black_max_mean: float = Field(default=20.0, ge=0.0, le=255.0)
    """A frame is black when its mean luma is at most this..."""
    black_max_structure: float = Field(default=6.0, ge=0.0, le=128.0)
    """...and its structure (std of the 64 px-wide average) at most this. A low-key
    scene measured mean 26, structure 12."""
    uniform_max_structure: float = Field(default=2.5, ge=0.0, le=128.0)
    """A frame of any level is one flat colour when its structure is at most this (flat
    clips measured 0.0; every picture measured 9 or more)."""
    black_share: float = Field(default=0.75, gt=0.0, le=1.0)
    """Share of frames black or flat for the clip to be flagged (6 of 8)."""

    frozen_max_diff: float = Field(default=0.25, ge=0.0, le=255.0)
    """Mean absolute luma difference of consecutive frames below which they are the same
    picture: a re-encoded still measured at most 0.013, a still scene with grain of
    sigma 3 at least 0.53 (averaging down to 160 px halves the grain)."""
    frozen_share: float = Field(default=0.8, gt=0.0, le=1.0)
    """Share of consecutive pairs that must be the same picture (6 of 7)."""

    noise_max_correlation: float = Field(default=0.4, ge=-1.0, le=1.0)
    """Neighbour correlation below which a frame is noise: noise measured -0.01-0.015,
    pictures 0.97-0.99."""
    noise_share: float = Field(default=0.75, gt=0.0, le=1.0)
    """Share of frames that must be noise."""

    blur_max_sharpness: float = Field(default=0.07, ge=0.0, le=1.0)
    """Sharpness below which a frame is extremely blurred. A blur of sigma s source
    pixels is s / 2 pixels at a 160 px working size, so this threshold scales with
    ``work_side``. Measured at 160 px on 320x240 clips: sharp clips 0.21-0.33, a
    Gaussian blur of sigma 15 0.049-0.050, sigma 5 0.093-0.10 (soft, not flagged)."""
    blur_share: float = Field(default=1.0, gt=0.0, le=1.0)
    """Share of frames with structure that must be blurred ("throughout")."""

    clip_low: int = Field(default=5, ge=0, le=255)
    """Luma at or below which a pixel is crushed to black."""
    clip_high: int = Field(default=250, ge=0, le=255)
    """Luma at or above which a pixel is blown out to white."""
    exposure_clipped_share: float = Field(default=0.6, gt=0.0, le=1.0)
    """Share of a frame's pixels clipped for the frame to be badly exposed: normal clips
    measured 0.00, a silhouette scene 0.19, a picture with 8x gain 0.79."""
    stylised_clipped_share: float = Field(default=0.95, gt=0.0, le=1.0)
    """The same for a declared low-key, high-key or silhouette look (only extreme)."""
    exposure_share: float = Field(default=0.75, gt=0.0, le=1.0)
    """Share of frames that must be badly exposed."""

    min_duration_s: float = Field(default=1.0, ge=0.0, le=3600.0)
    """Shortest useful clip, seconds."""


@dataclass(frozen=True)
class FrameStats:
    """What the detectors measure on one frame (see the module docstring)."""

    mean: float
    structure: float
    sharpness: float
    correlation: float
    clipped: float
    luma: Luma


def _luma(frame: npt.NDArray[np.uint8], side: int) -> Luma:
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    scale = side / max(height, width)
    if scale < 1.0:
        size = (max(round(width * scale), 8), max(round(height * scale), 8))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray.astype(np.float32)


def frame_stats(frame: npt.NDArray[np.uint8], thresholds: JunkThresholds) -> FrameStats:
    """Measure one RGB ``uint8`` frame (exposed for calibration and benchmarks)."""
    luma = _luma(frame, thresholds.work_side)
    height, width = luma.shape
    coarse_size = (_STRUCTURE_WIDTH, max(round(height * _STRUCTURE_WIDTH / width), 1))
    coarse = cv2.resize(luma, coarse_size, interpolation=cv2.INTER_AREA)
    smooth = cv2.GaussianBlur(luma, (0, 0), 1.0)
    # Sobel's 3x3 kernel weighs the difference 8 times; divided, a unit step reads ~0.5.
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0) / 8.0
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1) / 8.0
    low, high = np.percentile(luma, [1.0, 99.0])
    spread = float(high - low)
    sharpness = float(np.percentile(np.hypot(gx, gy), 99.9)) / spread if spread > 1.0 else 0.0
    left, right = luma[:, :-1].ravel(), luma[:, 1:].ravel()
    if float(left.std()) > 0.0 and float(right.std()) > 0.0:
        correlation = float(np.corrcoef(left, right)[0, 1])
    else:
        correlation = 1.0  # a flat frame is perfectly predictable, not noise
    clipped = (
        float(np.count_nonzero((luma <= thresholds.clip_low) | (luma >= thresholds.clip_high)))
        / luma.size
    )
    return FrameStats(
        mean=float(luma.mean()),
        structure=float(coarse.std()),
        sharpness=sharpness,
        correlation=correlation,
        clipped=clipped,
        luma=luma,
    )


def _flag(flag: Flag, measure: float, message: str) -> FlagResult:
    return FlagResult(
        flag=flag,
        reason=Reason(code=f"junk.{flag.value}", message=message),
        measure=round(measure, 6),
    )


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%"


def detect_junk(
    frames: SampledFrames,
    *,
    duration_s: float,
    lighting: LightingSetup | None = None,
    thresholds: JunkThresholds | None = None,
) -> tuple[FlagResult, ...]:
    """The junk flags a clip raises, from its sampled frames and duration.

    ``lighting`` is the annotation's declared setup: low-key, high-key and silhouette
    looks may clip more before ``exposure`` fires. Each result's ``measure`` is the
    detector's share of frames (or pairs) that failed, or the duration for
    ``too_short``.
    """
    th = thresholds or JunkThresholds()
    if not frames.frames:
        raise ValueError("no frames to judge")
    if len(frames.frames) > MAX_FRAMES:
        raise ValueError(f"at most {MAX_FRAMES} frames, got {len(frames.frames)}")
    stats = [frame_stats(frame, th) for frame in frames.frames]
    count = len(stats)
    flags: list[FlagResult] = []

    flat = [s.structure <= th.uniform_max_structure for s in stats]
    blown = [s.structure <= th.uniform_max_structure and s.mean >= th.clip_high for s in stats]
    black = [
        (s.mean <= th.black_max_mean and s.structure <= th.black_max_structure) or is_flat
        for s, is_flat in zip(stats, flat, strict=True)
    ]
    black_share = sum(b and not w for b, w in zip(black, blown, strict=True)) / count
    if black_share >= th.black_share:
        flags.append(
            _flag(
                Flag.BLACK,
                black_share,
                f"{_percent(black_share)} of sampled frames are black or one flat colour "
                f"(median luma {float(np.median([s.mean for s in stats])):.0f}, median "
                f"structure {float(np.median([s.structure for s in stats])):.1f}; black is "
                f"luma at most {th.black_max_mean:g} with structure at most "
                f"{th.black_max_structure:g}, flat is structure at most "
                f"{th.uniform_max_structure:g})",
            )
        )
    is_black = bool(flags)

    # Pairs of flat frames are left to ``black``/``exposure``: nothing in them can move.
    pairs = [
        (before, after)
        for (before, before_flat), (after, after_flat) in itertools.pairwise(
            zip(stats, flat, strict=True)
        )
        if not (before_flat and after_flat)
    ]
    if pairs and not is_black:
        diffs = [
            float(np.abs(after.luma - before.luma).mean())
            if before.luma.shape == after.luma.shape
            else float("inf")
            for before, after in pairs
        ]
        same = sum(diff < th.frozen_max_diff for diff in diffs) / len(diffs)
        if same >= th.frozen_share:
            flags.append(
                _flag(
                    Flag.FROZEN,
                    same,
                    f"the picture does not change: {_percent(same)} of consecutive sampled "
                    f"frames differ by less than {th.frozen_max_diff:g} luma levels on "
                    f"average (smallest difference {min(diffs):.3f})",
                )
            )

    textured = [s for s, is_flat in zip(stats, flat, strict=True) if not is_flat]
    noisy = sum(s.correlation < th.noise_max_correlation for s in stats) / count
    if noisy >= th.noise_share:
        flags.append(
            _flag(
                Flag.NOISE,
                noisy,
                f"{_percent(noisy)} of sampled frames are noise without structure "
                f"(neighbouring pixels correlate below {th.noise_max_correlation:g}; median "
                f"{float(np.median([s.correlation for s in stats])):.3f})",
            )
        )
    elif textured:
        blurred = sum(s.sharpness < th.blur_max_sharpness for s in textured) / len(textured)
        if blurred >= th.blur_share:
            flags.append(
                _flag(
                    Flag.BLUR,
                    blurred,
                    f"{_percent(blurred)} of sampled frames with structure are extremely "
                    f"blurred (sharpness below {th.blur_max_sharpness:g}; highest "
                    f"{max(s.sharpness for s in textured):.4f})",
                )
            )

    if not is_black:
        stylised = lighting in STYLISED_EXPOSURE
        limit = th.stylised_clipped_share if stylised else th.exposure_clipped_share
        exposed = sum(s.clipped >= limit for s in stats) / count
        if exposed >= th.exposure_share:
            look = f" for a declared {lighting.value} look" if stylised and lighting else ""
            flags.append(
                _flag(
                    Flag.EXPOSURE,
                    exposed,
                    f"{_percent(exposed)} of sampled frames are blown out or crushed: at "
                    f"least {_percent(limit)} of their pixels clip to black or white{look} "
                    f"(median {_percent(float(np.median([s.clipped for s in stats])))})",
                )
            )

    if duration_s < th.min_duration_s:
        flags.append(
            _flag(
                Flag.TOO_SHORT,
                duration_s,
                f"the clip lasts {duration_s:.2f} s, shorter than the {th.min_duration_s:g} s "
                "minimum",
            )
        )
    return tuple(flags)
