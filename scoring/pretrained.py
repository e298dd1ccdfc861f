"""The registry of known weights, each pinned by SHA-256, and the checks that enforce it.

Like open_clip's pretrained table, the registry maps ``(model name, tag)`` to a weights
file; unlike it, nothing is ever downloaded: a registered file is looked for in local
folders (the package's own ``scoring/weights/`` plus any the caller names), and a file
is used only if its size and SHA-256 are the pinned ones. The table is data,
``scoring/pretrained.json``, so that pinning new weights is a reviewed one-line change.

A local file given directly (``pretrained="/path/to/file.safetensors"``) is accepted when
its hash is registered for that model (it then takes that entry's tag), or matches a
hash the caller pins (``expected_sha256``, e.g. from a validator's config). Anything else
is refused unless the caller explicitly opts out (``allow_unpinned=True``, for
experiments; the score still records the file's hash).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scoring.errors import (
    UnknownModelError,
    WeightsIntegrityError,
    WeightsNotFoundError,
)

__all__ = [
    "REGISTRY_PATH",
    "WEIGHTS_DIR",
    "WEIGHTS_SUFFIXES",
    "PretrainedWeights",
    "ResolvedWeights",
    "get_pretrained",
    "list_pretrained",
    "resolve_weights",
    "sha256_file",
]

_PACKAGE: Final = Path(__file__).resolve().parent
#: The registry file.
REGISTRY_PATH: Final = _PACKAGE / "pretrained.json"
#: Where the in-project weights live; always searched, last.
WEIGHTS_DIR: Final = _PACKAGE / "weights"
#: Formats that load without executing code: safetensors, and torch pickles through
#: ``torch.load(weights_only=True)``.
WEIGHTS_SUFFIXES: Final = frozenset({".safetensors", ".bin", ".pt", ".pth"})
_CHUNK: Final = 1 << 20


class Preprocess(BaseModel):
    """Preprocessing the weights were trained with, where it differs from open_clip's default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    interpolation: str | None = Field(default=None, pattern=r"^(bicubic|bilinear|random)$")
    resize_mode: str | None = Field(default=None, pattern=r"^(shortest|longest|squash)$")


