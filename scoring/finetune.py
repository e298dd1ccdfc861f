"""Fine-tuning the CLIP scoring model on a dataset version: :func:`finetune`.

A trainer's run, fed from the marketplace: a version directory (``index.json`` and its
WebDataset shards, as ``version.download`` leaves it) is streamed through the SDK's
:class:`shotbank.datasets.stream.ShardStream`, and the model of :func:`scoring.models.load_model`
is trained contrastively, frames against text. What the run did is a :class:`RunRecord`
(``run.json``): the dataset version hash, the base model and its weights SHA-256, the
hyperparameters, the metrics and the output weights' SHA-256 -- the record
:func:`register_run` registers with the backend (``POST /api/v1/models``), and what model
lineage is built from. The record's pydantic models live in the SDK's light
:mod:`shotbank.runs` (the backend validates registrations with them) and are re-exported
here.

The method
    * Split: a sample is held out when ``sha256("<seed>:<key>")``, read as a fraction of
      2^256, is below ``held_out_fraction``; the rest is the training split. It depends
      only on the key and the seed, so the same version and seed always give the same
      split, and a sample's side never depends on what else is in the version.
    * Clip embedding: the mean of the model's embeddings of ``frames`` frames taken at the
      middle of equal spans of the clip, L2-normalised.
    * Text: by default (``text="prompt"``) a short prompt built from the annotation,
      ``"<scene description>, <lighting setup> lighting, <camera movement> shot"`` --
      the distinguishing words first, because a CLIP text encoder sees only its context
      length of tokens (20 for the in-project model). ``text="conditioning"`` uses the
      SDK's conditioning string (:func:`~shotbank.datasets.stream.conditioning_text`).
    * Loss: symmetric InfoNCE over the batch with the model's own (learned, clamped to
      100) logit scale; samples of the batch with identical text are all positives of
      each other (targets spread evenly over them), as in the in-project model's training.
    * AdamW (no weight decay on gains, biases and embeddings), linear warm-up then cosine
      decay of the learning rate, gradient-norm clipping, a fixed seed.
    * Evaluation: zero-shot retrieval on the held-out split, text->clip and clip->text
      recall@1 and @5 (a retrieved item counts when its text equals the query's, so
      duplicate texts are not counted as misses), at step 0 (the base model), every
      ``eval_every`` steps and at the end.

Checkpoints and resume
    Every ``checkpoint_every`` steps, ``<out>/checkpoints/step-NNNNNNNN.pt`` holds the model,
    the optimiser, the stream's :meth:`~shotbank.datasets.stream.ShardStream.state_dict`,
    the step, the RNG states and the metrics so far. It is written to a temporary file,
    flushed and renamed, so a checkpoint either exists whole or not at all; on resume a
    checkpoint that does not load (damaged, truncated, another run's) is skipped with a
    warning and the one before it is used. With ``resume=True`` the run continues from the
    newest good checkpoint and, on a deterministic device (CPU, ``deterministic=True``),
    ends with the same weights, byte for byte, as an uninterrupted run.

Errors: :class:`FinetuneError` (a :class:`~scoring.errors.ScoringError`) for a config or
a version that makes no run; model errors are the :class:`~scoring.errors.ModelError`
family of :func:`~scoring.models.load_model`; a clip that cannot be read raises the SDK's
:class:`~shotbank.datasets.stream.SampleReadError`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from safetensors.torch import save_file

from scoring.errors import ScoringError
from scoring.models import TEST_MODEL, ScoringModel, load_model
from scoring.pretrained import sha256_file
from shotbank.datasets.format import INDEX_NAME, read_index
from shotbank.datasets.stream import LocalShards, ShardStream, collate, conditioning_text
from shotbank.runs import (
    MAX_STEPS,
    RECALL_AT,
    RUN_FORMAT,
    BaseModelInfo,
    DatasetInfo,
    EvalMetrics,
    OutputWeights,
    RunRecord,
)

if TYPE_CHECKING:
    from shotbank.client import ShotbankClient
    from shotbank.client.lineage import Model

__all__ = [
    "MAX_STEPS",
    "RECALL_AT",
    "RUN_FORMAT",
    "RUN_RECORD_NAME",
    "WEIGHTS_NAME",
    "BaseModelInfo",
    "DatasetInfo",
    "EvalMetrics",
    "FinetuneConfig",
    "FinetuneError",
    "OutputWeights",
    "Progress",
    "RunRecord",
    "RunResult",
    "finetune",
    "held_out",
    "recall_at_k",
    "register_run",
    "text_prompt",
]

_log = logging.getLogger(__name__)

#: The run record's file name in the output directory.
RUN_RECORD_NAME: Final = "run.json"
#: The fine-tuned weights' file name in the output directory.
WEIGHTS_NAME: Final = "model.safetensors"
_CHECKPOINT_DIR: Final = "checkpoints"
_CHECKPOINT = re.compile(r"^step-(\d{8})\.pt$")
_CHECKPOINT_FORMAT: Final = "shotbank-finetune-checkpoint/1"
#: Checkpoints kept on disk (older ones are removed once a newer one is written).
KEEP_CHECKPOINTS: Final = 2
#: Largest batch.
MAX_BATCH: Final = 4096
#: Most held-out samples evaluated (the similarity matrices are held-out x held-out).
MAX_HELD_OUT: Final = 4096


class FinetuneError(ScoringError, ValueError):
    """A configuration or dataset version that makes no fine-tuning run."""

    code: ClassVar[str] = "scoring.finetune"


TextMode = Literal["prompt", "conditioning"]


class FinetuneConfig(BaseModel):
    """Everything a run depends on; the hyperparameters among it go into the run record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shards: Path
    """The version directory: ``index.json`` beside its shards."""
    out: Path
    """Output directory: checkpoints, ``model.safetensors``, ``run.json``."""
    base_model: str = Field(default=TEST_MODEL[0], min_length=1, max_length=100)
    """open_clip architecture name."""
    pretrained: str = Field(default=TEST_MODEL[1], min_length=1, max_length=4096)
    """Registered pretrained tag or a local weights file (verified like the scorer's)."""
    weights_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """Pin for a local weights file the registry does not know."""
    steps: int = Field(default=100, ge=1, le=MAX_STEPS)
    batch_size: int = Field(default=32, ge=2, le=MAX_BATCH)
    lr: float = Field(default=1e-4, gt=0, le=1.0)
    weight_decay: float = Field(default=0.05, ge=0, le=10.0)
    warmup_steps: int = Field(default=0, ge=0, le=MAX_STEPS)
    grad_clip: float = Field(default=1.0, gt=0, le=1e6)
    seed: int = Field(default=0, ge=0, lt=2**63)
    held_out_fraction: float = Field(default=0.25, gt=0, lt=1)
    frames: int = Field(default=4, ge=1, le=64)
    """Frames per clip (their embeddings are averaged)."""
    frame_size: int = Field(default=0, ge=0, le=4096)
    """Frames are scaled to this square size when decoded (0: the model's input size)."""
    text: TextMode = "prompt"
    eval_every: int = Field(default=0, ge=0, le=MAX_STEPS)
    """Evaluate every N steps (0: only at the start and the end)."""
    checkpoint_every: int = Field(default=0, ge=0, le=MAX_STEPS)
    """Checkpoint every N steps (0: never)."""
    resume: bool = False
    """Continue from the newest good checkpoint in ``out`` (start afresh if none)."""
    device: str | None = Field(default=None, max_length=16)
    """``cpu``, ``cuda``, ``cuda:N``; None picks CUDA when there is one."""
    deterministic: bool = True
    """Ask torch for deterministic kernels (bit-exact resume on the same machine)."""
    threads: int | None = Field(default=None, ge=1, le=1024)
    """CPU threads torch uses during the run (None: leave torch's setting)."""

    @model_validator(mode="after")
    def _consistent(self) -> FinetuneConfig:
        if self.warmup_steps > self.steps:
            raise ValueError("warmup_steps must not exceed steps")
        return self

    def hyperparameters(self) -> dict[str, Any]:
        """What decides the trained weights besides the data and the base model."""
        return self.model_dump(
            mode="json",
            include={
                "steps",
                "batch_size",
                "lr",
                "weight_decay",
                "warmup_steps",
                "grad_clip",
                "seed",
                "held_out_fraction",
                "frames",
                "frame_size",
                "text",
            },
        )


