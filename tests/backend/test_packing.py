"""Packing dataset versions: real clips into WebDataset shards that the real ``webdataset``
package reads back, deterministic bytes, a correct index, and nothing left behind on
failure (docs/api/datasets.md)."""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import webdataset as wds

from backend.errors import (
    DatasetSampleDamagedError,
    DatasetVersionExistsError,
    DatasetVersionInvalidError,
)
from backend.services.packing import PackInput, _tar_header, pack_version, remove_partials
from ingest.cid import digest_file
from shotbank.datasets import (
    ManifestRow,
    SampleRecord,
    ShardIndex,
    canonical_row_json,
    manifest_table,
    read_index,
    read_manifest_jsonl,
    read_manifest_parquet,
)
from tests.ingest.mediagen import ClipSpec
from tests.sdk.datasets.builders import BuiltSample, build_sample, build_samples

TARGET = 200_000


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[BuiltSample]:
    """Twelve small real clips (MP4 and Matroska, 11-45 KB) and one of about 280 KB,
    larger than the shard target on its own."""
    directory = tmp_path_factory.mktemp("clips")
    built = build_samples(directory, 12)
    big = ClipSpec(width=640, height=480, fps=24, seconds=6.0)
    built.append(build_sample(directory, 12, big))
    assert built[-1].record.size_bytes > TARGET
    return built


