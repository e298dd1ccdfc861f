"""The version format: manifest rows, canonical manifest, version hash, Parquet/Arrow/pandas
forms and the shard index's consistency rules (docs/api/datasets.md)."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import shotbank.datasets
from shotbank.annotation.canonical import canonical_json_value
from shotbank.datasets import (
    FORMAT_VERSION,
    MANIFEST_COLUMNS,
    MAX_CLIP_BYTES,
    MAX_ROW_BYTES,
    DatasetFormatError,
    ManifestRow,
    MemberRange,
    SampleEntry,
    SampleRecord,
    ShardEntry,
    ShardIndex,
    canonical_row_json,
    index_json,
    manifest_frame,
    manifest_jsonl,
    manifest_table,
    read_index,
    read_manifest_jsonl,
    read_manifest_parquet,
    shard_name,
    version_hash,
    write_manifest_parquet,
)

from .builders import CONTRIBUTORS, clip_key, record_for_bytes

SHA = "ab" * 32
CID = "bafkreielbokdwvorei3ygsxpyzpp4zerefwxa3ww7gwhxs2wedz4tkfege"


def rows(count: int = 5) -> list[ManifestRow]:
    """``count`` valid rows over distinct small byte strings, spread over two shards."""
    return [
        record_for_bytes(number, f"clip bytes {number}".encode() * (number + 1)).place(
            shard_name(number % 2)
        )
        for number in range(count)
    ]


def fields(**changes: Any) -> dict[str, Any]:
    """The fields of a valid record, with ``changes`` applied."""
    data = dict(record_for_bytes(1, b"some clip"))
    data.update(changes)
    return data


# --- rows -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "0123456789abcdef0123456789abcde.",  # a dot splits WebDataset keys
        "0123456789abcdef/123456789abcdef",  # a slash makes a directory member
        "0123456789ABCDEF0123456789ABCDEF",  # upper case is not a clip id
        "0123456789abcdef",  # too short
        "../../etc/passwd0123456789abcdef",
        "",
    ],
)
def test_a_key_that_is_not_a_clip_id_is_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="key"):
        SampleRecord.model_validate(fields(key=key, clip_id=key))


def test_clip_id_must_equal_key() -> None:
    with pytest.raises(ValidationError, match="clip_id must equal key"):
        SampleRecord.model_validate(fields(clip_id=clip_key(99)))


@pytest.mark.parametrize("size", [0, -1, MAX_CLIP_BYTES + 1, 2**80, True, 1.5, "12"])
def test_absurd_or_mistyped_sizes_are_refused(size: object) -> None:
    with pytest.raises(ValidationError, match="size_bytes"):
        SampleRecord.model_validate(fields(size_bytes=size))


@pytest.mark.parametrize("ext", ["json", "flac", "tar", "MP4", "mp4/../x", ""])
def test_media_extension_must_be_a_container(ext: str) -> None:
    with pytest.raises(ValidationError, match="ext"):
        SampleRecord.model_validate(fields(ext=ext))


def test_contributor_is_stored_checksummed_and_a_wrong_checksum_is_refused() -> None:
    record = SampleRecord.model_validate(fields(contributor="0x" + CONTRIBUTORS[0][2:].upper()))
    assert record.contributor == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    wrong = "0x70997970c51812dc3A010C7d01b50e0d17dc79C8"
    with pytest.raises(ValidationError, match="checksum"):
        SampleRecord.model_validate(fields(contributor=wrong))
    with pytest.raises(ValidationError, match="not an address"):
        SampleRecord.model_validate(fields(contributor="0x1234"))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cid", "QmXhRcvCfE4h3abAFmkZYrdk9qhfmJkGLrFmJ7CwneHFKv"),
        ("cid", "bafk"),
        ("sha256", "AB" * 32),
    ],
)
def test_content_identifiers_must_be_the_backend_forms(name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=name):
        SampleRecord.model_validate(fields(**{name: value}))


def test_accepted_at_needs_a_zone_and_is_written_in_one_utc_form() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        SampleRecord.model_validate(fields(accepted_at=datetime(2026, 1, 2, 3, 4, 5)))
    plus_two = timezone(timedelta(hours=2))
    record = SampleRecord.model_validate(
        fields(accepted_at=datetime(2026, 1, 2, 5, 4, 5, tzinfo=plus_two))
    )
    assert record.model_dump(mode="json")["accepted_at"] == "2026-01-02T03:04:05.000000Z"
    again = SampleRecord.model_validate_json(canonical_row_json(record))
    assert canonical_row_json(again) == canonical_row_json(record)


def test_unknown_fields_and_non_json_values_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        SampleRecord.model_validate(fields(uploader_ip="10.0.0.1"))
    for nested in ("scores", "media", "licence", "annotation"):
        bad = {**fields()[nested], "value": float("nan")}
        with pytest.raises(ValidationError, match="no representation"):
            SampleRecord.model_validate(fields(**{nested: bad}))
    with pytest.raises(ValidationError, match="Unicode"):
        SampleRecord.model_validate(fields(media={"note": "\ud800"}))


def test_oversized_objects_and_rows_are_refused() -> None:
    with pytest.raises(ValidationError, match="65536 bytes"):
        SampleRecord.model_validate(fields(scores={"reasons": ["x" * 70_000]}))
    annotation = dict(fields()["annotation"])
    annotation["padding"] = "y" * MAX_ROW_BYTES
    with pytest.raises(ValidationError, match=f"{MAX_ROW_BYTES} bytes"):
        SampleRecord.model_validate(fields(annotation=annotation))


def test_a_row_names_a_well_formed_shard() -> None:
    record = record_for_bytes(1, b"x")
    assert record.place("shard-000042.tar").shard == "shard-000042.tar"
    for bad in ("shard-42.tar", "../shard-000001.tar", "shard-000001.tar.gz"):
        with pytest.raises(ValidationError, match="shard"):
            record.place(bad)
    with pytest.raises(DatasetFormatError):
        shard_name(1_000_000)


# --- canonical manifest and version hash ---------------------------------------------------


def test_row_json_is_rfc8785_canonical_utf8_and_round_trips() -> None:
    row = rows(1)[0]
    data = canonical_row_json(row)
    decoded = json.loads(data)
    assert data == canonical_json_value(decoded)
    assert list(decoded) == sorted(decoded)
    assert b" " not in data.replace(b"waves roll onto an empty beach", b"")[:60]
    assert "«été»".encode() in data  # UTF-8, not \\u escapes
    assert ManifestRow.model_validate_json(data) == row
    assert set(decoded) == set(MANIFEST_COLUMNS)


#: JSON values that stress RFC 8785: astral and private-use keys (UTF-16 order differs
#: from code-point order), floats with exponents, integral floats, -0.0, big integers.
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=6)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e16, 1e21, 2.0**60, -0.0, 5e-324, 1e-7, 123.0])
    | _TEXT,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            _TEXT | st.sampled_from(["\U0001f600", "\ue000", "a"]), children, max_size=4
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
@example({"\ue000": 1, "\U0001f600": 2})
@example([1e21, 2.0**60, -0.0, 1.5e-7, 2**53])
@example(9007199254740992.0)
def test_row_json_equals_the_reference_rfc8785_encoder(value: Any) -> None:
    reference: bytes | None
    try:
        reference = canonical_json_value({"value": value})
    except ValueError:
        reference = None
    try:
        record = SampleRecord.model_validate(fields(media={"value": value}))
    except ValidationError:
        assert reference is None  # refused exactly when RFC 8785 has no form for it
        return
    assert reference is not None
    dumped = record.model_dump(mode="json")
    assert canonical_row_json(record) == canonical_json_value(dumped)
    assert canonical_json_value(dumped["media"]) == reference


def test_manifest_is_sorted_by_key_with_a_newline_after_every_row() -> None:
    given = rows(6)
    data = manifest_jsonl(given)
    lines = data.split(b"\n")
    assert lines[-1] == b""
    keys = [json.loads(line)["key"] for line in lines[:-1]]
    assert keys == sorted(row.key for row in given)
    assert version_hash(given) == hashlib.sha256(data).hexdigest()


def test_version_hash_is_stable_under_input_order() -> None:
    given = rows(5)
    expected = version_hash(given)
    for order in itertools.islice(itertools.permutations(given), 0, 120, 7):
        assert version_hash(order) == expected
    assert version_hash(reversed(given)) == expected


def test_version_hash_changes_with_any_field() -> None:
    given = rows(3)
    baseline = version_hash(given)
    changed = given[1].model_copy(update={"scores": {"quality": 0.1}})
    assert version_hash([given[0], changed, given[2]]) != baseline
    moved = given[1].place("shard-000007.tar")
    assert version_hash([given[0], moved, given[2]]) != baseline


def test_a_key_given_twice_is_refused() -> None:
    given = rows(3)
    with pytest.raises(DatasetFormatError, match="appears twice"):
        manifest_jsonl([*given, given[1]])


def test_manifest_jsonl_file_round_trips_and_checks_its_hash(tmp_path: Path) -> None:
    given = rows(4)
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(manifest_jsonl(given))
    assert read_manifest_jsonl(path, expected_hash=version_hash(given)) == sorted(
        given, key=lambda row: row.key
    )
    with pytest.raises(DatasetFormatError, match="expected"):
        read_manifest_jsonl(path, expected_hash="00" * 32)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda lines: [json.dumps(json.loads(lines[0])).encode(), *lines[1:]], "canonical"),
        (lambda lines: [lines[1], lines[0], *lines[2:]], "ascending"),
        (lambda lines: [lines[0], lines[0], *lines[1:]], "ascending"),
        (lambda lines: [b'{"key": "nope"}', *lines], "not a valid manifest row"),
        (lambda lines: [b"x" * (MAX_ROW_BYTES + 5), *lines], "too long"),
    ],
)
def test_a_tampered_manifest_file_is_refused_naming_the_line(
    tmp_path: Path, mangle: Any, message: str
) -> None:
    lines = manifest_jsonl(rows(3)).split(b"\n")[:-1]
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in mangle(lines)))
    with pytest.raises(DatasetFormatError, match=f"line 1?.*{message}|{message}"):
        read_manifest_jsonl(path)


def test_a_manifest_without_its_final_newline_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(manifest_jsonl(rows(2))[:-1])
    with pytest.raises(DatasetFormatError, match="line 2: too long or not ended"):
        read_manifest_jsonl(path)


# --- Parquet, Arrow, pandas -------------------------------------------------------------


def test_parquet_and_jsonl_hold_the_same_rows_and_table(tmp_path: Path) -> None:
    given = rows(7)
    random.Random(3).shuffle(given)
    jsonl, parquet = tmp_path / "manifest.jsonl", tmp_path / "manifest.parquet"
    jsonl.write_bytes(manifest_jsonl(given))
    write_manifest_parquet(given, parquet)
    assert read_manifest_parquet(parquet) == read_manifest_jsonl(jsonl)
    table = manifest_table(parquet)
    assert table.equals(manifest_table(jsonl))
    assert table.schema.names == list(MANIFEST_COLUMNS)
    assert table.schema.field("size_bytes").type == pa.int64()
    assert table.column("key").to_pylist() == sorted(row.key for row in given)
    scores = json.loads(table.column("scores")[0].as_py())
    assert scores["quality"] == 0.75


def test_manifest_frame_is_for_analysis_with_nested_objects_decoded(tmp_path: Path) -> None:
    given = rows(6)
    path = tmp_path / "manifest.parquet"
    write_manifest_parquet(given, path)
    frame = manifest_frame(path)
    assert list(frame.columns) == list(MANIFEST_COLUMNS)
    assert len(frame) == 6
    assert frame["size_bytes"].sum() == sum(row.size_bytes for row in given)
    assert frame["annotation"].map(lambda a: a["camera"]["movement"]).tolist()[0] in {
        "static",
        "pan",
        "tilt",
        "dolly",
        "truck",
    }
    per_contributor = frame.groupby("contributor")["key"].count().to_dict()
    assert sum(per_contributor.values()) == 6
    raw = manifest_frame(path, decode_nested=False)
    assert isinstance(raw["media"][0], str)


def test_a_parquet_file_with_other_columns_or_bad_rows_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.parquet"
    pq.write_table(pa.table({"key": ["a"]}), path)
    with pytest.raises(DatasetFormatError, match="columns"):
        manifest_table(path)
    write_manifest_parquet(rows(2), path)
    table = pq.read_table(path)
    bad = table.set_column(0, "key", pa.array(["not a key", table.column("key")[1].as_py()]))
    pq.write_table(bad, path)
    with pytest.raises(DatasetFormatError, match="row 0"):
        read_manifest_parquet(path)
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DatasetFormatError, match="not a Parquet file"):
        manifest_table(path)


def test_importing_the_package_needs_neither_pyarrow_nor_pandas() -> None:
    code = (
        "import sys; import shotbank.datasets; "
        "print(','.join(m for m in ('pyarrow', 'pandas', 'torch', 'backend') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_without_pyarrow_the_error_names_the_data_extra(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(manifest_jsonl(rows(1)))
    code = (
        "import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.parquet'] = None\n"
        "from shotbank.datasets import MissingExtraError, manifest_table\n"
        "try:\n"
        f"    manifest_table({str(path)!r})\n"
        "except MissingExtraError as exc:\n"
        "    print(isinstance(exc, ImportError), exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("True ")
    assert "shotbank[data]" in done.stdout


# --- shard index ------------------------------------------------------------------------


def padded(size: int) -> int:
    return -(-size // 512) * 512


def sample_entry(key: str, offset: int, media: int = 1000, row: int = 300) -> SampleEntry:
    """A sample laid out as the packer lays it out: header, media, header, row."""
    media_at = offset + 512
    json_at = media_at + padded(media) + 512
    return SampleEntry(
        key=key,
        offset=offset,
        size=json_at + padded(row) - offset,
        members={
            "mp4": MemberRange(offset=media_at, size=media),
            "json": MemberRange(offset=json_at, size=row),
        },
    )


def shard_entry(index: int, keys: list[str]) -> ShardEntry:
    samples: list[SampleEntry] = []
    position = 0
    for key in keys:
        samples.append(sample_entry(key, position))
        position += samples[-1].size
    return ShardEntry(
        name=shard_name(index),
        index=index,
        size=position + 1024,
        sha256=SHA,
        cid=CID,
        first_key=keys[0],
        last_key=keys[-1],
        count=len(keys),
        samples=samples,
    )


def index_of(*shards: ShardEntry) -> ShardIndex:
    return ShardIndex(
        format=FORMAT_VERSION,
        version_hash=SHA,
        samples=sum(shard.count for shard in shards),
        shards=list(shards),
    )


KEYS = sorted(clip_key(number) for number in range(6))


def test_a_consistent_index_round_trips_through_index_json(tmp_path: Path) -> None:
    index = index_of(shard_entry(0, KEYS[:4]), shard_entry(1, KEYS[4:]))
    path = tmp_path / "index.json"
    path.write_bytes(index_json(index))
    assert read_index(path) == index
    assert json.loads(path.read_bytes())["format"] == "shotbank-shards/1"
    assert [sample.key for _, sample in index.entries()] == KEYS
    assert index.shards[0].samples[0].media_ext == "mp4"


def test_sample_entries_must_describe_a_tar_fragment() -> None:
    good = sample_entry(KEYS[0], 0)
    members = dict(good.members)
    with pytest.raises(ValidationError, match="one media member and one json member"):
        SampleEntry(
            key=KEYS[0],
            offset=0,
            size=good.size,
            members={"mp4": members["mp4"], "flac": members["json"]},
        )
    with pytest.raises(ValidationError, match="at least 2 items"):
        SampleEntry(key=KEYS[0], offset=0, size=good.size, members={"mp4": members["mp4"]})
    with pytest.raises(ValidationError, match="one media member"):
        SampleEntry(
            key=KEYS[0],
            offset=0,
            size=good.size,
            members={"mp4": members["mp4"], "mkv": members["mp4"], "json": members["json"]},
        )
    with pytest.raises(ValidationError, match="media member comes first"):
        SampleEntry(
            key=KEYS[0],
            offset=0,
            size=good.size,
            members={
                "mp4": MemberRange(offset=members["json"].offset, size=members["mp4"].size),
                "json": MemberRange(offset=512, size=members["json"].size),
            },
        )
    with pytest.raises(ValidationError, match="multiples of 512"):
        SampleEntry(key=KEYS[0], offset=100, size=good.size, members=members)
    shifted = MemberRange(offset=members["json"].offset - 512, size=members["json"].size)
    with pytest.raises(ValidationError, match="header block"):
        SampleEntry(key=KEYS[0], offset=0, size=good.size, members={**members, "json": shifted})
    with pytest.raises(ValidationError, match="fill the sample's span"):
        SampleEntry(key=KEYS[0], offset=0, size=good.size + 512, members=members)
    with pytest.raises(ValidationError, match="members"):
        SampleEntry.model_validate(
            {
                "key": KEYS[0],
                "offset": 0,
                "size": good.size,
                "members": {**members, "txt": members["json"]},
            }
        )


def test_shard_entries_must_be_consistent() -> None:
    shard = shard_entry(0, KEYS[:3])
    data = shard.model_dump()
    changes: list[tuple[dict[str, Any], str]] = [
        ({"name": "shard-000001.tar"}, "must be named"),
        ({"count": 2}, "count must equal"),
        ({"last_key": KEYS[1]}, "first_key and last_key"),
        ({"size": shard.size - 1}, "too small"),
        ({"cid": "QmXhRcvCfE4h3abAFmkZYrdk9qhfmJkGLrFmJ7CwneHFKv"}, "cid"),
    ]
    for change, message in changes:
        with pytest.raises(ValidationError, match=message):
            ShardEntry.model_validate({**data, **change})
    with pytest.raises(ValidationError, match="ascending"):
        shard_entry(0, [KEYS[1], KEYS[0], KEYS[2]])
    with pytest.raises(ValidationError, match="ascending"):
        shard_entry(0, [KEYS[0], KEYS[0]])
    gap = [sample_entry(KEYS[0], 0), sample_entry(KEYS[1], 1024 * 1024)]
    with pytest.raises(ValidationError, match="no gap"):
        ShardEntry.model_validate(
            {**data, "samples": gap, "count": 2, "last_key": KEYS[1], "size": 10**7}
        )


def test_the_index_must_list_shards_in_order_with_ascending_keys() -> None:
    first, second = shard_entry(0, KEYS[:3]), shard_entry(1, KEYS[3:])
    with pytest.raises(ValidationError, match="listed by index"):
        index_of(second, first)
    with pytest.raises(ValidationError, match="ascend across"):
        index_of(shard_entry(0, KEYS[3:]), shard_entry(1, KEYS[:3]))
    with pytest.raises(ValidationError, match="sum of the shards' counts"):
        ShardIndex(format=FORMAT_VERSION, version_hash=SHA, samples=7, shards=[first, second])
    with pytest.raises(ValidationError, match="format"):
        ShardIndex.model_validate({**index_of(first).model_dump(), "format": "shotbank-shards/2"})


def test_read_index_refuses_garbage(tmp_path: Path) -> None:
    path = tmp_path / "index.json"
    path.write_text('{"format": "shotbank-shards/1"}')
    with pytest.raises(DatasetFormatError, match="not a valid shard index"):
        read_index(path)


def test_every_exported_name_exists() -> None:
    for name in shotbank.datasets.__all__:
        assert hasattr(shotbank.datasets, name), name
