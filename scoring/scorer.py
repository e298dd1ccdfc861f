"""The scorer: one clip file and its annotation in, one :class:`ClipScores` out, in stages.

The three stages of ``docs/decisions/0004-scorer-stages.md``, so a pipeline can run
decoding in worker processes and inference batched across clips:

1. :meth:`Scorer.analyse` (or the module-level :func:`analyse_clip`, which a worker
   process can run with only picklable arguments): sample K frames and the sound
   (:func:`scoring.frames.sample_clip`), estimate the camera motion, run the junk
   detectors, measure the sound, and resize and crop the frames into the model's
   pictures.
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

Frames travel from stage 1 to stage 2 as the model's pictures in ``uint8`` (resized and
cropped by the model's own transform: a ViT-B-32 clip of 8 frames is 1.2 MB) and are
normalised in stage 2, a whole batch at once (:meth:`FramePreprocessor.normalise`, a
table lookup: about 0.25 ms of CPU per ViT-B-32 frame, against 0.8 ms saved per frame in
the worker, where the same arithmetic ran one picture at a time), and half the bytes are
pickled. The model sees ``float16`` input, as it always has: the normalised values lie
within about [-2, 2.2], where float16 steps are at most 0.002, finer than one step of
the 8-bit input (1/255 / 0.26 = 0.015), so nothing the model could see is lost, and
these are exactly the tensors ``ModelIdentity.preprocessing`` names.
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
    :meth:`ScoringModel.preprocess_frames`, in two halves:

    - calling it (stage 1, in a worker) runs the transform's picture steps -- resize,
      crop or pad, colour mode, all PIL -- and returns the pixels as ``uint8``;
    - :meth:`normalise` (stage 2, next to the model) runs the rest -- torchvision's
      ``ToTensor`` and ``Normalize`` -- on a whole batch at once, with the same
      operations in the same order, so every value is bit for bit what the transform
      gives one picture at a time, then rounds it to ``float16`` (module docstring).

    The torchvision transform itself is built lazily in whichever process calls it
    (after the torchvision shim, which :mod:`scoring._openclip` installs).
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
    def _picture_steps(self) -> Callable[[Image.Image], Image.Image]:
        """The transform up to (without) ``ToTensor`` and ``Normalize``."""
        # torchvision's classes, as open_clip's transform module imports them.
        from open_clip.transform import (
            Compose,
            Normalize,
            PreprocessCfg,
            ToTensor,
            image_transform_v2,
        )

        cfg = PreprocessCfg(
            size=self.size,
            mode=self.mode,
            mean=self.mean,
            std=self.std,
            interpolation=self.interpolation,
            resize_mode=self.resize_mode,
            fill_color=self.fill_color,
        )
        transform = image_transform_v2(cfg, is_train=False)
        steps = list(getattr(transform, "transforms", ()))
        # normalise() reproduces exactly these two steps; any other eval transform
        # (a future open_clip) must not be split silently.
        if (
            len(steps) < 3
            or not isinstance(steps[-2], ToTensor)
            or not isinstance(steps[-1], Normalize)
            or tuple(steps[-1].mean) != self.mean
            or tuple(steps[-1].std) != self.std
        ):
            raise RuntimeError(f"open_clip's eval transform changed shape: {transform!r}")
        picture_steps: Callable[[Image.Image], Image.Image] = Compose(steps[:-2])
        return picture_steps

    @cached_property
    def _table(self) -> npt.NDArray[np.float16]:
        """``3 x 256``: what ``ToTensor``, ``Normalize`` and the rounding to ``float16``
        make of each value of each channel, computed by those very operations."""
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        values = torch.arange(256, dtype=torch.uint8).expand(len(self.mean), 1, 256)
        table = values.to(torch.float32).div(255).sub_(mean).div_(std).to(torch.float16)
        return np.ascontiguousarray(table.view(-1, 256).numpy())

    def __getstate__(self) -> dict[str, Any]:
        # Built objects stay behind: the receiving process rebuilds them.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __call__(self, frames: Sequence[Frame]) -> npt.NDArray[np.uint8]:
        """RGB ``uint8`` frames -> the model's pictures (``K x H x W x 3``, ``uint8``),
        resized and cropped, not yet normalised."""
        if not frames:
            raise ValueError("no frames to preprocess")
        steps = self._picture_steps
        pictures = [np.asarray(steps(Image.fromarray(f, "RGB")), np.uint8) for f in frames]
        if any(p.ndim != 3 or p.shape[2] != 3 for p in pictures):
            raise RuntimeError("the model's transform did not give RGB pictures")
        return np.stack(pictures)

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pictures from :meth:`__call__` (``N x H x W x 3`` ``uint8``, any device) -> the
        model's input batch (``N x 3 x H x W``, ``float16``, on that device).

        Each output value depends on one channel value alone, so it is looked up in a
        table of what torchvision's ``ToTensor`` then ``Normalize`` (to ``float32``,
        divide by 255, subtract the mean, divide by the standard deviation) and the
        rounding to ``float16`` give for it: bit for bit the per-picture result, at a
        fifth of the arithmetic's cost on a CPU.
        """
        if pixels.dtype != torch.uint8 or pixels.ndim != 4 or pixels.shape[3] != len(self.mean):
            raise ValueError(
                f"expected N x H x W x {len(self.mean)} uint8 pictures, got {pixels.dtype} "
                f"{tuple(pixels.shape)}"
            )
        table = self._table
        count, height, width, channels = pixels.shape
        if pixels.device.type == "cpu":
            source = pixels.numpy()
            out = np.empty((count, channels, height, width), np.float16)
            for channel in range(channels):
                np.take(table[channel], source[..., channel], out=out[:, channel])
            return torch.from_numpy(out)
        lookup = torch.from_numpy(table).to(pixels.device).view(-1)
        offsets = torch.arange(0, 256 * channels, 256, device=pixels.device).view(1, -1, 1, 1)
        return lookup[pixels.permute(0, 3, 1, 2).long() + offsets]


