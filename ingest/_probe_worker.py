"""The probe worker process: ``python -m ingest._probe_worker``, started by ingest.probe.

Reads one JSON request on stdin, limits itself, probes, and writes one JSON reply on
stdout. Only :func:`ingest.probe.probe_file` should start it; see that module for what
is checked and why. Limits are set here, in the child, rather than through a
``preexec_fn`` in the parent, because ``preexec_fn`` is unsafe in a threaded server.
"""

from __future__ import annotations

import importlib
import math
import os
import pkgutil
import resource
import sys
from collections.abc import Iterator
from fractions import Fraction
from typing import TYPE_CHECKING, Final

from ingest._structure import DeclaredSize, StructureReport, inspect_structure
from ingest.errors import (
    CorruptMediaError,
    DurationOutOfBoundsError,
    FrameRateOutOfBoundsError,
    IngestError,
    NoVideoStreamError,
    ProbeFailedError,
    ProbeResourceLimitError,
    ResolutionOutOfBoundsError,
    TooManyStreamsError,
    UnsupportedCodecError,
    UnsupportedStreamError,
)
from ingest.probe import (
    AudioStreamInfo,
    Loudness,
    ProbeLimits,
    ProbeResult,
    Thumbnail,
    ThumbnailSpec,
    VideoStreamInfo,
    _WorkerReply,
    _WorkerRequest,
)
from ingest.sniff import ContainerFormat

if TYPE_CHECKING:
    from av.audio.frame import AudioFrame
    from av.audio.stream import AudioStream
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

__all__ = ["main"]

MAX_REQUEST: Final = 1 << 20
MAX_OPEN_FILES: Final = 64
_SILENCE_GATE_LUFS: Final = -70.0
_ROTATIONS: Final = {90: "transpose=clock", 180: "hflip,vflip", 270: "transpose=cclock"}
# Built before the memory limit is set, for when it leaves no room to build a reply.
_OUT_OF_MEMORY_REPLY: Final = (
    _WorkerReply(
        ok=False,
        code=ProbeResourceLimitError.code,
        message="Probing needed more memory than allowed and was stopped.",
    )
    .model_dump_json()
    .encode()
)


