"""The scorer: one clip file and its annotation in, one :class:`ClipScores` out, in stages.

The three stages of ``docs/decisions/0004-scorer-stages.md``, so a pipeline can run
decoding in worker processes and inference batched across clips:

1. :meth:`Scorer.analyse` (or the module-level :func:`analyse_clip`, which a worker
   process can run with only picklable arguments): sample K frames and the sound
   (:func:`scoring.frames.sample_clip`), estimate the camera motion, run the junk
   detectors, measure the sound, and preprocess the frames into the model's input.
   Returns an :class:`Analysis` -- plain numpy and pydantic data, cheap to pickle, no
   model tensors. Bad media never raises: the :class:`Analysis` carries the error's code.
2. :meth:`Scorer.embed`: one batched forward pass of the image tower over the frames of
   every clip given; one ``K x D`` tensor of normalised frame embeddings per clip.
3. :meth:`Scorer.judge`: scene alignment, lighting, camera and audio scores, the junk
   flags plus the near-duplicate check, and the overall verdict, as :class:`ClipScores`.

The overall quality is :meth:`scoring.profiles.ModelProfile.quality`: the weighted mean
of the components that have a value, with the weights of unscorable ones (no sound, a
lighting setup the model does not know) shared out over the rest, capped below the pass
threshold when any component is below its own threshold (a mislabelled scene is not
bought off by good lighting). A clip passes when its quality is at least the profile's
``pass_threshold`` and no junk flag fired. The
verdict's own reasons are, in order: the flags' reasons, the reasons of every component
below its profile threshold, and one ``quality.passed`` / ``quality.below_threshold``
sentence with the numbers.

Preprocessed frames travel as ``float16``: the normalised values lie within about
[-2, 2.2], where float16 steps are at most 0.002, finer than one step of the 8-bit
input (1/255 / 0.26 = 0.015), so nothing the model could see is lost, at half the bytes
of float32 (a ViT-B-32 clip of 8 frames: 2.4 MB).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from scoring import _openclip
from scoring.audio import (
    AudioMeasures,
    AudioTextModel,
    AudioThresholds,
    measure_audio,
    score_audio,
)
from scoring.camera import CameraThresholds, MotionEstimate, estimate_motion, score_camera
from scoring.dedup import DuplicateIndex, check_duplicate, encode_embedding
from scoring.errors import MediaError
from scoring.frames import DEFAULT_FRAME_COUNT, AudioTrack, SamplingLimits, sample_clip
from scoring.junk import JunkThresholds, detect_junk
from scoring.lighting import score_lighting
from scoring.models import ScoringModel
from scoring.profiles import ModelProfile
from scoring.report import (
    MAX_REASONS,
    ClipScores,
    Component,
    ComponentScore,
    FlagResult,
    Outcome,
    Reason,
)
from scoring.scene import clip_embedding, score_scene
from shotbank.annotation import Annotation
from shotbank.annotation.vocabulary import LightingSetup

__all__ = [
    "MAX_AUDIO_EXCERPT_S",
    "MAX_EMBED_FRAMES",
    "Analysis",
    "FramePreprocessor",
    "Scorer",
    "analyse_clip",
]

#: Longest stretch of sound kept in an :class:`Analysis` for an audio-text model.
MAX_AUDIO_EXCERPT_S: Final = 30.0
#: Most frames :meth:`Scorer.embed` sends through the model in one forward pass; a
#: larger request is cut into passes of this size (memory stays bounded).
MAX_EMBED_FRAMES: Final = 4096

Frame = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class FramePreprocessor:
    """A model's eval transform as plain data, so it pickles into worker processes.

    Built from open_clip's preprocess config of the model (what
    :attr:`ModelIdentity.preprocessing` digests), it gives the same tensors as
    :meth:`ScoringModel.preprocess_frames`; the torchvision transform itself is built
    lazily in whichever process calls it (after the torchvision shim, which
    :mod:`scoring._openclip` installs).
    """

    size: int | tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    resize_mode: str
    mode: str = "RGB"
    fill_color: int = 0

    @classmethod
    def from_model(cls, model: ScoringModel) -> FramePreprocessor:
        """The preprocessor of ``model``."""
        cfg = _openclip.open_clip.get_model_preprocess_cfg(model.model)
        size = cfg["size"]
        return cls(
            size=int(size) if isinstance(size, int) else (int(size[0]), int(size[1])),
            mean=tuple(float(v) for v in cfg["mean"]),
            std=tuple(float(v) for v in cfg["std"]),
            interpolation=str(cfg["interpolation"]),
            resize_mode=str(cfg["resize_mode"]),
            mode=str(cfg.get("mode", "RGB")),
            fill_color=int(cfg.get("fill_color", 0)),
        )

    @cached_property
    def _transform(self) -> Callable[[Image.Image], torch.Tensor]:
        from open_clip.transform import PreprocessCfg, image_transform_v2

        cfg = PreprocessCfg(
            size=self.size,
            mode=self.mode,
            mean=self.mean,
            std=self.std,
            interpolation=self.interpolation,
            resize_mode=self.resize_mode,
            fill_color=self.fill_color,
        )
        transform: Callable[[Image.Image], torch.Tensor] = image_transform_v2(cfg, is_train=False)
        return transform

    def __getstate__(self) -> dict[str, Any]:
        # The built transform stays behind: the receiving process rebuilds it.
        return {k: v for k, v in self.__dict__.items() if k != "_transform"}

    def __call__(self, frames: Sequence[Frame]) -> npt.NDArray[np.float16]:
        """RGB ``uint8`` frames -> the model's input batch (``K x 3 x H x W``, float16)."""
        if not frames:
            raise ValueError("no frames to preprocess")
        batch = torch.stack([self._transform(Image.fromarray(f, "RGB")) for f in frames])
        return batch.numpy().astype(np.float16)


