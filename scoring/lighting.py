"""Lighting consistency: zero-shot over the lighting setups the model knows.

Each setup the profile lists gets one text embedding: the normalised mean of its
prompts' embeddings (CLIP's prompt ensembling over the profile's templates, e.g.
"low-key lighting", "a low-key shot"). Each frame gets CLIP's softmax over the setups
(cosines times the model's logit scale), and the value is the probability mass on the
declared setup **averaged over the frames**.

Why per frame rather than on the mean embedding (which scene alignment uses): lighting
is a property of every frame, and a shot that changes its light half-way (lamps
switched on, a cloud) should say "half low-key, half high-key" -- 0.5 each -- whereas
the mean of a dark and a bright frame's embeddings can land nearest to a third setup
that no frame shows. For a steady shot both give the same answer.

A setup the model does not know (not in the profile: the in-project model knows
high-key, low-key, natural and silhouette only) cannot be judged: value ``None`` with
``lighting.not_scorable``. Below the profile's lighting threshold the reason is
``lighting.mismatch``, naming the most probable setup.
"""

from __future__ import annotations

import torch

from scoring.models import ScoringModel
from scoring.profiles import ModelProfile
from scoring.report import Component, ComponentScore, Reason
from shotbank.annotation.vocabulary import LightingSetup, term_label

__all__ = ["lighting_probabilities", "score_lighting"]


def _label(setup: LightingSetup) -> str:
    return term_label(setup).lower()


def lighting_probabilities(
    model: ScoringModel, frame_embeddings: torch.Tensor, *, profile: ModelProfile
) -> dict[LightingSetup, float]:
    """Probability of each known setup, averaged over the frames (sums to 1)."""
    if frame_embeddings.ndim != 2 or frame_embeddings.shape[0] < 1:
        raise ValueError(
            f"frame embeddings must be K x D with K >= 1, got {tuple(frame_embeddings.shape)}"
        )
    prompts = profile.lighting
    setups = list(prompts.setups)
    classes = []
    for setup in setups:
        ensemble = model.encode_texts(prompts.prompts(setup)).mean(dim=0)
        classes.append(torch.nn.functional.normalize(ensemble, dim=0))
    class_matrix = torch.stack(classes)
    if class_matrix.shape[1] != frame_embeddings.shape[1]:
        raise ValueError(
            f"frame embeddings are {frame_embeddings.shape[1]}-d but the model's texts are "
            f"{class_matrix.shape[1]}-d"
        )
    frames = torch.nn.functional.normalize(frame_embeddings.float(), dim=-1)
    logits = model.logit_scale * frames @ class_matrix.T
    mass = logits.softmax(dim=-1).mean(dim=0)
    return {setup: float(p) for setup, p in zip(setups, mass.tolist(), strict=True)}


def score_lighting(
    model: ScoringModel,
    frame_embeddings: torch.Tensor,
    setup: LightingSetup,
    *,
    profile: ModelProfile,
) -> ComponentScore:
    """Lighting consistency in [0, 1]: the frames' mean zero-shot probability of the
    declared ``setup`` among the setups the model knows (module docstring)."""
    known = profile.lighting.setups
    if setup not in known:
        names = ", ".join(_label(s) for s in known)
        return ComponentScore(
            value=None,
            reasons=(
                Reason(
                    code="lighting.not_scorable",
                    message=(
                        f"lighting declared {_label(setup)}, which this model cannot "
                        f"recognise (it knows {names})"
                    ),
                ),
            ),
            measured={"declared": setup.value},
        )
    probabilities = lighting_probabilities(model, frame_embeddings, profile=profile)
    value = min(max(probabilities[setup], 0.0), 1.0)
    likeliest = max(probabilities, key=lambda s: probabilities[s])
    measured: dict[str, float | int | str | bool | None] = {
        "declared": setup.value,
        "likeliest": likeliest.value,
    }
    measured.update({f"p_{s.value}": round(p, 6) for s, p in probabilities.items()})
    if value >= profile.component_thresholds[Component.LIGHTING]:
        rival = (
            "" if likeliest is setup else f"; {_label(likeliest)} {probabilities[likeliest]:.0%}"
        )
        reason = Reason(
            code="lighting.consistent",
            message=(
                f"lighting declared {_label(setup)}, measured {_label(setup)} ({value:.0%}{rival})"
            ),
        )
    else:
        reason = Reason(
            code="lighting.mismatch",
            message=(
                f"lighting declared {_label(setup)} ({value:.0%}), measured "
                f"{_label(likeliest)} ({probabilities[likeliest]:.0%})"
            ),
        )
    return ComponentScore(value=value, reasons=(reason,), measured=measured)
