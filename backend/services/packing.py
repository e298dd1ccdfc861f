"""Packing a dataset version: samples in, WebDataset tar shards plus index and manifest out.

:func:`pack_version` writes the version format of ``docs/api/datasets.md``
(``shotbank.datasets.format``) into a new directory::

    <out_dir>/shard-000000.tar ...   WebDataset shards: <key>.<ext> then <key>.json per sample
    <out_dir>/index.json             ShardIndex: per shard size, SHA-256, CID, sample ranges
    <out_dir>/manifest.jsonl         the canonical manifest; its SHA-256 is the version hash
    <out_dir>/manifest.parquet       the same rows for analysis

How, and why:

* Shards are planned before a byte is written: a sample's span (two tar headers, its data
  and the JSON row, padded to 512-byte blocks) is known from its declared size, and the
  row's ``shard`` field has a fixed length, so the whole manifest -- hence the version hash
  -- is fixed first and each ``<key>.json`` member already names its shard.
* Tar headers are written here from :class:`tarfile.TarInfo` with fixed fields (mode
  0644, uid/gid 0, empty user/group names, mtime 0; pax headers only when a size needs
  them), and each archive ends with exactly two zero blocks, so the same version always
  yields the same bytes, SHA-256 and CID.
* Clip bytes are streamed in 1 MiB chunks, never held whole; as they stream, their
  SHA-256, CID and size are checked against the record (a mismatch raises
  :class:`~backend.errors.DatasetSampleDamagedError`), and each shard's SHA-256 and CID
  are computed over the bytes written (:class:`ingest.cid.StreamingDigest`), so no shard
  is read back.
* Everything is written into a hidden temporary directory beside ``out_dir`` and renamed
  into place at the end: a failed pack removes it, a killed one leaves only a
  ``.<name>.partial-*`` directory, never a half version under ``out_dir``
  (:func:`remove_partials` clears those).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import itertools
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, TypeAlias

from pydantic import ValidationError

from backend.errors import (
    DatasetSampleDamagedError,
    DatasetVersionExistsError,
    DatasetVersionInvalidError,
)
from ingest.cid import StreamingDigest
from shotbank.datasets.format import (
    DEFAULT_SHARD_BYTES,
    FORMAT_VERSION,
    INDEX_NAME,
    MANIFEST_JSONL_NAME,
    MANIFEST_PARQUET_NAME,
    MAX_SAMPLES,
    MAX_SHARD_BYTES,
    MAX_SHARDS,
    MIN_SHARD_BYTES,
    TAR_BLOCK,
    TAR_TRAILER,
    ManifestRow,
    MemberRange,
    SampleEntry,
    SampleRecord,
    ShardEntry,
    ShardIndex,
    canonical_row_json,
    index_json,
    manifest_jsonl,
    shard_name,
    write_manifest_parquet,
)

__all__ = ["READ_SIZE", "ClipOpener", "PackInput", "pack_version", "remove_partials"]

#: How many clip bytes are read, hashed and written at a time.
READ_SIZE: Final = 1 << 20
_ZEROS: Final = bytes(TAR_BLOCK)

#: Opens a clip's bytes for reading (e.g. ``lambda: blobs.open(cid)``); the packer
#: closes the stream when done.
ClipOpener: TypeAlias = Callable[[], BinaryIO]
#: One sample to pack: its record and how to read its clip.
PackInput: TypeAlias = tuple[SampleRecord, ClipOpener]


def _tar_header(name: str, size: int) -> bytes:
    """A regular file's header with fixed metadata; pax records only where ustar cannot
    hold a field (a size of 8 GiB or more)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def _padding(size: int) -> int:
    return -size % TAR_BLOCK


@dataclass(frozen=True, slots=True)
class _Planned:
    """A sample placed in a shard. Its tar headers and JSON member are made again when it
    is written, not kept: a version's plan holds up to a million samples."""

    row: ManifestRow
    opener: ClipOpener
    json_size: int

    @property
    def span(self) -> int:
        """Bytes of the sample in its shard: both members' headers, data and padding."""
        size = self.row.size_bytes
        media = len(_tar_header(f"{self.row.key}.{self.row.ext}", size)) + size + _padding(size)
        json_header = len(_tar_header(f"{self.row.key}.json", self.json_size))
        return media + json_header + self.json_size + _padding(self.json_size)