def _lower_limit(which: int, value: int) -> None:
    """Set soft and hard limit ``which`` to ``value``, never above the current hard limit."""
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def _limit_process(limits: ProbeLimits) -> None:
    """Everything but memory: set before PyAV is loaded, so it covers everything."""
    _lower_limit(resource.RLIMIT_CORE, 0)
    _lower_limit(resource.RLIMIT_FSIZE, 0)  # the worker writes no files (SIGXFSZ is ignored)
    _lower_limit(resource.RLIMIT_NOFILE, MAX_OPEN_FILES)
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    cpu = limits.cpu_seconds
    if hard != resource.RLIM_INFINITY:
        cpu = min(cpu, hard - 1)
    # SIGXCPU at the soft limit, SIGKILL at the hard one should SIGXCPU be caught.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _address_space() -> int:
    """Bytes of address space this process maps now (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _load_pyav() -> None:
    """Import every PyAV module now: under RLIMIT_AS a lazy import can fail to map."""
    import av

    for info in pkgutil.walk_packages(av.__path__, "av."):
        if info.name not in ("av.__main__", "av.datasets"):
            importlib.import_module(info.name)


# --- checks ------------------------------------------------------------------------


def _check_size(width: int, height: int, limits: ProbeLimits, what: str) -> None:
    if width <= 0 or height <= 0:
        raise ResolutionOutOfBoundsError(f"The {what} has no valid picture size.")
    short, long = sorted((width, height))
    if long > limits.max_long_side or short > limits.max_short_side:
        raise ResolutionOutOfBoundsError(
            f"The {what} is {width}x{height}; the largest accepted is "
            f"{limits.max_long_side}x{limits.max_short_side} (either orientation)."
        )
    if short < limits.min_short_side:
        raise ResolutionOutOfBoundsError(
            f"The {what} is {width}x{height}; the shorter side must be at least "
            f"{limits.min_short_side} pixels."
        )


def _check_declared(declared: DeclaredSize, limits: ProbeLimits) -> None:
    short, long = sorted((declared.width, declared.height))
    if long > limits.max_long_side or short > limits.max_short_side:
        raise ResolutionOutOfBoundsError(
            f"The container declares a {declared.width}x{declared.height} video "
            f"({declared.source}); the largest accepted is "
            f"{limits.max_long_side}x{limits.max_short_side}."
        )


def _codec_name(stream: VideoStream | AudioStream) -> str:
    return str(stream.codec_context.codec.canonical_name)


def _classify_streams(
    container: InputContainer,
    structure: StructureReport,
    sniffed_container: ContainerFormat,
    limits: ProbeLimits,
) -> tuple[VideoStream, list[AudioStream], int]:
    import av

    streams = list(container.streams)
    if len(streams) > limits.max_streams:
        raise TooManyStreamsError(
            f"The file has {len(streams)} streams; at most {limits.max_streams} are accepted."
        )
    videos: list[VideoStream] = []
    audios: list[AudioStream] = []
    data = 0
    for stream in streams:
        if isinstance(stream, av.VideoStream):
            if stream.disposition & av.stream.Disposition.attached_pic:
                raise UnsupportedStreamError("Embedded cover pictures are not accepted.")
            videos.append(stream)
        elif isinstance(stream, av.AudioStream):
            audios.append(stream)
        elif stream.type == "data":
            data += 1
        else:
            raise UnsupportedStreamError(f"Streams of type {stream.type!r} are not accepted.")
    if data:
        kinds = structure.other_entry_types
        if (
            sniffed_container is not ContainerFormat.MP4
            or not kinds
            or not kinds <= limits.data_stream_tags
        ):
            shown = ", ".join(sorted(kinds)) or "unknown"
            raise UnsupportedStreamError(
                f"Data streams of kind {shown} are not accepted; allowed: "
                f"{', '.join(sorted(limits.data_stream_tags))}."
            )
    if not videos:
        raise NoVideoStreamError("The file has no video stream.")
    if len(videos) > limits.max_video_streams:
        raise UnsupportedStreamError(
            f"The file has {len(videos)} video streams; at most "
            f"{limits.max_video_streams} is accepted."
        )
    for stream in videos:
        codec = _codec_name(stream)
        if codec not in limits.video_codecs:
            raise UnsupportedCodecError(
                f"Video codec {codec!r} is not accepted; use one of "
                f"{', '.join(sorted(limits.video_codecs))}."
            )
    for audio in audios:
        codec = _codec_name(audio)
        if codec not in limits.audio_codecs:
            raise UnsupportedCodecError(
                f"Audio codec {codec!r} is not accepted; use AAC, Opus, FLAC or PCM."
            )
    return videos[0], audios, data


def _duration_s(container: InputContainer, video: VideoStream) -> float:
    """The video stream's duration, else the container's (Matroska often has only that).

    The video's own length comes first: a one-second picture with ten seconds of sound
    is a one-second clip.
    """
    if video.duration is not None and video.duration > 0 and video.time_base is not None:
        return float(video.duration * video.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    raise DurationOutOfBoundsError("The clip's duration is unknown.")


def _check_duration(duration: float, limits: ProbeLimits) -> None:
    if duration < limits.min_duration_s:
        raise DurationOutOfBoundsError(
            f"The clip is {duration:.2f} s long; at least {limits.min_duration_s:g} s is needed."
        )
    if duration > limits.max_duration_s:
        raise DurationOutOfBoundsError(
            f"The clip is {duration:.1f} s long; at most {limits.max_duration_s:g} s is accepted."
        )


def _frame_rate(video: VideoStream, limits: ProbeLimits) -> Fraction:
    rate = video.average_rate or video.guessed_rate
    if not rate:
        raise FrameRateOutOfBoundsError("The video's frame rate is unknown.")
    if not limits.min_frame_rate <= rate <= limits.max_frame_rate:
        raise FrameRateOutOfBoundsError(
            f"The video runs at {float(rate):.3f} frames per second; accepted: "
            f"{limits.min_frame_rate:g} to {limits.max_frame_rate:g}."
        )
    return Fraction(rate)


# --- measurements ------------------------------------------------------------------


def _drain(graph: object) -> Iterator[AudioFrame]:
    import av

    assert isinstance(graph, av.filter.Graph)
    while True:
        try:
            frame = graph.pull()
        except (av.BlockingIOError, av.EOFError):
            return
        assert isinstance(frame, av.AudioFrame)
        yield frame


def _loudness(container: InputContainer, stream: AudioStream) -> Loudness:
    """EBU R128 of ``stream`` via FFmpeg's ebur128 filter (integrated, LRA, true peak)."""
    import av
    import av.filter

    stream.codec_context.thread_count = 1
    graph: av.filter.Graph | None = None
    found: dict[str, str] = {}
    container.seek(0)
    for packet in container.demux(stream):
        for frame in packet.decode():
            assert isinstance(frame, av.AudioFrame)
            if graph is None:
                graph = av.filter.Graph()
                source = graph.add_abuffer(
                    format=frame.format.name,
                    sample_rate=frame.sample_rate,
                    layout=frame.layout.name,
                    time_base=frame.time_base,
                )
                meter = graph.add("ebur128", "metadata=1:peak=true")
                sink = graph.add("abuffersink")
                source.link_to(meter)
                meter.link_to(sink)
                graph.configure()
            graph.push(frame)
            for out in _drain(graph):
                found = dict(out.metadata) or found
    if graph is not None:
        graph.push(None)
        for out in _drain(graph):
            found = dict(out.metadata) or found
    if not found:
        return Loudness(integrated_lufs=None, loudness_range_lu=None, true_peak_dbtp=None)
    integrated = float(found["lavfi.r128.I"])
    peak = float(found.get("lavfi.r128.true_peak", "0"))
    return Loudness(
        integrated_lufs=round(integrated, 2) if integrated > _SILENCE_GATE_LUFS else None,
        loudness_range_lu=round(float(found["lavfi.r128.LRA"]), 2),
        true_peak_dbtp=round(20 * math.log10(peak), 2) if peak > 0 else None,
    )


