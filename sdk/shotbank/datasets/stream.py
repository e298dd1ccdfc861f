"""A dataset version as a PyTorch ``IterableDataset``: :class:`ShardStream`.

Needs the ``shotbank[torch]`` extra (torch, PyAV, numpy); nothing else in the SDK imports
this module, so ``import shotbank`` and ``import shotbank.datasets`` never import torch.

Reading
    Shards come from a :class:`ShardSource`: anything with ``open_shard(entry)`` returning
    a seekable binary stream. :class:`LocalShards` opens the files of a downloaded version
    directory; :class:`RangeShards` turns a ``fetch(entry, start, stop) -> bytes`` callable
    (an HTTP Range request, say) into such streams, so remote shards plug in without
    changes here. A consumer reads only its own samples: it seeks to each sample's span
    (``SampleEntry.offset``/``size`` from ``index.json``) and reads that one tar fragment
    -- one Range request per sample -- never the other consumers' samples.

The epoch's order (a pure function of the index, ``seed``, ``epoch`` and the options)
    1. the shards in a permutation drawn from ``numpy.random.default_rng([seed, epoch])``;
    2. within each shard, its samples in a permutation from the same generator (what a
       per-shard sample buffer approximates, done exactly because the index lists them);
    3. with ``shuffle_buffer=B > 1``, that sequence passed through a simulated shuffle
       buffer of B samples (fill, then emit a uniformly drawn slot and refill it; drain
       in a random order), which mixes neighbouring shards; the draws come from the same
       generator, so it stays a deterministic permutation of the whole epoch.
    ``shuffle=False`` keeps key order (shards in order, samples by key). ``keys=`` limits
    the version to a subset (a held-out split) before any of this.

Partitioning (exactly once, at sample granularity)
    There are ``N = world_size * num_workers`` consumers (``num_workers=0`` counts as 1);
    DataLoader worker ``w`` of rank ``r`` is consumer ``r * num_workers + w`` (rotated
    within the rank after a resume, see below), and consumer ``c`` takes positions
    ``c, c + N, c + 2N, ...`` of the epoch's order. The
    consumers' shares are disjoint and together are the whole epoch, however the shards
    divide; shares differ in length by at most one sample. Rank and world size come from
    the arguments, else from ``torch.distributed`` when it is initialised, else 0 and 1;
    the worker from :func:`torch.utils.data.get_worker_info`.

Exact mid-epoch resume
    Every sample carries ``progress``: a tensor ``(consumer, position, skipped)``; its
    position counts the consumer's share from 0. On the main side the stream records the
    highest delivered position per consumer: by itself when it is iterated in the main
    process (no workers), and through :meth:`ShardStream.track` (``for batch in
    stream.track(loader)``) when DataLoader workers produce the samples. That progress,
    with seed and epoch, is :meth:`~ShardStream.state_dict`; after
    :meth:`~ShardStream.load_state_dict` each consumer restarts right after its last
    delivered sample. With the same world size, workers and batch size (and the
    DataLoader's default in-order delivery) the continuation is the very batch sequence
    the interrupted run would have produced: the state also remembers which worker
    delivered last, and the workers are rotated so that the DataLoader's round-robin goes
    on with the next one. With a different number of
    consumers the stream still delivers every remaining sample exactly once: the
    undelivered rest of the order is split again over the new consumers (the state keeps
    one *layer* of progress per consumer layout). Each rank records only its own
    consumers; to resume on a different layout merge the ranks' states first
    (:func:`merge_state_dicts`).

    A skipped clip (``on_error="skip"``) still uses its position, so resume never retries
    it; the number skipped is :attr:`ShardStream.skipped` (clips a worker skips after its
    last delivered sample are logged but do not reach the main process). An epoch whose
    samples were all delivered starts over when iterated again; :meth:`set_epoch` moves
    to another epoch's order.

Samples
    A dict: ``key``; ``frames`` (``uint8`` tensor ``T x C x H x W``, RGB, upright) or, with
    ``decode=False``, ``video`` (the clip's bytes); ``annotation`` (dict); ``text`` (a
    conditioning string, :func:`conditioning_text` unless ``text=`` says otherwise);
    ``meta`` (the manifest row, i.e. the sample's ``<key>.json``); ``progress``. Frames
    are ``frames=K`` taken at the middle of K equal spans of the clip (the convention of
    the scoring pipeline), or ``fps=F`` frames per second from the start, at most
    ``max_frames``; ``size=(H, W)`` scales them (needed to batch clips of different sizes).
    :func:`collate` batches samples (frames stacked, the rest as lists). With ``verify``
    (the default) each clip's SHA-256 is checked against its row before it is used.

Caveats
    ``set_epoch`` must be called before the DataLoader's iterator is created (workers get
    a copy of the stream then), so use ``persistent_workers=False`` or recreate the
    DataLoader each epoch. A ``source`` and ``text`` function must be picklable when
    workers are started with ``spawn``/``forkserver``.

Errors::

    ShotbankError
    └── DatasetError (shotbank.datasets.format)
        └── StreamError
            ├── SampleReadError (ValueError)    a clip that cannot be read or decoded
            └── StreamStateError (ValueError)   a state that does not fit this stream
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import tarfile
from collections import OrderedDict
from collections.abc import (
    Callable,
    Collection,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal, Protocol, TypeVar

import av
import av.container
import numpy as np
import numpy.typing as npt
import torch
import torch.distributed
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from shotbank.datasets.format import (
    INDEX_NAME,
    MAX_ROW_BYTES,
    MEDIA_EXTENSIONS,
    DatasetError,
    SampleEntry,
    ShardEntry,
    ShardIndex,
    read_index,
)

__all__ = [
    "STATE_FORMAT",
    "LayerProgress",
    "LocalShards",
    "RangeShards",
    "SampleReadError",
    "ShardSource",
    "ShardStream",
    "StreamError",
    "StreamLimits",
    "StreamState",
    "StreamStateError",
    "collate",
    "conditioning_text",
    "decode_frames",
    "epoch_order",
    "merge_state_dicts",
]

_log = logging.getLogger(__name__)

#: ``format`` of a stream state (:meth:`ShardStream.state_dict`).
STATE_FORMAT: Final = "shotbank-stream/1"
#: Most consumers (ranks x workers) one layout may have.
MAX_CONSUMERS: Final = 1 << 20
#: Most DataLoader workers per rank.
MAX_WORKERS: Final = 1024
#: Most consumer layouts one epoch's state may go through (each resume on a new layout
#: adds one).
MAX_LAYERS: Final = 64
#: Most frames one sample may ask for (``frames=K`` or the ``fps`` cap).
MAX_FRAMES: Final = 1024
#: Frames per sample unless ``frames`` or ``fps`` says otherwise.
DEFAULT_FRAMES: Final = 8
#: Highest ``fps`` accepted.
MAX_FPS: Final = 1000.0
#: Largest side of ``size=(H, W)``.
MAX_SIDE: Final = 8192
#: Largest shuffle buffer.
MAX_SHUFFLE_BUFFER: Final = 1 << 20
#: Shard files a consumer keeps open at once (least recently used closed first).
OPEN_SHARDS: Final = 8
#: A target further than this past the decoded position is reached by seeking to the
#: keyframe before it rather than decoding everything in between.
SEEK_AFTER_S: Final = 2.0

T = TypeVar("T")
Frames = npt.NDArray[np.uint8]
OnError = Literal["raise", "skip"]


class StreamError(DatasetError):
    """Base of the streaming errors."""


class SampleReadError(StreamError, ValueError):
    """A sample that cannot be read, checked or decoded; names its key and shard."""

    def __init__(self, message: str, *, key: str, shard: str) -> None:
        super().__init__(f"sample {key} in {shard}: {message}")
        self.key = key
        self.shard = shard


class StreamStateError(StreamError, ValueError):
    """A stream state that is malformed or belongs to another version or order."""


@dataclass(frozen=True)
class StreamLimits:
    """Bounds on the memory and work one sample may cost."""

    #: Largest sample span read into memory (its clip, row and tar headers).
    max_sample_bytes: int = 4 * 1024**3
    #: Largest picture (width x height) decoded.
    max_pixels: int = 8192 * 4320
    #: Longest clip decoded, in seconds.
    max_duration_s: float = 4 * 3600.0
    #: Most frames decoded for one sample (seeking keeps this far below a clip's length).
    max_decoded_frames: int = 100_000


DEFAULT_LIMITS: Final = StreamLimits()


# -- shard sources ---------------------------------------------------------------------


class ShardSource(Protocol):
    """Where shard bytes come from: a seekable binary stream per shard."""

    def open_shard(self, entry: ShardEntry) -> BinaryIO:
        """Open the shard ``entry`` for reading; the caller seeks, reads and closes it."""
        ...


class LocalShards:
    """The shards of a version directory on disk (``shard-000000.tar`` ... beside
    ``index.json``)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def open_shard(self, entry: ShardEntry) -> BinaryIO:
        """Open ``<directory>/<entry.name>``."""
        # The name is validated by the index model (shard-NNNNNN.tar): no path escapes.
        return open(self.directory / entry.name, "rb")


