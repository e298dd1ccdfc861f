"""Scene alignment: does the clip show what its description says, judged against distractors?

A raw CLIP cosine between frames and a description means little on its own: matching
pairs sit around 0.3 for a real CLIP and 0.6 for the in-project model, and a long, vague
description scores lower than a short, precise one. So the description is put in a
contest with a bank of distractor captions -- unrelated scenes for a real model (listed
in the profile), every caption of the synthetic world for the in-project model -- and
the score is the model's own probability that the description wins.

With ``v`` the clip embedding (the L2-normalised mean of its frame embeddings), ``s_d``
its cosine with the description, ``s_i`` its cosines with the ``n`` distractors kept, and
``tau`` the model's learned logit scale (the temperature CLIP's softmax is trained with):

- ``share = mean_i sigmoid(tau * (s_d - s_i))`` -- the expected share of distractors the
  description beats in a two-way zero-shot contest (each term is CLIP's softmax over the
  pair ``[description, distractor_i]``). A mean, so it does not grow or shrink with the
  size of the bank; about 0.5 when the description is as unrelated as the distractors.
- ``runner_up = sigmoid(tau * (s_d - max_i s_i))`` -- the two-way contest with the
  strongest distractor alone: near 0 as soon as one distractor clearly fits better (a
  blue square described as "a red circle" loses to "a blue square").
- ``value = (1 - w) * share + w * runner_up`` with ``w`` the profile's
  ``runner_up_weight`` (0.5).

Both parts are probabilities under the model's own calibration rather than raw cosines,
so a value means the same for every model: above 0.75 the description beats all
distractors, the strongest one with better-than-even odds; near 0.25-0.5 it is beaten
by at least one distractor and is no better than an unrelated caption overall.

Distractors that mean the same as the description are left out, or a correct
description would be punished for its paraphrases: those whose text embedding has a
cosine of at least the profile's ``exclude_text_cosine`` with the description's, and, for
the synthetic world, every caption compatible with what the description claims (a
scene exists of which both are true, :func:`scoring.synthetic.caption_matches`): "a
circle" is no distractor for "a red circle". When nothing is left, the component is not
scorable (``scene.not_scorable``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Final

import torch

from scoring.models import ScoringModel
from scoring.profiles import ModelProfile
from scoring.report import Component, ComponentScore, Reason
from scoring.synthetic import (
    COLOURS,
    LIGHTING,
    SHAPES,
    Caption,
    caption_matches,
    captions,
    lighting_phrase,
    scenes,
)
from shotbank.annotation.vocabulary import LightingSetup

__all__ = [
    "SceneContest",
    "clip_embedding",
    "distractor_bank",
    "scene_contest",
    "score_scene",
    "synthetic_claims",
]

_QUOTE_CHARS: Final = 80


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _QUOTE_CHARS else flat[: _QUOTE_CHARS - 1] + "…"


@cache
def _synthetic_captions() -> tuple[Caption, ...]:
    """Every caption the synthetic world's templates make, once per text."""
    bank: dict[str, Caption] = {}
    for scene in scenes():
        for caption in captions(scene):
            bank.setdefault(caption.text, caption)
    return tuple(bank.values())


def _words(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![a-z-]){pattern}(?![a-z-])")


_COLOUR_WORDS: Final = {colour: _words(re.escape(colour)) for colour in COLOURS}
_SHAPE_WORDS: Final = {shape: _words(re.escape(shape) + "s?") for shape in SHAPES}
_LIGHTING_WORDS: Final = {setup: _words(re.escape(lighting_phrase(setup))) for setup in LIGHTING}


def synthetic_claims(description: str) -> Caption | None:
    """What a description says in the synthetic world's words, as a :class:`Caption`.

    ``None`` when it names none of the world's attributes, or names two values of one
    attribute ("a red and blue circle"): then no scene can be said to fit it, and only
    the text-cosine rule excludes distractors.
    """
    text = description.lower()
    found_colours = [c for c, pattern in _COLOUR_WORDS.items() if pattern.search(text)]
    found_shapes = [s for s, pattern in _SHAPE_WORDS.items() if pattern.search(text)]
    found_lighting = [s for s, pattern in _LIGHTING_WORDS.items() if pattern.search(text)]
    if max(len(found_colours), len(found_shapes), len(found_lighting)) > 1:
        return None
    if not (found_colours or found_shapes or found_lighting):
        return None
    return Caption(
        text=description,
        colour=found_colours[0] if found_colours else None,
        shape=found_shapes[0] if found_shapes else None,
        lighting=found_lighting[0] if found_lighting else None,
    )


@cache
def _incompatible_texts(
    colour: str | None, shape: str | None, lighting: LightingSetup | None
) -> tuple[str, ...]:
    """The synthetic captions no scene makes true together with these claims."""
    claims = Caption(text="", colour=colour, shape=shape, lighting=lighting)
    fitting = [scene for scene in scenes() if caption_matches(claims, scene)]
    return tuple(
        caption.text
        for caption in _synthetic_captions()
        if not any(caption_matches(caption, scene) for scene in fitting)
    )


def distractor_bank(
    model: ScoringModel, description: str, *, profile: ModelProfile
) -> tuple[list[str], int]:
    """The distractor captions kept for ``description`` and how many of the profile's
    bank were left out as meaning the same (see the module docstring)."""
    calibration = profile.scene
    if calibration.distractor_source == "synthetic":
        universe = len(_synthetic_captions())
        claims = synthetic_claims(description)
        pool = (
            [caption.text for caption in _synthetic_captions()]
            if claims is None
            else list(_incompatible_texts(claims.colour, claims.shape, claims.lighting))
        )
    else:
        universe = len(calibration.distractors)
        pool = list(calibration.distractors)
    same = description.strip().lower()
    pool = [text for text in pool if text.strip().lower() != same]
    if pool:
        texts = model.encode_texts([description, *pool])
        close = ((texts[1:] @ texts[0]) >= calibration.exclude_text_cosine).tolist()
        pool = [text for text, paraphrase in zip(pool, close, strict=True) if not paraphrase]
    return pool, universe - len(pool)


