"""ShardStream over real shards: 23 real MP4 clips packed by the backend's packer into 5
uneven shards, read through real DataLoader worker processes."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from backend.services.packing import pack_version
from scoring.clipgen import noise_frames, solid_frames, write_clip
from shotbank.datasets import ShardEntry, ShardIndex, read_index
from shotbank.datasets.stream import (
    LocalShards,
    RangeShards,
    SampleReadError,
    ShardStream,
    StreamStateError,
    collate,
    conditioning_text,
    decode_frames,
    merge_state_dicts,
)

from .builders import record_for_bytes

# Three workers on a two-core machine make torch warn; the layouts are the point here.
pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")

SAMPLES = 23
#: Shard target that cuts the 23 samples (some 11 KB noise clips among 1.7 KB solid
#: ones) into 5 shards of 4, 6, 8, 4 and 1 samples.
SHARD_BYTES = 36_000
CLIP_SIZE = (64, 48)  # width, height
CLIP_FPS = 8


def colour(number: int) -> tuple[int, int, int]:
    """The flat colour of solid clip ``number``."""
    return (number * 53) % 256, (number * 97 + 40) % 256, (number * 29 + 80) % 256


def is_noise(number: int) -> bool:
    """Every fifth clip is noise (larger, so the shards are uneven)."""
    return number % 5 == 2


@dataclass(frozen=True)
class Version:
    """A packed version: its directory, index and the colour behind each key."""

    directory: Path
    index: ShardIndex
    colours: dict[str, tuple[int, int, int] | None]

    @property
    def keys(self) -> list[str]:
        return sorted(self.colours)

    def stream(self, **options: Any) -> ShardStream:
        return ShardStream(self.index, LocalShards(self.directory), **options)


def clip_bytes(directory: Path, number: int) -> bytes:
    frames = (
        noise_frames(seconds=0.5, fps=CLIP_FPS, size=CLIP_SIZE, seed=number)
        if is_noise(number)
        else solid_frames(colour(number), seconds=0.5, fps=CLIP_FPS, size=CLIP_SIZE)
    )
    return write_clip(directory / f"{number}.mp4", frames, fps=CLIP_FPS).read_bytes()


def pack(directory: Path, clips: dict[int, bytes], shard_bytes: int = SHARD_BYTES) -> ShardIndex:
    inputs = []
    for number, data in clips.items():
        inputs.append((record_for_bytes(number, data), lambda data=data: io.BytesIO(data)))
    return pack_version(inputs, directory, shard_bytes=shard_bytes)


@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory) -> Version:
    work = tmp_path_factory.mktemp("stream")
    clips = {number: clip_bytes(work, number) for number in range(SAMPLES)}
    index = pack(work / "version", clips)
    counts = [shard.count for shard in index.shards]
    assert len(counts) >= 4, counts
    assert len(set(counts)) > 1, counts  # uneven, as the tests need
    colours = {
        record_for_bytes(n, data).key: None if is_noise(n) else colour(n)
        for n, data in clips.items()
    }
    return Version(work / "version", index, colours)


def keys_of(batches: Iterator[dict[str, Any]]) -> list[str]:
    return [key for batch in batches for key in batch["key"]]


def loader(stream: ShardStream, workers: int, batch: int = 2) -> DataLoader[Any]:
    return DataLoader(stream, batch_size=batch, num_workers=workers, collate_fn=collate)


def epoch_keys(version: Version, workers: int = 2, batch: int = 2, **options: Any) -> list[str]:
    stream = version.stream(decode=False, **options)
    return keys_of(stream.track(loader(stream, workers, batch)))


# -- partitioning ----------------------------------------------------------------------


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("workers", [0, 1, 2, 3])
def test_every_rank_and_worker_layout_yields_each_sample_exactly_once(
    version: Version, world_size: int, workers: int
) -> None:
    seen: Counter[str] = Counter()
    per_consumer: Counter[int] = Counter()
    for rank in range(world_size):
        stream = version.stream(rank=rank, world_size=world_size, seed=3, decode=False)
        for batch in DataLoader(stream, batch_size=None, num_workers=workers):
            seen[batch["key"]] += 1
            per_consumer[int(batch["progress"][0])] += 1
            assert batch["video"][:12].find(b"ftyp") == 4  # the MP4 itself
    assert sorted(seen) == version.keys
    assert set(seen.values()) == {1}
    consumers = world_size * max(workers, 1)
    assert set(per_consumer) == set(range(consumers))
    # Split at sample granularity: shares differ by at most one sample.
    assert max(per_consumer.values()) - min(per_consumer.values()) <= 1


@pytest.mark.slow  # two interpreters importing torch: several seconds
def test_ranks_come_from_torch_distributed_when_it_is_initialised(
    version: Version, tmp_path: Path
) -> None:
    child = textwrap.dedent(
        """
        import json, sys
        import torch.distributed as dist
        from shotbank.datasets.stream import ShardStream
        rank, store, directory, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
        stream = ShardStream.from_directory(directory, decode=False)
        with open(out, "w") as handle:
            json.dump([sample["key"] for sample in stream], handle)
        dist.destroy_process_group()
        """
    )
    outs = [tmp_path / f"rank{rank}.json" for rank in range(2)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                child,
                str(rank),
                str(tmp_path / "store"),
                str(version.directory),
                str(outs[rank]),
            ],
        )
        for rank in range(2)
    ]
    assert [proc.wait(timeout=120) for proc in procs] == [0, 0]
    ranks = [json.loads(out.read_text()) for out in outs]
    assert abs(len(ranks[0]) - len(ranks[1])) <= 1
    assert sorted(ranks[0] + ranks[1]) == version.keys
    assert ranks[0] == [s["key"] for s in version.stream(rank=0, world_size=2, decode=False)]


def test_a_range_source_fetches_only_the_consumers_own_samples_one_request_each(
    version: Version,
) -> None:
    calls: list[tuple[str, int, int]] = []

    def fetch(entry: ShardEntry, start: int, stop: int) -> bytes:
        calls.append((entry.name, start, stop))
        with open(version.directory / entry.name, "rb") as handle:
            handle.seek(start)
            return handle.read(stop - start)

    stream = ShardStream(version.index, RangeShards(fetch), rank=1, world_size=3, decode=False)
    samples = list(stream)
    spans = {
        sample.key: (shard.name, sample.offset, sample.offset + sample.size)
        for shard, sample in version.index.entries()
    }
    assert calls == [spans[sample["key"]] for sample in samples]
    assert len(samples) in (7, 8)


# -- order -----------------------------------------------------------------------------


def test_the_same_seed_and_epoch_give_the_same_order_and_another_epoch_another(
    version: Version,
) -> None:
    first = epoch_keys(version, seed=11)
    assert epoch_keys(version, seed=11) == first
    assert sorted(first) == version.keys
    later = version.stream(seed=11, decode=False)
    later.set_epoch(1)
    second = keys_of(later.track(loader(later, 2)))
    assert sorted(second) == version.keys
    assert second != first
    assert epoch_keys(version, seed=12) != first


def test_the_order_is_a_shard_permutation_with_each_shard_shuffled(version: Version) -> None:
    order = [s["key"] for s in version.stream(seed=5, decode=False)]
    shard_of = {sample.key: shard.index for shard, sample in version.index.entries()}
    runs = [shard_of[key] for key in order]
    # Shards are read one after another (each a contiguous run), not in index order.
    blocks = [shard for i, shard in enumerate(runs) if i == 0 or runs[i - 1] != shard]
    assert sorted(blocks) == list(range(len(version.index.shards)))
    assert blocks != sorted(blocks)
    assert order != version.keys


def test_without_shuffle_samples_come_in_key_order(version: Version) -> None:
    assert [s["key"] for s in version.stream(shuffle=False, decode=False)] == version.keys


def test_a_shuffle_buffer_mixes_shards_deterministically_and_exactly_once(
    version: Version,
) -> None:
    plain = [s["key"] for s in version.stream(seed=5, decode=False)]
    mixed = [s["key"] for s in version.stream(seed=5, shuffle_buffer=6, decode=False)]
    assert mixed == [s["key"] for s in version.stream(seed=5, shuffle_buffer=6, decode=False)]
    assert sorted(mixed) == version.keys
    assert mixed != plain
    shard_of = {sample.key: shard.index for shard, sample in version.index.entries()}
    runs = [shard_of[key] for key in mixed]
    switches = sum(1 for a, b in itertools.pairwise(runs) if a != b)
    assert switches > len(version.index.shards)  # shards interleave


def test_keys_limit_the_stream_to_a_subset(version: Version) -> None:
    held_out = version.keys[::4]
    assert sorted(s["key"] for s in version.stream(keys=held_out, decode=False)) == held_out
    with pytest.raises(ValueError, match="not in the version"):
        version.stream(keys=["0" * 32])


# -- decoding --------------------------------------------------------------------------


def test_frames_have_the_requested_shape_and_show_the_clip(version: Version) -> None:
    stream = version.stream(frames=3, size=(24, 32), seed=1)
    batches = list(DataLoader(stream, batch_size=4, num_workers=2, collate_fn=collate))
    checked = 0
    for batch in batches:
        assert batch["frames"].dtype == torch.uint8
        assert batch["frames"].shape[1:] == (3, 3, 24, 32)
        for key, frames in zip(batch["key"], batch["frames"], strict=True):
            expected = version.colours[key]
            if expected is None:
                assert frames.float().std() > 10  # noise (a solid clip has about 0)
                continue
            mean = frames.float().mean(dim=(0, 2, 3))
            assert torch.allclose(mean, torch.tensor(expected, dtype=torch.float32), atol=6)
            checked += 1
    assert checked == sum(1 for c in version.colours.values() if c is not None)


def test_native_size_frames_are_upright_clip_size(version: Version) -> None:
    sample = next(iter(version.stream(frames=2)))
    assert sample["frames"].shape == (2, 3, CLIP_SIZE[1], CLIP_SIZE[0])


def counting_clip(path: Path, count: int, fps: int) -> bytes:
    """A clip whose frame ``i`` is flat grey ``10 + 8 * i``."""
    frames = [np.full((48, 64, 3), 10 + 8 * i, np.uint8) for i in range(count)]
    return write_clip(path, frames, fps=fps).read_bytes()


def frame_numbers(frames: np.ndarray) -> list[int]:
    return [round((float(frame.mean()) - 10) / 8) for frame in frames]


def test_k_frames_are_the_middles_of_k_equal_spans(tmp_path: Path) -> None:
    clip = counting_clip(tmp_path / "count.mp4", 8, 8)
    assert frame_numbers(decode_frames(clip, frames=4)) == [1, 3, 5, 7]
    assert frame_numbers(decode_frames(clip, frames=1)) == [4]
    # More frames than the clip has repeats frames.
    assert frame_numbers(decode_frames(clip, frames=16)) == [i // 2 for i in range(16)]


def test_fps_sampling_takes_frames_at_that_rate_up_to_the_cap(tmp_path: Path) -> None:
    clip = counting_clip(tmp_path / "count.mp4", 8, 8)
    assert frame_numbers(decode_frames(clip, fps=2)) == [0, 4]
    assert frame_numbers(decode_frames(clip, fps=8, max_frames=5)) == [0, 1, 2, 3, 4]


def test_a_stream_with_fps_gives_frames_over_the_clips_length(version: Version) -> None:
    sample = next(iter(version.stream(fps=4, size=(16, 16))))  # 0.5 s clips
    assert sample["frames"].shape == (2, 3, 16, 16)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"frames": 4, "fps": 2.0}, "not both"),
        ({"frames": 0}, "frames"),
        ({"fps": float("nan")}, "fps"),
        ({"size": (0, 16)}, "size"),
        ({"max_frames": 5000}, "max_frames"),
        ({"rank": 2, "world_size": 2}, "rank"),
        ({"rank": 0}, "together"),
        ({"on_error": "ignore"}, "on_error"),
        ({"shuffle_buffer": -1}, "shuffle_buffer"),
    ],
)
def test_bad_options_are_refused(version: Version, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        version.stream(**options)


def test_far_targets_are_reached_by_seeking_and_give_the_same_frames(tmp_path: Path) -> None:
    clip = counting_clip(tmp_path / "long.mp4", 28, 4)  # 7 s: targets 3.5 s apart
    assert frame_numbers(decode_frames(clip, frames=2)) == [7, 21]


def test_decode_false_yields_the_clip_bytes_of_the_manifest_row(version: Version) -> None:
    for sample in version.stream(decode=False):
        assert "frames" not in sample
        assert hashlib.sha256(sample["video"]).hexdigest() == sample["meta"]["sha256"]
        assert sample["meta"]["key"] == sample["key"]
        assert sample["annotation"] == sample["meta"]["annotation"]


def test_text_names_camera_lighting_scene_and_sound() -> None:
    annotation = {
        "schema_version": "1",
        "scene": {"description": "A cyclist crosses\n a rainy square.", "setting": "exterior"},
        "camera": {"movement": "truck", "direction": "right"},
        "lighting": {"setup": "low_key", "contrast": "high", "time_of_day": "blue_hour"},
        "audio": {
            "genre": "ambience",
            "mood": "mysterious",
            "ambience": ["rain", "traffic"],
            "dialogue": False,
            "recording": "field",
        },
    }
    assert conditioning_text(annotation) == (
        "Truck right shot, low key lighting, high contrast, blue hour. "
        "A cyclist crosses a rainy square. "
        "Sound: ambience, mysterious, rain, traffic, no dialogue, field recording."
    )
    silent = {**annotation, "audio": None, "camera": {"movement": "static"}}
    assert conditioning_text(silent) == (
        "Static shot, low key lighting, high contrast, blue hour. A cyclist crosses a rainy square."
    )


def test_samples_carry_their_annotation_text(version: Version) -> None:
    sample = next(iter(version.stream(decode=False)))
    assert sample["text"] == conditioning_text(sample["meta"]["annotation"])
    assert sample["meta"]["annotation"]["scene"]["description"] in sample["text"]


@pytest.fixture(scope="module")
def broken_version(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Three good clips and one that is not a video (bytes that PyAV cannot open)."""
    work = tmp_path_factory.mktemp("broken")
    clips = {n: clip_bytes(work, n) for n in range(3)}
    clips[3] = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8
    pack(work / "version", clips)
    return work / "version", record_for_bytes(3, clips[3]).key


