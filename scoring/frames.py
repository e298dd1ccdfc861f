"""What the scorers look at: K frames spread over a clip, and its sound as mono 16 kHz.

Frames (:func:`sample_frames`): the clip is cut into K equal spans and the frame shown
at the middle of each is returned (never the very first or last frame, where fades and
black leaders sit). Reaching a target time is keyframe-aware: seek to the keyframe at or
before it, then decode forward to the frame displayed at that time; a target close
after the previous one (within ``forward_window_s``) is reached by decoding on instead
of seeking again. Decoding all frames would cost the whole clip; jumping to the nearest
keyframe alone would return the wrong picture by up to a GOP (seconds). On the way, the
decoder skips non-reference frames (B-frames nothing predicts from) displayed more than
``skip_margin_s`` before the target: no target shows them, so the frame returned is the
same, for about half the decoding on a long GOP with B-frames. Should no frame at all
fall within the margin (a very low or variable frame rate), the target is decoded again
without skipping.

Sound (:func:`decode_audio`): the first audio stream, resampled by FFmpeg (PyAV's
``AudioResampler``) to 16 kHz float, then averaged over its channels. Averaging keeps
the level of a sound common to all channels; FFmpeg's own stereo downmix would scale it
by 1.41 and can clip.

Every decode is bounded by :class:`SamplingLimits` (pixels, duration, frames decoded for
one target, output size); what cannot be sampled raises the :class:`scoring.errors.MediaError`
family, never a bare PyAV error. :func:`sample_clip` does both from one open container.
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator
from dataclasses import dataclass
from typing import BinaryIO, Final

import av
import av.container
import numpy as np
import numpy.typing as npt

from scoring.errors import MediaLimitError, MissingStreamError, UndecodableMediaError

__all__ = [
    "AUDIO_RATE",
    "DEFAULT_FRAME_COUNT",
    "MAX_DECODE_THREADS",
    "AudioTrack",
    "ClipSample",
    "SampledFrames",
    "SamplingLimits",
    "decode_audio",
    "sample_clip",
    "sample_frames",
    "target_times",
]

#: Frames per clip unless the caller asks otherwise.
DEFAULT_FRAME_COUNT: Final = 8
#: Sample rate of decoded audio (what audio-text models such as CLAP take).
AUDIO_RATE: Final = 16_000
#: Most decoder threads one video decode may be given.
MAX_DECODE_THREADS: Final = 64

Source = str | os.PathLike[str] | BinaryIO
Frame = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class SamplingLimits:
    """Bounds on the work and memory one clip may cost."""

    #: Largest picture (width x height) decoded at all; 8192 x 4320 by default.
    max_pixels: int = 8192 * 4320
    #: Longest clip sampled, in seconds (video or audio).
    max_duration_s: float = 3600.0
    #: Frames decoded to reach one target after a seek (a longer GOP is refused).
    max_decoded_per_target: int = 1200
    #: Most frames asked for in one call.
    max_frames: int = 64
    #: Returned frames are scaled down so their longer side is at most this.
    max_side: int = 640
    #: Packets read when the container states no duration and it must be measured.
    max_scan_packets: int = 200_000


DEFAULT_LIMITS: Final = SamplingLimits()


@dataclass(frozen=True)
class SampledFrames:
    """Frames taken from a clip's first video stream, in display order."""

    #: RGB ``uint8`` arrays, ``H x W x 3``, upright (display rotation applied).
    frames: tuple[Frame, ...]
    #: Presentation time of each returned frame, seconds from the stream's start.
    timestamps: tuple[float, ...]
    #: The times asked for, seconds from the stream's start.
    targets: tuple[float, ...]
    #: Stream duration in seconds.
    duration: float
    #: Display size of the source (after rotation), before any scaling.
    width: int
    height: int
    #: Frames decoded in all (the cost of sampling; skipped non-reference frames do not
    #: count).
    decoded: int