#: Fetches bytes ``[start, stop)`` of a shard (one HTTP Range request, say).
FetchRange = Callable[[ShardEntry, int, int], bytes]


class _RangeFile(io.RawIOBase):
    """A read-only seekable file over one shard whose reads are ``fetch`` calls."""

    def __init__(self, entry: ShardEntry, fetch: FetchRange) -> None:
        super().__init__()
        self._entry = entry
        self._fetch = fetch
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._entry.size}
        if whence not in base:
            raise ValueError(f"invalid whence {whence}")
        position = base[whence] + offset
        if position < 0:
            raise ValueError("negative seek position")
        self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        stop = min(self._position + len(view), self._entry.size)
        if stop <= self._position:
            return 0
        data = self._fetch(self._entry, self._position, stop)
        if len(data) != stop - self._position:
            raise OSError(
                f"{self._entry.name}: asked for bytes {self._position}-{stop - 1}, "
                f"got {len(data)} bytes"
            )
        view[: len(data)] = data
        self._position = stop
        return len(data)


class RangeShards:
    """Shards read through a byte-range callable: ``fetch(entry, start, stop) -> bytes``.

    The hook for remote versions: give it a function that sends
    ``Range: bytes=start-(stop-1)`` for ``entry.name``. Each sample costs one call (the
    stream reads one sample span at a time, unbuffered).
    """

    def __init__(self, fetch: FetchRange) -> None:
        self.fetch = fetch

    def open_shard(self, entry: ShardEntry) -> BinaryIO:
        """A seekable stream over ``entry`` whose reads call :attr:`fetch`."""
        return _RangeFile(entry, self.fetch)  # type: ignore[return-value]