def _plan_sample(record: SampleRecord, opener: ClipOpener, shard: str) -> _Planned:
    row = record.place(shard)
    return _Planned(row=row, opener=opener, json_size=len(canonical_row_json(row)))


def _validated(samples: Iterable[PackInput]) -> list[PackInput]:
    """The inputs re-validated (a record built with ``model_construct`` skipped its
    checks), sorted by key, keys unique, at most :data:`MAX_SAMPLES`.

    A :class:`ManifestRow` (re-packing a manifest) is taken without its old ``shard``.
    """
    checked: list[PackInput] = []
    for record, opener in samples:
        if len(checked) >= MAX_SAMPLES:
            raise DatasetVersionInvalidError(f"A version holds at most {MAX_SAMPLES} samples.")
        fields = dict(record)
        if isinstance(record, ManifestRow):
            del fields["shard"]
        try:
            valid = SampleRecord.model_validate(fields)
        except ValidationError as exc:
            raise DatasetVersionInvalidError(
                f"A sample record breaks the dataset format: {exc}"
            ) from exc
        checked.append((valid, opener))
    if not checked:
        raise DatasetVersionInvalidError("A dataset version needs at least one sample.")
    checked.sort(key=lambda item: item[0].key)
    for (before, _), (after, _) in itertools.pairwise(checked):
        if before.key == after.key:
            raise DatasetVersionInvalidError(f"Sample key {after.key} is given twice.")
    return checked


def _plan(samples: list[PackInput], shard_bytes: int) -> list[list[_Planned]]:
    """Cut the key-ordered samples into shards of at most ``shard_bytes`` (a shard of a
    single sample may exceed it); a sample never spans two shards."""
    shards: list[list[_Planned]] = []
    current: list[_Planned] = []
    size = TAR_TRAILER
    for record, opener in samples:
        planned = _plan_sample(record, opener, shard_name(len(shards)))
        if current and size + planned.span > shard_bytes:
            shards.append(current)
            if len(shards) >= MAX_SHARDS:
                raise DatasetVersionInvalidError(f"A version holds at most {MAX_SHARDS} shards.")
            # Shard names all have the same length, so the span planned above holds.
            planned = _plan_sample(record, opener, shard_name(len(shards)))
            current, size = [], TAR_TRAILER
        current.append(planned)
        size += planned.span
    shards.append(current)
    return shards


class _ShardWriter:
    """Writes one shard file, hashing every byte as it goes."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._digest = StreamingDigest()
        self.position = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._handle.write(data)
        self._digest.update(data)
        self.position += len(data)

    def pad(self, size: int) -> None:
        if padding := _padding(size):
            self.write(_ZEROS[:padding])

    def finish(self) -> tuple[int, str, str]:
        """Write the trailer; the shard's size, SHA-256 and CID."""
        self.write(bytes(TAR_TRAILER))
        digest = self._digest.finalize()
        return digest.size, digest.sha256, digest.cid


def _copy_clip(planned: _Planned, writer: _ShardWriter) -> None:
    """Stream the clip into the shard, checking it is exactly the recorded bytes."""
    row = planned.row
    clip = StreamingDigest()
    with planned.opener() as stream:
        while True:
            # One byte past the declared size is enough to know the clip is longer.
            want = min(READ_SIZE, row.size_bytes + 1 - clip.size)
            chunk = stream.read(want)
            if not chunk:
                break
            clip.update(chunk)
            if clip.size > row.size_bytes:
                raise DatasetSampleDamagedError(
                    f"Clip {row.key} has more than its recorded {row.size_bytes} bytes."
                )
            writer.write(chunk)
    digest = clip.finalize()
    if digest.size != row.size_bytes:
        raise DatasetSampleDamagedError(
            f"Clip {row.key} has {digest.size} bytes, not its recorded {row.size_bytes}."
        )
    if digest.sha256 != row.sha256:
        raise DatasetSampleDamagedError(
            f"Clip {row.key}'s bytes have SHA-256 {digest.sha256}, not the recorded "
            f"{row.sha256}; the version was not written."
        )
    if digest.cid != row.cid:
        raise DatasetSampleDamagedError(
            f"Clip {row.key}'s bytes have CID {digest.cid}, not the recorded {row.cid}; "
            "the version was not written."
        )


