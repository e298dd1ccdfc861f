"""The clip's sound: technical measures, and its agreement with the declared audio.

:func:`measure_audio` measures a decoded track (:class:`scoring.frames.AudioTrack`,
mono float32, 16 kHz from the sampler):

- ``silence_share``: share of 100 ms windows whose RMS is below ``silence_dbfs``;
- ``clipping_share``: share of samples at ``|x| >= clip_level``. Lossy codecs ring
  around a clipped waveform and overshoot a clean one, so a full-scale sine decoded from
  AAC already reaches the level on 0.27 % of its samples; over-driven by 12 dB, 2.4 %;
- ``integrated_lufs``: ITU-R BS.1770-4 integrated loudness by ``pyloudnorm`` (K-weighting,
  400 ms blocks, absolute and relative gates). BS.1770 needs at least one 400 ms block:
  a shorter track is measured as one block spanning all of it (ungated loudness);
- ``loudness_range_lu``: EBU Tech 3342 loudness range: short-term loudness of 3 s
  windows every 100 ms (``pyloudnorm``'s meter on those windows), gated at -70 LUFS and
  20 LU below their mean, 95th minus 10th percentile; ``None`` under 3 s;
- ``peak_dbfs``, ``rms_dbfs``: sample peak and RMS (``None`` for digital silence).

Measures are of the 16 kHz mono track the scorer decodes, so sound above 8 kHz is not
counted: white noise reads about 5 LU quieter than at 48 kHz; a 1 kHz tone is exact.

:func:`score_audio` judges the measures against the annotation's ``audio`` section and,
when an :class:`AudioTextModel` (a CLAP-like audio-text model) is configured, the sound's
style against the declared vocabulary terms: each declared term (genre, mood, each
ambience tag, recording kind) is turned into a prompt and ranked against the prompts of
the other terms of its vocabulary. Its rank is the share of alternatives it beats (ties
count half), averaged over the declared terms; the style score is how far that rank is
above chance, ``max(0, 2 * rank - 1)``, so it means the same whatever the model's
similarity scale and a model that cannot tell earns nothing.
Vocabularies the model cannot tell apart (all prompts equally similar) are skipped.

:class:`ToneAudioTextModel` is a **test stand-in, not a real model**: a few spectral
features (level, flatness, tonal peaks and their frequency) mapped onto seven concepts
("silence", "noise", "low", "mid", "high", "music", "other") and texts mapped onto the
same concepts by keywords. It lets the interface be exercised end to end with known
answers (white noise reads "white noise", a 4 kHz tone "a high tone"); it knows nothing
about moods or recording kinds.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pyloudnorm  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field

from scoring.errors import MediaLimitError
from scoring.frames import AUDIO_RATE, AudioTrack
from scoring.report import ComponentScore, Reason
from shotbank.annotation.models import Audio
from shotbank.annotation.vocabulary import (
    AmbienceTag,
    AudioGenre,
    AudioMood,
    RecordingKind,
    term_label,
)

__all__ = [
    "GENRE_PROMPTS",
    "AudioMeasures",
    "AudioModelIdentity",
    "AudioTextModel",
    "AudioThresholds",
    "StylePrompts",
    "ToneAudioTextModel",
    "audio_zero_shot",
    "measure_audio",
    "score_audio",
    "style_prompts",
]

Samples = npt.NDArray[np.float32]
Embedding = npt.NDArray[np.float32]

#: BS.1770 gating block (seconds) and EBU Tech 3342 short-term window and rate.
_BLOCK_S: Final = 0.4
_SHORT_TERM_S: Final = 3.0
_SHORT_TERM_HOP_S: Final = 0.1
#: Shortest sound whose loudness is measured at all (one block of 10 ms).
_MIN_LOUDNESS_S: Final = 0.01

#: Prompt of each genre (music genres read "<genre> music" as CLAP-style prompts do).
GENRE_PROMPTS: Final[dict[AudioGenre, str]] = {
    AudioGenre.AMBIENCE: "ambient sound",
    AudioGenre.SPEECH: "people speaking",
    AudioGenre.SOUND_EFFECTS: "sound effects",
    AudioGenre.CINEMATIC_SCORE: "cinematic score music",
    AudioGenre.ORCHESTRAL: "orchestral music",
    AudioGenre.ELECTRONIC: "electronic music",
    AudioGenre.ACOUSTIC: "acoustic music",
    AudioGenre.ROCK: "rock music",
    AudioGenre.POP: "pop music",
    AudioGenre.JAZZ: "jazz music",
    AudioGenre.HIP_HOP: "hip-hop music",
    AudioGenre.FOLK: "folk music",
    AudioGenre.WORLD: "world music",
    AudioGenre.EXPERIMENTAL: "experimental music",
}


class AudioThresholds(BaseModel):
    """Every number the audio measures and score depend on (embedded in a model profile)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_duration_s: float = Field(default=3600.0, gt=0.0, le=86_400.0)
    """Longest track measured (the sampler's own limit); longer raises MediaLimitError."""
    silence_dbfs: float = Field(default=-60.0, ge=-200.0, le=0.0)
    """A 100 ms window with RMS below this is silent (about the noise floor of a quiet
    room recorded at normal gain; digital silence decodes to exactly 0)."""
    clip_level: float = Field(default=0.999, gt=0.0, le=2.0)
    """A sample at or above this magnitude is clipped."""

    silent_share: float = Field(default=0.95, gt=0.0, le=1.0)
    """Share of silent windows from which the whole track counts as silent."""
    clipping_share_max: float = Field(default=0.005, ge=0.0, le=1.0)
    """Clipped-sample share above which ``audio.clipping`` applies. Through AAC a clean
    full-scale 1 kHz sine measured 0.27 % (codec overshoot), a 440 Hz sine over-driven by
    3 dB 0.33 %, by 6 dB 1.0 %, by 12 dB 2.4 %: mild clipping cannot be told from a
    hot clean master after lossy coding, so only clear over-driving counts."""
    clipping_penalty: float = Field(default=0.5, ge=0.0, le=1.0)
    too_quiet_lufs: float = Field(default=-45.0, ge=-100.0, le=0.0)
    """Integrated loudness below which the sound is too quiet to use (broadcast targets
    sit at -23 to -14 LUFS; quiet ambience around -40)."""
    quiet_penalty: float = Field(default=0.2, ge=0.0, le=1.0)
    max_loudness_range_lu: float = Field(default=25.0, gt=0.0, le=100.0)
    """Loudness range above which dynamics are extreme (film mixes reach about 20 LU)."""
    range_penalty: float = Field(default=0.1, ge=0.0, le=1.0)

    silent_value: float = Field(default=0.05, ge=0.0, le=1.0)
    """Score of a silent (or missing) track whose annotation declares sound."""
    undeclared_sound_value: float = Field(default=0.5, ge=0.0, le=1.0)
    """Cap on the score of a sound track the annotation leaves undescribed (it says
    'omit the audio section for a clip without sound')."""
    style_weight: float = Field(default=0.7, ge=0.0, le=1.0)
    """How much of the score the style check decides (a complete mismatch leaves
    ``1 - style_weight`` of the technical score)."""
    style_match_min: float = Field(default=0.3, ge=0.0, le=1.0)
    """Style score from which the style matches. The score is how far above chance the
    declared terms rank: 0 when they beat half the alternatives or fewer, 1 when they
    beat all; 0.3 means beating 65 % of them on average."""
    style_min_spread: float = Field(default=1e-3, ge=0.0, le=2.0)
    """A vocabulary whose prompts' similarities to the sound spread less than this is
    one the model cannot tell apart, and is skipped."""
    style_max_prompts: int = Field(default=64, ge=2, le=512)
    """Most prompts embedded per clip."""