@dataclass(frozen=True)
class SceneContest:
    """The numbers of one description-against-distractors contest (see the module)."""

    #: Cosine of the clip embedding with the description.
    cosine: float
    #: The distractor the clip fits best, and its cosine.
    best_distractor: str
    best_distractor_cosine: float
    #: Expected share of distractors beaten, and the two-way odds against the best one.
    share: float
    runner_up: float
    #: The blended score in [0, 1].
    value: float
    #: Distractors in the contest, and those of the bank left out as paraphrases.
    distractors: int
    excluded: int
    logit_scale: float


def clip_embedding(frame_embeddings: torch.Tensor) -> torch.Tensor:
    """The clip's embedding: the L2-normalised mean of its frame embeddings (``D``)."""
    if frame_embeddings.ndim != 2 or frame_embeddings.shape[0] < 1:
        raise ValueError(
            f"frame embeddings must be K x D with K >= 1, got {tuple(frame_embeddings.shape)}"
        )
    mean = frame_embeddings.float().mean(dim=0)
    if not bool(torch.isfinite(mean).all()) or float(mean.norm()) == 0.0:
        raise ValueError("frame embeddings are not finite or average to zero")
    return torch.nn.functional.normalize(mean, dim=0)


def scene_contest(
    model: ScoringModel,
    frame_embeddings: torch.Tensor,
    description: str,
    *,
    profile: ModelProfile,
) -> SceneContest | None:
    """The contest of ``description`` against its distractors; ``None`` if none are left."""
    distractors, excluded = distractor_bank(model, description, profile=profile)
    if not distractors:
        return None
    clip = clip_embedding(frame_embeddings)
    texts = model.encode_texts([description, *distractors])
    if texts.shape[1] != clip.shape[0]:
        raise ValueError(
            f"frame embeddings are {clip.shape[0]}-d but the model's texts are {texts.shape[1]}-d"
        )
    cosines = texts @ clip
    s_d, s_i = cosines[0], cosines[1:]
    tau = model.logit_scale
    share = float(torch.sigmoid(tau * (s_d - s_i)).mean())
    best = int(torch.argmax(s_i))
    runner_up = float(torch.sigmoid(tau * (s_d - s_i[best])))
    w = profile.scene.runner_up_weight
    value = min(max((1.0 - w) * share + w * runner_up, 0.0), 1.0)
    return SceneContest(
        cosine=float(s_d),
        best_distractor=distractors[best],
        best_distractor_cosine=float(s_i[best]),
        share=share,
        runner_up=runner_up,
        value=value,
        distractors=len(distractors),
        excluded=excluded,
        logit_scale=tau,
    )


def score_scene(
    model: ScoringModel,
    frame_embeddings: torch.Tensor,
    description: str,
    *,
    profile: ModelProfile,
) -> ComponentScore:
    """Scene alignment of a clip (``K x D`` normalised frame embeddings) with its declared
    description, in [0, 1], calibrated against the profile's distractors (module docstring).

    Reasons: ``scene.aligned`` at or above the profile's scene threshold,
    ``scene.misaligned`` below it (naming the distractor that fits better, if one does),
    ``scene.not_scorable`` when every distractor means the same as the description.
    """
    contest = scene_contest(model, frame_embeddings, description, profile=profile)
    declared = _quote(description)
    if contest is None:
        return ComponentScore(
            value=None,
            reasons=(
                Reason(
                    code="scene.not_scorable",
                    message=(
                        f"the description '{declared}' cannot be checked with this model: "
                        "every caption it knows could mean the same"
                    ),
                ),
            ),
        )
    threshold = profile.component_thresholds[Component.SCENE]
    rival = _quote(contest.best_distractor)
    beaten = contest.best_distractor_cosine > contest.cosine
    if contest.value >= threshold:
        reason = Reason(
            code="scene.aligned",
            message=(
                f"the frames match the declared description '{declared}' better than "
                f"{contest.share:.0%} of {contest.distractors} unrelated captions "
                f"(closest: '{rival}')"
            ),
        )
    elif beaten:
        reason = Reason(
            code="scene.misaligned",
            message=(
                f"the frames match '{rival}' better than the declared description "
                f"'{declared}' (cosine {contest.best_distractor_cosine:.3f} against "
                f"{contest.cosine:.3f})"
            ),
        )
    else:
        reason = Reason(
            code="scene.misaligned",
            message=(
                f"the frames fit the declared description '{declared}' hardly better than "
                f"unrelated captions: it beats {contest.share:.0%} of "
                f"{contest.distractors}, '{rival}' nearly as well"
            ),
        )
    measured: dict[str, float | int | str | bool | None] = {
        "cosine": round(contest.cosine, 6),
        "best_distractor": rival,
        "best_distractor_cosine": round(contest.best_distractor_cosine, 6),
        "share_beaten": round(contest.share, 6),
        "runner_up_probability": round(contest.runner_up, 6),
        "distractors": contest.distractors,
        "excluded": contest.excluded,
        "logit_scale": round(contest.logit_scale, 4),
    }
    if not math.isfinite(contest.value):
        raise ValueError("scene alignment is not finite")
    return ComponentScore(value=contest.value, reasons=(reason,), measured=measured)