@dataclass(frozen=True)
class Analysis:
    """What stage 1 learnt about a clip: everything but the model's view of it.

    Picklable and free of model tensors. ``error_code`` set means the clip could not be
    sampled; then only ``source`` and ``error_message`` are meaningful.
    """

    #: The file analysed (for logs; the verdict never depends on it).
    source: str
    #: The model's input: ``K x 3 x H x W`` float16 (empty when failed).
    frames: npt.NDArray[np.float16] = field(
        default_factory=lambda: np.zeros((0, 3, 1, 1), np.float16), repr=False
    )
    #: Presentation time of each sampled frame, seconds from the stream's start.
    timestamps: tuple[float, ...] = ()
    #: Stream duration in seconds.
    duration: float = 0.0
    #: Display size of the source, before any scaling.
    width: int = 0
    height: int = 0
    #: Global camera motion between the sampled frames (None when failed).
    motion: MotionEstimate | None = None
    #: Junk detectors that fired (all but ``duplicate``, which needs the embedding).
    junk: tuple[FlagResult, ...] = ()
    #: Sound measures; None for a clip without sound.
    audio: AudioMeasures | None = None
    #: The first seconds of sound, kept only when an audio-text model will judge it.
    audio_excerpt: AudioTrack | None = field(default=None, repr=False)
    #: The lighting setup the junk detectors were told (exposure spares low/high-key).
    lighting: LightingSetup | None = None
    #: Stable code of the :class:`scoring.errors.MediaError` that stopped sampling.
    error_code: str | None = None
    error_message: str | None = None

    @property
    def failed(self) -> bool:
        """Whether the clip could not be sampled (then the verdict is ``failed``)."""
        return self.error_code is not None


def _excerpt(track: AudioTrack, seconds: float) -> AudioTrack:
    keep = int(min(seconds, MAX_AUDIO_EXCERPT_S) * track.sample_rate)
    return AudioTrack(
        samples=track.samples[:keep].copy(),
        sample_rate=track.sample_rate,
        source_rate=track.source_rate,
        source_channels=track.source_channels,
    )