class AudioMeasures(BaseModel):
    """Technical measures of one sound track (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    duration_s: float = Field(ge=0.0)
    sample_rate: int = Field(ge=1, le=768_000)
    peak_dbfs: float | None
    """Sample peak; ``None`` for digital silence."""
    rms_dbfs: float | None
    """RMS level of the whole track; ``None`` for digital silence."""
    silence_share: float = Field(ge=0.0, le=1.0)
    clipping_share: float = Field(ge=0.0, le=1.0)
    integrated_lufs: float | None
    """``None``: silent, gated away entirely, or under 10 ms."""
    loudness_range_lu: float | None
    """``None``: under 3 s, or no short-term window above the gates."""


class AudioModelIdentity(BaseModel):
    """What produced an audio-style score: recorded with it, like an image model's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, max_length=100)
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


@runtime_checkable
class AudioTextModel(Protocol):
    """A CLAP-like audio-text model: sound and text in one embedding space.

    Both embeddings are L2-normalised, so their dot product is the cosine similarity.
    """

    @property
    def identity(self) -> AudioModelIdentity:
        """Name and weights hash of the model."""
        ...

    def embed_audio(self, samples: Samples) -> Embedding:
        """Embedding ``(D,)`` of mono float32 samples at 16 kHz."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> Embedding:
        """Embeddings ``(N, D)`` of ``texts``."""
        ...


# --- measures -------------------------------------------------------------------------


def _dbfs(level: float) -> float | None:
    return 20.0 * math.log10(level) if level > 0.0 else None


def _silence_share(samples: npt.NDArray[np.float64], rate: int, dbfs: float) -> float:
    window = max(round(0.1 * rate), 1)
    count = max(len(samples) // window, 1)
    usable = samples[: count * window] if len(samples) >= window else samples
    power = np.square(usable).reshape(count, -1).mean(axis=1)
    floor = 10.0 ** (dbfs / 10.0)
    return float(np.count_nonzero(power < floor)) / count


def _integrated_lufs(samples: npt.NDArray[np.float64], rate: int) -> float | None:
    length = len(samples)
    if length < _MIN_LOUDNESS_S * rate:
        return None
    block = _BLOCK_S
    if length < _BLOCK_S * rate:
        # One block spanning the whole track (half a sample short, so pyloudnorm's
        # length check passes despite rounding): its ungated loudness.
        block = (length - 0.5) / rate
    value = float(pyloudnorm.Meter(rate, block_size=block).integrated_loudness(samples))
    return value if math.isfinite(value) else None


def _loudness_range(samples: npt.NDArray[np.float64], rate: int) -> float | None:
    if len(samples) < _SHORT_TERM_S * rate:
        return None
    meter = pyloudnorm.Meter(
        rate, block_size=_SHORT_TERM_S, overlap=1.0 - _SHORT_TERM_HOP_S / _SHORT_TERM_S
    )
    meter.integrated_loudness(samples)  # fills blockwise_loudness: the short-term series
    short = np.asarray(meter.blockwise_loudness, np.float64)
    short = short[np.isfinite(short) & (short >= -70.0)]
    if short.size == 0:
        return None
    relative = 10.0 * math.log10(float(np.mean(np.power(10.0, short / 10.0)))) - 20.0
    gated = short[short >= relative]
    return float(np.percentile(gated, 95.0) - np.percentile(gated, 10.0))


def measure_audio(track: AudioTrack, *, thresholds: AudioThresholds | None = None) -> AudioMeasures:
    """Silence, clipping, loudness and loudness range of ``track`` (see the module)."""
    th = thresholds or AudioThresholds()
    rate = track.sample_rate
    if rate < 1:
        raise ValueError("the track has no sample rate")
    if track.duration > th.max_duration_s:
        raise MediaLimitError(
            f"sound lasts {track.duration:.1f} s, over the {th.max_duration_s:.0f} s limit"
        )
    samples = np.asarray(track.samples, np.float64).ravel()
    if samples.size == 0:
        return AudioMeasures(
            duration_s=0.0,
            sample_rate=rate,
            peak_dbfs=None,
            rms_dbfs=None,
            silence_share=1.0,
            clipping_share=0.0,
            integrated_lufs=None,
            loudness_range_lu=None,
        )
    if not np.all(np.isfinite(samples)):
        raise ValueError("the track holds non-finite samples")
    magnitude = np.abs(samples)
    return AudioMeasures(
        duration_s=track.duration,
        sample_rate=rate,
        peak_dbfs=_dbfs(float(magnitude.max())),
        rms_dbfs=_dbfs(math.sqrt(float(np.mean(np.square(samples))))),
        silence_share=_silence_share(samples, rate, th.silence_dbfs),
        clipping_share=float(np.count_nonzero(magnitude >= th.clip_level)) / samples.size,
        integrated_lufs=_integrated_lufs(samples, rate),
        loudness_range_lu=_loudness_range(samples, rate),
    )


# --- the stand-in model ---------------------------------------------------------------

#: The stand-in's concepts, one embedding axis each.
_CONCEPTS: Final = ("silence", "noise", "low", "mid", "high", "music", "other")
#: Keywords of each concept, tried in this order (the first concept matched wins, so
#: "a high tone" is high although "tone" alone reads mid).
_KEYWORDS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("silence", ("silence", "silent", "quiet", "nothing")),
    (
        "noise",
        (
            "noise",
            "hiss",
            "static",
            "rain",
            "wind",
            "waves",
            "stream",
            "fire",
            "crowd",
            "applause",
            "water",
            "surf",
        ),
    ),
    (
        "music",
        (
            "music",
            "musical",
            "song",
            "melody",
            "chord",
            "chords",
            "orchestral",
            "score",
            "jazz",
            "rock",
            "pop",
            "folk",
        ),
    ),
    (
        "low",
        (
            "low",
            "hum",
            "rumble",
            "bass",
            "drone",
            "engine",
            "machinery",
            "traffic",
            "aircraft",
            "thunder",
            "room tone",
        ),
    ),
    ("high", ("high", "whistle", "birds", "insects", "sirens", "siren", "chirp", "chirping")),
    ("mid", ("tone", "beep", "speech", "speaking", "voice", "voices", "talking", "dialogue")),
)
_WORDS: Final = {
    concept: re.compile(r"\b(" + "|".join(re.escape(word) for word in words) + r")\b")
    for concept, words in _KEYWORDS
}
_STAND_IN_VERSION: Final = 1
#: Most audio the stand-in analyses (seconds from the start).
_STAND_IN_MAX_S: Final = 60.0
_FFT_SIZE: Final = 1024


@dataclass(frozen=True)
class _Spectrum:
    rms_dbfs: float
    flatness: float
    peaks: int
    peak_hz: float


def _spectrum(samples: Samples, rate: int) -> _Spectrum:
    x = np.asarray(samples[: int(_STAND_IN_MAX_S * rate)], np.float64)
    rms = math.sqrt(float(np.mean(np.square(x)))) if x.size else 0.0
    level = 20.0 * math.log10(rms) if rms > 0.0 else -math.inf
    if x.size < _FFT_SIZE:
        x = np.pad(x, (0, _FFT_SIZE - x.size))
    hop = _FFT_SIZE // 2
    starts = range(0, x.size - _FFT_SIZE + 1, hop)
    window = np.hanning(_FFT_SIZE)
    power = np.mean(
        [np.square(np.abs(np.fft.rfft(x[s : s + _FFT_SIZE] * window))) for s in starts], axis=0
    )
    freqs = np.fft.rfftfreq(_FFT_SIZE, 1.0 / rate)
    band = (freqs >= 40.0) & (freqs <= min(7600.0, rate / 2 * 0.95))
    p, f = power[band] + 1e-20, freqs[band]
    flatness = float(np.exp(np.mean(np.log(p))) / np.mean(p))
    # Tonal peaks: local maxima 30 dB above the median bin, outside each other's Hann
    # main lobe (2 bins either side).
    floor = float(np.median(p)) * 1e3
    candidates = [
        i for i in range(1, len(p) - 1) if p[i] > floor and p[i] >= p[i - 1] and p[i] >= p[i + 1]
    ]
    peaks: list[int] = []
    for i in sorted(candidates, key=lambda i: -p[i]):
        if all(abs(i - j) > 2 for j in peaks):
            peaks.append(i)
    return _Spectrum(
        rms_dbfs=level, flatness=flatness, peaks=len(peaks), peak_hz=float(f[int(np.argmax(p))])
    )


def _unit(vector: npt.NDArray[np.float64]) -> Embedding:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0.0 else vector).astype(np.float32)


class ToneAudioTextModel:
    """A deterministic **test stand-in** for a CLAP-like model (see the module docstring).

    Sound: silence below -60 dBFS RMS; otherwise a mix of "noise" (spectral flatness
    from 0.15 to 0.5 and above) and one tonal concept: "music" for three or more tonal
    peaks, else by the strongest frequency: "low" under 300 Hz, "mid" under 2 kHz,
    "high" above. Text: the first concept whose keyword it contains, else "other".
    """

    def __init__(self) -> None:
        definition = json.dumps(
            {"version": _STAND_IN_VERSION, "concepts": _CONCEPTS, "keywords": _KEYWORDS},
            sort_keys=True,
        )
        self._identity = AudioModelIdentity(
            model="tone-stand-in", weights_sha256=hashlib.sha256(definition.encode()).hexdigest()
        )

    @property
    def identity(self) -> AudioModelIdentity:
        """Name and a hash of the stand-in's definition."""
        return self._identity

    def embed_audio(self, samples: Samples) -> Embedding:
        """Concept vector of a mono 16 kHz sound."""
        vector = np.zeros(len(_CONCEPTS))
        spectrum = _spectrum(samples, AUDIO_RATE)
        if spectrum.rms_dbfs < -60.0:
            vector[_CONCEPTS.index("silence")] = 1.0
            return _unit(vector)
        noisy = min(max((spectrum.flatness - 0.15) / 0.35, 0.0), 1.0)
        if spectrum.peaks >= 3:
            tonal = "music"
        elif spectrum.peak_hz < 300.0:
            tonal = "low"
        elif spectrum.peak_hz < 2000.0:
            tonal = "mid"
        else:
            tonal = "high"
        vector[_CONCEPTS.index("noise")] = noisy
        vector[_CONCEPTS.index(tonal)] = 1.0 - noisy
        return _unit(vector)

    def embed_texts(self, texts: Sequence[str]) -> Embedding:
        """Concept vectors of ``texts`` (one-hot; "other" without a known keyword)."""
        rows = np.zeros((len(texts), len(_CONCEPTS)), np.float32)
        for row, text in enumerate(texts):
            lowered = text.lower()
            concept = next((c for c, words in _WORDS.items() if words.search(lowered)), "other")
            rows[row, _CONCEPTS.index(concept)] = 1.0
        return rows