# -- the epoch's order -----------------------------------------------------------------


def _buffer_mix(order: npt.NDArray[np.int64], size: int, rng: np.random.Generator) -> Any:
    """``order`` passed through a simulated shuffle buffer of ``size`` slots."""
    out = np.empty_like(order)
    picks = rng.integers(0, size, len(order)).tolist()
    buffer: list[int] = []
    emitted = 0
    for position, item in enumerate(order.tolist()):
        if len(buffer) < size:
            buffer.append(item)
            continue
        slot = picks[position]
        out[emitted] = buffer[slot]
        buffer[slot] = item
        emitted += 1
    out[emitted:] = np.asarray(buffer, np.int64)[rng.permutation(len(buffer))]
    return out


def epoch_order(
    shard_samples: Sequence[Sequence[int]],
    *,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    shuffle_buffer: int = 0,
) -> npt.NDArray[np.int64]:
    """The epoch's sample order: ``shard_samples[i]`` are the sample ids of shard ``i``;
    returns every id once (see the module docstring for the scheme)."""
    groups = [np.asarray(ids, np.int64) for ids in shard_samples]
    if not shuffle:
        return np.concatenate(groups) if groups else np.empty(0, np.int64)
    rng = np.random.default_rng([seed, epoch])
    parts = [groups[i][rng.permutation(len(groups[i]))] for i in rng.permutation(len(groups))]
    order = np.concatenate(parts) if parts else np.empty(0, np.int64)
    if shuffle_buffer > 1 and len(order) > 1:
        mixed: npt.NDArray[np.int64] = _buffer_mix(order, min(shuffle_buffer, len(order)), rng)
        return mixed
    return order


# -- progress --------------------------------------------------------------------------


class LayerProgress(BaseModel):
    """Progress of the consumers of one layout (ranks x workers) over what earlier
    layouts left of the epoch."""

    model_config = ConfigDict(extra="forbid")

    world_size: int = Field(ge=1, le=MAX_CONSUMERS)
    """Ranks of the layout."""
    num_workers: int = Field(ge=1, le=MAX_WORKERS)
    """DataLoader workers per rank (0 workers count as 1)."""
    counts: list[int | None] = Field(max_length=MAX_CONSUMERS)
    """Per consumer: how many of its samples were delivered; ``None`` where this state
    does not know (another rank's consumer)."""
    skipped: list[int | None] = Field(max_length=MAX_CONSUMERS)
    """Per consumer: how many of those were skipped (``on_error="skip"``)."""
    last: list[int | None] = Field(max_length=MAX_CONSUMERS)
    """Per rank: the consumer that delivered the latest sample (``None`` if none yet)."""

    @model_validator(mode="after")
    def _shapes(self) -> LayerProgress:
        consumers = self.world_size * self.num_workers
        if consumers > MAX_CONSUMERS:
            raise ValueError(f"a layout has at most {MAX_CONSUMERS} consumers")
        if len(self.counts) != consumers or len(self.skipped) != consumers:
            raise ValueError("counts and skipped need one entry per consumer")
        if len(self.last) != self.world_size:
            raise ValueError("last needs one entry per rank")
        if any(v is not None and v < 0 for v in [*self.counts, *self.skipped]):
            raise ValueError("counts cannot be negative")
        for rank, consumer in enumerate(self.last):
            if consumer is not None and consumer // self.num_workers != rank:
                raise ValueError(f"last[{rank}] is not a consumer of rank {rank}")
        return self

    @property
    def consumers(self) -> int:
        """Consumers of the layout."""
        return self.world_size * self.num_workers

    def known(self, consumers: Iterable[int]) -> bool:
        """Whether the progress of all of ``consumers`` is known."""
        return all(self.counts[c] is not None for c in consumers)


