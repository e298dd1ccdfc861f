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

Still to come (issue 4): the scene, lighting, camera and audio scorers, the junk
detectors, and the validator node.

Names are imported on first use, so ``import scoring.errors`` or ``scoring.frames`` (the
backend's types, decode workers) does not pay for importing torch and open_clip.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from scoring.models import TEST_MODEL, ModelIdentity, ScoringModel, load_model
    from scoring.pretrained import PretrainedWeights, get_pretrained, list_pretrained

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
    "scoring.models": ("TEST_MODEL", "ModelIdentity", "ScoringModel", "load_model"),
    "scoring.pretrained": ("PretrainedWeights", "get_pretrained", "list_pretrained"),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'scoring' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "TEST_MODEL",
    "AudioTrack",
    "ClipSample",
    "ComputePlan",
    "DeviceUnavailableError",
    "Hardware",
    "MediaError",
    "MediaLimitError",
    "MissingStreamError",
    "ModelError",
    "ModelIdentity",
    "PretrainedWeights",
    "SampledFrames",
    "SamplingLimits",
    "ScoringError",
    "ScoringModel",
    "UndecodableMediaError",
    "UnknownModelError",
    "WeightsIntegrityError",
    "WeightsNotFoundError",
    "decode_audio",
    "detect_hardware",
    "get_pretrained",
    "list_pretrained",
    "load_model",
    "sample_clip",
    "sample_frames",
    "select_compute",
]
