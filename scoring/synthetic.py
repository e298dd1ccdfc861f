"""The synthetic world the in-project model is trained on, and that tests render.

No registry package ships real CLIP weights, so the project trains a small open_clip
model itself (``scripts/train_tiny_clip.py``) on pictures it can draw: a coloured shape on
a textured backdrop under one of four lighting setups. Everything a test needs to know
the truth of a picture is here, so the training script, the tests and later the
detector tests all draw from one vocabulary:

- colours: :data:`COLOURS` (``"a red circle"`` vs ``"a blue square"``);
- shapes: :data:`SHAPES`;
- lighting setups: :data:`LIGHTING`, terms of the annotation vocabulary
  (:class:`shotbank.annotation.vocabulary.LightingSetup`): high-key (bright, soft, low
  contrast), low-key (dark, a hard key from one side), natural (mid-tones, even light)
  and silhouette (a black subject against a bright backdrop: its colour cannot be seen,
  so no silhouette caption names one);
- backdrop textures: :data:`TEXTURES`, nuisance only (never captioned).

:func:`render` draws a :class:`Scene` at any size, so frames of a synthetic clip look like
the training images once the model's preprocessing has scaled them down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from shotbank.annotation.vocabulary import LightingSetup, term_label

__all__ = [
    "COLOURS",
    "LIGHTING",
    "SHAPES",
    "TEXTURES",
    "Caption",
    "Scene",
    "caption_matches",
    "captions",
    "describe",
    "lighting_phrase",
    "random_scene",
    "render",
    "sample_caption",
    "scenes",
]

RGB = tuple[int, int, int]
Image = npt.NDArray[np.uint8]

#: Colour names and their sRGB values, far enough apart to survive every lighting setup.
COLOURS: Final[dict[str, RGB]] = {
    "red": (215, 35, 35),
    "green": (40, 170, 60),
    "blue": (40, 80, 225),
    "yellow": (240, 215, 40),
    "purple": (140, 55, 185),
    "orange": (245, 135, 25),
}
SHAPES: Final = ("circle", "square", "triangle", "star")
LIGHTING: Final = (
    LightingSetup.HIGH_KEY,
    LightingSetup.LOW_KEY,
    LightingSetup.NATURAL,
    LightingSetup.SILHOUETTE,
)
TEXTURES: Final = ("plain", "gradient", "stripes", "checker", "grain")


@dataclass(frozen=True)
class Scene:
    """What a synthetic picture shows: one shape of one colour under one lighting setup."""

    colour: str
    shape: str
    lighting: LightingSetup
    texture: str = "plain"

    def __post_init__(self) -> None:
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}; known: {sorted(COLOURS)}")
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; known: {list(SHAPES)}")
        if self.lighting not in LIGHTING:
            raise ValueError(f"unrendered lighting {self.lighting!r}; known: {list(LIGHTING)}")
        if self.texture not in TEXTURES:
            raise ValueError(f"unknown texture {self.texture!r}; known: {list(TEXTURES)}")


@dataclass(frozen=True)
class Caption:
    """A caption and the attributes it claims (None: says nothing about that attribute)."""

    text: str
    colour: str | None = None
    shape: str | None = None
    lighting: LightingSetup | None = None


def lighting_phrase(setup: LightingSetup) -> str:
    """The words for a lighting setup in captions: ``"high-key"``, ``"silhouette"``..."""
    return term_label(setup).lower()


def describe(colour: str, shape: str) -> str:
    """The plain caption of a coloured shape: ``describe("red", "circle") == "a red circle"``."""
    return f"a {colour} {shape}"


def caption_matches(caption: Caption, scene: Scene) -> bool:
    """Whether ``caption`` is true of ``scene`` (a silhouette shows no colour)."""
    if caption.colour is not None and (
        caption.colour != scene.colour or scene.lighting is LightingSetup.SILHOUETTE
    ):
        return False
    if caption.shape is not None and caption.shape != scene.shape:
        return False
    return caption.lighting is None or caption.lighting is scene.lighting


def captions(scene: Scene) -> list[Caption]:
    """Every true caption of ``scene`` the templates make: some name all of its attributes,
    some only one (so the model learns each word, not only whole sentences)."""
    c, s, setup = scene.colour, scene.shape, scene.lighting
    lit = lighting_phrase(setup)
    if setup is LightingSetup.SILHOUETTE:
        return [
            Caption(f"a silhouette of a {s}", shape=s, lighting=setup),
            Caption(f"a {s} in silhouette", shape=s, lighting=setup),
            Caption(f"a {s}", shape=s),
            Caption(f"a photo of a {s}", shape=s),
            Caption(f"{lit} lighting", lighting=setup),
            Caption(f"a {lit} shot", lighting=setup),
        ]
    return [
        Caption(describe(c, s), colour=c, shape=s),
        Caption(f"a photo of {describe(c, s)}", colour=c, shape=s),
        Caption(f"{describe(c, s)} in {lit} lighting", colour=c, shape=s, lighting=setup),
        Caption(f"a {lit} shot of {describe(c, s)}", colour=c, shape=s, lighting=setup),
        Caption(f"a {s}", shape=s),
        Caption(f"a photo of a {s}", shape=s),
        Caption(f"a {s} in {lit} lighting", shape=s, lighting=setup),
        Caption(f"a {c} shape", colour=c),
        Caption(f"{lit} lighting", lighting=setup),
        Caption(f"a {lit} shot", lighting=setup),
    ]


def sample_caption(scene: Scene, rng: np.random.Generator) -> Caption:
    """One of :func:`captions` of ``scene``, drawn uniformly."""
    options = captions(scene)
    return options[int(rng.integers(len(options)))]


def random_scene(rng: np.random.Generator) -> Scene:
    """A uniformly drawn scene."""
    return Scene(
        colour=list(COLOURS)[int(rng.integers(len(COLOURS)))],
        shape=SHAPES[int(rng.integers(len(SHAPES)))],
        lighting=LIGHTING[int(rng.integers(len(LIGHTING)))],
        texture=TEXTURES[int(rng.integers(len(TEXTURES)))],
    )


def _shape_mask(
    shape: str, height: int, width: int, centre: tuple[float, float], radius: float, angle: float
) -> npt.NDArray[np.float32]:
    """An anti-aliased coverage mask in [0, 1] (drawn 4x larger, then area-averaged)."""
    k = 4
    canvas = np.zeros((height * k, width * k), np.uint8)
    cx, cy, r = centre[0] * k, centre[1] * k, radius * k
    if shape == "circle":
        cv2.circle(canvas, (round(cx), round(cy)), round(r), 255, -1, cv2.LINE_AA)
    else:
        if shape == "square":
            points = [(r * 0.85, math.pi / 4 + i * math.pi / 2) for i in range(4)]
            points = [(p[0] * math.sqrt(2), p[1]) for p in points]
        elif shape == "triangle":
            points = [(r * 1.1, -math.pi / 2 + i * 2 * math.pi / 3) for i in range(3)]
        else:  # star
            points = [
                (r * (1.15 if i % 2 == 0 else 0.5), -math.pi / 2 + i * math.pi / 5)
                for i in range(10)
            ]
        polygon = np.array(
            [(cx + d * math.cos(a + angle), cy + d * math.sin(a + angle)) for d, a in points],
            np.int32,
        )
        cv2.fillPoly(canvas, [polygon], 255, cv2.LINE_AA)
    small = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def _backdrop(
    scene: Scene, height: int, width: int, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """The background in linear-ish [0, 1] RGB, before lighting."""
    hue = rng.uniform(0, 1, 3).astype(np.float32)
    grey = float(hue.mean())
    tint = (0.75 * grey + 0.25 * hue).astype(np.float32)  # mostly grey, slightly tinted
    if scene.lighting is LightingSetup.HIGH_KEY:
        base = 0.86 + 0.12 * tint
    elif scene.lighting is LightingSetup.LOW_KEY:
        base = 0.02 + 0.1 * tint
    elif scene.lighting is LightingSetup.SILHOUETTE:
        warm = np.array(rng.choice([(1.0, 0.75, 0.45), (0.95, 0.95, 1.0), (0.7, 0.85, 1.0)]))
        base = (0.8 + 0.2 * rng.uniform()) * warm.astype(np.float32)
    else:
        base = 0.3 + 0.35 * tint
    image = np.broadcast_to(base, (height, width, 3)).astype(np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ys /= max(height - 1, 1)
    xs /= max(width - 1, 1)
    strength = 0.12 if scene.lighting is not LightingSetup.LOW_KEY else 0.04
    if scene.texture == "gradient":
        direction = rng.uniform(0, 2 * math.pi)
        ramp = math.cos(direction) * xs + math.sin(direction) * ys
        image = image * (1 - strength + strength * 2 * ramp[..., None])
    elif scene.texture == "stripes":
        period = rng.uniform(4, 12) / 64 * max(height, width)
        phase = xs * width if rng.uniform() < 0.5 else ys * height
        image = image * (1 - strength * (np.sin(2 * np.pi * phase / period) > 0)[..., None])
    elif scene.texture == "checker":
        cell = rng.uniform(6, 16) / 64 * max(height, width)
        board = ((xs * width // cell + ys * height // cell) % 2).astype(np.float32)
        image = image * (1 - strength * board[..., None])
    elif scene.texture == "grain":
        image = image + rng.normal(0, strength / 2, (height, width, 1)).astype(np.float32)
    return np.clip(image, 0, 1)


def render(
    scene: Scene,
    *,
    width: int = 64,
    height: int | None = None,
    rng: np.random.Generator | None = None,
    centre: tuple[float, float] | None = None,
    radius: float | None = None,
    angle: float | None = None,
) -> Image:
    """Draw ``scene`` as an ``height x width x 3`` RGB ``uint8`` array.

    Placement (``centre`` as fractions of the frame, ``radius`` as a fraction of the
    shorter side, ``angle`` in radians) is drawn from ``rng`` when not given; the shape
    always stays inside the centre square, which the model's centre crop keeps.
    """
    rng = rng or np.random.default_rng()
    height = height or width
    short = min(width, height)
    r = (radius if radius is not None else rng.uniform(0.2, 0.34)) * short
    if centre is None:
        slack = max(short / 2 - r * 1.15, 0)
        cx = width / 2 + rng.uniform(-slack, slack)
        cy = height / 2 + rng.uniform(-slack, slack)
    else:
        cx, cy = centre[0] * width, centre[1] * height
    theta = angle if angle is not None else rng.uniform(-0.35, 0.35)
    mask = _shape_mask(scene.shape, height, width, (cx, cy), r, theta)[..., None]
    background = _backdrop(scene, height, width, rng)
    colour = np.array(COLOURS[scene.colour], np.float32) / 255.0
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    if scene.lighting is LightingSetup.HIGH_KEY:
        lift = rng.uniform(0.15, 0.35)
        subject = np.broadcast_to(colour * (1 - lift) + lift, (height, width, 3))
    elif scene.lighting is LightingSetup.LOW_KEY:
        # A hard key from one side: the subject falls off into darkness across its width.
        side = rng.choice([-1.0, 1.0])
        along = np.clip(0.5 + side * (xs - cx) / (2 * r), 0, 1)
        key = 0.12 + 0.95 * along**1.5
        subject = colour * key[..., None]
    elif scene.lighting is LightingSetup.SILHOUETTE:
        subject = np.broadcast_to(colour * rng.uniform(0.0, 0.06), (height, width, 3))
    else:
        shade = 0.85 + 0.15 * (1 - (ys - cy) / (2 * r)).clip(0, 1)
        subject = colour * shade[..., None]
    image = background * (1 - mask) + subject * mask
    if scene.lighting is LightingSetup.LOW_KEY:
        vignette = 1 - 0.5 * (((xs - width / 2) / width) ** 2 + ((ys - height / 2) / height) ** 2)
        image = image * vignette[..., None]
    image = image * rng.uniform(0.94, 1.06)  # exposure jitter
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def scenes(
    colours: Sequence[str] = tuple(COLOURS),
    shapes: Sequence[str] = SHAPES,
    lighting: Sequence[LightingSetup] = LIGHTING,
) -> list[Scene]:
    """Every combination of the given attributes (plain backdrop)."""
    return [Scene(c, s, setup) for c in colours for s in shapes for setup in lighting]