def audio_zero_shot(
    model: AudioTextModel, samples: Samples, texts: Sequence[str], *, temperature: float = 0.01
) -> npt.NDArray[np.float64]:
    """Probabilities over ``texts`` for a sound (softmax of cosines / ``temperature``)."""
    if not texts:
        raise ValueError("no texts to choose from")
    similarities = model.embed_texts(texts).astype(np.float64) @ model.embed_audio(samples)
    logits = similarities / temperature
    weights = np.exp(logits - logits.max())
    probabilities: npt.NDArray[np.float64] = weights / weights.sum()
    return probabilities


# --- the score ------------------------------------------------------------------------


@dataclass(frozen=True)
class StylePrompts:
    """One declared term's prompt and those of the alternatives it is ranked against."""

    what: str
    """The declared term, as messages name it ("ambience rain")."""
    declared: str
    alternatives: tuple[str, ...]


def _prompt_ambience(tag: AmbienceTag) -> str:
    return f"the sound of {term_label(tag).lower()}"


def _prompt_mood(mood: AudioMood) -> str:
    return f"a {term_label(mood).lower()} sound"


def _prompt_recording(kind: RecordingKind) -> str:
    return f"a {term_label(kind).lower()} recording"


def style_prompts(audio: Audio) -> tuple[StylePrompts, ...]:
    """The prompts that check each declared audio term against its vocabulary."""
    groups: list[StylePrompts] = []
    if audio.genre is not None:
        groups.append(
            StylePrompts(
                what=f"genre {audio.genre.value}",
                declared=GENRE_PROMPTS[audio.genre],
                alternatives=tuple(p for g, p in GENRE_PROMPTS.items() if g is not audio.genre),
            )
        )
    if audio.mood is not None:
        groups.append(
            StylePrompts(
                what=f"mood {audio.mood.value}",
                declared=_prompt_mood(audio.mood),
                alternatives=tuple(_prompt_mood(m) for m in AudioMood if m is not audio.mood),
            )
        )
    for tag in audio.ambience:
        groups.append(
            StylePrompts(
                what=f"ambience {tag.value}",
                declared=_prompt_ambience(tag),
                alternatives=tuple(
                    _prompt_ambience(t) for t in AmbienceTag if t not in audio.ambience
                ),
            )
        )
    groups.append(
        StylePrompts(
            what=f"recording {audio.recording.value}",
            declared=_prompt_recording(audio.recording),
            alternatives=tuple(
                _prompt_recording(k) for k in RecordingKind if k is not audio.recording
            ),
        )
    )
    return tuple(groups)


