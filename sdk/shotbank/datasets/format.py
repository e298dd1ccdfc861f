"""The version format ``shotbank-shards/1``: manifest rows, shard index, version hash.

What a frozen dataset version is on disk and on the wire (``docs/api/datasets.md``). The
backend that writes versions (``backend.services.packing``) and the trainer's SDK that
reads them both use these models, so they agree by construction:

* :class:`SampleRecord` -- one accepted clip as a sample, before it is placed in a shard;
  :class:`ManifestRow` -- the same with the ``shard`` that holds it: one manifest row,
  and the ``<key>.json`` member of the sample;
* :class:`ShardIndex` (``index.json``) -- per shard its size, SHA-256, CID and key range,
  and per sample (:class:`SampleEntry`) the byte range of its tar members
  (:class:`MemberRange`), so one HTTP Range request fetches one sample;
* :func:`canonical_row_json`, :func:`manifest_jsonl` and :func:`version_hash` -- the
  canonical manifest and the hash that names the version (and goes on chain);
* :func:`write_manifest_parquet`, :func:`read_manifest_jsonl`,
  :func:`read_manifest_parquet`, :func:`manifest_table` and :func:`manifest_frame` -- the
  manifest as files and as an Arrow table / pandas frame for analysis.

Canonical JSON is RFC 8785 (JCS, :func:`shotbank.annotation.canonical.canonical_json_value`):
sorted keys, no white space, UTF-8, shortest round-trip numbers. It meets the doc's
"sorted keys, compact separators, UTF-8" and any JCS library (a browser, a contract
tool) recomputes the same bytes and the same version hash.

Only pydantic is needed at import time; the Arrow and pandas functions import pyarrow /
pandas when called and raise :class:`MissingExtraError` (install ``shotbank[data]``)
when they are missing.

Errors::

    ShotbankError
    └── DatasetError
        ├── DatasetFormatError (ValueError)   files or rows that break the format
        └── MissingExtraError (ImportError)   pyarrow / pandas not installed

Malformed single values (a key with a dot, a size over the limit, an address with a
wrong checksum) are refused by the models with pydantic's ``ValidationError``.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from eth_utils.address import to_checksum_address
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from shotbank.annotation.canonical import canonical_json_value
from shotbank.errors import ShotbankError

if TYPE_CHECKING:
    import pandas
    import pyarrow

__all__ = [
    "DEFAULT_SHARD_BYTES",
    "FORMAT_VERSION",
    "INDEX_NAME",
    "MANIFEST_COLUMNS",
    "MANIFEST_JSONL_NAME",
    "MANIFEST_PARQUET_NAME",
    "MAX_CLIP_BYTES",
    "MAX_INDEX_BYTES",
    "MAX_OBJECT_BYTES",
    "MAX_ROW_BYTES",
    "MAX_SAMPLES",
    "MAX_SHARDS",
    "MAX_SHARD_BYTES",
    "MEDIA_EXTENSIONS",
    "MIN_SHARD_BYTES",
    "NESTED_COLUMNS",
    "TAR_BLOCK",
    "TAR_TRAILER",
    "DatasetError",
    "DatasetFormatError",
    "ManifestRow",
    "MemberRange",
    "MissingExtraError",
    "SampleEntry",
    "SampleRecord",
    "ShardEntry",
    "ShardIndex",
    "canonical_row_json",
    "index_json",
    "manifest_frame",
    "manifest_jsonl",
    "manifest_table",
    "read_index",
    "read_manifest_jsonl",
    "read_manifest_parquet",
    "shard_name",
    "version_hash",
    "write_manifest_parquet",
]

#: The ``format`` of ``index.json``.
FORMAT_VERSION: Final = "shotbank-shards/1"
#: Default target size of a shard (``SHOTBANK_DATASET_SHARD_BYTES``): 512 MiB.
DEFAULT_SHARD_BYTES: Final = 512 * 1024**2
#: Smallest shard target accepted (tests pack with a few hundred KB).
MIN_SHARD_BYTES: Final = 16 * 1024
#: Largest shard target accepted.
MAX_SHARD_BYTES: Final = 64 * 1024**3
#: Largest clip a sample may hold: the backend's largest configurable upload (1 TiB).
MAX_CLIP_BYTES: Final = 1024**4
#: Most samples in one version.
MAX_SAMPLES: Final = 1_000_000
#: Most shards in one version: what six-digit shard names can number.
MAX_SHARDS: Final = 1_000_000
#: Largest canonical JSON of one manifest row (the ``<key>.json`` member).
MAX_ROW_BYTES: Final = 1024**2
#: Largest canonical JSON of ``media``, ``scores`` or ``licence`` in a row.
MAX_OBJECT_BYTES: Final = 64 * 1024
#: Largest ``index.json`` :func:`read_index` reads (about 250 bytes per sample).
MAX_INDEX_BYTES: Final = 512 * 1024**2
#: Largest possible byte offset in a shard: one oversized sample plus its headers.
_MAX_OFFSET: Final = MAX_CLIP_BYTES + MAX_SHARD_BYTES
#: Upper bound of a row's canonical JSON without its four objects (keys, ids, address,
#: time: about 420 bytes).
_SCALARS_BYTES: Final = 1024
#: Tar block size; every header and every member's padded data is a multiple of it.
TAR_BLOCK: Final = 512
#: End of a tar archive: two zero blocks (the packer writes exactly these, no padding
#: to a 10240-byte record).
TAR_TRAILER: Final = 2 * TAR_BLOCK
#: Container extensions a sample's media member may have (the probed container).
MEDIA_EXTENSIONS: Final = ("mp4", "mov", "webm", "mkv")
#: Every member extension a sample may have: the media, its row, separate audio.
_MEMBER_EXTENSIONS: Final = (*MEDIA_EXTENSIONS, "json", "flac")
#: The file names of a version's directory.
INDEX_NAME: Final = "index.json"
MANIFEST_JSONL_NAME: Final = "manifest.jsonl"
MANIFEST_PARQUET_NAME: Final = "manifest.parquet"
#: Manifest columns, in the doc's order (Parquet and Arrow tables use this order).
MANIFEST_COLUMNS: Final = (
    "key",
    "clip_id",
    "shard",
    "cid",
    "sha256",
    "size_bytes",
    "ext",
    "media",
    "annotation",
    "scores",
    "contributor",
    "licence",
    "accepted_at",
)
#: Columns holding JSON objects: canonical JSON strings in Parquet and Arrow tables.
NESTED_COLUMNS: Final = ("media", "annotation", "scores", "licence")

_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_DATA_EXTRA: Final = "shotbank[data]"


class DatasetError(ShotbankError):
    """Base of the dataset errors."""


class DatasetFormatError(DatasetError, ValueError):
    """A manifest, index or set of rows breaks the version format (the message says how)."""


class MissingExtraError(DatasetError, ImportError):
    """An optional package (pyarrow, pandas) is needed: install ``shotbank[data]``."""


def _checksum_address(value: str) -> str:
    # Mixed case must be the right EIP-55 checksum, so a mistyped address is refused
    # rather than credited with the sample (eth_utils alone accepts a wrong checksum).
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"not an address (0x and 40 hex digits): {value[:50]!r}")
    checksummed = str(to_checksum_address(value))
    digits = value[2:]
    if digits != digits.lower() and digits != digits.upper() and value != checksummed:
        raise ValueError(f"address {value!r} has a wrong EIP-55 checksum")
    return checksummed


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a time needs a time zone (naive times are ambiguous)")
    return value.astimezone(UTC)


def _format_utc(value: datetime) -> str:
    # One fixed form (always microseconds, always "Z"), so a row read back and written
    # again is byte-identical and the version hash does not depend on who wrote it.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _small_object(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
    if len(_canonical(value)) > MAX_OBJECT_BYTES:
        raise ValueError(f"the object's canonical JSON exceeds {MAX_OBJECT_BYTES} bytes")
    return value


class _NeedsReferenceError(Exception):
    """A value the fast encoder cannot prove it writes as RFC 8785 does."""


#: Below this magnitude an integral float is written by RFC 8785 as the integer's digits.
_EXACT_FLOAT: Final = 2.0**53


def _prepared(value: object) -> object:
    """``value`` with integral floats as ints, or :class:`_NeedsReferenceError`.

    For what passes, ``json.dumps(sort_keys=True)`` writes exactly the RFC 8785 bytes:
    a float without an exponent in ``repr`` has the same digits in ECMAScript's form;
    keys without astral characters sort the same by code point as by UTF-16 unit.
    """
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return value
    if isinstance(value, dict):
        prepared: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not (key.isascii() or max(key) <= "\uffff"):
                raise _NeedsReferenceError
            prepared[key] = _prepared(item)
        return prepared
    if isinstance(value, list | tuple):
        return [_prepared(item) for item in value]
    if isinstance(value, int):
        if abs(value) >= _EXACT_FLOAT:
            raise _NeedsReferenceError
        return value
    if isinstance(value, float):
        if value.is_integer():
            if abs(value) < _EXACT_FLOAT:
                return int(value)
            # 2**53 and up: ECMAScript writes the digits without ".0", repr keeps it.
            raise _NeedsReferenceError
        if "e" in repr(value) or "n" in repr(value):  # exponent, inf or nan
            raise _NeedsReferenceError
        return value
    raise _NeedsReferenceError


def _canonical(value: object) -> bytes:
    """RFC 8785 bytes of a JSON-like value, as ``canonical_json_value`` writes them.

    Manifests hold up to a million rows, each encoded more than once (validation, the
    line, the row member), so the common case goes through the C JSON encoder: about
    ten times faster. Anything it cannot prove equal is left to the reference encoder.
    """
    try:
        try:
            text = json.dumps(
                _prepared(value),
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
            )
        except (_NeedsReferenceError, RecursionError):
            return canonical_json_value(value)
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate has no UTF-8 form
        raise ValueError("text that is not valid Unicode has no canonical JSON") from exc
    except (TypeError, RecursionError) as exc:
        raise ValueError(f"not a JSON value: {exc}") from exc


#: A sample key: the clip id, 32 lower-case hex digits (no dots, as WebDataset needs).
SampleKey = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
#: A content CID as the backend computes them: CIDv1 base32, raw or dag-pb, sha2-256.
ContentCid = Annotated[str, Field(pattern=r"^baf[ky][a-z2-7]{55}$")]
#: SHA-256 as 64 lower-case hex digits.
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
#: A shard file name, ``shard-{i:06d}.tar``.
ShardName = Annotated[str, Field(pattern=r"^shard-[0-9]{6}\.tar$")]
#: An EIP-55 checksum address (any case on input if unambiguous).
Address = Annotated[str, Field(max_length=42), AfterValidator(_checksum_address)]
#: A UTC time, written as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.
UtcTime = Annotated[
    datetime,
    AfterValidator(_utc),
    PlainSerializer(_format_utc, return_type=str, when_used="json"),
]
#: A JSON object of at most :data:`MAX_OBJECT_BYTES` canonical bytes.
SmallObject = Annotated[dict[str, JsonValue], AfterValidator(_small_object)]
_Offset = Annotated[int, Field(strict=True, ge=0, le=_MAX_OFFSET)]
MemberExtension = Literal["mp4", "mov", "webm", "mkv", "json", "flac"]
MediaExtension = Literal["mp4", "mov", "webm", "mkv"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def shard_name(index: int) -> str:
    """The file name of shard ``index``: ``shard-{index:06d}.tar``."""
    if not 0 <= index < MAX_SHARDS:
        raise DatasetFormatError(f"a shard index is 0 ... {MAX_SHARDS - 1}, got {index}")
    return f"shard-{index:06d}.tar"


class SampleRecord(_Model):
    """One accepted clip as a sample, before it is placed in a shard.

    Every field of a :class:`ManifestRow` but ``shard``; the packer takes these and
    places them (:meth:`place`).
    """

    key: SampleKey
    """The clip id: 32 lower-case hex digits; the sample's tar member names start with it."""
    clip_id: SampleKey
    """The clip id (same as ``key``)."""
    cid: ContentCid
    """Content CID (CIDv1, raw leaves) of the clip's bytes."""
    sha256: Sha256Hex
    """SHA-256 of the clip's bytes."""
    size_bytes: int = Field(strict=True, ge=1, le=MAX_CLIP_BYTES)
    """Byte size of the clip."""
    ext: MediaExtension
    """Extension of the media member, from the probed container."""
    media: SmallObject
    """Probed facts: duration, width, height, fps, codecs, audio."""
    annotation: dict[str, JsonValue]
    """The full annotation document (schema v1)."""
    scores: SmallObject
    """The consensus scores: quality, components, flags, reasons."""
    contributor: Address
    """Checksum address of the contributor."""
    licence: SmallObject
    """Licence terms (the annotation's ``rights``)."""
    accepted_at: UtcTime
    """Time of the consensus decision (UTC)."""

    @model_validator(mode="after")
    def _consistent(self) -> SampleRecord:
        if self.clip_id != self.key:
            raise ValueError("clip_id must equal key (a sample's key is its clip id)")
        # The objects are encoded as given (a NaN would be dumped as null further on);
        # the scalar fields take well under _SCALARS_BYTES, so this bounds the row.
        size = _SCALARS_BYTES + sum(
            len(_canonical(value))
            for value in (self.annotation, self.media, self.scores, self.licence)
        )
        if size > MAX_ROW_BYTES:
            raise ValueError(f"the row's canonical JSON exceeds {MAX_ROW_BYTES} bytes")
        return self

    def place(self, shard: str) -> ManifestRow:
        """This sample's manifest row, held by the shard named ``shard``."""
        return ManifestRow.model_validate({**dict(self), "shard": shard})