@dataclass(frozen=True)
class AudioTrack:
    """A clip's first audio stream as mono float32 samples in [-1, 1]."""

    samples: npt.NDArray[np.float32]
    sample_rate: int
    source_rate: int
    source_channels: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class ClipSample:
    """Frames and, when the clip has sound, its audio."""

    frames: SampledFrames
    audio: AudioTrack | None


def target_times(duration: float, count: int) -> list[float]:
    """The middle of each of ``count`` equal spans of ``[0, duration)``."""
    if count < 1:
        raise ValueError("count must be at least 1")
    return [(index + 0.5) * duration / count for index in range(count)]


def _open(source: Source) -> av.container.InputContainer:
    try:
        target: str | BinaryIO = os.fspath(source) if isinstance(source, os.PathLike) else source
        return av.open(target, mode="r", metadata_errors="ignore")
    except FileNotFoundError:
        raise
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise UndecodableMediaError(f"not a media file PyAV can open: {exc}") from exc


def _video_stream(container: av.container.InputContainer) -> av.VideoStream:
    if not container.streams.video:
        raise MissingStreamError("the clip has no video stream")
    return container.streams.video[0]


def _stream_start(stream: av.VideoStream | av.AudioStream) -> float:
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def _duration(
    container: av.container.InputContainer, stream: av.VideoStream, limits: SamplingLimits
) -> float:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None and container.duration > 0:
        duration = container.duration / av.time_base
    else:
        duration = _scan_duration(container, stream, limits)
    if duration > limits.max_duration_s:
        raise MediaLimitError(
            f"clip lasts {duration:.1f} s, over the {limits.max_duration_s:.0f} s limit"
        )
    return duration


def _scan_duration(
    container: av.container.InputContainer, stream: av.VideoStream, limits: SamplingLimits
) -> float:
    """Measure the duration from packet timestamps when the container states none."""
    start, end = _stream_start(stream), None
    assert stream.time_base is not None
    for read, packet in enumerate(container.demux(stream), start=1):
        if read > limits.max_scan_packets:
            raise MediaLimitError("the clip states no duration and is too long to measure")
        if packet.pts is not None:
            stop = float((packet.pts + (packet.duration or 0)) * stream.time_base)
            end = stop if end is None else max(end, stop)
    container.seek(0)
    if end is None or end <= start:
        raise UndecodableMediaError("the clip's video stream has no timed packets")
    return end - start


