"""Finding clips in a directory, pairing them with their sidecar files, checking them locally.

A clip is a file with a media extension (:data:`MEDIA_EXTENSIONS`, any case). Beside it:

- ``<stem>.json`` -- its annotation (schema v1), required;
- ``<stem>.camera.txt`` -- optionally, a RealEstate10K-style camera path (one pose per
  line), sent as ``camera_path_text``; the annotation then must not hold a path itself.

Hidden files and directories (name starting with ``.``) are skipped, as are symbolic
links to directories. Every annotation is validated with :mod:`shotbank.annotation`
before anything is uploaded, so a mistake costs no bandwidth; problems are listed per
field.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from shotbank.annotation import (
    Annotation,
    CameraPathFormatError,
    annotation_hash,
    parse_camera_path_text,
)
from shotbank.annotation.camera_path import MAX_CAMERA_PATH_TEXT_CHARS

__all__ = [
    "ANNOTATION_SUFFIX",
    "CAMERA_PATH_SUFFIX",
    "MAX_ANNOTATION_BYTES",
    "MEDIA_EXTENSIONS",
    "ClipFiles",
    "PreparedClip",
    "file_sha256",
    "prepare_clip",
    "scan_directory",
]

MEDIA_EXTENSIONS: Final = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm"})
ANNOTATION_SUFFIX: Final = ".json"
CAMERA_PATH_SUFFIX: Final = ".camera.txt"
#: An annotation file larger than this is refused before it is parsed.
MAX_ANNOTATION_BYTES: Final = 16 * 1024**2
_HASH_BLOCK: Final = 1024**2


@dataclass(frozen=True, slots=True)
class ClipFiles:
    """One clip found in the directory, with the sidecar files that exist for it.

    ``relative`` is the clip's path below the scanned directory, with ``/`` separators:
    the key of the clip in the state file and the name shown to the user.
    """

    media: Path
    relative: str
    annotation: Path | None
    camera_path: Path | None
    issues: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PreparedClip:
    """A clip after the local checks: the parsed annotation, or why it is invalid.

    ``content_key`` identifies what would be submitted besides the bytes (annotation
    hash and camera path text): a changed annotation gives another key.
    """

    files: ClipFiles
    size: int
    annotation: Annotation | None
    camera_path_text: str | None
    content_key: str | None
    issues: tuple[str, ...]

    @property
    def valid(self) -> bool:
        """Whether the clip may be uploaded."""
        return not self.issues


def _hidden(name: str) -> bool:
    return name.startswith(".")


def scan_directory(root: Path, *, recursive: bool = False) -> list[ClipFiles]:
    """The clips in ``root`` (and its subdirectories when ``recursive``), sorted by path.

    Two clips sharing a stem in one directory (``a.mp4``, ``a.mov``) would share one
    annotation; both are reported with an issue instead of guessing.
    """
    media: list[Path] = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not _hidden(d)) if recursive else []
        for name in names:
            path = Path(directory, name)
            if not _hidden(name) and path.suffix.lower() in MEDIA_EXTENSIONS and path.is_file():
                media.append(path)
    by_stem: dict[Path, list[Path]] = defaultdict(list)
    for path in media:
        by_stem[path.with_suffix("")].append(path)
    found: list[ClipFiles] = []
    for path in media:
        stem = path.with_suffix("")
        annotation = stem.with_name(stem.name + ANNOTATION_SUFFIX)
        camera = stem.with_name(stem.name + CAMERA_PATH_SUFFIX)
        issues: list[str] = []
        if not annotation.is_file():
            issues.append(f"no annotation file {annotation.name}")
        siblings = sorted(p.name for p in by_stem[stem] if p != path)
        if siblings:
            issues.append(
                f"{annotation.name} would describe {path.name} and {', '.join(siblings)}: "
                "give each clip its own stem"
            )
        found.append(
            ClipFiles(
                media=path,
                relative=path.relative_to(root).as_posix(),
                annotation=annotation if annotation.is_file() else None,
                camera_path=camera if camera.is_file() else None,
                issues=tuple(issues),
            )
        )
    return sorted(found, key=lambda clip: clip.relative)


def _read_limited(path: Path, limit: int) -> bytes | None:
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    return None if len(data) > limit else data


def _location(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _annotation_issues(exc: ValidationError) -> list[str]:
    issues = []
    for error in exc.errors(include_url=False, include_input=False):
        where = _location(tuple(error.get("loc", ())))
        issues.append(f"{where}: {error['msg']}")
    return issues


def _content_key(annotation: Annotation, camera_path_text: str | None) -> str:
    digest = hashlib.sha256(annotation_hash(annotation).encode())
    if camera_path_text is not None:
        digest.update(b"\0" + hashlib.sha256(camera_path_text.encode()).digest())
    return digest.hexdigest()


def prepare_clip(files: ClipFiles) -> PreparedClip:
    """Check one clip locally: media not empty, annotation valid, camera path readable."""
    issues = list(files.issues)
    try:
        size = files.media.stat().st_size
    except OSError as exc:
        return PreparedClip(files, 0, None, None, None, (f"cannot read the clip: {exc.strerror}",))
    if size == 0:
        issues.append("the clip file is empty")
    annotation: Annotation | None = None
    if files.annotation is not None:
        try:
            raw = _read_limited(files.annotation, MAX_ANNOTATION_BYTES)
        except OSError as exc:
            raw = None
            issues.append(f"cannot read {files.annotation.name}: {exc.strerror}")
        else:
            if raw is None:
                issues.append(
                    f"{files.annotation.name} is larger than {MAX_ANNOTATION_BYTES} bytes"
                )
        if raw is not None:
            try:
                annotation = Annotation.model_validate_json(raw)
            except ValidationError as exc:
                issues.extend(f"{files.annotation.name}: {i}" for i in _annotation_issues(exc))
    camera_text: str | None = None
    if files.camera_path is not None:
        name = files.camera_path.name
        try:
            raw_text = _read_limited(files.camera_path, MAX_CAMERA_PATH_TEXT_CHARS * 4)
            camera_text = raw_text.decode("utf-8") if raw_text is not None else None
        except OSError as exc:
            issues.append(f"cannot read {name}: {exc.strerror}")
        except UnicodeDecodeError:
            issues.append(f"{name} is not UTF-8 text")
        else:
            if camera_text is None:
                issues.append(f"{name} is too large")
        if camera_text is not None:
            try:
                parse_camera_path_text(camera_text)
            except CameraPathFormatError as exc:
                issues.append(f"{name}: {exc}")
        if annotation is not None and annotation.camera.path is not None:
            issues.append(
                f"{name} and camera.path in {files.annotation.name if files.annotation else ''} "
                "both give a camera path: keep one"
            )
    key = _content_key(annotation, camera_text) if annotation is not None else None
    return PreparedClip(files, size, annotation, camera_text, key, tuple(issues))


def file_sha256(path: Path, *, on_bytes: Callable[[int], None] | None = None) -> str:
    """SHA-256 (hex) of a file, read in blocks; ``on_bytes(n)`` after each block."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
            if on_bytes is not None:
                on_bytes(len(block))
    return digest.hexdigest()
