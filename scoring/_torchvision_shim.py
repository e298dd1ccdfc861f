"""Make PyPI's CUDA build of torchvision importable on a CPU-only torch.

PyPI ships torchvision as a CUDA build. On a CPU-only torch its compiled extension
(``torchvision/_C.so``) cannot load, and ``import torchvision`` then fails with
``operator torchvision::nms does not exist``: the package registers fake (meta)
kernels for ``torchvision::nms`` and ``torchvision::qnms`` at import time, and those
need the operator schemas that only the extension would have declared.

Declaring the two schemas with :mod:`torch.library` before torchvision is imported is
enough for everything open_clip uses (transforms, ``InterpolationMode``). The operators
themselves keep no kernel: calling ``torchvision.ops.nms`` still raises torchvision's own
"Couldn't load custom C++ ops" error, which is right, since nothing here runs it.

The declaration happens only when it is needed: a CPU-only torch, a torchvision whose
version names a CUDA build (``0.28.0+cu130``), torchvision not yet imported, and the
operators not already declared. Anywhere else (CUDA machines, a CPU build of
torchvision) :func:`install` does nothing.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
from pathlib import Path
from typing import Any, Final

import torch

__all__ = ["install", "needs_shim", "torchvision_build"]

_SCHEMA: Final = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
_OPERATORS: Final = ("torchvision::nms", "torchvision::qnms")
_installed = False


def torchvision_build() -> str | None:
    """The installed torchvision's full version (``"0.28.0+cu130"``), read from its
    ``version.py`` without importing it; None when torchvision is not installed."""
    try:
        dist = importlib.metadata.distribution("torchvision")
    except importlib.metadata.PackageNotFoundError:
        return None
    version_file = Path(str(dist.locate_file("torchvision/version.py")))
    try:
        tree = ast.parse(version_file.read_text(encoding="utf-8"))
    except OSError:
        return dist.version
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    return dist.version


def _declared(name: str) -> bool:
    try:
        getattr(torch.ops.torchvision, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def needs_shim() -> bool:
    """True when ``import torchvision`` would fail for want of the operator schemas."""
    build = torchvision_build()
    if build is None or "torchvision" in sys.modules:
        return False
    cuda_build = "+cu" in build
    cpu_torch = torch.version.cuda is None
    return cuda_build and cpu_torch and not _declared("nms")


def install() -> bool:
    """Declare ``torchvision::nms``/``qnms`` if :func:`needs_shim`; True if it did."""
    global _installed
    if _installed or not needs_shim():
        return False
    # torch.library.define keeps its library alive for the life of the process (a
    # collected Library would drop the definitions). It carries no annotations.
    define: Any = torch.library.define
    for operator in _OPERATORS:
        define(operator, _SCHEMA)
    _installed = True
    return True