class PretrainedWeights(BaseModel):
    """One registry entry: which file holds the weights of ``model`` for ``tag``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, max_length=100)
    tag: str = Field(min_length=1, max_length=100)
    #: File name looked for in the weights folders (a bare name, never a path).
    file: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
    #: The pin. None means "not pinned yet": the file loads only with a caller's pin.
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    size: int | None = Field(default=None, ge=1)
    #: Where the file comes from and how to reproduce or fetch it.
    source: str = Field(max_length=1000)
    preprocess: Preprocess = Preprocess()


@dataclass(frozen=True)
class ResolvedWeights:
    """A verified weights file, ready to load."""

    path: Path
    sha256: str
    #: The registry entry the file matched; None for an unregistered (caller-pinned) file.
    entry: PretrainedWeights | None

    @property
    def tag(self) -> str | None:
        """The registry tag, or None for a file outside the registry."""
        return self.entry.tag if self.entry is not None else None


@cache
def _registry() -> Mapping[tuple[str, str], PretrainedWeights]:
    try:
        raw = json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))
        models = raw["models"]
        return {
            (name, tag): PretrainedWeights(model=name, tag=tag, **fields)
            for name, tags in models.items()
            for tag, fields in tags.items()
        }
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
        raise WeightsIntegrityError(
            f"weights registry {REGISTRY_PATH.name} is invalid: {exc}"
        ) from exc


def list_pretrained() -> list[tuple[str, str]]:
    """Every registered ``(model name, tag)``."""
    return sorted(_registry())


def get_pretrained(name: str, tag: str) -> PretrainedWeights:
    """The registry entry for ``(name, tag)``; :class:`UnknownModelError` if there is none."""
    try:
        return _registry()[(name, tag)]
    except KeyError:
        tags = sorted(t for n, t in _registry() if n == name)
        known = f"known tags for {name}: {', '.join(tags)}" if tags else "no tags registered"
        raise UnknownModelError(
            f"no pretrained weights {tag!r} for model {name!r} ({known})"
        ) from None


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, as lower-case hex."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_suffix(path: Path) -> None:
    if path.suffix not in WEIGHTS_SUFFIXES:
        raise WeightsIntegrityError(
            f"refusing weights file {path.name}: format {path.suffix or '(none)'} is not one of "
            f"{', '.join(sorted(WEIGHTS_SUFFIXES))}"
        )


def _verify(path: Path, *, sha256: str, size: int | None) -> None:
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise WeightsIntegrityError(
            f"refusing weights file {path}: {actual_size} bytes where {size} are pinned "
            "(tampered, truncated or a different file)"
        )
    actual = sha256_file(path)
    if actual != sha256:
        raise WeightsIntegrityError(
            f"refusing weights file {path}: SHA-256 {actual} does not match the pinned {sha256} "
            "(tampered, corrupted or a different file)"
        )


def resolve_weights(
    name: str,
    pretrained: str | Path,
    *,
    weights_dirs: Sequence[Path] = (),
    expected_sha256: str | None = None,
    allow_unpinned: bool = False,
) -> ResolvedWeights:
    """Find and verify the weights for ``name``: ``pretrained`` is a registered tag or a
    path to a local file. Raises :class:`UnknownModelError`, :class:`WeightsNotFoundError`
    or :class:`WeightsIntegrityError`; never returns an unverified file unless
    ``allow_unpinned``."""
    pin = expected_sha256.lower() if expected_sha256 is not None else None
    if isinstance(pretrained, str) and (name, pretrained) in _registry():
        entry = _registry()[(name, pretrained)]
        folders = [*weights_dirs, WEIGHTS_DIR]
        found = next((d / entry.file for d in folders if (d / entry.file).is_file()), None)
        if found is None:
            raise WeightsNotFoundError(
                f"weights {entry.file} for {name}/{entry.tag} not found in "
                f"{', '.join(str(d) for d in folders)}; source: {entry.source}"
            )
        _check_suffix(found)
        if entry.sha256 is not None and pin is not None and pin != entry.sha256:
            raise WeightsIntegrityError(
                f"caller pin {pin} contradicts the registry pin {entry.sha256} "
                f"for {name}/{entry.tag}"
            )
        want = entry.sha256 or pin
        if want is None:
            if not allow_unpinned:
                raise WeightsIntegrityError(
                    f"{name}/{entry.tag} has no SHA-256 in the registry: pin the file's hash "
                    "(expected_sha256) before loading it"
                )
            return ResolvedWeights(found, sha256_file(found), entry)
        _verify(found, sha256=want, size=entry.size)
        return ResolvedWeights(found, want, entry)

    path = Path(pretrained)
    if not path.is_file():
        tags = sorted(t for n, t in _registry() if n == name)
        raise UnknownModelError(
            f"pretrained {str(pretrained)!r} is neither a registered tag of {name!r} "
            f"(known: {', '.join(tags) or 'none'}) nor an existing file"
        )
    _check_suffix(path)
    actual = sha256_file(path)
    registered = next(
        (e for (n, _), e in _registry().items() if n == name and e.sha256 == actual), None
    )
    if registered is not None:
        if pin is not None and pin != actual:
            raise WeightsIntegrityError(
                f"refusing {path}: SHA-256 {actual} is not the pinned {pin}"
            )
        return ResolvedWeights(path, actual, registered)
    if pin is not None:
        if pin != actual:
            raise WeightsIntegrityError(
                f"refusing weights file {path}: SHA-256 {actual} does not match the pinned {pin}"
            )
        return ResolvedWeights(path, actual, None)
    if not allow_unpinned:
        raise WeightsIntegrityError(
            f"refusing weights file {path}: SHA-256 {actual} is not registered for {name!r} and "
            "no pin was given (pass expected_sha256, or allow_unpinned for experiments)"
        )
    return ResolvedWeights(path, actual, None)