class StreamState(BaseModel):
    """Where an epoch of a :class:`ShardStream` stands (its ``state_dict``)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["shotbank-stream/1"] = STATE_FORMAT
    version_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    """The version streamed."""
    order: str = Field(pattern=r"^[0-9a-f]{64}$")
    """Fingerprint of what fixes the order besides seed and epoch (shuffle, buffer, keys)."""
    seed: int = Field(ge=0, lt=2**63)
    epoch: int = Field(ge=0, lt=2**63)
    layers: list[LayerProgress] = Field(default_factory=list, max_length=MAX_LAYERS)
    """One entry per consumer layout the epoch went through; the last is current."""


def merge_state_dicts(states: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One state from the states of several ranks of the same run (each knows only its
    own consumers): what resuming on a different layout needs."""
    if not states:
        raise StreamStateError("no states to merge")
    parsed = [_parse_state(s) for s in states]
    merged = parsed[0].model_copy(deep=True)
    for other in parsed[1:]:
        same = (other.version_hash, other.order, other.seed, other.epoch) == (
            merged.version_hash,
            merged.order,
            merged.seed,
            merged.epoch,
        )
        shapes = [(x.world_size, x.num_workers) for x in other.layers]
        if not same or shapes != [(x.world_size, x.num_workers) for x in merged.layers]:
            raise StreamStateError("the states are not of the same run, epoch and layouts")
        for mine, theirs in zip(merged.layers, other.layers, strict=True):
            for values, more in (
                (mine.counts, theirs.counts),
                (mine.skipped, theirs.skipped),
                (mine.last, theirs.last),
            ):
                for i, value in enumerate(more):
                    if value is not None:
                        current = values[i]
                        values[i] = value if current is None else max(current, value)
    return merged.model_dump(mode="json")


def _parse_state(state: Mapping[str, Any] | StreamState) -> StreamState:
    if isinstance(state, StreamState):
        return state.model_copy(deep=True)
    try:
        return StreamState.model_validate(state)
    except ValidationError as exc:
        raise StreamStateError(f"not a stream state: {exc}") from exc


def _remaining(
    order: npt.NDArray[np.int64], layers: Sequence[LayerProgress]
) -> npt.NDArray[np.int64]:
    """What of ``order`` the consumers of ``layers`` (all complete) did not deliver."""
    for layer in layers:
        counts = np.asarray(layer.counts, np.int64)
        positions = np.arange(len(order))
        delivered = positions // layer.consumers < counts[positions % layer.consumers]
        order = order[~delivered]
    return order


# -- decoding --------------------------------------------------------------------------


def _words(value: Any) -> str:
    return str(value).replace("_", " ").strip()


def conditioning_text(annotation: Mapping[str, Any]) -> str:
    """The text a sample is conditioned on, from its annotation (schema v1).

    ``"<Camera movement>[ <direction>] shot, <lighting setup> lighting[, <contrast>
    contrast][, <lighting time of day>]. <scene description> [Sound: <genre>, <mood>,
    <ambience...>, [no ]dialogue, <recording> recording.]"``, vocabulary terms with
    ``_`` read as spaces, the description's white space collapsed. The short structured
    part comes first so that a text encoder with a small context (CLIP: 77 tokens)
    still sees camera and lighting when a long description is cut.
    """
    camera = annotation.get("camera") or {}
    lighting = annotation.get("lighting") or {}
    scene = annotation.get("scene") or {}
    audio = annotation.get("audio")
    movement = _words(camera.get("movement", "unknown"))
    if camera.get("direction"):
        movement = f"{movement} {_words(camera['direction'])}"
    light = [f"{_words(lighting.get('setup', 'unknown'))} lighting"]
    if lighting.get("contrast"):
        light.append(f"{_words(lighting['contrast'])} contrast")
    if lighting.get("time_of_day"):
        light.append(_words(lighting["time_of_day"]))
    text = f"{movement[:1].upper()}{movement[1:]} shot, {', '.join(light)}."
    description = " ".join(str(scene.get("description", "")).split())
    if description:
        text = f"{text} {description}"
    if isinstance(audio, Mapping):
        sound = [_words(audio[k]) for k in ("genre", "mood") if audio.get(k)]
        sound.extend(_words(tag) for tag in audio.get("ambience") or ())
        if "dialogue" in audio:
            sound.append("dialogue" if audio["dialogue"] else "no dialogue")
        if audio.get("recording"):
            sound.append(f"{_words(audio['recording'])} recording")
        if sound:
            text = f"{text} Sound: {', '.join(sound)}."
    return text