@pytest.fixture(scope="module")
def packed(samples: list[BuiltSample], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples packed once, in a shuffled order, with a 200 KB shard target."""
    inputs = [sample.pack_input for sample in samples]
    random.Random(7).shuffle(inputs)
    out = tmp_path_factory.mktemp("versions") / "v1"
    pack_version(inputs, out, shard_bytes=TARGET)
    return out


def by_key(samples: list[BuiltSample]) -> dict[str, BuiltSample]:
    return {sample.record.key: sample for sample in samples}


def manifest_rows(packed: Path) -> dict[str, ManifestRow]:
    return {row.key: row for row in read_manifest_jsonl(packed / "manifest.jsonl")}


def webdataset_samples(urls: list[str]) -> list[dict[str, Any]]:
    """Every sample of the shards as the real ``webdataset`` package yields it."""
    # webdataset 1.0.2 never closes the local files it opens for a shard (upstream
    # webdataset#311); its ResourceWarning, raised while the iterator is collected, is
    # silenced here only, and the collection is forced inside the block.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "unclosed file", ResourceWarning)
        dataset = wds.WebDataset(urls, shardshuffle=False)
        got = list(dataset)
        del dataset
        gc.collect()
    return got


def test_webdataset_reads_every_sample_back_byte_identical(
    packed: Path, samples: list[BuiltSample]
) -> None:
    index = read_index(packed / "index.json")
    rows = manifest_rows(packed)
    got = webdataset_samples([str(packed / shard.name) for shard in index.shards])
    expected = by_key(samples)
    assert [sample["__key__"] for sample in got] == sorted(expected)
    for sample in got:
        built = expected[sample["__key__"]]
        ext = built.record.ext
        assert set(sample) - {"__key__", "__url__", "__local_path__"} == {ext, "json"}
        assert sample[ext] == built.path.read_bytes()
        row = rows[sample["__key__"]]
        assert sample["json"] == canonical_row_json(row)
        assert ManifestRow.model_validate_json(sample["json"]) == row
        assert Path(sample["__url__"]).name == row.shard
    assert {built.record.ext for built in samples} == {"mp4", "mkv"}


def test_webdataset_decodes_the_json_member_to_the_manifest_row(packed: Path) -> None:
    index = read_index(packed / "index.json")
    rows = manifest_rows(packed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "unclosed file", ResourceWarning)
        dataset = wds.WebDataset(str(packed / index.shards[0].name), shardshuffle=False).decode()
        first = next(iter(dataset))
        del dataset
        gc.collect()
    assert first["json"] == rows[first["__key__"]].model_dump(mode="json")


def test_the_same_samples_in_another_order_pack_to_identical_bytes(
    packed: Path, samples: list[BuiltSample], tmp_path: Path
) -> None:
    again = tmp_path / "again"
    index = pack_version(
        [sample.pack_input for sample in reversed(samples)], again, shard_bytes=TARGET
    )
    assert index == read_index(packed / "index.json")
    names = ["index.json", "manifest.jsonl", "manifest.parquet"]
    for name in [*names, *(shard.name for shard in index.shards)]:
        assert (again / name).read_bytes() == (packed / name).read_bytes(), name
    for shard in index.shards:
        digest = digest_file(again / shard.name)
        assert (digest.sha256, digest.cid, digest.size) == (shard.sha256, shard.cid, shard.size)


def test_index_matches_the_files_sha256_cid_and_size(packed: Path) -> None:
    index = read_index(packed / "index.json")
    assert sorted(path.name for path in packed.iterdir()) == sorted(
        ["index.json", "manifest.jsonl", "manifest.parquet", *(s.name for s in index.shards)]
    )
    for shard in index.shards:
        path = packed / shard.name
        digest = digest_file(path)
        assert digest.size == shard.size == path.stat().st_size
        assert digest.sha256 == shard.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest.cid == shard.cid


def test_every_sample_range_is_a_tar_fragment_of_its_members(
    packed: Path, samples: list[BuiltSample]
) -> None:
    index = read_index(packed / "index.json")
    rows = manifest_rows(packed)
    expected = by_key(samples)
    for shard, entry in index.entries():
        data = (packed / shard.name).read_bytes()
        fragment = data[entry.offset : entry.offset + entry.size]
        with tarfile.open(fileobj=io.BytesIO(fragment), mode="r:") as archive:
            members = archive.getmembers()
            ext = expected[entry.key].record.ext
            assert [member.name for member in members] == [
                f"{entry.key}.{ext}",
                f"{entry.key}.json",
            ]
            contents = {
                member.name.split(".", 1)[1]: archive.extractfile(member).read()  # type: ignore[union-attr]
                for member in members
            }
        clip = expected[entry.key].path.read_bytes()
        assert contents == {ext: clip, "json": canonical_row_json(rows[entry.key])}
        for member_ext, member in entry.members.items():
            assert data[member.offset : member.offset + member.size] == contents[member_ext]
        assert list(entry.members) == [ext, "json"]


def test_tar_headers_are_deterministic_ustar(packed: Path) -> None:
    index = read_index(packed / "index.json")
    for shard in index.shards:
        data = (packed / shard.name).read_bytes()
        assert data[-1024:] == bytes(1024)  # exactly the two zero blocks, no record padding
        with tarfile.open(packed / shard.name, mode="r:") as archive:
            for member in archive.getmembers():
                assert (member.mode, member.uid, member.gid) == (0o644, 0, 0)
                assert (member.uname, member.gname, member.mtime) == ("", "", 0)
                assert member.type == tarfile.REGTYPE
                assert member.pax_headers == {}
        for entry in shard.samples:
            for data_range in entry.members.values():
                header = data[data_range.offset - 512 : data_range.offset]
                assert header[257:265] == b"ustar\x0000"  # POSIX ustar magic and version


def test_shards_hold_contiguous_keys_within_the_target_and_a_big_sample_alone(
    packed: Path, samples: list[BuiltSample]
) -> None:
    index = read_index(packed / "index.json")
    keys = [entry.key for _, entry in index.entries()]
    assert keys == sorted(by_key(samples))
    assert index.samples == len(samples) == len(keys)
    big = samples[-1].record.key
    for shard in index.shards:
        if shard.count > 1:
            assert shard.size <= TARGET, shard.name
        else:
            assert shard.size > TARGET or shard.samples[0].key != big
        # A shard is closed only when the next sample would not fit.
        following = [s for s in index.shards if s.index == shard.index + 1]
        if following:
            assert shard.size + following[0].samples[0].size > TARGET
    alone = [shard for shard in index.shards if shard.first_key == big]
    assert len(alone) == 1
    assert (alone[0].count, alone[0].last_key) == (1, big)
    assert len(index.shards) >= 3


def test_manifest_files_agree_with_each_other_and_the_index(
    packed: Path, samples: list[BuiltSample]
) -> None:
    index = read_index(packed / "index.json")
    jsonl = (packed / "manifest.jsonl").read_bytes()
    assert index.version_hash == hashlib.sha256(jsonl).hexdigest()
    rows = read_manifest_jsonl(packed / "manifest.jsonl", expected_hash=index.version_hash)
    assert read_manifest_parquet(packed / "manifest.parquet") == rows
    assert manifest_table(packed / "manifest.parquet").equals(
        manifest_table(packed / "manifest.jsonl")
    )
    placed = {entry.key: shard.name for shard, entry in index.entries()}
    records = by_key(samples)
    for row in rows:
        assert row.shard == placed[row.key]
        assert (
            SampleRecord.model_validate(row.model_dump(exclude={"shard"}))
            == records[row.key].record
        )


class _Replaced(io.BytesIO):
    """Stands in for a damaged blob: other bytes than the record's."""


def damaged(record: SampleRecord, data: bytes) -> PackInput:
    return record, lambda: _Replaced(data)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda data: data[:100] + bytes([data[100] ^ 1]) + data[101:], "SHA-256"),
        (lambda data: data[:-1], "bytes, not its recorded"),
        (lambda data: data + b"\0", "more than its recorded"),
        (lambda data: b"", "0 bytes, not its recorded"),
    ],
)
def test_clip_bytes_other_than_recorded_fail_loudly_and_leave_nothing(
    samples: list[BuiltSample], tmp_path: Path, mangle: Any, message: str
) -> None:
    victim = samples[5]
    inputs = [sample.pack_input for sample in samples]
    inputs[5] = damaged(victim.record, mangle(victim.path.read_bytes()))
    out = tmp_path / "versions" / "v1"
    with pytest.raises(DatasetSampleDamagedError, match=message) as caught:
        pack_version(inputs, out, shard_bytes=TARGET)
    assert victim.record.key in str(caught.value)
    assert caught.value.code == "dataset_sample_damaged"
    assert list((tmp_path / "versions").iterdir()) == []