def _write_shard(path: Path, index: int, samples: list[_Planned]) -> ShardEntry:
    entries: list[SampleEntry] = []
    with open(path, "wb") as handle:
        writer = _ShardWriter(handle)
        for planned in samples:
            row = planned.row
            json_bytes = canonical_row_json(row)
            start = writer.position
            writer.write(_tar_header(f"{row.key}.{row.ext}", row.size_bytes))
            media_offset = writer.position
            _copy_clip(planned, writer)
            writer.pad(row.size_bytes)
            writer.write(_tar_header(f"{row.key}.json", len(json_bytes)))
            json_offset = writer.position
            writer.write(json_bytes)
            writer.pad(len(json_bytes))
            entries.append(
                SampleEntry(
                    key=row.key,
                    offset=start,
                    size=writer.position - start,
                    members={
                        row.ext: MemberRange(offset=media_offset, size=row.size_bytes),
                        "json": MemberRange(offset=json_offset, size=len(json_bytes)),
                    },
                )
            )
            if writer.position - start != planned.span:
                # The plan cut the shards by these spans; a difference would be a bug.
                raise RuntimeError(f"sample {row.key} took other bytes than planned")
        size, sha256, cid = writer.finish()
        handle.flush()
        os.fsync(handle.fileno())
    return ShardEntry(
        name=path.name,
        index=index,
        size=size,
        sha256=sha256,
        cid=cid,
        first_key=entries[0].key,
        last_key=entries[-1].key,
        count=len(entries),
        samples=entries,
    )


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pack_version(
    samples: Iterable[PackInput],
    out_dir: str | os.PathLike[str],
    *,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> ShardIndex:
    """Pack ``samples`` into a new version directory ``out_dir``; return its index.

    ``samples`` are ``(record, opener)`` pairs in any order: the record describes the
    clip (checked again here), ``opener()`` returns a binary stream of its bytes.
    Samples are written in ascending key order into ``shard-{i:06d}.tar`` files of at
    most ``shard_bytes`` each (a single larger sample gets a shard of its own), followed
    by ``index.json``, ``manifest.jsonl`` and ``manifest.parquet``.

    Raises :class:`~backend.errors.DatasetVersionInvalidError` for inputs that make no
    version, :class:`~backend.errors.DatasetVersionExistsError` when ``out_dir`` exists
    and :class:`~backend.errors.DatasetSampleDamagedError` when a clip's bytes are not
    the recorded ones; in every failure nothing is left at ``out_dir``.
    """
    if not MIN_SHARD_BYTES <= shard_bytes <= MAX_SHARD_BYTES:
        raise DatasetVersionInvalidError(
            f"The shard target must be {MIN_SHARD_BYTES} ... {MAX_SHARD_BYTES} bytes, "
            f"got {shard_bytes}."
        )
    target = Path(out_dir)
    if target.exists():
        raise DatasetVersionExistsError(f"A dataset version is already stored at {target.name}.")
    shards = _plan(_validated(samples), shard_bytes)
    rows = [planned.row for shard in shards for planned in shard]
    manifest = manifest_jsonl(rows)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        entries = [
            _write_shard(staging / shard_name(index), index, shard)
            for index, shard in enumerate(shards)
        ]
        index = ShardIndex(
            format=FORMAT_VERSION,
            version_hash=hashlib.sha256(manifest).hexdigest(),
            samples=len(rows),
            shards=entries,
        )
        _write_file(staging / MANIFEST_JSONL_NAME, manifest)
        write_manifest_parquet(rows, staging / MANIFEST_PARQUET_NAME)
        _fsync_file(staging / MANIFEST_PARQUET_NAME)
        # The index goes last: a reader that finds it finds everything it lists.
        _write_file(staging / INDEX_NAME, index_json(index))
        _fsync_dir(staging)
        staging.chmod(0o755)
        if target.exists():
            raise DatasetVersionExistsError(
                f"A dataset version was stored at {target.name} while this one was packed."
            )
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    with contextlib.suppress(OSError):
        _fsync_dir(target.parent)
    return index


def remove_partials(out_dir: str | os.PathLike[str]) -> int:
    """Remove the staging directories that killed packs of ``out_dir`` left behind.

    Call it only while no pack of that version runs (at start-up, or before packing it
    again after a crash): a running pack's staging directory looks the same. Returns
    how many were removed.
    """
    target = Path(out_dir)
    pattern = str(target.parent / f"{glob.escape('.' + target.name)}.partial-*")
    removed = 0
    for found in glob.glob(pattern):
        path = Path(found)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            removed += 1
    return removed