def test_an_undecodable_clip_raises_naming_its_key_and_shard(
    broken_version: tuple[Path, str],
) -> None:
    directory, bad = broken_version
    with pytest.raises(SampleReadError, match=f"sample {bad} in shard-000000.tar: .*decoded") as e:
        list(ShardStream.from_directory(directory, frames=2))
    assert (e.value.key, e.value.shard) == (bad, "shard-000000.tar")


def test_an_undecodable_clip_is_skipped_and_counted_on_request(
    broken_version: tuple[Path, str],
) -> None:
    directory, bad = broken_version
    stream = ShardStream.from_directory(directory, frames=2, on_error="skip", shuffle=False)
    keys = [s["key"] for s in stream]
    assert len(keys) == 3
    assert bad not in keys
    assert stream.skipped == 1
    # The skipped clip used its position: resuming does not retry it.
    assert stream.state_dict()["layers"][0]["counts"] == [4]


def test_a_damaged_clip_in_a_shard_fails_its_sha256_check(version: Version, tmp_path: Path) -> None:
    directory = tmp_path / "damaged"
    shutil.copytree(version.directory, directory)
    shard = version.index.shards[0]
    member = shard.samples[0].members["mp4"]
    with open(directory / shard.name, "r+b") as handle:
        handle.seek(member.offset + member.size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    stream = ShardStream.from_directory(directory, decode=False, shuffle=False)
    with pytest.raises(SampleReadError, match=f"{shard.samples[0].key} in {shard.name}.*SHA-256"):
        list(stream)


def test_a_shard_that_is_not_the_indexed_one_is_reported(
    version: Version, broken_version: tuple[Path, str], tmp_path: Path
) -> None:
    directory = tmp_path / "stale"
    shutil.copytree(version.directory, directory)
    shutil.copy(broken_version[0] / "shard-000000.tar", directory / "shard-000000.tar")
    stream = ShardStream.from_directory(directory, decode=False, shuffle=False)
    with pytest.raises(SampleReadError, match="not this sample's tar members"):
        list(stream)


# -- resume ----------------------------------------------------------------------------


def test_in_process_iteration_resumes_right_after_the_last_sample_taken(
    version: Version,
) -> None:
    full = [s["key"] for s in version.stream(seed=2, decode=False)]
    first = version.stream(seed=2, decode=False)
    taken = iter(first)
    before = [next(taken)["key"] for _ in range(9)]
    state = json.loads(json.dumps(first.state_dict()))  # survives a JSON checkpoint
    second = version.stream(decode=False)
    second.load_state_dict(state)
    assert second.seed == 2
    assert before + [s["key"] for s in second] == full


@pytest.mark.parametrize("delivered_batches", [1, 4, 7])
def test_multi_worker_loader_resumes_the_exact_batch_sequence(
    version: Version, delivered_batches: int
) -> None:
    full = epoch_keys(version, workers=2, batch=2, seed=4)
    first = version.stream(seed=4, decode=False)
    batches = first.track(loader(first, 2))
    before = keys_of(next(batches) for _ in range(delivered_batches))
    state = first.state_dict()
    batches.close()
    second = version.stream(seed=4, decode=False)
    second.load_state_dict(state)
    after = keys_of(second.track(loader(second, 2)))
    assert before + after == full


def test_resuming_on_another_layout_still_delivers_each_sample_once(version: Version) -> None:
    states = []
    before: list[str] = []
    for rank, take in ((0, 3), (1, 1)):
        stream = version.stream(rank=rank, world_size=2, seed=9, decode=False)
        batches = stream.track(loader(stream, 2))
        before += keys_of(next(batches) for _ in range(take))
        states.append(stream.state_dict())
        batches.close()
    single = version.stream(rank=0, world_size=1, decode=False)
    single.load_state_dict(states[0])
    with pytest.raises(StreamStateError, match="merge"):
        list(single)
    single = version.stream(rank=0, world_size=1, decode=False)
    single.load_state_dict(merge_state_dicts(states))
    after = keys_of(single.track(loader(single, 3)))
    assert len(before) == 8
    assert sorted(before + after) == version.keys


def test_a_rank_cannot_resume_from_another_ranks_state(version: Version) -> None:
    zero = version.stream(rank=0, world_size=2, decode=False)
    next(iter(zero))
    one = version.stream(rank=1, world_size=2, decode=False)
    one.load_state_dict(zero.state_dict())
    with pytest.raises(StreamStateError, match="rank 1's progress"):
        next(iter(one))


def test_a_state_of_another_version_or_order_is_refused(
    version: Version, broken_version: tuple[Path, str]
) -> None:
    state = version.stream().state_dict()
    other = ShardStream.from_directory(broken_version[0])
    with pytest.raises(StreamStateError, match="version"):
        other.load_state_dict(state)
    with pytest.raises(StreamStateError, match="order options"):
        version.stream(shuffle_buffer=4).load_state_dict(state)
    with pytest.raises(StreamStateError, match="not a stream state"):
        version.stream().load_state_dict({**state, "seed": -1})


def test_setting_the_same_epoch_keeps_progress_and_a_new_epoch_restarts(
    version: Version,
) -> None:
    stream = version.stream(decode=False)
    taken = iter(stream)
    for _ in range(5):
        next(taken)
    state = stream.state_dict()
    resumed = version.stream(decode=False)
    resumed.load_state_dict(state)
    resumed.set_epoch(0)
    assert len(list(resumed)) == SAMPLES - 5
    resumed.set_epoch(1)
    assert len(list(resumed)) == SAMPLES
    # A finished epoch iterated again starts over (same order).
    assert len(list(resumed)) == SAMPLES


KILLED_CHILD = """
import json, os, sys, time
from torch.utils.data import DataLoader
from shotbank.datasets.stream import ShardStream, collate

directory, out = sys.argv[1], sys.argv[2]
stream = ShardStream.from_directory(directory, seed=6, frames=2, size=(16, 16))
loader = DataLoader(stream, batch_size=2, num_workers=2, collate_fn=collate)
keys = []
for batch in stream.track(loader):
    keys.extend(batch["key"])
    # The consumer saves what it was delivered and the state together, atomically.
    with open(out + ".tmp", "w") as handle:
        json.dump({"keys": keys, "state": stream.state_dict()}, handle)
    os.replace(out + ".tmp", out)
    print(len(keys), flush=True)
    time.sleep(0.3)  # a training step
"""


def test_a_killed_multi_worker_iteration_resumes_to_exactly_one_epoch(
    version: Version, tmp_path: Path
) -> None:
    out = tmp_path / "progress.json"
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, str(version.directory), str(out)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the workers die with it
    ) as child:
        try:
            assert child.stdout is not None
            delivered = 0
            deadline = time.monotonic() + 120
            while delivered < 9 and time.monotonic() < deadline:
                line = child.stdout.readline()
                assert line, "the child ended before it was killed"
                delivered = int(line)
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    saved = json.loads(out.read_text())
    before = saved["keys"]
    assert 9 <= len(before) < SAMPLES

    resumed = version.stream(frames=2, size=(16, 16))
    resumed.load_state_dict(saved["state"])
    after = keys_of(resumed.track(loader(resumed, 2)))
    assert sorted(before + after) == version.keys
    # Not only once each: the very sequence an uninterrupted run delivers.
    assert before + after == epoch_keys(version, workers=2, batch=2, seed=6)


def test_importing_the_sdk_and_its_datasets_package_does_not_import_torch() -> None:
    code = "import sys, shotbank, shotbank.datasets; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_reading_the_index_from_the_directory_matches_the_packer(version: Version) -> None:
    stream = ShardStream.from_directory(version.directory, decode=False)
    assert stream.index == read_index(version.directory / "index.json") == version.index
    assert stream.num_samples == SAMPLES