def test_a_wrong_cid_with_the_right_sha256_is_caught(
    samples: list[BuiltSample], tmp_path: Path
) -> None:
    victim = samples[0]
    lying = victim.record.model_copy(update={"cid": samples[1].record.cid})
    inputs = [(lying, victim.open), *(s.pack_input for s in samples[1:])]
    with pytest.raises(DatasetSampleDamagedError, match="CID"):
        pack_version(inputs, tmp_path / "v1", shard_bytes=TARGET)
    assert not (tmp_path / "v1").exists()


def test_a_failing_opener_leaves_nothing(samples: list[BuiltSample], tmp_path: Path) -> None:
    def gone() -> BinaryIO:
        raise FileNotFoundError("blob vanished")

    inputs = [sample.pack_input for sample in samples[:3]] + [(samples[3].record, gone)]
    with pytest.raises(FileNotFoundError):
        pack_version(inputs, tmp_path / "v1", shard_bytes=TARGET)
    assert list(tmp_path.iterdir()) == []


def forged(record: SampleRecord, **changes: Any) -> SampleRecord:
    """A record that skipped validation (``model_construct``), as hostile code could pass."""
    return SampleRecord.model_construct(**{**dict(record), **changes})


@pytest.mark.parametrize(
    "changes",
    [
        {"key": "ab.cd0123456789abcdef0123456789a", "clip_id": "ab.cd0123456789abcdef0123456789a"},
        {"key": "../../../../etc/passwd/abcdef012", "clip_id": "../../../../etc/passwd/abcdef012"},
        {"size_bytes": 2**60},
        {"size_bytes": -5},
        {"ext": "json"},
    ],
)
def test_hostile_records_are_refused_before_anything_is_written(
    samples: list[BuiltSample], tmp_path: Path, changes: dict[str, Any]
) -> None:
    inputs = [sample.pack_input for sample in samples[:3]]
    inputs.append((forged(samples[3].record, **changes), samples[3].open))
    with pytest.raises(DatasetVersionInvalidError, match="breaks the dataset format"):
        pack_version(inputs, tmp_path / "v1", shard_bytes=TARGET)
    assert list(tmp_path.iterdir()) == []


def test_duplicate_keys_and_empty_versions_are_refused(
    samples: list[BuiltSample], tmp_path: Path
) -> None:
    inputs = [sample.pack_input for sample in samples[:3]]
    with pytest.raises(DatasetVersionInvalidError, match="given twice"):
        pack_version([*inputs, inputs[1]], tmp_path / "v1", shard_bytes=TARGET)
    with pytest.raises(DatasetVersionInvalidError, match="at least one sample"):
        pack_version([], tmp_path / "v1")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("shard_bytes", [0, 1000, 2**40])
def test_a_shard_target_out_of_range_is_refused(
    samples: list[BuiltSample], tmp_path: Path, shard_bytes: int
) -> None:
    with pytest.raises(DatasetVersionInvalidError, match="shard target"):
        pack_version([samples[0].pack_input], tmp_path / "v1", shard_bytes=shard_bytes)


def test_an_existing_version_is_never_overwritten(samples: list[BuiltSample], packed: Path) -> None:
    before = (packed / "index.json").read_bytes()
    with pytest.raises(DatasetVersionExistsError):
        pack_version([samples[0].pack_input], packed, shard_bytes=TARGET)
    assert (packed / "index.json").read_bytes() == before


