"""Guards scoring's exported names, its reason codes, and what importing it costs."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import scoring
from scoring.errors import ScoringError, error_for_code


def test_every_exported_name_exists() -> None:
    for info in pkgutil.iter_modules(scoring.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"scoring.{info.name}")
        assert hasattr(module, "__all__"), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
    for name in scoring.__all__:
        assert getattr(scoring, name) is not None, name


def _tree(cls: type[ScoringError]) -> list[type[ScoringError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _tree(child))]


def test_reason_codes_are_unique_namespaced_and_round_trip() -> None:
    classes = _tree(ScoringError)
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    assert all(code.startswith("scoring.") for code in codes)
    for cls in classes:
        assert error_for_code(cls.code) is cls
    assert error_for_code("no.such.code") is ScoringError


def test_published_codes_do_not_change() -> None:
    published = {
        "UnknownModelError": "scoring.model.unknown",
        "WeightsNotFoundError": "scoring.weights.not_found",
        "WeightsIntegrityError": "scoring.weights.integrity",
        "DeviceUnavailableError": "scoring.device.unavailable",
        "UndecodableMediaError": "scoring.media.undecodable",
        "MissingStreamError": "scoring.media.missing_stream",
        "MediaLimitError": "scoring.media.limit",
    }
    assert {cls.__name__: cls.code for cls in _tree(ScoringError) if cls.__name__ in published} == (
        published
    )


def test_errors_and_frames_import_without_torch() -> None:
    """The backend imports scoring's types, decode workers its frame sampler: neither may
    pay for torch and open_clip."""
    code = "import sys, scoring, scoring.errors, scoring.frames; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
