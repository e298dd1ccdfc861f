"""Clip scoring for Shotbank validators.

The foundation the scorers stand on:

- :func:`load_model` builds an open_clip model from a name and a pretrained tag or local
  file, with weights pinned by SHA-256 (:mod:`scoring.pretrained`), on the fastest device
  and precision the machine has (:mod:`scoring.device`); its :class:`ModelIdentity` goes
  with every score;
- :func:`sample_frames` / :func:`decode_audio` / :func:`sample_clip` take K frames spread
  over a clip with keyframe-aware seeking, and its sound as mono 16 kHz;
- :mod:`scoring.synthetic` is the picture world the in-project test model was trained on;
- :mod:`scoring.errors` is the package's exception tree.

On top of it: :class:`Scorer` (scene, lighting, camera and audio scores, junk and
near-duplicate flags, the overall verdict as :class:`ClipScores`), per-model
:class:`ModelProfile` thresholds, :class:`DuplicateIndex`, :class:`ScoringPipeline` /
:class:`RayScoringPipeline` (decode workers + batched inference) and the validator node
(:mod:`scoring.node`, ``shotbank validator run``).

Names are imported on first use, so ``import scoring.errors`` or ``scoring.frames`` (the
backend's types, decode workers) does not pay for importing torch and open_clip.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scoring.dedup import DuplicateIndex
    from scoring.device import ComputePlan, Hardware, detect_hardware, select_compute
    from scoring.errors import (
        DeviceUnavailableError,
        MediaError,
        MediaLimitError,
        MissingStreamError,
        ModelError,
        ScoringError,
        UndecodableMediaError,
        UnknownModelError,
        WeightsIntegrityError,
        WeightsNotFoundError,
    )
    from scoring.frames import (
        AudioTrack,
        ClipSample,
        SampledFrames,
        SamplingLimits,
        decode_audio,
        sample_clip,
        sample_frames,
    )
    from scoring.models import TEST_MODEL, ScoringModel, load_model
    from scoring.pipeline import RayScoringPipeline, ScorerSpec, ScoringJob, ScoringPipeline
    from scoring.pretrained import PretrainedWeights, get_pretrained, list_pretrained
    from scoring.profiles import ModelProfile, profile_for
    from scoring.report import ClipScores, Component, ComponentScore, Flag, ModelIdentity, Reason
    from scoring.scorer import Analysis, Scorer

_HOME = {
    "scoring.device": ("ComputePlan", "Hardware", "detect_hardware", "select_compute"),
    "scoring.errors": (
        "DeviceUnavailableError",
        "MediaError",
        "MediaLimitError",
        "MissingStreamError",
        "ModelError",
        "ScoringError",
        "UndecodableMediaError",
        "UnknownModelError",
        "WeightsIntegrityError",
        "WeightsNotFoundError",
    ),
    "scoring.frames": (
        "AudioTrack",
        "ClipSample",
        "SampledFrames",
        "SamplingLimits",
        "decode_audio",
        "sample_clip",
        "sample_frames",
    ),
    "scoring.dedup": ("DuplicateIndex",),
    "scoring.models": ("TEST_MODEL", "ScoringModel", "load_model"),
    "scoring.pipeline": ("RayScoringPipeline", "ScorerSpec", "ScoringJob", "ScoringPipeline"),
    "scoring.pretrained": ("PretrainedWeights", "get_pretrained", "list_pretrained"),
    "scoring.profiles": ("ModelProfile", "profile_for"),
    "scoring.report": (
        "ClipScores",
        "Component",
        "ComponentScore",
        "Flag",
        "ModelIdentity",
        "Reason",
    ),
    "scoring.scorer": ("Analysis", "Scorer"),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'scoring' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "TEST_MODEL",
    "Analysis",
    "AudioTrack",
    "ClipSample",
    "ClipScores",
    "Component",
    "ComponentScore",
    "ComputePlan",
    "DeviceUnavailableError",
    "DuplicateIndex",
    "Flag",
    "Hardware",
    "MediaError",
    "MediaLimitError",
    "MissingStreamError",
    "ModelError",
    "ModelIdentity",
    "ModelProfile",
    "PretrainedWeights",
    "RayScoringPipeline",
    "Reason",
    "SampledFrames",
    "SamplingLimits",
    "Scorer",
    "ScorerSpec",
    "ScoringError",
    "ScoringJob",
    "ScoringModel",
    "ScoringPipeline",
    "UndecodableMediaError",
    "UnknownModelError",
    "WeightsIntegrityError",
    "WeightsNotFoundError",
    "decode_audio",
    "detect_hardware",
    "get_pretrained",
    "list_pretrained",
    "load_model",
    "profile_for",
    "sample_clip",
    "sample_frames",
    "select_compute",
]