@dataclass(frozen=True)
class Analysis:
    """What stage 1 learnt about a clip: everything but the model's view of it.

    Picklable and free of model tensors. ``error_code`` set means the clip could not be
    sampled; then only ``source`` and ``error_message`` are meaningful.
    """

    #: The file analysed (for logs; the verdict never depends on it).
    source: str
    #: The model's pictures: ``K x H x W x 3`` ``uint8``, resized and cropped, not yet
    #: normalised (:meth:`FramePreprocessor.normalise` does that; empty when failed).
    frames: npt.NDArray[np.uint8] = field(
        default_factory=lambda: np.zeros((0, 1, 1, 3), np.uint8), repr=False
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
    preprocess: FramePreprocessor | Callable[[Sequence[Frame]], npt.NDArray[np.uint8]],
    frame_count: int = DEFAULT_FRAME_COUNT,
    junk_thresholds: JunkThresholds,
    camera_thresholds: CameraThresholds,
    audio_thresholds: AudioThresholds,
    lighting: LightingSetup | None = None,
    audio_excerpt_s: float | None = None,
    limits: SamplingLimits | None = None,
    decode_threads: int | None = None,
) -> Analysis:
    """Stage 1 for one clip file, as a plain function for worker processes.

    ``lighting`` is the declared setup, if known, so the exposure detector spares a
    deliberately dark or bright look; ``audio_excerpt_s`` keeps that many seconds of
    sound (at most :data:`MAX_AUDIO_EXCERPT_S`) for an audio-text model;
    ``decode_threads`` bounds the video decoder's threads (``None``: FFmpeg's choice). Any
    :class:`scoring.errors.MediaError` (undecodable, no video stream, over a limit)
    becomes an :class:`Analysis` with its code; a missing file still raises
    :class:`FileNotFoundError` (that is the caller's fault, not the clip's).
    """
    source = str(path)
    try:
        sample = sample_clip(
            path, count=frame_count, limits=limits or SamplingLimits(), threads=decode_threads
        )
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
        pixels = torch.from_numpy(
            np.concatenate([a.frames for a, n in zip(analyses, counts, strict=True) if n])
        )
        # Normalised on the model's device, one pass at a time: a quarter of the bytes
        # cross to a GPU, and the float copy never exceeds one pass.
        device = self.model.plan.device
        passes = [
            self.model.encode_images(
                self.preprocess.normalise(pixels[start : start + MAX_EMBED_FRAMES].to(device))
            )
            for start in range(0, pixels.shape[0], MAX_EMBED_FRAMES)
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
