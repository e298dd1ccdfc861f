"""Per-model scoring profiles: every threshold, weight and prompt that depends on the model.

A CLIP model's numbers mean nothing on their own: cosine similarities, logit scales and
how well it knows a word all differ between models. So everything the scorers compare
against lives in ``scoring/profiles.json``, one :class:`ModelProfile` per
``(model, tag)``, and never as literals in the detectors:

- ``pass_threshold`` and the overall ``weights`` per :class:`~scoring.report.Component`
  (they sum to 1; when a component is not scorable for a clip -- no sound, a lighting
  setup the model does not know -- its weight is shared out over the others in
  proportion to theirs, see :meth:`ModelProfile.quality`);
- ``component_thresholds``: below its threshold a component's reasons become reasons of
  the overall verdict (what the contributor reads first);
- ``scene``: the distractor captions scene alignment is calibrated against
  (:mod:`scoring.scene`), when a distractor counts as meaning the same as the
  description, and how the two parts of the score are blended;
- ``lighting``: the prompt templates and the lighting setups the model knows, with the
  words used for each (:mod:`scoring.lighting`);
- ``duplicate_cosine``: clip-embedding cosine above which a clip is a near-duplicate,
  and ``approximate_index_above``: index size from which :class:`scoring.dedup.
  DuplicateIndex` searches approximately (IVF: ``ivf_lists`` cells, ``ivf_probes``
  scanned per query) instead of exactly;
- ``camera``, ``junk``, ``audio``: the thresholds of the OpenCV and signal detectors
  (:class:`~scoring.camera.CameraThresholds`, :class:`~scoring.junk.JunkThresholds`,
  :class:`~scoring.audio.AudioThresholds`). They do not depend on the CLIP model, but
  live in the profile so one object carries everything a validator judges with; the
  file lists only overrides of the detectors' measured defaults.

Profiles: ``shotbank-tiny/synthetic-v1`` (the in-project test model; its numbers were
measured on clips of :mod:`scoring.clipgen`) and ``ViT-B-32/laion2b_s34b_b79k`` (the
deployment default). The ViT-B-32 numbers are informed guesses from published CLIP
behaviour -- cosines of matching image-text pairs around 0.3, unrelated around 0.1-0.2,
logit scale 100 -- and stay guesses until measured on real clips with the real weights.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from scoring.audio import AudioThresholds
from scoring.camera import CameraThresholds
from scoring.errors import UnknownProfileError
from scoring.junk import JunkThresholds
from scoring.report import Component, ModelIdentity
from shotbank.annotation.vocabulary import LightingSetup

__all__ = [
    "MAX_DISTRACTORS",
    "PROFILES_SCHEMA",
    "LightingPrompts",
    "ModelProfile",
    "SceneCalibration",
    "list_profiles",
    "load_profiles",
    "profile_for",
]

#: Version of ``profiles.json``'s layout.
PROFILES_SCHEMA: Final = 1
#: Most distractor captions a profile may list (each costs a text embedding, once).
MAX_DISTRACTORS: Final = 1000
_WEIGHT_TOLERANCE: Final = 1e-6

Caption = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SceneCalibration(_Frozen):
    """How scene alignment is calibrated (formula in :mod:`scoring.scene`)."""

    #: ``"synthetic"``: every caption of :mod:`scoring.synthetic`'s world (the in-project
    #: model's); ``"list"``: the ``distractors`` below.
    distractor_source: Literal["synthetic", "list"]
    distractors: tuple[Caption, ...] = Field(default=(), max_length=MAX_DISTRACTORS)
    #: A distractor whose text embedding has at least this cosine with the description's
    #: says the same thing in other words, and is left out.
    exclude_text_cosine: float = Field(gt=0.0, le=1.0)
    #: Weight of the runner-up term (the two-way contest with the strongest distractor)
    #: against the share of the whole bank beaten.
    runner_up_weight: Probability = 0.5

    @model_validator(mode="after")
    def _source_has_captions(self) -> SceneCalibration:
        if self.distractor_source == "list" and len(self.distractors) < 2:
            raise ValueError("a listed distractor bank needs at least two captions")
        if self.distractor_source == "synthetic" and self.distractors:
            raise ValueError("the synthetic bank is generated; list no distractors")
        if len(set(self.distractors)) != len(self.distractors):
            raise ValueError("a distractor caption is listed twice")
        return self


class LightingPrompts(_Frozen):
    """Zero-shot prompts for the lighting setups a model knows."""

    #: Templates with one ``{}`` for the setup's phrase; their text embeddings are
    #: averaged per setup (CLIP's prompt ensembling).
    templates: tuple[Annotated[str, StringConstraints(min_length=2, max_length=200)], ...] = Field(
        min_length=1, max_length=16
    )
    #: The setups the model knows and the words for each in prompts. A declared setup
    #: outside these keys is not scorable with this model.
    setups: dict[LightingSetup, Caption] = Field(min_length=2, max_length=len(LightingSetup))

    @model_validator(mode="after")
    def _templates_take_a_phrase(self) -> LightingPrompts:
        for template in self.templates:
            if template.count("{}") != 1:
                raise ValueError(f"lighting template {template!r} must hold exactly one {{}}")
        return self

    def prompts(self, setup: LightingSetup) -> list[str]:
        """Every prompt of ``setup`` (one per template)."""
        return [template.format(self.setups[setup]) for template in self.templates]


class ModelProfile(_Frozen):
    """Everything a model's scores are judged against (see the module docstring)."""

    model: str = Field(min_length=1, max_length=100)
    tag: str = Field(min_length=1, max_length=100)
    #: Width of the model's embeddings (what the duplicate index holds).
    embedding_dim: int = Field(ge=2, le=8192)
    #: Overall quality at or above which a clip without junk flags passes.
    pass_threshold: Probability
    #: Weight of each component in the overall quality; all four, summing to 1.
    weights: dict[Component, Probability]
    #: Below its threshold a component's reasons are lifted into the verdict's reasons.
    component_thresholds: dict[Component, Probability]
    scene: SceneCalibration
    lighting: LightingPrompts
    #: Clip-embedding cosine at or above which a clip duplicates an indexed one.
    duplicate_cosine: float = Field(gt=0.0, le=1.0)
    #: Index size from which near-duplicate search is approximate (HNSW).
    approximate_index_above: int = Field(ge=1, le=1_000_000_000)
    #: Thresholds of the motion estimate and camera score, the junk detectors and the
    #: sound measures. ``profiles.json`` lists only what differs from the detectors' own
    #: measured defaults (documented in :mod:`scoring.camera`, :mod:`scoring.junk`,
    #: :mod:`scoring.audio`); the parsed profile holds every number.
    camera: CameraThresholds = CameraThresholds()
    junk: JunkThresholds = JunkThresholds()
    audio: AudioThresholds = AudioThresholds()
    #: IVF cells of the approximate index, and cells scanned per query (recall against
    #: speed; see scoring.dedup and benchmarks/scoring/dedup_index.py).
    ivf_lists: int = Field(default=1024, ge=1, le=1 << 20)
    ivf_probes: int = Field(default=32, ge=1, le=1 << 20)
    #: Free text: where the numbers come from and how sure they are.
    provenance: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _complete(self) -> ModelProfile:
        for name, table in (
            ("weights", self.weights),
            ("component_thresholds", self.component_thresholds),
        ):
            missing = set(Component) - set(table)
            if missing:
                raise ValueError(f"{name} lacks {sorted(missing)}")
        if not self.ivf_probes <= self.ivf_lists <= self.approximate_index_above:
            raise ValueError("need ivf_probes <= ivf_lists <= approximate_index_above")
        total = math.fsum(self.weights.values())
        if abs(total - 1.0) > _WEIGHT_TOLERANCE:
            raise ValueError(f"weights sum to {total}, not 1")
        return self

    @property
    def key(self) -> tuple[str, str]:
        """``(model, tag)``."""
        return (self.model, self.tag)

    def quality(self, values: dict[Component, float | None]) -> float | None:
        """The overall quality of a clip from its component values.

        ``quality = mean`` when every component clears its threshold, else
        ``min(mean, pass_threshold * min_c(v_c / t_c))``, where

        - ``mean`` is the weighted mean of the components that have a value: one that
          is absent or ``None`` (not scorable for this clip) drops out and the others'
          weights are scaled up to sum to 1 again, so a silent clip is judged on picture
          alone rather than punished for having no sound;
        - ``v_c / t_c`` is a component's value relative to its threshold in
          ``component_thresholds`` (components with threshold 0 have no say). A
          component below its threshold caps the quality below the pass threshold, in
          proportion to how far below it is: strong components cannot buy off a failed
          one (a perfectly lit, perfectly steady clip of a blue square described as "a
          red circle" is mislabelled).

        The result never falls when a value rises; it steps up where a component
        reaches its threshold, which is where the verdict changes anyway. ``None`` when
        no component has a value (or all available ones weigh nothing).
        """
        available = {c: v for c, v in values.items() if v is not None}
        weight = math.fsum(self.weights[c] for c in available)
        if weight <= 0.0:
            return None
        mean = math.fsum(self.weights[c] * v for c, v in available.items()) / weight
        failed = [
            v / self.component_thresholds[c]
            for c, v in available.items()
            if v < self.component_thresholds[c]
        ]
        if failed:
            mean = min(mean, self.pass_threshold * min(failed))
        return min(max(mean, 0.0), 1.0)