@dataclass(frozen=True)
class _StyleResult:
    what: str
    beaten: float
    best: str


def _style(
    model: AudioTextModel, samples: Samples, audio: Audio, th: AudioThresholds
) -> list[_StyleResult]:
    groups = style_prompts(audio)
    texts = sorted({text for g in groups for text in (g.declared, *g.alternatives)})
    if len(texts) > th.style_max_prompts:
        raise ValueError(f"{len(texts)} style prompts, over the {th.style_max_prompts} limit")
    similarity = dict(
        zip(
            texts,
            (model.embed_texts(texts).astype(np.float64) @ model.embed_audio(samples)).tolist(),
            strict=True,
        )
    )
    results: list[_StyleResult] = []
    for group in groups:
        mine = similarity[group.declared]
        others = [similarity[text] for text in group.alternatives]
        if max(mine, *others) - min(mine, *others) < th.style_min_spread:
            continue  # the model cannot tell this vocabulary apart
        tie = 1e-6
        beaten = sum(
            1.0 if o < mine - tie else 0.5 if abs(o - mine) <= tie else 0.0 for o in others
        )
        best = max((group.declared, *group.alternatives), key=lambda text: similarity[text])
        results.append(_StyleResult(group.what, beaten / len(others), best))
    return results


def _reason(code: str, message: str) -> Reason:
    return Reason(code=code, message=message[:500])