def analyse_clip(
    path: str | Path,
    *,
    preprocess: FramePreprocessor | Callable[[Sequence[Frame]], npt.NDArray[np.float16]],
    frame_count: int = DEFAULT_FRAME_COUNT,
    junk_thresholds: JunkThresholds,
    camera_thresholds: CameraThresholds,
    audio_thresholds: AudioThresholds,
    lighting: LightingSetup | None = None,
    audio_excerpt_s: float | None = None,
    limits: SamplingLimits | None = None,
) -> Analysis:
    """Stage 1 for one clip file, as a plain function for worker processes.

    ``lighting`` is the declared setup, if known, so the exposure detector spares a
    deliberately dark or bright look; ``audio_excerpt_s`` keeps that many seconds of
    sound (at most :data:`MAX_AUDIO_EXCERPT_S`) for an audio-text model. Any
    :class:`scoring.errors.MediaError` (undecodable, no video stream, over a limit)
    becomes an :class:`Analysis` with its code; a missing file still raises
    :class:`FileNotFoundError` (that is the caller's fault, not the clip's).
    """
    source = str(path)
    try:
        sample = sample_clip(path, count=frame_count, limits=limits or SamplingLimits())
        frames, track = sample.frames, sample.audio
        return Analysis(
            source=source,
            frames=preprocess(frames.frames),
            timestamps=frames.timestamps,
            duration=frames.duration,
            width=frames.width,
            height=frames.height,
            motion=estimate_motion(frames, thresholds=camera_thresholds),
            junk=detect_junk(
                frames, duration_s=frames.duration, lighting=lighting, thresholds=junk_thresholds
            ),
            audio=(
                measure_audio(track, thresholds=audio_thresholds) if track is not None else None
            ),
            audio_excerpt=(
                _excerpt(track, audio_excerpt_s)
                if track is not None and audio_excerpt_s is not None
                else None
            ),
            lighting=lighting,
        )
    except MediaError as exc:
        # The message goes into a signed report: the validator's own paths stay out of it.
        message = str(exc).replace(source, "the clip")[:500]
        return Analysis(source=source, error_code=exc.code, error_message=message)


def _failed(analysis: Analysis, profile: ModelProfile, model: ScoringModel) -> ClipScores:
    code = analysis.error_code or MediaError.code
    return ClipScores(
        outcome=Outcome.FAILED,
        pass_threshold=profile.pass_threshold,
        passed=False,
        reasons=(
            Reason(code=code, message=analysis.error_message or "the clip could not be decoded"),
        ),
        model=model.identity,
    )