def _audio_info(stream: AudioStream, loudness: Loudness | None) -> AudioStreamInfo:
    context = stream.codec_context
    return AudioStreamInfo(
        index=stream.index,
        codec=_codec_name(stream),
        sample_rate=context.sample_rate,
        channels=context.channels,
        channel_layout=context.layout.name[:64],
        bit_rate=context.bit_rate or None,
        loudness=loudness,
    )


def _seek_frame(
    container: InputContainer, video: VideoStream, target_s: float, limits: ProbeLimits
) -> VideoFrame:
    """The first frame at or after ``target_s`` (stream time), else the last one decoded."""
    import av

    time_base = video.time_base
    assert time_base is not None
    start = float((video.start_time or 0) * time_base)
    container.seek(int((start + target_s) / time_base), stream=video, backward=True)
    chosen: VideoFrame | None = None
    for decoded, frame in enumerate(container.decode(video), start=1):
        assert isinstance(frame, av.VideoFrame)
        chosen = frame
        if frame.time is not None and frame.time >= start + target_s:
            break
        if decoded >= limits.max_thumbnail_decode_frames:
            break
    if chosen is None:
        raise CorruptMediaError("No video frame could be decoded.")
    return chosen


def _rotation(frame: VideoFrame) -> int:
    """Clockwise degrees the picture is turned for display (FFmpeg's display matrix)."""
    return (-round(frame.rotation / 90) * 90) % 360


def _upright(frame: VideoFrame, rotation: int) -> VideoFrame:
    import av
    import av.filter

    if rotation not in _ROTATIONS:
        return frame
    graph = av.filter.Graph()
    source = graph.add_buffer(
        width=frame.width, height=frame.height, format=frame.format, time_base=Fraction(1, 1)
    )
    steps = (step.partition("=") for step in _ROTATIONS[rotation].split(","))
    chain = [graph.add(name, args) for name, _, args in steps]
    sink = graph.add("buffersink")
    previous = source
    for node in chain:
        previous.link_to(node)
        previous = node
    previous.link_to(sink)
    graph.configure()
    frame.pts = 0
    graph.push(frame)
    out = graph.pull()
    assert isinstance(out, av.VideoFrame)
    return out


