"""What a validator says about one clip: the types shared by scorer, node and backend.

This module imports pydantic and the SDK's annotation canonicaliser only (no torch, no
open_clip), because the backend reads reports with these types and the validator node
signs them.

A :class:`ClipScores` is the whole verdict of one validator on one clip:

- ``scores``: one :class:`ComponentScore` per :class:`Component` (scene alignment,
  lighting, camera, audio), each ``value`` in [0, 1] or ``None`` when the component
  cannot be scored for this clip (no sound track, a lighting setup the model does not
  know), always with :class:`Reason` codes saying why the value is what it is;
- ``flags``: the junk detectors that fired (:class:`Flag`), each with its reason;
- ``quality``: the overall score (weights documented in ``scoring/README.md``) and the
  model's ``pass_threshold``; ``passed`` is ``quality >= pass_threshold`` and no flag;
- ``outcome``: ``scored``, or ``failed`` when the clip could not be decoded (then only
  ``reasons`` say why: a failed decision, never a crashed node);
- ``model``: the :class:`ModelIdentity` that produced the numbers.

Signed reports carry the numbers as basis points (:func:`to_bps`, 0..10000; 65535 for
"not scored") and the flags as a bit mask (:data:`FLAG_BITS`), plus ``detailsHash`` =
keccak256 of :meth:`ClipScores.canonical_json` so the reasons are signed too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

from eth_utils.crypto import keccak
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shotbank.annotation.canonical import canonical_json_value

__all__ = [
    "FLAG_BITS",
    "NOT_SCORED_BPS",
    "REPORT_SCHEMA_VERSION",
    "ClipScores",
    "Component",
    "ComponentScore",
    "Flag",
    "FlagResult",
    "ModelIdentity",
    "Outcome",
    "Reason",
    "flags_from_mask",
    "flags_mask",
    "from_bps",
    "to_bps",
]

#: Version of the report format (bumped when a field's meaning changes).
REPORT_SCHEMA_VERSION: Final = 1
#: Basis-point value that stands for "not scored" in a signed report.
NOT_SCORED_BPS: Final = 65535
MAX_REASONS: Final = 32
REASON_CODE_PATTERN: Final = r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"


class ModelIdentity(BaseModel):
    """What produced a score: recorded with every score and signed into reports."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, max_length=100)
    #: Registry tag; None for a caller-pinned file outside the registry.
    tag: str | None = Field(default=None, max_length=100)
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    #: ``"<pipeline version>-<digest of open_clip's preprocess config>"``: equal exactly
    #: when the same frames become the same tensors.
    preprocessing: str = Field(pattern=r"^\d+-[0-9a-f]{12}$")


class Component(StrEnum):
    """The scored aspects of a clip against its annotation."""

    SCENE = "scene"
    LIGHTING = "lighting"
    CAMERA = "camera"
    AUDIO = "audio"


class Flag(StrEnum):
    """Junk detectors. A flag held by a majority of stake rejects the clip."""

    BLACK = "black"
    """Most frames black or of one uniform colour."""
    FROZEN = "frozen"
    """The picture does not change over the clip."""
    NOISE = "noise"
    """Frames are mostly noise (no structure)."""
    BLUR = "blur"
    """Extremely blurred throughout."""
    EXPOSURE = "exposure"
    """Blown out or crushed throughout (not a deliberate low-key/high-key look)."""
    DUPLICATE = "duplicate"
    """Near-duplicate of an accepted clip (embedding cosine above the model's threshold)."""
    TOO_SHORT = "too_short"
    """Shorter than the minimum useful duration."""


#: Bit of each flag in a signed report's ``flags`` mask. Append only; never renumber.
FLAG_BITS: Final[dict[Flag, int]] = {
    Flag.BLACK: 1 << 0,
    Flag.FROZEN: 1 << 1,
    Flag.NOISE: 1 << 2,
    Flag.BLUR: 1 << 3,
    Flag.EXPOSURE: 1 << 4,
    Flag.DUPLICATE: 1 << 5,
    Flag.TOO_SHORT: 1 << 6,
}


class Outcome(StrEnum):
    """Whether the validator could score the clip at all."""

    SCORED = "scored"
    FAILED = "failed"