class Scorer:
    """Scores clips against their annotations with one model and its profile.

    ``audio_model`` (optional) judges whether the sound fits the declared audio style;
    ``duplicates`` (optional) is the index of accepted clips' embeddings the
    near-duplicate check searches. The scorer never adds to the index: the node does,
    for clips the network accepted.
    """

    def __init__(
        self,
        model: ScoringModel,
        profile: ModelProfile,
        *,
        audio_model: AudioTextModel | None = None,
        duplicates: DuplicateIndex | None = None,
        frame_count: int = DEFAULT_FRAME_COUNT,
        limits: SamplingLimits | None = None,
        audio_excerpt_s: float = MAX_AUDIO_EXCERPT_S,
    ) -> None:
        if (model.identity.model, model.identity.tag) != profile.key:
            raise ValueError(
                f"profile {profile.model}/{profile.tag} is not the profile of model "
                f"{model.identity.model}/{model.identity.tag}"
            )
        if duplicates is not None and duplicates.dim != profile.embedding_dim:
            raise ValueError(
                f"the duplicate index holds {duplicates.dim}-d vectors, the model makes "
                f"{profile.embedding_dim}-d ones"
            )
        if not 1 <= frame_count <= (limits or SamplingLimits()).max_frames:
            raise ValueError(f"frame_count {frame_count} is outside the sampling limits")
        self.model = model
        self.profile = profile
        self.audio_model = audio_model
        self.duplicates = duplicates
        self.frame_count = frame_count
        self.limits = limits or SamplingLimits()
        self.audio_excerpt_s = audio_excerpt_s
        #: The picklable stage-1 preprocessing (hand it to worker processes).
        self.preprocess = FramePreprocessor.from_model(model)

    def analyse(self, path: str | Path, *, lighting: LightingSetup | None = None) -> Analysis:
        """Stage 1 (:func:`analyse_clip` with this scorer's settings); never raises for
        bad media."""
        return analyse_clip(
            path,
            preprocess=self.preprocess,
            frame_count=self.frame_count,
            junk_thresholds=self.profile.junk,
            camera_thresholds=self.profile.camera,
            audio_thresholds=self.profile.audio,
            lighting=lighting,
            audio_excerpt_s=self.audio_excerpt_s if self.audio_model is not None else None,
            limits=self.limits,
        )

    def embed(self, analyses: Sequence[Analysis]) -> list[torch.Tensor]:
        """Stage 2: the normalised frame embeddings (``K x D`` float32, CPU) of every
        analysis, from one batched forward pass over all their frames (cut into passes
        of :data:`MAX_EMBED_FRAMES`). A failed analysis gets a ``0 x D`` tensor."""
        counts = [0 if a.failed else int(a.frames.shape[0]) for a in analyses]
        dim = self.profile.embedding_dim
        if sum(counts) == 0:
            return [torch.zeros(0, dim) for _ in analyses]
        batch = torch.from_numpy(
            np.concatenate([a.frames for a, n in zip(analyses, counts, strict=True) if n])
        )
        passes = [
            self.model.encode_images(batch[start : start + MAX_EMBED_FRAMES])
            for start in range(0, batch.shape[0], MAX_EMBED_FRAMES)
        ]
        embeddings = torch.cat(passes) if len(passes) > 1 else passes[0]
        return list(torch.split(embeddings, counts))

    def judge(
        self,
        analysis: Analysis,
        frame_embeddings: torch.Tensor,
        annotation: Annotation,
        *,
        clip_id: str | None = None,
    ) -> ClipScores:
        """Stage 3: the verdict on one clip (module docstring). ``clip_id`` keeps the
        clip itself out of the near-duplicate search when it is already indexed."""
        profile = self.profile
        if analysis.failed:
            return _failed(analysis, profile, self.model)
        if frame_embeddings.ndim != 2 or frame_embeddings.shape != (
            analysis.frames.shape[0],
            profile.embedding_dim,
        ):
            raise ValueError(
                f"expected {analysis.frames.shape[0]} x {profile.embedding_dim} frame "
                f"embeddings, got {tuple(frame_embeddings.shape)}"
            )
        assert analysis.motion is not None  # set for every analysis that did not fail
        scores: dict[Component, ComponentScore] = {
            Component.SCENE: score_scene(
                self.model, frame_embeddings, annotation.scene.description, profile=profile
            ),
            Component.LIGHTING: score_lighting(
                self.model, frame_embeddings, annotation.lighting.setup, profile=profile
            ),
            Component.CAMERA: score_camera(
                analysis.motion, annotation.camera, thresholds=profile.camera
            ),
            Component.AUDIO: score_audio(
                analysis.audio,
                annotation.audio,
                model=self.audio_model,
                track=analysis.audio_excerpt,
                thresholds=profile.audio,
            ),
        }
        clip_vector = clip_embedding(frame_embeddings).numpy()
        flags = list(analysis.junk)
        if self.duplicates is not None:
            duplicate = check_duplicate(
                self.duplicates,
                clip_vector,
                threshold=profile.duplicate_cosine,
                exclude=clip_id,
            )
            if duplicate is not None:
                flags.append(duplicate)
        quality = profile.quality({c: s.value for c, s in scores.items()})
        reasons = [flag.reason for flag in flags]
        for component, score in scores.items():
            below = (
                score.value is not None and score.value < profile.component_thresholds[component]
            )
            if below:
                reasons.extend(score.reasons)
        if quality is None:
            quality = 0.0
            reasons.append(
                Reason(
                    code="quality.not_scorable",
                    message="no component could be scored with this model: quality 0",
                )
            )
        passed = quality >= profile.pass_threshold and not flags
        verdict = "at or above" if quality >= profile.pass_threshold else "below"
        reasons.append(
            Reason(
                code="quality.passed"
                if quality >= profile.pass_threshold
                else "quality.below_threshold",
                message=(
                    f"overall quality {quality:.2f} is {verdict} the pass threshold "
                    f"{profile.pass_threshold:.2f}"
                    + (f"; {len(flags)} junk flag(s) raised" if flags else "")
                ),
            )
        )
        if len(reasons) > MAX_REASONS:
            # Keep the verdict sentence; drop the least important lifted reasons.
            reasons = [*reasons[: MAX_REASONS - 1], reasons[-1]]
        return ClipScores(
            outcome=Outcome.SCORED,
            scores=scores,
            flags=tuple(flags),
            quality=quality,
            pass_threshold=profile.pass_threshold,
            passed=passed,
            reasons=tuple(reasons),
            model=self.model.identity,
            embedding=encode_embedding(clip_vector),
        )

    def score(
        self, path: str | Path, annotation: Annotation, *, clip_id: str | None = None
    ) -> ClipScores:
        """All three stages for one clip; never raises for bad media."""
        analysis = self.analyse(path, lighting=annotation.lighting.setup)
        (embeddings,) = self.embed([analysis])
        return self.judge(analysis, embeddings, annotation, clip_id=clip_id)