def _upright(frame: av.VideoFrame, limits: SamplingLimits) -> Frame:
    scale = min(1.0, limits.max_side / max(frame.width, frame.height))
    width = max(2, round(frame.width * scale))
    height = max(2, round(frame.height * scale))
    array = np.asarray(frame.to_ndarray(format="rgb24", width=width, height=height), np.uint8)
    quarter_turns = (frame.rotation // 90) % 4
    # The display matrix rotates counter-clockwise, as np.rot90 does.
    return np.ascontiguousarray(np.rot90(array, quarter_turns)) if quarter_turns else array


class _Decoder:
    """Decoded frames of one stream from its current position, skipping what no target needs.

    While the packets fed display before :attr:`skip_before` (stream seconds), the
    decoder drops non-reference frames (``skip_frame = "NONREF"``): nothing refers to
    them and no target shows them, so the frames that are output are exactly those a
    full decode gives, minus some the caller would have thrown away. The choice is made
    per packet from its own presentation time, before it is sent, so it holds whatever
    the decoder's reordering delay.
    """

    def __init__(self, container: av.container.InputContainer, stream: av.VideoStream) -> None:
        self.skip_before = -math.inf
        #: Packets sent to the decoder (the bound on work, whether frames came out or not).
        self.sent = 0
        self._container = container
        self._stream = stream
        self._skipping = False

    def _set_skipping(self, skipping: bool) -> None:
        if skipping != self._skipping:
            self._stream.codec_context.skip_frame = "NONREF" if skipping else "DEFAULT"
            self._skipping = skipping

    def frames(self) -> Generator[av.VideoFrame]:
        """Frames in display order until the end of the stream."""
        time_base = self._stream.time_base
        assert time_base is not None
        try:
            for packet in self._container.demux(self._stream):
                # A packet without a timestamp (or the final flush) is never skipped.
                self._set_skipping(
                    packet.pts is not None and float(packet.pts * time_base) < self.skip_before
                )
                self.sent += 1
                yield from packet.decode()
        finally:
            self._set_skipping(False)


def _frames(
    container: av.container.InputContainer,
    count: int,
    limits: SamplingLimits,
    forward_window_s: float,
    skip_margin_s: float,
    threads: int | None = None,
) -> SampledFrames:
    if not 1 <= count <= limits.max_frames:
        raise ValueError(f"count must be between 1 and {limits.max_frames}")
    if threads is not None and not 1 <= threads <= MAX_DECODE_THREADS:
        raise ValueError(f"threads must be between 1 and {MAX_DECODE_THREADS}")
    stream = _video_stream(container)
    context = stream.codec_context
    if threads is not None:
        context.thread_count = threads  # before the first packet opens the decoder
    if context.width * context.height > limits.max_pixels:
        raise MediaLimitError(
            f"picture {context.width}x{context.height} is over the {limits.max_pixels} pixel limit"
        )
    if stream.time_base is None:
        raise UndecodableMediaError("the video stream has no time base")
    time_base = stream.time_base
    start = _stream_start(stream)
    duration = _duration(container, stream, limits)
    targets = target_times(duration, count)
    # The margin must hold at least one frame for the frame on screen at the target to be
    # decoded (two frame durations, so rounding of timestamps cannot empty it).
    rate = stream.average_rate
    if skip_margin_s > 0.0 and rate is not None and rate > 0:
        skip_margin_s = max(skip_margin_s, 2.0 / float(rate))

    decoder: _Decoder | None = None
    frames_out: Generator[av.VideoFrame] | None = None
    previous: av.VideoFrame | None = None  # last frame at or before the current target
    lookahead: av.VideoFrame | None = None  # first frame after it, already decoded
    decoded = 0
    chosen: list[av.VideoFrame] = []
    try:
        for target in targets:
            reference = previous if previous is not None else lookahead
            near = (
                reference is not None
                and reference.pts is not None
                and 0 <= start + target - reference.time <= forward_window_s
            )
            skip_before = start + target - skip_margin_s
            # At most twice: the second time without skipping, when the first found no
            # frame within the margin (frames further apart than it), so the frame on
            # screen at the target may have been a skipped one.
            for skip in (skip_margin_s > 0.0, False):
                if decoder is None or not near:
                    if frames_out is not None:
                        frames_out.close()  # restores skip_frame now, not when collected
                    container.seek(int((start + target) / time_base), stream=stream, backward=True)
                    decoder = _Decoder(container, stream)
                    frames_out = decoder.frames()
                    previous = lookahead = None
                decoder.skip_before = skip_before if skip else -math.inf
                sent_before = decoder.sent
                while True:
                    if lookahead is not None:
                        frame, lookahead = lookahead, None
                    else:
                        assert frames_out is not None
                        next_frame = next(frames_out, None)
                        if next_frame is None:
                            break  # end of stream: the last frame stays on screen
                        frame = next_frame
                        decoded += 1
                    if decoder.sent - sent_before > limits.max_decoded_per_target:
                        raise MediaLimitError(
                            f"more than {limits.max_decoded_per_target} frames decoded to "
                            f"reach {target:.2f} s (keyframes too far apart)"
                        )
                    if frame.pts is not None and frame.time > start + target + 1e-6:
                        lookahead = frame
                        break
                    previous = frame
                exact = previous is None or previous.pts is None or previous.time >= skip_before
                if not skip or exact:
                    break
                near = False  # decode this target again from its keyframe, skipping nothing
            # A seek can land after the target (a stream starting late): take the first frame.
            picked = previous if previous is not None else lookahead
            if picked is None:
                raise UndecodableMediaError(f"no frame could be decoded near {target:.2f} s")
            chosen.append(picked)
    except av.FFmpegError as exc:
        raise UndecodableMediaError(f"the video stream cannot be decoded: {exc}") from exc
    finally:
        if frames_out is not None:
            frames_out.close()

    frames = tuple(_upright(frame, limits) for frame in chosen)
    display_w, display_h = context.width, context.height
    if (chosen[0].rotation // 90) % 2:
        display_w, display_h = display_h, display_w
    return SampledFrames(
        frames=frames,
        timestamps=tuple(frame.time - start for frame in chosen),
        targets=tuple(targets),
        duration=duration,
        width=display_w,
        height=display_h,
        decoded=decoded,
    )


def _audio(container: av.container.InputContainer, rate: int, limits: SamplingLimits) -> AudioTrack:
    if not container.streams.audio:
        raise MissingStreamError("the clip has no audio stream")
    stream = container.streams.audio[0]
    channels = stream.codec_context.channels
    source_rate = stream.codec_context.sample_rate
    resampler = av.AudioResampler(format="fltp", rate=rate)
    max_samples = int(limits.max_duration_s * rate)
    chunks: list[npt.NDArray[np.float32]] = []
    total = 0

    def take(frames: list[av.AudioFrame]) -> None:
        nonlocal total
        for out in frames:
            planes = out.to_ndarray()
            chunks.append(planes.mean(axis=0, dtype=np.float32))
            total += planes.shape[1]
        if total > max_samples:
            raise MediaLimitError(f"sound lasts over the {limits.max_duration_s:.0f} s limit")

    try:
        container.seek(0)
        for frame in container.decode(stream):
            take(resampler.resample(frame))
        take(resampler.resample(None))
    except av.FFmpegError as exc:
        raise UndecodableMediaError(f"the audio stream cannot be decoded: {exc}") from exc
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return AudioTrack(
        samples=samples.astype(np.float32, copy=False),
        sample_rate=rate,
        source_rate=source_rate,
        source_channels=channels,
    )


def sample_frames(
    source: Source,
    *,
    count: int = DEFAULT_FRAME_COUNT,
    limits: SamplingLimits = DEFAULT_LIMITS,
    forward_window_s: float = 1.0,
    skip_margin_s: float = 0.1,
    threads: int | None = None,
) -> SampledFrames:
    """``count`` frames spread evenly over the clip's first video stream (see the module).

    Non-reference frames displayed more than ``skip_margin_s`` before a target are not
    decoded (0 decodes every frame); the frames returned are the same either way.
    ``threads``: decoder threads (``None``: FFmpeg's choice, one more than the cores).
    """
    with _open(source) as container:
        return _frames(container, count, limits, forward_window_s, skip_margin_s, threads)


def decode_audio(
    source: Source, *, rate: int = AUDIO_RATE, limits: SamplingLimits = DEFAULT_LIMITS
) -> AudioTrack:
    """The clip's first audio stream as mono float32 at ``rate`` Hz."""
    with _open(source) as container:
        return _audio(container, rate, limits)


def sample_clip(
    source: Source,
    *,
    count: int = DEFAULT_FRAME_COUNT,
    rate: int = AUDIO_RATE,
    limits: SamplingLimits = DEFAULT_LIMITS,
    threads: int | None = None,
) -> ClipSample:
    """Frames and audio (None for a silent clip) from one open container; ``threads`` as
    for :func:`sample_frames`."""
    with _open(source) as container:
        frames = _frames(
            container, count, limits, forward_window_s=1.0, skip_margin_s=0.1, threads=threads
        )
        audio = _audio(container, rate, limits) if container.streams.audio else None
    return ClipSample(frames=frames, audio=audio)