def _duration(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    # No stated duration (some WebM): measure it from the packets, without decoding.
    assert stream.time_base is not None
    end = 0.0
    for packet in container.demux(stream):
        if packet.pts is not None:
            end = max(end, float((packet.pts + (packet.duration or 0)) * stream.time_base))
    container.seek(0)
    return end - (float(stream.start_time * stream.time_base) if stream.start_time else 0.0)


def _sampling(
    frames: int | None, fps: float | None, max_frames: int, size: tuple[int, int] | None
) -> int | None:
    """Check the frame options; the frame count to use (``None`` when ``fps`` rules)."""
    _check_int("max_frames", max_frames, 1, MAX_FRAMES)
    if size is not None and not (
        len(size) == 2 and all(isinstance(s, int) and 1 <= s <= MAX_SIDE for s in size)
    ):
        raise ValueError(f"size must be (height, width), each 1 ... {MAX_SIDE}")
    if fps is None:
        count = DEFAULT_FRAMES if frames is None else frames
        _check_int("frames", count, 1, MAX_FRAMES)
        return count
    if frames is not None:
        raise ValueError("give frames=K or fps=F, not both")
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise ValueError(f"fps must be in (0, {MAX_FPS}], got {fps!r}")
    return None


def _targets(
    duration: float, frames: int | None, fps: float | None, max_frames: int
) -> list[float]:
    if frames is None:
        assert fps is not None
        count = max(1, min(max_frames, math.ceil(duration * fps - 1e-9)))
        return [index / fps for index in range(count)]
    return [(index + 0.5) * duration / frames for index in range(frames)]


def _to_array(frame: av.VideoFrame, size: tuple[int, int] | None) -> Frames:
    quarter_turns = (frame.rotation // 90) % 4
    if size is None:
        array = frame.to_ndarray(format="rgb24")
    else:
        height, width = size if quarter_turns % 2 == 0 else (size[1], size[0])
        array = frame.to_ndarray(format="rgb24", width=width, height=height)
    result = np.asarray(array, np.uint8)
    # The display matrix rotates counter-clockwise, as np.rot90 does.
    return np.ascontiguousarray(np.rot90(result, quarter_turns)) if quarter_turns else result


def decode_frames(
    data: bytes,
    *,
    frames: int | None = None,
    fps: float | None = None,
    max_frames: int = 64,
    size: tuple[int, int] | None = None,
    limits: StreamLimits = DEFAULT_LIMITS,
) -> Frames:
    """Frames of a clip held in memory, ``T x H x W x 3`` RGB ``uint8``, upright.

    ``frames=K`` (8 unless ``fps`` is given): the frame shown at the middle of each of K
    equal spans of the clip; ``fps=F`` (instead): frames at ``0, 1/F, 2/F ...`` seconds,
    at most ``max_frames``. A clip with fewer frames than asked repeats frames.
    ``size=(H, W)`` scales them. Raises ``ValueError`` (or a PyAV error) for what cannot
    be decoded.
    """
    frames = _sampling(frames, fps, max_frames, size)
    with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
        if not container.streams.video:
            raise ValueError("the clip has no video stream")
        stream = container.streams.video[0]
        context = stream.codec_context
        if context.width * context.height > limits.max_pixels:
            raise ValueError(f"picture {context.width}x{context.height} is over the pixel limit")
        if stream.time_base is None:
            raise ValueError("the video stream has no time base")
        time_base = stream.time_base
        start = float(stream.start_time * time_base) if stream.start_time else 0.0
        duration = _duration(container, stream)
        if not 0 < duration <= limits.max_duration_s:
            raise ValueError(
                f"clip duration {duration:.2f} s is not in (0, {limits.max_duration_s}]"
            )
        decoded = 0
        chosen: list[Frames] = []
        source: Iterator[av.VideoFrame] | None = None
        previous: av.VideoFrame | None = None  # last frame shown at or before the target
        lookahead: av.VideoFrame | None = None  # first frame after it, already decoded
        for target in (start + t for t in _targets(duration, frames, fps, max_frames)):
            reference = previous if previous is not None else lookahead
            position = start if reference is None or reference.time is None else reference.time
            far = target - position > SEEK_AFTER_S
            if source is None or far:
                if far:
                    # To the keyframe at or before the target, then decode forward.
                    container.seek(int(target / time_base), stream=stream, backward=True)
                source = container.decode(stream)
                previous = lookahead = None
            while True:
                if lookahead is not None:
                    frame, lookahead = lookahead, None
                else:
                    following = next(source, None)
                    if following is None:
                        break  # end of the stream: the last frame stays on screen
                    frame = following
                    decoded += 1
                    if decoded > limits.max_decoded_frames:
                        raise ValueError(f"more than {limits.max_decoded_frames} frames decoded")
                if frame.time is not None and frame.time > target + 1e-6:
                    lookahead = frame
                    break
                previous = frame
            picked = previous if previous is not None else lookahead
            if picked is None:
                raise ValueError(f"no frame could be decoded near {target - start:.2f} s")
            chosen.append(_to_array(picked, size))
        return np.stack(chosen)


# -- the dataset -----------------------------------------------------------------------


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


class _Reader:
    """One consumer's open shards (a few, least recently used closed first)."""

    def __init__(self, source: ShardSource) -> None:
        self._source = source
        self._open: OrderedDict[int, BinaryIO] = OrderedDict()

    def read(self, shard: ShardEntry, sample: SampleEntry) -> bytes:
        handle = self._open.pop(shard.index, None)
        if handle is None:
            handle = self._source.open_shard(shard)
            while len(self._open) >= OPEN_SHARDS:
                self._open.popitem(last=False)[1].close()
        self._open[shard.index] = handle
        handle.seek(sample.offset)
        chunks: list[bytes] = []
        left = sample.size
        while left > 0:
            chunk = handle.read(left)
            if not chunk:
                raise OSError(f"the shard ends {left} bytes before the sample does (truncated?)")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()


class ShardStream(IterableDataset[dict[str, Any]]):
    """A dataset version's samples, split over ranks and DataLoader workers, each sample
    once per epoch, resumable mid-epoch (see the module docstring).

    ``index`` is the version's :class:`~shotbank.datasets.format.ShardIndex` and
    ``source`` where its shards are read (:meth:`from_directory` for a downloaded
    version). Options: ``seed``/``epoch``/``shuffle``/``shuffle_buffer`` fix the order;
    ``rank``/``world_size`` override ``torch.distributed``; ``keys`` limits the stream
    to those sample keys; ``decode=False`` yields the clip's bytes as ``video`` instead
    of ``frames``; ``frames``/``fps``/``max_frames``/``size`` choose frames;
    ``text(annotation) -> str`` builds ``text``; ``on_error`` raises
    :class:`SampleReadError` or skips (logged, counted) a sample that cannot be read;
    ``verify`` checks each clip's SHA-256 against its row.
    """

    def __init__(
        self,
        index: ShardIndex,
        source: ShardSource,
        *,
        seed: int = 0,
        epoch: int = 0,
        shuffle: bool = True,
        shuffle_buffer: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        keys: Collection[str] | None = None,
        decode: bool = True,
        frames: int | None = None,
        fps: float | None = None,
        max_frames: int = 64,
        size: tuple[int, int] | None = None,
        text: Callable[[Mapping[str, Any]], str] = conditioning_text,
        on_error: OnError = "raise",
        verify: bool = True,
        limits: StreamLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__()
        _check_int("seed", seed, 0, 2**63 - 1)
        _check_int("epoch", epoch, 0, 2**63 - 1)
        _check_int("shuffle_buffer", shuffle_buffer, 0, MAX_SHUFFLE_BUFFER)
        if (rank is None) != (world_size is None):
            raise ValueError("give rank and world_size together, or neither")
        if world_size is not None and rank is not None:
            _check_int("world_size", world_size, 1, MAX_CONSUMERS)
            _check_int("rank", rank, 0, world_size - 1)
        frames = _sampling(frames, fps, max_frames, size)
        if on_error not in ("raise", "skip"):
            raise ValueError('on_error must be "raise" or "skip"')
        self.index = index
        self.source = source
        self.shuffle = shuffle
        self.shuffle_buffer = shuffle_buffer
        self.rank = rank
        self.world_size = world_size
        self.decode = decode
        self.frames = frames
        self.fps = fps
        self.max_frames = max_frames
        self.size = size
        self.text = text
        self.on_error: OnError = on_error
        self.verify = verify
        self.limits = limits
        self._locations: list[tuple[int, int]] = []  # sample id -> (shard, sample) index
        shard_samples: list[list[int]] = []
        wanted = None if keys is None else frozenset(keys)
        for shard_index, shard in enumerate(index.shards):
            ids: list[int] = []
            for sample_index, sample in enumerate(shard.samples):
                if wanted is None or sample.key in wanted:
                    ids.append(len(self._locations))
                    self._locations.append((shard_index, sample_index))
            shard_samples.append(ids)
        if wanted is not None and len(self._locations) != len(wanted):
            raise ValueError(f"{len(wanted) - len(self._locations)} of keys are not in the version")
        self._shard_samples = shard_samples
        fingerprint = hashlib.sha256(
            json.dumps(
                [shuffle, shuffle_buffer, None if wanted is None else sorted(wanted)]
            ).encode()
        ).hexdigest()
        self._state = StreamState(
            version_hash=index.version_hash, order=fingerprint, seed=seed, epoch=epoch
        )
        self._order_cache: tuple[tuple[int, int], npt.NDArray[np.int64]] | None = None

    @classmethod
    def from_directory(cls, directory: str | os.PathLike[str], **options: Any) -> ShardStream:
        """The stream of a version directory (``index.json`` and its shards)."""
        path = Path(directory)
        return cls(read_index(path / INDEX_NAME), LocalShards(path), **options)

    # -- public state ------------------------------------------------------------------

    @property
    def num_samples(self) -> int:
        """Samples in one epoch (all ranks and workers together)."""
        return len(self._locations)

    @property
    def seed(self) -> int:
        """The seed of the order."""
        return self._state.seed

    @property
    def epoch(self) -> int:
        """The current epoch."""
        return self._state.epoch

    @property
    def skipped(self) -> int:
        """Samples skipped this epoch (``on_error="skip"``) as far as the main process
        has heard."""
        return sum(v or 0 for layer in self._state.layers for v in layer.skipped)

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` and start it from the beginning (no-op when it is
        already the current epoch, so resuming and then setting the same epoch keeps the
        progress)."""
        _check_int("epoch", epoch, 0, 2**63 - 1)
        if epoch != self._state.epoch:
            self._state = self._state.model_copy(update={"epoch": epoch, "layers": []})

    def state_dict(self) -> dict[str, Any]:
        """The epoch's progress as plain JSON data (for a checkpoint)."""
        return self._state.model_dump(mode="json")

    def load_state_dict(self, state: Mapping[str, Any] | StreamState) -> None:
        """Resume from ``state`` (from :meth:`state_dict` of a stream of the same version
        and order options): its seed, epoch and progress."""
        parsed = _parse_state(state)
        if parsed.version_hash != self._state.version_hash:
            raise StreamStateError(
                f"the state is of version {parsed.version_hash}, "
                f"this stream of {self._state.version_hash}"
            )
        if parsed.order != self._state.order:
            raise StreamStateError(
                "the state was taken with other order options (shuffle, shuffle_buffer, keys)"
            )
        self._state = parsed

    # -- main-side progress ------------------------------------------------------------

    def track(
        self, loader: Iterable[T], *, num_workers: int | None = None
    ) -> Generator[T, None, None]:
        """Iterate ``loader`` (a DataLoader over this stream), recording each delivered
        batch's progress so that :meth:`state_dict` is exact at every step.

        ``num_workers`` is the loader's (read from a ``DataLoader`` when not given).
        Pass the DataLoader itself, not an iterator already started: the progress layout
        is settled before its workers start.
        """
        if num_workers is None:
            if not isinstance(loader, DataLoader):
                raise ValueError("give num_workers= when loader is not a DataLoader")
            num_workers = loader.num_workers
        _check_int("num_workers", num_workers, 0, MAX_WORKERS)
        rank, world_size = self._layout()
        self._begin(rank, world_size, max(num_workers, 1))
        for batch in loader:
            self.record(batch)
            yield batch

    def record(self, delivered: Any) -> None:
        """Record a delivered sample or batch (anything holding this stream's
        ``progress`` values), e.g. when not iterating through :meth:`track`."""
        progress = delivered["progress"] if isinstance(delivered, Mapping) else delivered
        rows = torch.as_tensor(progress).reshape(-1, 3).tolist()
        if not self._state.layers:
            raise StreamStateError("record() before the stream was iterated")
        layer = self._state.layers[-1]
        for consumer, position, skipped in rows:
            if not 0 <= consumer < layer.consumers:
                raise StreamStateError(f"consumer {consumer} is not of the current layout")
            current = layer.counts[consumer]
            layer.counts[consumer] = max(current or 0, position + 1)
            layer.skipped[consumer] = max(layer.skipped[consumer] or 0, skipped)
            layer.last[consumer // layer.num_workers] = consumer

    # -- iteration ---------------------------------------------------------------------

    def _layout(self) -> tuple[int, int]:
        if self.rank is not None and self.world_size is not None:
            return self.rank, self.world_size
        return _distributed()

    def __getstate__(self) -> dict[str, Any]:
        # A worker started by spawn cannot see the parent's process group: fix the
        # rank and world size while pickling, in the parent.
        state = self.__dict__.copy()
        state["rank"], state["world_size"] = self._layout()
        state["_order_cache"] = None
        return state

    def _order(self) -> npt.NDArray[np.int64]:
        key = (self._state.seed, self._state.epoch)
        if self._order_cache is None or self._order_cache[0] != key:
            order = epoch_order(
                self._shard_samples,
                seed=key[0],
                epoch=key[1],
                shuffle=self.shuffle,
                shuffle_buffer=self.shuffle_buffer,
            )
            self._order_cache = (key, order)
        return self._order_cache[1]

    def _begin(self, rank: int, world_size: int, workers: int) -> LayerProgress:
        """Settle the progress layer this rank's ``workers`` consumers iterate in.

        Deterministic in the state, so the main process and every worker settle the same.
        """
        if not 0 <= rank < world_size or world_size * workers > MAX_CONSUMERS:
            raise ValueError(f"rank {rank} of {world_size} with {workers} workers is no layout")
        state = self._state
        consumers = world_size * workers
        mine = range(rank * workers, (rank + 1) * workers)
        layers = state.layers
        if layers:
            current = layers[-1]
            if current.consumers == consumers:
                if not current.known(mine):
                    raise StreamStateError(
                        f"the state does not hold rank {rank}'s progress: load the state "
                        "that rank saved, or the states of all ranks merged"
                    )
                if (current.world_size, current.num_workers) != (world_size, workers):
                    layers[-1] = current = current.model_copy(
                        update={
                            "world_size": world_size,
                            "num_workers": workers,
                            "last": [None] * world_size,
                        }
                    )
                if not self._finished(current, mine):
                    return current
                layers.clear()  # the epoch is over for this rank: iterate it again
            elif not all(layer.known(range(layer.consumers)) for layer in layers):
                raise StreamStateError(
                    "resuming on a different number of consumers needs every rank's "
                    "progress: merge the ranks' state dicts (merge_state_dicts)"
                )
            elif len(layers) >= MAX_LAYERS:
                raise StreamStateError(f"an epoch can go through at most {MAX_LAYERS} layouts")
        counts: list[int | None] = [0 if c in mine else None for c in range(consumers)]
        layer = LayerProgress(
            world_size=world_size,
            num_workers=workers,
            counts=counts,
            skipped=list(counts),
            last=[None] * world_size,
        )
        layers.append(layer)
        return layer

    def _finished(self, layer: LayerProgress, mine: Iterable[int]) -> bool:
        remaining = len(_remaining(self._order(), self._state.layers[:-1]))
        return all(
            (layer.counts[c] or 0) >= len(range(c, remaining, layer.consumers)) for c in mine
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, world_size = self._layout()
        info = get_worker_info()
        workers, worker = (1, 0) if info is None else (info.num_workers, info.id)
        layer = self._begin(rank, world_size, workers)
        # Rotate the workers so that the DataLoader's round-robin (worker 0 first) goes on
        # with the consumer after the one that delivered last.
        last = layer.last[rank]
        offset = 0 if last is None else (last - rank * workers + 1) % workers
        consumer = rank * workers + (worker + offset) % workers
        share = _remaining(self._order(), self._state.layers[:-1])[consumer :: layer.consumers]
        start = layer.counts[consumer] or 0
        skipped = layer.skipped[consumer] or 0
        reader = _Reader(self.source)
        try:
            for position in range(start, len(share)):
                shard_index, sample_index = self._locations[int(share[position])]
                shard = self.index.shards[shard_index]
                entry = shard.samples[sample_index]
                try:
                    sample = self._sample(reader, shard, entry)
                except SampleReadError as exc:
                    if self.on_error == "raise":
                        raise
                    skipped += 1
                    _log.warning("skipped %s", exc)
                    if info is None:
                        self.record(torch.tensor([consumer, position, skipped]))
                    continue
                sample["progress"] = torch.tensor([consumer, position, skipped], dtype=torch.int64)
                if info is None:
                    # In the main process the caller holds the sample once it is yielded.
                    self.record(sample["progress"])
                yield sample
        finally:
            reader.close()

    def _sample(self, reader: _Reader, shard: ShardEntry, entry: SampleEntry) -> dict[str, Any]:
        key = entry.key

        def fail(message: str) -> SampleReadError:
            return SampleReadError(message, key=key, shard=shard.name)

        if entry.size > self.limits.max_sample_bytes:
            raise fail(f"{entry.size} bytes, over the {self.limits.max_sample_bytes} byte limit")
        try:
            span = reader.read(shard, entry)
        except OSError as exc:
            raise fail(f"cannot be read: {exc}") from exc
        members = _members(span, key)
        if members is None:
            raise fail("the byte range in the index is not this sample's tar members")
        media = [ext for ext in members if ext in MEDIA_EXTENSIONS]
        if "json" not in members or len(media) != 1:
            raise fail(f"needs one media member and a json member, has {sorted(members)}")
        if len(members["json"]) > MAX_ROW_BYTES:
            raise fail("its json member is over the row size limit")
        try:
            meta = json.loads(members["json"])
        except ValueError as exc:
            raise fail(f"its json member is not JSON: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("key") != key:
            raise fail("its json member is not this sample's manifest row")
        clip = members[media[0]]
        if self.verify and hashlib.sha256(clip).hexdigest() != meta.get("sha256"):
            raise fail("the clip's SHA-256 is not the one in its manifest row (damaged shard?)")
        annotation = meta.get("annotation")
        annotation = annotation if isinstance(annotation, dict) else {}
        sample: dict[str, Any] = {"key": key}
        if self.decode:
            try:
                array = decode_frames(
                    clip,
                    frames=self.frames,
                    fps=self.fps,
                    max_frames=self.max_frames,
                    size=self.size,
                    limits=self.limits,
                )
            except (av.FFmpegError, ValueError, OSError) as exc:
                raise fail(f"the clip cannot be decoded: {exc}") from exc
            sample["frames"] = torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))
        else:
            sample["video"] = clip
        sample["annotation"] = annotation
        sample["text"] = self.text(annotation)
        sample["meta"] = meta
        return sample


def _members(span: bytes, key: str) -> dict[str, bytes] | None:
    """The members of a sample's tar fragment by extension; ``None`` when the fragment
    is not a tar run of ``<key>.*`` regular files."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(span), mode="r:") as archive:
            for member in archive:
                stem, dot, ext = member.name.partition(".")
                if stem != key or not dot or not member.isreg() or ext in found:
                    return None
                found[ext] = span[member.offset_data : member.offset_data + member.size]
                if member.offset_data + member.size > len(span):
                    return None
    except tarfile.TarError:
        return None
    return found or None


def collate(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Batch samples: ``frames`` stacked into ``B x T x C x H x W`` (they must share a
    shape: pass ``size=``), ``progress`` into ``B x 3``, everything else as lists."""
    if not samples:
        raise ValueError("no samples to collate")
    batch: dict[str, Any] = {}
    for name in samples[0]:
        values = [sample[name] for sample in samples]
        if name in ("frames", "progress"):
            batch[name] = torch.stack(values)
        else:
            batch[name] = values
    return batch