def test_a_manifest_repacks_with_another_target_to_the_same_samples(
    packed: Path, samples: list[BuiltSample], tmp_path: Path
) -> None:
    openers = {sample.record.key: sample.open for sample in samples}
    rows = read_manifest_jsonl(packed / "manifest.jsonl")
    index = pack_version([(row, openers[row.key]) for row in rows], tmp_path / "v2")
    assert [(shard.name, shard.count) for shard in index.shards] == [
        ("shard-000000.tar", len(samples))
    ]
    # The rows name their shard, so another cut is another version (another hash).
    assert index.version_hash != read_index(packed / "index.json").version_hash
    again = read_manifest_jsonl(tmp_path / "v2" / "manifest.jsonl")
    assert [row.model_dump(exclude={"shard"}) for row in again] == [
        row.model_dump(exclude={"shard"}) for row in rows
    ]


def test_one_sample_with_the_default_target_makes_one_shard(
    samples: list[BuiltSample], tmp_path: Path
) -> None:
    index = pack_version([samples[2].pack_input], tmp_path / "v1")
    assert isinstance(index, ShardIndex)
    assert [(shard.name, shard.count) for shard in index.shards] == [("shard-000000.tar", 1)]


_KILLED_PACK = """
import os, signal, sys
from pathlib import Path
from backend.services.packing import pack_version
from shotbank.datasets import SampleRecord

records, paths, out = sys.argv[1], sys.argv[2], sys.argv[3]
inputs = []
for number, (line, path) in enumerate(
    zip(Path(records).read_text().splitlines(), Path(paths).read_text().splitlines())
):
    def opener(path=path, number=number):
        if number == 9:  # half way: shards 0 and 1 are on disk
            os.kill(os.getpid(), signal.SIGKILL)
        return open(path, "rb")
    inputs.append((SampleRecord.model_validate_json(line), opener))
pack_version(inputs, Path(out), shard_bytes=200_000)
"""


def test_a_killed_pack_leaves_no_version(samples: list[BuiltSample], tmp_path: Path) -> None:
    ordered = sorted(samples, key=lambda sample: sample.record.key)
    records, paths = tmp_path / "records.jsonl", tmp_path / "paths.txt"
    records.write_text("".join(s.record.model_dump_json() + "\n" for s in ordered))
    paths.write_text("".join(f"{s.path}\n" for s in ordered))
    versions = tmp_path / "versions"
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_PACK, str(records), str(paths), str(versions / "v1")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == -9, done.stderr
    left = list(versions.iterdir())
    assert not (versions / "v1").exists()
    # Only the hidden staging directory remains, with whole shards but no index.
    assert [path.name.startswith(".v1.partial-") for path in left] == [True]
    assert not (left[0] / "index.json").exists()
    assert (left[0] / "shard-000000.tar").exists()
    (versions / "v10").mkdir()  # another version's name that merely starts the same
    assert remove_partials(versions / "v1") == 1
    assert [path.name for path in versions.iterdir()] == ["v10"]
    index = pack_version([s.pack_input for s in samples], versions / "v1", shard_bytes=TARGET)
    assert index.samples == len(samples)


def test_a_clip_of_8_gib_or_more_gets_a_pax_size_record() -> None:
    # ustar's 11 octal digits stop at 8 GiB - 1; larger clips (uploads go up to 1 TiB)
    # need a pax "size" record, which tarfile (hence webdataset) reads.
    small = _tar_header("a" * 32 + ".mp4", 8 * 1024**3 - 1)
    assert len(small) == 512
    assert tarfile.TarInfo.frombuf(small, "utf-8", "strict").size == 8 * 1024**3 - 1
    big = _tar_header("a" * 32 + ".mp4", 8 * 1024**3)
    assert len(big) == 3 * 512  # pax header, its records, the ustar header
    pax = tarfile.TarInfo.frombuf(big[:512], "utf-8", "strict")
    assert pax.type == tarfile.XHDTYPE
    assert b" size=8589934592\n" in big[512 : 512 + pax.size]
    with tarfile.open(fileobj=io.BytesIO(big + bytes(1024)), mode="r|") as archive:
        member = archive.next()
        assert member is not None
        assert (member.name, member.size, member.mtime) == ("a" * 32 + ".mp4", 8 * 1024**3, 0)


def _iter_members(path: Path) -> Iterator[tarfile.TarInfo]:
    with tarfile.open(path, mode="r:") as archive:
        yield from archive.getmembers()


def test_member_names_are_the_key_and_extension_only(packed: Path) -> None:
    index = read_index(packed / "index.json")
    for shard in index.shards:
        names = [member.name for member in _iter_members(packed / shard.name)]
        expected = [
            name
            for entry in shard.samples
            for name in (f"{entry.key}.{entry.media_ext}", f"{entry.key}.json")
        ]
        assert names == expected
        assert (
            json.loads((packed / "index.json").read_bytes())["shards"][shard.index]["name"]
            == shard.name
        )
