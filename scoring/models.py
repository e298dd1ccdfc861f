"""Loading a CLIP model in open_clip's manner, with pinned weights, and using it.

``load_model(name, pretrained)`` takes an open_clip architecture name and either a
registered pretrained tag or a local weights file, verifies the file against the
registry (:mod:`scoring.pretrained`), picks a device and precision
(:mod:`scoring.device`) and builds the model with
``open_clip.create_model_and_transforms``. The result, :class:`ScoringModel`, carries a
:class:`ModelIdentity` (model, tag, weights SHA-256, preprocessing version) that every
score records, so two reports are comparable exactly when their identities are equal.

The scorers built on top (scene alignment, lighting, near-duplicates) need only three
operations: :meth:`ScoringModel.encode_images`, :meth:`ScoringModel.encode_texts` and
:meth:`ScoringModel.zero_shot`.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from scoring._openclip import open_clip
from scoring.device import ComputePlan, select_compute
from scoring.errors import UnknownModelError
from scoring.pretrained import resolve_weights
from scoring.report import ModelIdentity

__all__ = [
    "PREPROCESSING_VERSION",
    "TEST_MODEL",
    "ModelIdentity",
    "ScoringModel",
    "load_model",
]

#: Version of our frames-to-tensor pipeline (RGB ``uint8`` frames -> PIL -> open_clip's
#: eval transform). Bump it when that pipeline changes what a model sees.
PREPROCESSING_VERSION: Final = 1
#: The in-project model (``scripts/train_tiny_clip.py``): the test configuration.
TEST_MODEL: Final = ("shotbank-tiny", "synthetic-v1")
_TEXT_CACHE_SIZE: Final = 4096

Frame = npt.NDArray[np.uint8]


def _preprocessing_id(cfg: dict[str, Any]) -> str:
    canonical = json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=list)
    return f"{PREPROCESSING_VERSION}-{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"


@dataclass(frozen=True, eq=False)
class ScoringModel:
    """An open_clip model in eval mode on its device, with its transform and tokenizer."""

    model: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Callable[[Sequence[str]], torch.Tensor]
    identity: ModelIdentity
    plan: ComputePlan
    _text_cache: OrderedDict[str, torch.Tensor] = field(
        default_factory=OrderedDict, init=False, repr=False
    )

    @property
    def _clip(self) -> Any:
        """The model as open_clip's CLIP (open_clip has no type annotations)."""
        return self.model

    @property
    def logit_scale(self) -> float:
        """The learned temperature (CLIP multiplies cosine similarities by it)."""
        scale = self.model.logit_scale
        assert isinstance(scale, torch.Tensor)
        return float(scale.detach().float().exp().clamp(max=100).item())

    def preprocess_frames(self, frames: Sequence[Frame]) -> torch.Tensor:
        """RGB ``uint8`` frames (``H x W x 3``) -> the model's input batch, on CPU."""
        if not frames:
            raise ValueError("no frames to preprocess")
        return torch.stack([self.preprocess(Image.fromarray(frame, "RGB")) for frame in frames])

    def encode_images(self, images: Sequence[Frame] | torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings (``N x D``, float32, CPU) of RGB frames or of an
        already preprocessed batch."""
        batch = images if isinstance(images, torch.Tensor) else self.preprocess_frames(images)
        batch = batch.to(self.plan.device, self.plan.input_dtype)
        with torch.inference_mode(), self.plan.autocast():
            features = self._clip.encode_image(batch)
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu()

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalised text embeddings (``N x D``, float32, CPU); recent texts are cached."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._text_cache))
        if missing:
            tokens = self.tokenizer(missing).to(self.plan.device)
            with torch.inference_mode(), self.plan.autocast():
                features = self._clip.encode_text(tokens)
            features = torch.nn.functional.normalize(features.float(), dim=-1).cpu()
            for text, feature in zip(missing, features, strict=True):
                self._text_cache[text] = feature
        rows = []
        for text in texts:
            self._text_cache.move_to_end(text)
            rows.append(self._text_cache[text])
        while len(self._text_cache) > _TEXT_CACHE_SIZE:
            self._text_cache.popitem(last=False)
        return torch.stack(rows) if rows else torch.empty(0, 0)

    def zero_shot(
        self, images: Sequence[Frame] | torch.Tensor, captions: Sequence[str]
    ) -> npt.NDArray[np.float32]:
        """Probabilities (``N images x C captions``, rows sum to 1) that each caption is the
        one that fits each image: CLIP's softmax over scaled cosine similarities."""
        if not captions:
            raise ValueError("zero-shot needs at least one caption")
        logits = self.logit_scale * self.encode_images(images) @ self.encode_texts(captions).T
        return logits.softmax(dim=-1).numpy().astype(np.float32)


def load_model(
    name: str,
    pretrained: str | Path,
    *,
    device: str | None = None,
    precision: str | None = None,
    weights_dirs: Sequence[Path] = (),
    expected_sha256: str | None = None,
    allow_unpinned: bool = False,
) -> ScoringModel:
    """Build the open_clip model ``name`` with verified weights ``pretrained``.

    ``pretrained`` is a tag of the weights registry (the file is looked for in
    ``weights_dirs``, then in the package's own weights) or the path of a local file.
    ``device``/``precision`` default to the fastest the machine supports
    (:func:`scoring.device.select_compute`). Raises the :class:`scoring.errors.ModelError`
    family: unknown model or tag, file not found, hash mismatch or unpinned file, device
    not available.
    """
    if name not in open_clip.list_models():
        raise UnknownModelError(f"no open_clip architecture named {name!r}")
    plan = select_compute(device, precision)
    weights = resolve_weights(
        name,
        pretrained,
        weights_dirs=weights_dirs,
        expected_sha256=expected_sha256,
        allow_unpinned=allow_unpinned,
    )
    overrides = weights.entry.preprocess if weights.entry is not None else None
    model, _, preprocess = open_clip.create_model_and_transforms(
        name,
        pretrained=str(weights.path),
        precision=plan.precision,
        device=plan.device,
        weights_only=True,
        image_mean=overrides.mean if overrides else None,
        image_std=overrides.std if overrides else None,
        image_interpolation=overrides.interpolation if overrides else None,
        image_resize_mode=overrides.resize_mode if overrides else None,
    )
    model.eval()
    identity = ModelIdentity(
        model=name,
        tag=weights.tag,
        weights_sha256=weights.sha256,
        preprocessing=_preprocessing_id(open_clip.get_model_preprocess_cfg(model)),
    )
    return ScoringModel(
        model=model,
        preprocess=preprocess,
        tokenizer=open_clip.get_tokenizer(name),
        identity=identity,
        plan=plan,
    )
