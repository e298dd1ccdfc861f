"""Guards ``scoring.node``'s exported names and what the CLI pays to import it."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import scoring.node
from scoring.errors import ScoringError, error_for_code
from scoring.node.errors import NodeError


def test_every_exported_name_exists() -> None:
    for info in pkgutil.iter_modules(scoring.node.__path__):
        module = importlib.import_module(f"scoring.node.{info.name}")
        assert hasattr(module, "__all__"), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
    for name in scoring.node.__all__:
        assert getattr(scoring.node, name) is not None, name


def test_node_errors_are_scoring_errors_with_their_own_codes() -> None:
    classes: list[type[NodeError]] = [NodeError, *NodeError.__subclasses__()]
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    assert all(code.startswith("scoring.node") for code in codes)
    for cls in NodeError.__subclasses__():
        assert issubclass(cls, ScoringError)
        assert error_for_code(cls.code) is cls


def test_the_cli_and_the_node_loop_import_without_torch() -> None:
    """``shotbank --help`` must not pay for torch; the node imports it when it starts."""
    code = (
        "import sys, shotbank.cli, scoring.node.node, scoring.node.config; "
        "print(sorted(m for m in ('torch', 'open_clip', 'faiss', 'cv2') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