def _encode_image(frame: VideoFrame, spec: ThumbnailSpec, quality: int) -> bytes:
    import av

    if spec.format == "jpeg":
        codec, pix_fmt = "mjpeg", "yuvj420p"
        scale = round(2 + (100 - quality) * 29 / 99)
        options = {"qmin": str(scale), "qmax": str(scale)}
    else:
        codec, pix_fmt = "libwebp", "yuv420p"
        options = {"quality": str(quality), "lossless": "0"}
    encoder = av.CodecContext.create(codec, "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width, encoder.height, encoder.pix_fmt = frame.width, frame.height, pix_fmt
    encoder.time_base = Fraction(1, 25)
    encoder.thread_count = 1
    encoder.options = options
    image = frame.reformat(format=pix_fmt)
    image.pts = 0
    packets = encoder.encode(image) + encoder.encode(None)
    return b"".join(bytes(packet) for packet in packets)


def _thumbnail(
    frame: VideoFrame, video: VideoStream, spec: ThumbnailSpec, rotation: int, timestamp: float
) -> Thumbnail:
    sar = video.sample_aspect_ratio
    display_width = frame.width * (float(sar) if sar else 1.0)
    side = spec.max_side
    quality = spec.quality
    for _attempt in range(12):
        scale = min(1.0, side / max(display_width, frame.height))
        width = max(2, round(display_width * scale / 2) * 2)
        height = max(2, round(frame.height * scale / 2) * 2)
        small = _upright(frame.reformat(width=width, height=height, format="yuv420p"), rotation)
        data = _encode_image(small, spec, quality)
        if len(data) <= spec.max_bytes:
            return Thumbnail(
                media_type="image/jpeg" if spec.format == "jpeg" else "image/webp",
                width=small.width,
                height=small.height,
                timestamp_s=round(timestamp, 3),
                data=data,
            )
        if quality > 30:
            quality -= 20
        else:
            side = max(16, side // 2)
    raise ProbeFailedError("No thumbnail fitting the size limit could be made.")


# --- the probe -----------------------------------------------------------------------


def _container_options(sniffed_container: ContainerFormat) -> dict[str, str]:
    options = {
        "protocol_whitelist": "file",
        "format_whitelist": sniffed_container.demuxer,
    }
    if sniffed_container is ContainerFormat.MP4:
        # QuickTime data references can point at other files; keep them off explicitly.
        options |= {"enable_drefs": "0", "use_absolute_path": "0"}
    return options


def probe(request: _WorkerRequest) -> ProbeResult:
    """Probe ``request.path`` in this (already limited) process."""
    import av

    limits = request.limits
    sniffed = request.sniffed
    with open(request.path, "rb") as handle:
        structure = inspect_structure(handle, request.size, sniffed.container)
    for declared in structure.declared:
        _check_declared(declared, limits)
    try:
        container = av.open(
            "file:" + request.path,
            mode="r",
            format=sniffed.container.demuxer,
            container_options=_container_options(sniffed.container),
            metadata_errors="replace",
        )
    except MemoryError:
        raise
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(f"The file cannot be read: {exc.strerror}.") from exc
    with container:
        video, audios, data_streams = _classify_streams(
            container, structure, sniffed.container, limits
        )
        context = video.codec_context
        _check_size(context.width, context.height, limits, "video")
        rate = _frame_rate(video, limits)
        duration = _duration_s(container, video)
        _check_duration(duration, limits)
        audio_infos = []
        for position, stream in enumerate(audios):
            measured = None
            if position == 0 and limits.measure_loudness:
                measured = _loudness(container, stream)
            audio_infos.append(_audio_info(stream, measured))
        context.thread_count = 1
        target = duration * (request.thumbnail.position if request.thumbnail else 0.0)
        frame = _seek_frame(container, video, min(target, max(0.0, duration - 0.001)), limits)
        _check_size(frame.width, frame.height, limits, "decoded picture")
        rotation = _rotation(frame)
        poster = None
        if request.thumbnail is not None:
            start = float((video.start_time or 0) * (video.time_base or 0))
            timestamp = (frame.time or 0.0) - start
            poster = _thumbnail(frame, video, request.thumbnail, rotation, timestamp)
        return ProbeResult(
            container=sniffed.container,
            brand=sniffed.brand,
            demuxer=container.format.name[:64],
            size_bytes=request.size,
            duration_s=round(duration, 6),
            bit_rate=container.bit_rate or None,
            stream_count=len(container.streams),
            video=VideoStreamInfo(
                index=video.index,
                codec=_codec_name(video),
                profile=video.profile,
                width=context.width,
                height=context.height,
                pixel_format=context.pix_fmt,
                frame_rate=round(float(rate), 6),
                frame_rate_exact=f"{rate.numerator}/{rate.denominator}",
                rotation=rotation,
                bit_rate=context.bit_rate or None,
            ),
            audio=tuple(audio_infos),
            data_streams=data_streams,
            thumbnail=poster,
        )


def _reply(request: _WorkerRequest) -> _WorkerReply:
    import av

    try:
        return _WorkerReply(ok=True, result=probe(request))
    except IngestError as exc:
        return _WorkerReply(ok=False, code=exc.code, message=exc.message[:2000])
    except MemoryError:  # includes av.error.MemoryError (ENOMEM from FFmpeg)
        raise
    except av.error.FFmpegError as exc:
        return _WorkerReply(
            ok=False,
            code=CorruptMediaError.code,
            message=f"FFmpeg could not read the file: {exc.strerror}."[:2000],
        )


def main() -> int:
    """Read the request, limit this process, probe, answer; the exit status is 0."""
    request = _WorkerRequest.model_validate_json(sys.stdin.buffer.read(MAX_REQUEST))
    # The reply owns the real stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _limit_process(request.limits)
    _load_pyav()
    _lower_limit(resource.RLIMIT_AS, _address_space() + request.limits.memory_bytes)
    try:
        reply = _reply(request)
        out.write(reply.model_dump_json().encode())
    except MemoryError:
        out.write(_OUT_OF_MEMORY_REPLY)
    except Exception as exc:  # anything unexpected is reported, never a traceback
        failure = _WorkerReply(
            ok=False,
            code=ProbeFailedError.code,
            message=f"The probe failed unexpectedly ({type(exc).__name__}).",
        )
        out.write(failure.model_dump_json().encode())
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
