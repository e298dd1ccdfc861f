"""The validator node behind ``shotbank validator run``.

- :mod:`~scoring.node.config` -- :class:`NodeSettings` (``SHOTBANK_VALIDATOR_*``, a config file)
- :mod:`~scoring.node.client` -- :class:`ValidatorClient`: the validator API, verified downloads
- :mod:`~scoring.node.stake` -- the node's own stake, read on chain
- :mod:`~scoring.node.state` -- the state directory: lock, journal of signed reports
- :mod:`~scoring.node.engine` -- the scoring engine (model, scorer, pipeline, duplicate index)
- :mod:`~scoring.node.node` -- :class:`ValidatorNode`: the loop and its shutdown
- :mod:`~scoring.node.metrics` -- :class:`NodeMetrics`: the Prometheus endpoint
- :mod:`~scoring.node.errors` -- the node's branch of the exception tree

Names are imported on first use: settings, client and errors load without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scoring.node.client import Lease, ValidatorClient, ValidatorConfig
    from scoring.node.config import NodeSettings
    from scoring.node.errors import (
        BackendMismatchError,
        ContentMismatchError,
        FetchError,
        NodeConfigError,
        NodeError,
        NodeStateError,
        NotStakedError,
    )
    from scoring.node.metrics import NodeMetrics
    from scoring.node.node import ValidatorNode

_HOME = {
    "scoring.node.client": ("Lease", "ValidatorClient", "ValidatorConfig"),
    "scoring.node.config": ("NodeSettings",),
    "scoring.node.errors": (
        "BackendMismatchError",
        "ContentMismatchError",
        "FetchError",
        "NodeConfigError",
        "NodeError",
        "NodeStateError",
        "NotStakedError",
    ),
    "scoring.node.metrics": ("NodeMetrics",),
    "scoring.node.node": ("ValidatorNode",),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'scoring.node' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "BackendMismatchError",
    "ContentMismatchError",
    "FetchError",
    "Lease",
    "NodeConfigError",
    "NodeError",
    "NodeMetrics",
    "NodeSettings",
    "NodeStateError",
    "NotStakedError",
    "ValidatorClient",
    "ValidatorConfig",
    "ValidatorNode",
]