class Reason(BaseModel):
    """A stable code and a sentence for the contributor.

    Codes are dotted (``camera.direction_mismatch``, ``junk.frozen``,
    ``scoring.media.undecodable``); messages name the declared and the measured value
    ("camera movement declared pan-left, measured pan-right").
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=REASON_CODE_PATTERN, max_length=64)
    message: str = Field(min_length=1, max_length=500)


class ComponentScore(BaseModel):
    """One component's score in [0, 1] (``None``: not scorable here) and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float | None = Field(default=None, ge=0.0, le=1.0)
    reasons: tuple[Reason, ...] = Field(default=(), max_length=MAX_REASONS)
    #: What was measured, for people and for consensus explanations (small, flat).
    measured: dict[str, float | int | str | bool | None] = Field(
        default_factory=dict, max_length=32
    )


class FlagResult(BaseModel):
    """One junk detector that fired, with its measure and reason."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    flag: Flag
    reason: Reason
    #: The detector's measure (e.g. share of black frames, max cosine similarity).
    measure: float | None = None
    #: For ``duplicate``: the accepted clip it duplicates.
    duplicate_of: str | None = Field(default=None, max_length=64)


class ClipScores(BaseModel):
    """One validator's verdict on one clip (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    report_version: Literal[1] = REPORT_SCHEMA_VERSION
    outcome: Outcome = Outcome.SCORED
    scores: dict[Component, ComponentScore] = Field(default_factory=dict, max_length=8)
    flags: tuple[FlagResult, ...] = Field(default=(), max_length=len(Flag))
    quality: float | None = Field(default=None, ge=0.0, le=1.0)
    pass_threshold: float = Field(ge=0.0, le=1.0)
    passed: bool
    #: Reasons about the clip as a whole (failed outcome, overall verdict).
    reasons: tuple[Reason, ...] = Field(default=(), max_length=MAX_REASONS)
    model: ModelIdentity
    #: The clip's embedding under ``model``: base64 of the little-endian float16,
    #: L2-normalised mean of its frame embeddings. The backend keeps those of accepted
    #: clips so every validator's near-duplicate index covers all of them.
    embedding: str | None = Field(
        default=None, max_length=16_384, pattern=r"^[A-Za-z0-9+/]*={0,2}$"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ClipScores:
        if self.outcome is Outcome.FAILED:
            if (
                self.scores
                or self.flags
                or self.quality is not None
                or self.passed
                or self.embedding
            ):
                raise ValueError("a failed outcome carries reasons only")
            if not self.reasons:
                raise ValueError("a failed outcome needs a reason")
            return self
        if self.quality is None:
            raise ValueError("a scored outcome needs a quality")
        if len({f.flag for f in self.flags}) != len(self.flags):
            raise ValueError("a flag is listed twice")
        expected = self.quality >= self.pass_threshold and not self.flags
        if self.passed != expected:
            raise ValueError("passed must be quality >= pass_threshold and no junk flag")
        return self

    def value(self, component: Component) -> float | None:
        """The component's value, ``None`` when absent or not scorable."""
        score = self.scores.get(component)
        return None if score is None else score.value

    def raised(self) -> frozenset[Flag]:
        """The flags that fired."""
        return frozenset(f.flag for f in self.flags)

    def canonical_json(self) -> bytes:
        """RFC 8785 canonical JSON of the whole verdict (what ``detailsHash`` hashes)."""
        return canonical_json_value(self.model_dump(mode="json"))

    def details_hash(self) -> str:
        """``0x`` + keccak256 of :meth:`canonical_json` (signed as ``detailsHash``)."""
        return "0x" + keccak(self.canonical_json()).hex()


def to_bps(value: float | None) -> int:
    """A score in [0, 1] as basis points (rounded half up); ``None`` -> 65535."""
    if value is None:
        return NOT_SCORED_BPS
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"score {value} is outside [0, 1]")
    return int(value * 10_000 + 0.5)


def from_bps(bps: int) -> float | None:
    """Inverse of :func:`to_bps` (to the nearest basis point)."""
    if bps == NOT_SCORED_BPS:
        return None
    if not 0 <= bps <= 10_000:
        raise ValueError(f"{bps} is not a basis-point score")
    return bps / 10_000


def flags_mask(flags: frozenset[Flag] | set[Flag]) -> int:
    """The ``uint32`` mask of ``flags`` (:data:`FLAG_BITS`)."""
    mask = 0
    for flag in flags:
        mask |= FLAG_BITS[flag]
    return mask


def flags_from_mask(mask: int) -> frozenset[Flag]:
    """The flags of a mask; unknown bits are an error (a newer report format)."""
    known = 0
    for bit in FLAG_BITS.values():
        known |= bit
    if mask < 0 or mask & ~known:
        raise ValueError(f"flag mask {mask:#x} has unknown bits")
    return frozenset(flag for flag, bit in FLAG_BITS.items() if mask & bit)
