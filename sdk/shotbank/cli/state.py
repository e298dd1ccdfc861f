"""What ``shotbank contribute`` remembers between runs, in one JSON file.

Per clip (keyed by its path below the directory):

- its fingerprint -- size, ``mtime_ns`` and SHA-256 -- so the hash is computed once and
  a changed file is noticed;
- per target (server URL and wallet) its submission: the tus upload URL and id, whether
  the upload finished, the idempotency key, the clip id once the server created it.

Writes are atomic (temporary file in the same directory, ``fsync``, ``rename``, then
``fsync`` of the directory): a crash leaves the old or the new state, never half of one.
A file that cannot be parsed is moved aside (``<name>.corrupt-<time>``) and the state
starts empty; that is safe because a rerun finds its clips again through idempotent
requests and the server's duplicate detection. One run at a time: an exclusive lock on
``<name>.lock`` (POSIX ``flock``, released by the OS if the process dies).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shotbank.cli.errors import StateFileError, StateLockedError

__all__ = [
    "STATE_FILE_NAME",
    "STATE_VERSION",
    "ContributeState",
    "FileFingerprint",
    "StateDocument",
    "Submission",
    "lock_state",
]

STATE_FILE_NAME: Final = ".shotbank-contribute.json"
STATE_VERSION: Final = 1
#: A state file larger than this is not ours (a few hundred bytes per clip).
MAX_STATE_BYTES: Final = 256 * 1024**2


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileFingerprint(_Record):
    """Size and modification time of a file when its SHA-256 was computed."""

    size: int = Field(ge=0)
    mtime_ns: int
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Submission(_Record):
    """How far one clip got on one server for one wallet."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """The bytes this submission is for; another hash means the file changed."""
    content_key: str = Field(max_length=64)
    """Annotation (and camera path) this submission is for (see ``PreparedClip``)."""
    upload_url: str | None = Field(default=None, max_length=4096)
    upload_id: str | None = Field(default=None, max_length=128)
    upload_complete: bool = False
    idempotency_key: str | None = Field(default=None, max_length=128)
    clip_id: str | None = Field(default=None, max_length=128)
    submitted_at: datetime | None = None


class StateDocument(_Record):
    """The whole state file."""

    version: Literal[1] = STATE_VERSION
    files: dict[str, FileFingerprint] = Field(default_factory=dict)
    targets: dict[str, dict[str, Submission]] = Field(default_factory=dict)
    """Submissions by target (``"<address> @ <api url>"``), then by clip path."""


def target_key(api_url: str, address: str) -> str:
    """The state's key for one wallet on one server."""
    return f"{address.lower()} @ {api_url.rstrip('/')}"


class ContributeState:
    """The state file of one directory: load it, change it, :meth:`save` it atomically."""

    def __init__(
        self, path: Path, document: StateDocument, *, set_aside: Path | None = None
    ) -> None:
        self.path = path
        self.document = document
        self.set_aside = set_aside
        """Where a corrupt state file was moved when this state was loaded, if it was."""

    @classmethod
    def load(cls, path: Path) -> ContributeState:
        """The state in ``path``: empty when there is none, rebuilt when it is corrupt."""
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return cls(path, StateDocument())
        except OSError as exc:
            raise StateFileError(f"cannot read the state file {path}: {exc.strerror}") from exc
        version = _declared_version(raw)
        if version is not None and version > STATE_VERSION:
            raise StateFileError(
                f"the state file {path} has version {version}; this shotbank understands "
                f"version {STATE_VERSION} only: upgrade shotbank or pass another --state-file"
            )
        try:
            if len(raw) > MAX_STATE_BYTES:
                raise ValueError("too large")
            document = StateDocument.model_validate_json(raw)
        except (ValidationError, ValueError):
            return cls(path, StateDocument(), set_aside=_set_aside(path))
        return cls(path, document)

    # --- fingerprints --------------------------------------------------------------------

    def cached_sha256(self, relative: str, *, size: int, mtime_ns: int) -> str | None:
        """The recorded SHA-256 of ``relative`` if its size and mtime are unchanged."""
        known = self.document.files.get(relative)
        if known is None or (known.size, known.mtime_ns) != (size, mtime_ns):
            return None
        return known.sha256

    def remember_sha256(self, relative: str, *, size: int, mtime_ns: int, sha256: str) -> None:
        """Record the SHA-256 of ``relative`` at this size and mtime."""
        self.document.files[relative] = FileFingerprint(size=size, mtime_ns=mtime_ns, sha256=sha256)

    # --- submissions ---------------------------------------------------------------------

    def submission(self, target: str, relative: str) -> Submission | None:
        """What was recorded for ``relative`` on ``target``."""
        return self.document.targets.get(target, {}).get(relative)

    def record(self, target: str, relative: str, submission: Submission) -> None:
        """Replace what is recorded for ``relative`` on ``target``."""
        self.document.targets.setdefault(target, {})[relative] = submission

    # --- persistence ---------------------------------------------------------------------

    def save(self) -> None:
        """Write the state atomically (temp file, fsync, rename, fsync of the directory)."""
        data = self.document.model_dump_json(indent=1).encode()
        directory = self.path.parent
        temporary = directory / f".{self.path.name}.{os.getpid()}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
            os.replace(temporary, self.path)
            _fsync_directory(directory)
        except OSError as exc:
            raise StateFileError(
                f"cannot write the state file {self.path}: {exc.strerror}"
            ) from exc


def _declared_version(raw: bytes) -> int | None:
    class _Versioned(BaseModel):
        version: int

    try:
        return _Versioned.model_validate_json(raw).version
    except (ValidationError, ValueError):
        return None


def _set_aside(path: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    try:
        os.replace(path, target)
    except OSError as exc:
        raise StateFileError(
            f"the state file {path} is corrupt and cannot be moved aside: {exc.strerror}"
        ) from exc
    return target


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":  # Windows cannot open a directory; its rename is durable enough
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def lock_state(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of the state file ``path`` (``<path>.lock``) while inside.

    Raises :class:`StateLockedError` at once when another process holds it.
    """
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StateFileError(f"cannot create the lock file {lock_path}: {exc.strerror}") from exc
    try:
        if sys.platform != "win32":
            import fcntl

            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise StateLockedError(
                    f"another shotbank contribute is using {path}; wait for it to finish"
                ) from exc
        yield
    finally:
        os.close(fd)  # closing releases the lock