@dataclass(frozen=True)
class RunResult:
    """A finished run: its record and where its files are."""

    record: RunRecord
    weights: Path
    record_path: Path


@dataclass(frozen=True)
class Progress:
    """What a progress callback is told after each step and each evaluation."""

    step: int
    steps: int
    loss: float | None = None
    metrics: EvalMetrics | None = None


# -- data ------------------------------------------------------------------------------


def held_out(key: str, *, seed: int, fraction: float) -> bool:
    """Whether sample ``key`` is in the held-out split of a run with ``seed``."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest) < fraction * 2**256


def _words(value: Any) -> str:
    return str(value).replace("_", " ").strip()


def text_prompt(annotation: Mapping[str, Any]) -> str:
    """The default training text: ``"<description>, <lighting> lighting, <movement> shot"``
    from a schema-v1 annotation (parts that are missing are left out)."""
    scene = annotation.get("scene") or {}
    lighting = annotation.get("lighting") or {}
    camera = annotation.get("camera") or {}
    parts = []
    description = " ".join(str(scene.get("description", "")).split()).rstrip(".")
    if description:
        parts.append(description)
    if lighting.get("setup"):
        parts.append(f"{_words(lighting['setup'])} lighting")
    if camera.get("movement"):
        movement = _words(camera["movement"])
        if camera.get("direction"):
            movement = f"{movement} {_words(camera['direction'])}"
        parts.append(f"{movement} shot")
    return ", ".join(parts)


_TEXTS: Final[dict[str, Callable[[Mapping[str, Any]], str]]] = {
    "prompt": text_prompt,
    "conditioning": conditioning_text,
}


def _model_inputs(scorer: ScoringModel, frames: torch.Tensor) -> torch.Tensor:
    """``B x K x C x H x W`` uint8 frames -> ``(B*K) x C x S x S`` model inputs."""
    flat = frames.reshape(-1, *frames.shape[2:]).permute(0, 2, 3, 1).numpy()
    return scorer.preprocess_frames(list(flat))


# -- model -----------------------------------------------------------------------------


def _clip_features(model: Any, images: torch.Tensor, frames: int) -> torch.Tensor:
    """Normalised mean of the normalised frame embeddings, one row per clip."""
    features = torch.nn.functional.normalize(model.encode_image(images).float(), dim=-1)
    return torch.nn.functional.normalize(
        features.reshape(-1, frames, features.shape[-1]).mean(1), dim=-1
    )


def _text_features(
    model: Any, scorer: ScoringModel, texts: Sequence[str], device: str
) -> torch.Tensor:
    tokens = scorer.tokenizer(list(texts)).to(device)
    return torch.nn.functional.normalize(model.encode_text(tokens).float(), dim=-1)


def _soft_cross_entropy(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    target = positives / positives.sum(dim=1, keepdim=True)
    return -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()


def recall_at_k(similarity: torch.Tensor, correct: torch.Tensor, k: int) -> float:
    """Share of rows (queries) with a correct column among their ``k`` most similar."""
    top = similarity.topk(min(k, similarity.shape[1]), dim=1).indices
    return float(correct.gather(1, top).any(dim=1).float().mean().item())


def _evaluate(
    model: Any, scorer: ScoringModel, held: ShardStream, *, frames: int, device: str, batch: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Held-out retrieval recalls (text->clip, clip->text). The held-out clips are decoded
    again at each evaluation rather than kept: memory stays that of one batch."""
    was_training = model.training
    model.eval()
    clip_rows: list[torch.Tensor] = []
    held_texts: list[str] = []
    with torch.no_grad():
        samples = iter(held)
        while chunk := list(itertools.islice(samples, batch)):
            images = _model_inputs(scorer, torch.stack([s["frames"] for s in chunk]))
            clip_rows.append(_clip_features(model, images.to(device), frames).cpu())
            held_texts.extend(s["text"] for s in chunk)
        unique = list(dict.fromkeys(held_texts))
        texts = torch.cat(
            [
                _text_features(model, scorer, unique[i : i + batch], device).cpu()
                for i in range(0, len(unique), batch)
            ]
        )
    model.train(was_training)
    # similarity: clips x unique texts; a clip's correct text is its own.
    similarity = torch.cat(clip_rows) @ texts.T
    position = {text: i for i, text in enumerate(unique)}
    truth = torch.tensor([position[t] for t in held_texts])
    clip_correct = torch.nn.functional.one_hot(truth, len(unique)).bool()
    # text->clip: one query per held-out sample (its text) against every clip; any clip
    # carrying the same text is a hit.
    text_sim = similarity.T[truth]
    text_correct = clip_correct.T[truth]
    t2c = {f"r@{k}": recall_at_k(text_sim, text_correct, k) for k in RECALL_AT}
    c2t = {f"r@{k}": recall_at_k(similarity, clip_correct, k) for k in RECALL_AT}
    return t2c, c2t


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[torch.nn.Parameter] = []
    rest: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 and "embedding" not in name else rest).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def _lr_at(config: FinetuneConfig, step: int) -> float:
    """Learning rate of step ``step`` (0-based): a pure function, so resume needs no
    scheduler state."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * (step - config.warmup_steps) / span))


# -- checkpoints -----------------------------------------------------------------------


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` into a temporary file beside ``path``, flush it to disk, rename it over
    ``path``: readers see the old file or the whole new one, never part of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(temporary)
    try:
        write(tmp)
        with open(tmp, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename's durability; not all systems allow it
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _save_checkpoint(state: dict[str, Any], path: Path) -> None:
    torch.save(state, path)


def _write_text(text: str, path: Path) -> None:
    path.write_text(text, encoding="utf-8")


def _checkpoints(out: Path) -> list[tuple[int, Path]]:
    folder = out / _CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _CHECKPOINT.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def _load_checkpoint(out: Path, fingerprint: str) -> dict[str, Any] | None:
    """The newest checkpoint of this run that loads whole; damaged ones are skipped."""
    for step, path in reversed(_checkpoints(out)):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a damaged file
            _log.warning("skipping checkpoint %s: it does not load (%s)", path.name, exc)
            continue
        if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
            _log.warning("skipping checkpoint %s: not a fine-tuning checkpoint", path.name)
            continue
        if state.get("fingerprint") != fingerprint or state.get("step") != step:
            _log.warning("skipping checkpoint %s: it is of another run", path.name)
            continue
        return state
    return None


def _fingerprint(config: FinetuneConfig, version_hash: str, base_sha256: str) -> str:
    """What a checkpoint must match to be resumed: data, base model, hyperparameters."""
    identity = {
        "version": version_hash,
        "base": base_sha256,
        "hyperparameters": config.hyperparameters(),
    }
    return hashlib.sha256(repr(sorted(identity.items())).encode()).hexdigest()


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def _torch_settings(config: FinetuneConfig) -> Iterator[None]:
    """The run's global torch settings, restored afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    flush = torch.set_flush_denormal(True)  # tiny gradients as denormals make CPU 3x slower
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(config.deterministic, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        if flush:
            torch.set_flush_denormal(False)


# -- the run ---------------------------------------------------------------------------


def finetune(
    config: FinetuneConfig, *, progress: Callable[[Progress], None] | None = None
) -> RunResult:
    """Fine-tune ``config.base_model`` on the version in ``config.shards``; write the
    weights and ``run.json`` to ``config.out`` and return them (see the module docstring).

    ``progress`` is called after every step and every evaluation; an exception it raises
    stops the run, leaving the checkpoints written so far to resume from.
    """
    with _torch_settings(config):
        return _run(config, progress or (lambda _: None))


def _run(config: FinetuneConfig, progress: Callable[[Progress], None]) -> RunResult:
    started_at = datetime.now(UTC)
    index_path = config.shards / INDEX_NAME
    if not index_path.is_file():
        raise FinetuneError(f"{config.shards} holds no {INDEX_NAME}: not a dataset version")
    index = read_index(index_path)
    if not config.resume and _checkpoints(config.out):
        # Starting afresh would mix this run's checkpoints with an earlier run's.
        raise FinetuneError(
            f"{config.out} holds checkpoints of an earlier run: resume it, or write to "
            "another directory"
        )
    keys = [sample.key for shard in index.shards for sample in shard.samples]
    held_keys = [
        k for k in keys if held_out(k, seed=config.seed, fraction=config.held_out_fraction)
    ]
    held_set = set(held_keys)
    train_keys = [k for k in keys if k not in held_set]
    if not held_keys or len(train_keys) < config.batch_size:
        raise FinetuneError(
            f"the version's {len(keys)} samples split into {len(train_keys)} for training and "
            f"{len(held_keys)} held out: need at least one held out and a batch "
            f"({config.batch_size}) to train on"
        )
    if len(held_keys) > MAX_HELD_OUT:
        raise FinetuneError(
            f"{len(held_keys)} held-out samples, over the limit of {MAX_HELD_OUT}: "
            "lower held_out_fraction"
        )
    torch.manual_seed(config.seed)
    scorer = load_model(
        config.base_model,
        config.pretrained,
        device=config.device,
        precision="fp32",
        expected_sha256=config.weights_sha256,
    )
    device = scorer.plan.device
    model: Any = scorer.model
    image_size = model.visual.image_size
    side = config.frame_size or int(
        image_size[0] if isinstance(image_size, Sequence) else image_size
    )
    stream_options: dict[str, Any] = {
        "frames": config.frames,
        "size": (side, side),
        "text": _TEXTS[config.text],
    }
    source = LocalShards(config.shards)
    train_stream = ShardStream(index, source, seed=config.seed, keys=train_keys, **stream_options)
    held = ShardStream(index, source, shuffle=False, keys=held_keys, **stream_options)
    fingerprint = _fingerprint(config, index.version_hash, scorer.identity.weights_sha256)
    optimiser = torch.optim.AdamW(
        _param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.98), eps=1e-6
    )

    def evaluate(step: int, loss: float | None) -> EvalMetrics:
        t2c, c2t = _evaluate(
            model, scorer, held, frames=config.frames, device=device, batch=config.batch_size
        )
        metrics = EvalMetrics(step=step, train_loss=loss, text_to_clip=t2c, clip_to_text=c2t)
        progress(Progress(step=step, steps=config.steps, metrics=metrics))
        return metrics

    step, epoch_position, losses = 0, 0, []
    metrics: list[EvalMetrics] = []
    resumed_from: int | None = None
    checkpoint = _load_checkpoint(config.out, fingerprint) if config.resume else None
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimiser.load_state_dict(checkpoint["optimiser"])
        train_stream.load_state_dict(checkpoint["stream"])
        step = resumed_from = int(checkpoint["step"])
        epoch_position = int(checkpoint["epoch_position"])
        losses = [float(v) for v in checkpoint["losses"]]
        metrics = [EvalMetrics.model_validate(m) for m in checkpoint["metrics"]]
        _set_rng_state(checkpoint["rng"])
        _log.info("resuming from step %d", step)
    else:
        metrics.append(evaluate(0, None))

    def next_sample(
        iterator: Iterator[dict[str, Any]],
    ) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
        nonlocal epoch_position
        if epoch_position >= train_stream.num_samples:
            # The epoch was used up: the next one has its own order. (A stream whose
            # epoch is finished would otherwise start the same epoch over.)
            train_stream.set_epoch(train_stream.epoch + 1)
            epoch_position = 0
            iterator = iter(train_stream)
        sample = next(iterator)
        epoch_position += 1
        return sample, iterator

    model.train()
    iterator = iter(train_stream)
    while step < config.steps:
        samples = []
        for _ in range(config.batch_size):
            sample, iterator = next_sample(iterator)
            samples.append(sample)
        batch = collate(samples)
        images = _model_inputs(scorer, batch["frames"]).to(device)
        texts: list[str] = batch["text"]
        unique = list(dict.fromkeys(texts))
        positives = torch.tensor(
            [[text == other for other in unique] for text in texts], dtype=torch.float32
        )
        clip_features = _clip_features(model, images, config.frames)
        text_features = _text_features(model, scorer, unique, device)
        logits = model.logit_scale.exp() * clip_features @ text_features.T
        positives = positives.to(device)
        loss = (
            _soft_cross_entropy(logits, positives) + _soft_cross_entropy(logits.T, positives.T)
        ) / 2
        for group in optimiser.param_groups:
            group["lr"] = _lr_at(config, step)
        optimiser.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimiser.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        step += 1
        losses.append(float(loss.item()))
        progress(Progress(step=step, steps=config.steps, loss=losses[-1]))
        if (config.eval_every and step % config.eval_every == 0) or step == config.steps:
            metrics.append(evaluate(step, sum(losses) / len(losses)))
            losses = []
        if config.checkpoint_every and step % config.checkpoint_every == 0 and step < config.steps:
            state = {
                "format": _CHECKPOINT_FORMAT,
                "fingerprint": fingerprint,
                "step": step,
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "stream": train_stream.state_dict(),
                "epoch_position": epoch_position,
                "losses": losses,
                "metrics": [m.model_dump(mode="json") for m in metrics],
                "rng": _rng_state(),
            }
            path = config.out / _CHECKPOINT_DIR / f"step-{step:08d}.pt"
            _atomic_write(path, functools.partial(_save_checkpoint, state))
            for _, old in _checkpoints(config.out)[:-KEEP_CHECKPOINTS]:
                old.unlink(missing_ok=True)

    weights = config.out / WEIGHTS_NAME
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    # One metadata key: safetensors keeps metadata in a hash map whose order (hence the
    # file's bytes and SHA-256) would vary between runs with several keys.
    origin = {"model": config.base_model, "base_sha256": scorer.identity.weights_sha256}
    metadata = {"shotbank": json.dumps(origin, sort_keys=True)}
    _atomic_write(weights, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    record = RunRecord(
        dataset=DatasetInfo(
            version_hash=index.version_hash,
            samples=len(keys),
            train_samples=len(train_keys),
            held_out_samples=len(held_keys),
        ),
        base_model=BaseModelInfo(
            name=config.base_model,
            tag=scorer.identity.tag,
            weights_sha256=scorer.identity.weights_sha256,
        ),
        hyperparameters=config.hyperparameters(),
        device=device,
        metrics=metrics,
        output=OutputWeights(
            file=WEIGHTS_NAME, sha256=sha256_file(weights), size=weights.stat().st_size
        ),
        resumed_from_step=resumed_from,
        started_at=started_at,
        finished_at=datetime.now(UTC),
    )
    record_path = config.out / RUN_RECORD_NAME
    text = record.model_dump_json(indent=2) + "\n"
    _atomic_write(record_path, functools.partial(_write_text, text))
    return RunResult(record=record, weights=weights, record_path=record_path)


def register_run(client: ShotbankClient, result: RunResult) -> Model:
    """Register a finished run with the backend ``client`` talks to; the model's view.

    The client must be signed in (or sign its requests) as a wallet holding a licence for
    the run's dataset version. Registering the same run again answers the same model;
    see :meth:`shotbank.client.ShotbankClient.register_model` for the errors.
    """
    return client.register_model(result.record)
