"""The scoring package's exceptions: one tree, each with a stable ``code``.

::

    ScoringError
    ├── ModelError
    │   ├── UnknownModelError        (+ LookupError)        model name or pretrained tag unknown
    │   ├── WeightsNotFoundError     (+ FileNotFoundError)  registered file in no weights folder
    │   ├── WeightsIntegrityError    (+ ValueError)         SHA-256 or size mismatch, unpinned or
    │   │                                                   unsupported weights file: refused
    │   └── DeviceUnavailableError   (+ RuntimeError)       device or precision not on this machine
    ├── UnknownProfileError          (+ LookupError)        no scoring profile for a (model, tag)
    ├── MediaError
    │   ├── UndecodableMediaError    (+ ValueError)         not a clip PyAV can open or decode
    │   ├── MissingStreamError       (+ LookupError)        no video (or audio) stream to sample
    │   ├── MediaLimitError          (+ ValueError)         over a sampling limit (pixels, duration,
    │   │                                                   frames decoded for one target...)
    │   └── WorkerCrashedError       (+ RuntimeError)       decoding it killed a worker twice
    └── NodeError                                           the validator node (scoring.node.errors)
        ├── NodeConfigError          (+ ValueError)         settings or key refused
        ├── NodeStateError           (+ OSError)            state directory unusable or locked
        ├── NotStakedError                                  no active stake on chain
        ├── BackendMismatchError                            backend wants another report version
        ├── FetchError               (+ ConnectionError)    content could not be fetched
        └── ContentMismatchError     (+ ValueError)         fetched bytes do not match the CID

The built-in bases let callers that know nothing of this package catch the usual
exception (``except FileNotFoundError``); ``code`` is what a report or a decision records
as the reason ("scoring.media.undecodable"), so it never changes once published.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "DeviceUnavailableError",
    "MediaError",
    "MediaLimitError",
    "MissingStreamError",
    "ModelError",
    "ScoringError",
    "UndecodableMediaError",
    "UnknownModelError",
    "UnknownProfileError",
    "WeightsIntegrityError",
    "WeightsNotFoundError",
    "WorkerCrashedError",
    "error_for_code",
]


class ScoringError(Exception):
    """Base of every error the scoring package raises on purpose."""

    code: ClassVar[str] = "scoring.error"


class ModelError(ScoringError):
    """The model could not be resolved, verified or placed on a device."""

    code: ClassVar[str] = "scoring.model"


class UnknownModelError(ModelError, LookupError):
    """No open_clip architecture by that name, or no such pretrained tag in the registry."""

    code: ClassVar[str] = "scoring.model.unknown"


class WeightsNotFoundError(ModelError, FileNotFoundError):
    """A registered weights file is not in any of the folders searched."""

    code: ClassVar[str] = "scoring.weights.not_found"


class WeightsIntegrityError(ModelError, ValueError):
    """A weights file is refused: its SHA-256 or size is not the pinned one, nothing pins
    it, or its format is not one that loads without running code."""

    code: ClassVar[str] = "scoring.weights.integrity"


class DeviceUnavailableError(ModelError, RuntimeError):
    """The requested device or precision does not exist on this machine."""

    code: ClassVar[str] = "scoring.device.unavailable"


class UnknownProfileError(ScoringError, LookupError):
    """No scoring profile (thresholds, weights, prompts) for that model and tag in
    ``scoring/profiles.json``: a model's numbers are never guessed from another's."""

    code: ClassVar[str] = "scoring.profile.unknown"


class MediaError(ScoringError):
    """A clip could not be sampled."""

    code: ClassVar[str] = "scoring.media"


class UndecodableMediaError(MediaError, ValueError):
    """PyAV cannot open the container or decode a single frame of the stream."""

    code: ClassVar[str] = "scoring.media.undecodable"


class MissingStreamError(MediaError, LookupError):
    """The clip has no stream of the kind asked for (video to sample, audio to decode)."""

    code: ClassVar[str] = "scoring.media.missing_stream"


class MediaLimitError(MediaError, ValueError):
    """The clip is over one of the sampling limits; nothing more is decoded."""

    code: ClassVar[str] = "scoring.media.limit"


class WorkerCrashedError(MediaError, RuntimeError):
    """Decoding this clip killed a decode worker process twice (pipeline verdict)."""

    code: ClassVar[str] = "scoring.media.worker_crashed"


def _subclasses(cls: type[ScoringError]) -> list[type[ScoringError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _subclasses(child))]


def error_for_code(code: str) -> type[ScoringError]:
    """The exception class that owns a reason ``code`` (``ScoringError`` if unknown)."""
    return next((cls for cls in _subclasses(ScoringError) if cls.code == code), ScoringError)