class _ProfilesFile(_Frozen):
    schema_: Literal[1] = Field(alias="schema")
    comment: str = Field(default="", max_length=4000)
    models: dict[str, dict[str, dict[str, Any]]] = Field(max_length=100)


@cache
def load_profiles() -> dict[tuple[str, str], ModelProfile]:
    """Every profile of the package's ``profiles.json``, by ``(model, tag)`` (read once)."""
    raw = resources.files("scoring").joinpath("profiles.json").read_text(encoding="utf-8")
    parsed = _ProfilesFile.model_validate(json.loads(raw))
    profiles: dict[tuple[str, str], ModelProfile] = {}
    for model, tags in parsed.models.items():
        for tag, body in tags.items():
            profiles[(model, tag)] = ModelProfile.model_validate(
                {**body, "model": model, "tag": tag}
            )
    return profiles


def list_profiles() -> list[tuple[str, str]]:
    """The ``(model, tag)`` pairs that have a profile."""
    return sorted(load_profiles())


def profile_for(model: ModelIdentity | str, tag: str | None = None) -> ModelProfile:
    """The profile of a model, given its :class:`ModelIdentity` or its name and tag.

    Raises :class:`scoring.errors.UnknownProfileError` when there is none: a caller-pinned
    file outside the registry (no tag) or a model nobody has calibrated.
    """
    if isinstance(model, ModelIdentity):
        if tag is not None:
            raise TypeError("give a ModelIdentity or a model name and a tag, not both")
        name, tag = model.model, model.tag
    else:
        name = model
    profiles = load_profiles()
    if tag is None or (name, tag) not in profiles:
        known = ", ".join(f"{m}/{t}" for m, t in sorted(profiles))
        raise UnknownProfileError(
            f"no scoring profile for model {name!r} with weights tag {tag!r}; "
            f"profiles exist for {known}. Add one to scoring/profiles.json (thresholds "
            "measured with that model) before scoring with it."
        )
    return profiles[(name, tag)]