class ManifestRow(SampleRecord):
    """One row of a version's manifest, and the ``<key>.json`` member of its sample."""

    shard: ShardName
    """Name of the shard that holds the sample."""


class MemberRange(_Model):
    """Where one tar member's data lies in its shard: ``[offset, offset + size)``."""

    offset: _Offset
    """Byte offset of the member's data (after its header) from the shard's start."""
    size: _Offset
    """Byte size of the member's data (without tar padding)."""


def _padded(size: int) -> int:
    return -(-size // TAR_BLOCK) * TAR_BLOCK


class SampleEntry(_Model):
    """One sample in the shard index: its byte span and its members' data ranges.

    ``[offset, offset + size)`` covers the sample's member headers, data and padding: a
    valid tar fragment that one HTTP Range request fetches.
    """

    key: SampleKey
    """The sample key (clip id)."""
    offset: _Offset
    """Byte offset of the sample's first header from the shard's start."""
    size: _Offset
    """Byte size of the span: headers, data and padding of all its members."""
    members: dict[MemberExtension, MemberRange] = Field(min_length=2, max_length=3)
    """Data range per member extension (``mp4``, ``json``...), in tar order."""

    @model_validator(mode="after")
    def _layout(self) -> SampleEntry:
        media = [ext for ext in self.members if ext in MEDIA_EXTENSIONS]
        if len(media) != 1 or "json" not in self.members:
            raise ValueError("a sample has exactly one media member and one json member")
        if self.offset % TAR_BLOCK or self.size % TAR_BLOCK:
            raise ValueError(f"a sample's offset and size are multiples of {TAR_BLOCK}")
        in_file = sorted(self.members.items(), key=lambda item: item[1].offset)
        if in_file[0][0] != media[0] or in_file[1][0] != "json":
            raise ValueError("a sample's media member comes first, its json member second")
        position = self.offset
        # Each member: at least one header block, then its data, padded to a block.
        for ext, member in in_file:
            if member.offset % TAR_BLOCK or member.offset < position + TAR_BLOCK:
                raise ValueError(f"member {ext!r} does not start after a header block")
            position = member.offset + _padded(member.size)
        if position != self.offset + self.size:
            raise ValueError("the members do not fill the sample's span exactly")
        return self

    @property
    def media_ext(self) -> str:
        """The extension of the sample's media member."""
        return next(ext for ext in self.members if ext in MEDIA_EXTENSIONS)


class ShardEntry(_Model):
    """One shard in the index: file facts, key range and its samples in tar order."""

    name: ShardName
    """File name, ``shard-{index:06d}.tar``."""
    index: int = Field(strict=True, ge=0, lt=MAX_SHARDS)
    """Position of the shard in the version, from 0."""
    size: _Offset
    """Byte size of the shard file."""
    sha256: Sha256Hex
    """SHA-256 of the shard file."""
    cid: ContentCid
    """CIDv1 (raw leaves, as ``ipfs add --cid-version 1 --raw-leaves``) of the shard file."""
    first_key: SampleKey
    """Key of the shard's first sample."""
    last_key: SampleKey
    """Key of the shard's last sample."""
    count: int = Field(strict=True, ge=1, le=MAX_SAMPLES)
    """Number of samples in the shard."""
    samples: list[SampleEntry] = Field(min_length=1, max_length=MAX_SAMPLES)
    """The samples, in ascending key order, which is their order in the file."""

    @model_validator(mode="after")
    def _consistent(self) -> ShardEntry:
        if self.name != f"shard-{self.index:06d}.tar":
            raise ValueError(f"shard {self.index} must be named shard-{self.index:06d}.tar")
        if self.count != len(self.samples):
            raise ValueError("count must equal the number of samples")
        if (self.first_key, self.last_key) != (self.samples[0].key, self.samples[-1].key):
            raise ValueError("first_key and last_key must be the first and last sample's")
        position = 0
        previous = ""
        for sample in self.samples:
            if sample.key <= previous:
                raise ValueError("samples must be in strictly ascending key order")
            if sample.offset != position:
                raise ValueError("samples must follow each other with no gap, from offset 0")
            previous, position = sample.key, sample.offset + sample.size
        if self.size < position + TAR_TRAILER:
            raise ValueError("the shard is too small for its samples and the tar trailer")
        return self


class ShardIndex(_Model):
    """``index.json``: the shards of one version and where every sample lies in them."""

    format: Literal["shotbank-shards/1"]
    """Format tag, :data:`FORMAT_VERSION`."""
    version_hash: Sha256Hex
    """SHA-256 of the version's ``manifest.jsonl`` (:func:`version_hash`)."""
    samples: int = Field(strict=True, ge=1, le=MAX_SAMPLES)
    """Number of samples in the version."""
    shards: list[ShardEntry] = Field(min_length=1, max_length=MAX_SHARDS)
    """The shards, by index."""

    @model_validator(mode="after")
    def _consistent(self) -> ShardIndex:
        previous = ""
        total = 0
        for position, shard in enumerate(self.shards):
            if shard.index != position:
                raise ValueError(f"shards must be listed by index: {position} is {shard.index}")
            if shard.first_key <= previous:
                raise ValueError("keys must ascend across the shards")
            previous = shard.last_key
            total += shard.count
        if total != self.samples:
            raise ValueError("samples must equal the sum of the shards' counts")
        return self

    def entries(self) -> Iterator[tuple[ShardEntry, SampleEntry]]:
        """Every sample with its shard, in key order."""
        for shard in self.shards:
            for sample in shard.samples:
                yield shard, sample


def canonical_row_json(row: SampleRecord) -> bytes:
    """The row as canonical JSON (RFC 8785): the ``<key>.json`` member, a manifest line."""
    return _canonical(row.model_dump(mode="json"))


def _sorted_unique(rows: Iterable[ManifestRow]) -> list[ManifestRow]:
    ordered: list[ManifestRow] = []
    for row in rows:
        if len(ordered) >= MAX_SAMPLES:
            raise DatasetFormatError(f"a version holds at most {MAX_SAMPLES} samples")
        ordered.append(row)
    ordered.sort(key=lambda row: row.key)
    for before, after in itertools.pairwise(ordered):
        if before.key == after.key:
            raise DatasetFormatError(f"sample key {after.key} appears twice")
    return ordered


def manifest_jsonl(rows: Iterable[ManifestRow]) -> bytes:
    """``manifest.jsonl``: the rows sorted by key, canonical JSON, one ``\\n`` after each.

    Rows may come in any order; a key given twice raises :class:`DatasetFormatError`.
    """
    return b"".join(canonical_row_json(row) + b"\n" for row in _sorted_unique(rows))


def version_hash(rows: Iterable[ManifestRow]) -> str:
    """SHA-256 (64 lower-case hex digits) of :func:`manifest_jsonl`: the version's name
    and its manifest hash on chain (as ``bytes32``)."""
    return hashlib.sha256(manifest_jsonl(rows)).hexdigest()


def read_manifest_jsonl(
    path: str | os.PathLike[str], *, expected_hash: str | None = None
) -> list[ManifestRow]:
    """The rows of a ``manifest.jsonl``, checked line by line.

    Every line must be a valid row in canonical form (so the file's SHA-256 is the
    version hash of its rows), keys strictly ascending, the file ending in ``\\n``. With
    ``expected_hash`` the file's SHA-256 must equal it. Anything else raises
    :class:`DatasetFormatError` naming the line.
    """
    rows: list[ManifestRow] = []
    digest = hashlib.sha256()
    previous = ""
    with open(path, "rb") as handle:
        number = 0
        while line := handle.readline(MAX_ROW_BYTES + 2):
            number += 1
            digest.update(line)
            if not line.endswith(b"\n"):
                raise DatasetFormatError(
                    f"line {number}: too long or not ended by a newline "
                    f"(a row has at most {MAX_ROW_BYTES} bytes)"
                )
            if number > MAX_SAMPLES:
                raise DatasetFormatError(f"a manifest holds at most {MAX_SAMPLES} rows")
            try:
                row = ManifestRow.model_validate_json(line)
            except ValidationError as exc:
                raise DatasetFormatError(f"line {number}: not a valid manifest row: {exc}") from exc
            if canonical_row_json(row) + b"\n" != line:
                raise DatasetFormatError(f"line {number}: the row is not in canonical form")
            if row.key <= previous:
                raise DatasetFormatError(f"line {number}: keys must be strictly ascending")
            previous = row.key
            rows.append(row)
    if expected_hash is not None and digest.hexdigest() != expected_hash:
        raise DatasetFormatError(
            f"the manifest's SHA-256 is {digest.hexdigest()}, expected {expected_hash}"
        )
    return rows


def _import_optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingExtraError(
            f"this needs the {name} package: install the SDK's data extra "
            f"(pip install '{_DATA_EXTRA}')"
        ) from exc


def _arrow_schema(pa: Any) -> Any:
    return pa.schema(
        [
            (column, pa.int64() if column == "size_bytes" else pa.string())
            for column in MANIFEST_COLUMNS
        ]
    )


def _rows_table(rows: Sequence[ManifestRow]) -> pyarrow.Table:
    pa = _import_optional("pyarrow")
    columns: dict[str, list[Any]] = {column: [] for column in MANIFEST_COLUMNS}
    for row in rows:
        dumped = row.model_dump(mode="json")
        for column in MANIFEST_COLUMNS:
            value = dumped[column]
            if column in NESTED_COLUMNS:
                value = _canonical(value).decode("utf-8")
            columns[column].append(value)
    return pa.table(columns, schema=_arrow_schema(pa))


def write_manifest_parquet(rows: Iterable[ManifestRow], path: str | os.PathLike[str]) -> None:
    """Write ``manifest.parquet``: the rows sorted by key, the doc's columns in order,
    nested objects as canonical JSON strings. Needs pyarrow (``shotbank[data]``)."""
    parquet = _import_optional("pyarrow.parquet")
    table = _rows_table(_sorted_unique(rows))
    # No statistics or dictionary pages to speak of: the file is an export of the rows.
    parquet.write_table(table, os.fspath(path), compression="zstd")


def _table_rows(table: Any) -> list[ManifestRow]:
    rows: list[ManifestRow] = []
    for position, record in enumerate(table.to_pylist()):
        try:
            values = {
                column: json.loads(value) if column in NESTED_COLUMNS else value
                for column, value in record.items()
            }
            rows.append(ManifestRow.model_validate(values))
        except (ValidationError, ValueError, TypeError) as exc:
            raise DatasetFormatError(f"row {position}: not a valid manifest row: {exc}") from exc
    return rows


def _read_parquet_table(path: str | os.PathLike[str]) -> pyarrow.Table:
    pa = _import_optional("pyarrow")
    parquet = _import_optional("pyarrow.parquet")
    try:
        metadata = parquet.read_metadata(os.fspath(path))
    except (OSError, pa.ArrowException) as exc:
        raise DatasetFormatError(f"not a Parquet file: {exc}") from exc
    if metadata.num_rows > MAX_SAMPLES:
        raise DatasetFormatError(f"a manifest holds at most {MAX_SAMPLES} rows")
    table = parquet.read_table(os.fspath(path))
    if not table.schema.equals(_arrow_schema(pa)):
        raise DatasetFormatError(
            f"the Parquet manifest's columns are not {', '.join(MANIFEST_COLUMNS)} "
            f"(got {table.schema.names})"
        )
    return table


def read_manifest_parquet(path: str | os.PathLike[str]) -> list[ManifestRow]:
    """The rows of a ``manifest.parquet``, validated, in file order (ascending keys).

    Needs pyarrow (``shotbank[data]``).
    """
    rows = _table_rows(_read_parquet_table(path))
    ordered = _sorted_unique(rows)
    if ordered != rows:
        raise DatasetFormatError("the Parquet manifest's rows are not in ascending key order")
    return rows


def manifest_table(path: str | os.PathLike[str]) -> pyarrow.Table:
    """A version's manifest as an Arrow table, from ``manifest.parquet`` or ``.jsonl``.

    The columns are :data:`MANIFEST_COLUMNS`; ``size_bytes`` is ``int64``, every other
    column a string, nested objects (:data:`NESTED_COLUMNS`) canonical JSON. A JSON
    Lines file is checked row by row (:func:`read_manifest_jsonl`) first. Needs pyarrow
    (``shotbank[data]``).
    """
    if Path(path).suffix == ".parquet":
        return _read_parquet_table(path)
    return _rows_table(read_manifest_jsonl(path))


def manifest_frame(path: str | os.PathLike[str], *, decode_nested: bool = True) -> pandas.DataFrame:
    """A version's manifest as a pandas DataFrame, for analysis.

    The columns of :func:`manifest_table`; with ``decode_nested`` (the default) the
    nested columns hold Python dicts rather than JSON strings, so that e.g.
    ``frame.scores.map(lambda s: s["quality"])`` works. Needs pandas and pyarrow
    (``shotbank[data]``).
    """
    _import_optional("pandas")
    frame = manifest_table(path).to_pandas()
    if decode_nested:
        for column in NESTED_COLUMNS:
            frame[column] = frame[column].map(json.loads)
    return frame


def index_json(index: ShardIndex) -> bytes:
    """``index.json``'s bytes: the index as compact JSON in field order, plus ``\\n``."""
    return index.model_dump_json().encode("utf-8") + b"\n"


def read_index(path: str | os.PathLike[str]) -> ShardIndex:
    """Read and validate an ``index.json`` (at most :data:`MAX_INDEX_BYTES`)."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_INDEX_BYTES + 1)
    if len(data) > MAX_INDEX_BYTES:
        raise DatasetFormatError(f"an index.json has at most {MAX_INDEX_BYTES} bytes")
    try:
        return ShardIndex.model_validate_json(data)
    except ValidationError as exc:
        raise DatasetFormatError(f"not a valid shard index: {exc}") from exc
