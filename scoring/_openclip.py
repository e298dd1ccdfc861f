"""The one place that imports open_clip, after making that import safe here.

Two things must happen before the first ``import open_clip``:

- the torchvision shim (a CUDA build of torchvision does not import on CPU torch);
- ``HF_HUB_OFFLINE=1`` unless the environment says otherwise: huggingface_hub reads it
  when imported, and weights are only ever loaded from verified local files, so a stray
  hub lookup must fail at once instead of hanging on a closed network.

Every module of the package gets open_clip from here, and this module also registers the
package's own architecture configs (``scoring/model_configs/*.json``) with open_clip.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from scoring import _torchvision_shim

_torchvision_shim.install()
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import open_clip  # noqa: E402 -- must follow the shim and the offline switch

__all__ = ["MODEL_CONFIG_DIR", "open_clip"]

#: The package's open_clip architecture configs (JSON, open_clip's own format).
MODEL_CONFIG_DIR: Final = Path(__file__).resolve().parent / "model_configs"

if not set(p.stem for p in MODEL_CONFIG_DIR.glob("*.json")) <= set(open_clip.list_models()):
    open_clip.add_model_config(MODEL_CONFIG_DIR)