def score_audio(
    measures: AudioMeasures | None,
    audio: Audio | None,
    *,
    model: AudioTextModel | None = None,
    track: AudioTrack | None = None,
    thresholds: AudioThresholds | None = None,
) -> ComponentScore:
    """How usable the sound is and how well it fits the annotation's ``audio`` section.

    ``measures`` is ``None`` when the clip has no audio track. With ``model`` (which
    needs ``track``, mono at 16 kHz) the declared style is checked too; without, the
    score rests on the technical measures and says ``audio.style_not_checked``.
    """
    th = thresholds or AudioThresholds()
    measured: dict[str, float | int | str | bool | None] = {"has_track": measures is not None}
    if measures is not None:
        measured |= {
            "duration_s": round(measures.duration_s, 3),
            "silence_share": round(measures.silence_share, 4),
            "clipping_share": round(measures.clipping_share, 6),
            "integrated_lufs": _rounded(measures.integrated_lufs),
            "loudness_range_lu": _rounded(measures.loudness_range_lu),
            "peak_dbfs": _rounded(measures.peak_dbfs),
        }
    silent = measures is None or measures.silence_share >= th.silent_share
    if silent and audio is None:
        what = "no audio track" if measures is None else "a silent audio track"
        return ComponentScore(
            value=None,
            reasons=(
                _reason(
                    "audio.absent",
                    f"the clip has {what} and the annotation declares no sound: nothing to score",
                ),
            ),
            measured=measured,
        )
    if silent:
        message = (
            "the annotation describes sound but the clip has no audio track"
            if measures is None
            else f"the annotation describes sound but the track is silent "
            f"({measures.silence_share * 100:.0f}% of it below {th.silence_dbfs:g} dBFS)"
        )
        return ComponentScore(
            value=th.silent_value, reasons=(_reason("audio.silent", message),), measured=measured
        )
    assert measures is not None
    value = 1.0
    reasons: list[Reason] = []
    if measures.clipping_share > th.clipping_share_max:
        value -= th.clipping_penalty
        reasons.append(
            _reason(
                "audio.clipping",
                f"{measures.clipping_share * 100:.2f}% of samples are clipped (at full scale), "
                f"over the {th.clipping_share_max * 100:g}% limit",
            )
        )
    if measures.integrated_lufs is not None and measures.integrated_lufs < th.too_quiet_lufs:
        value -= th.quiet_penalty
        reasons.append(
            _reason(
                "audio.too_quiet",
                f"integrated loudness {measures.integrated_lufs:.1f} LUFS is below "
                f"{th.too_quiet_lufs:g} LUFS",
            )
        )
    if (
        measures.loudness_range_lu is not None
        and measures.loudness_range_lu > th.max_loudness_range_lu
    ):
        value -= th.range_penalty
        reasons.append(
            _reason(
                "audio.loudness_range",
                f"loudness range {measures.loudness_range_lu:.1f} LU is over "
                f"{th.max_loudness_range_lu:g} LU",
            )
        )
    value = max(value, 0.0)
    if audio is None:
        reasons.append(
            _reason(
                "audio.undeclared",
                "the clip has sound but the annotation has no audio section describing it",
            )
        )
        return ComponentScore(
            value=min(value, th.undeclared_sound_value), reasons=tuple(reasons), measured=measured
        )
    if model is None:
        reasons.append(
            _reason("audio.style_not_checked", "no audio-text model configured: style not checked")
        )
        return ComponentScore(value=value, reasons=tuple(reasons), measured=measured)
    if track is None:
        raise ValueError("checking the style with a model needs the track")
    if track.sample_rate != AUDIO_RATE:
        raise ValueError(
            f"the audio-text model takes {AUDIO_RATE} Hz sound, not {track.sample_rate}"
        )
    results = _style(model, track.samples, audio, th)
    measured["style_model"] = model.identity.model
    if not results:
        reasons.append(
            _reason(
                "audio.style_not_checked",
                f"{model.identity.model} cannot tell the declared audio terms from others",
            )
        )
        return ComponentScore(value=value, reasons=tuple(reasons), measured=measured)
    rank = sum(r.beaten for r in results) / len(results)
    # Ranking at chance (half the alternatives beaten) earns nothing: only how far the
    # declared terms rank above chance says the sound fits them.
    style = max(0.0, (rank - 0.5) / 0.5)
    measured["style_rank"] = round(rank, 4)
    measured["style_score"] = round(style, 4)
    worst = min(results, key=lambda r: r.beaten)
    detail = "; ".join(f"{r.what} beats {r.beaten * 100:.0f}% of alternatives" for r in results)
    if style >= th.style_match_min:
        reasons.append(_reason("audio.style_match", f"the sound fits the declared style: {detail}"))
    else:
        reasons.append(
            _reason(
                "audio.style_mismatch",
                f"the sound does not fit the declared style: {detail}; for {worst.what} it "
                f"sounds most like '{worst.best}'",
            )
        )
    value *= 1.0 - th.style_weight + th.style_weight * style
    return ComponentScore(
        value=min(max(value, 0.0), 1.0), reasons=tuple(reasons), measured=measured
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
