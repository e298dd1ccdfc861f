"""Probing: what a clip holds, measured with PyAV in a resource-limited worker process.

:func:`probe_file` sniffs the file (unless given the sniff result), then runs
``python -m ingest._probe_worker`` in a fresh process that

* sets ``RLIMIT_CPU`` (SIGXCPU, then SIGKILL one second later), ``RLIMIT_CORE`` 0,
  ``RLIMIT_FSIZE`` 0 (it never writes files) and ``RLIMIT_NOFILE``, then loads all of
  PyAV and sets ``RLIMIT_AS`` to what it maps at that point plus
  :attr:`ProbeLimits.memory_bytes`, so the limit bounds what the *file* makes FFmpeg
  allocate whatever the interpreter and libraries take (about 140 MiB here);
* checks the container's own structure for truncation and for declared video sizes
  beyond the bounds (``ingest._structure``) before any demuxer runs;
* opens only the local file (``file:`` URL, ``protocol_whitelist=file``) with the
  demuxer forced to the sniffed one (``format_whitelist`` the same), QuickTime data
  references off, so no playlist, concat script, network URL or sibling file is opened;
* checks streams, codecs, duration, size and frame rate against :class:`ProbeLimits`;
* decodes the primary audio stream through FFmpeg's ``ebur128`` filter (EBU R128
  integrated loudness, loudness range and true peak);
* decodes the video frame nearest :attr:`ThumbnailSpec.position` of the duration and
  encodes a bounded JPEG or WebP poster, turned upright by the display matrix.

The parent enforces the wall-clock limit and kills the worker when it runs over. Every
rejection is an exception from :mod:`ingest.errors` with a stable code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ingest.errors import (
    IngestError,
    ProbeFailedError,
    ProbeResourceLimitError,
    ProbeTimeoutError,
    error_for_code,
)
from ingest.sniff import ContainerFormat, SniffResult, sniff_file

__all__ = [
    "ALLOWED_AUDIO_CODECS",
    "ALLOWED_DATA_TAGS",
    "ALLOWED_VIDEO_CODECS",
    "AudioStreamInfo",
    "Loudness",
    "ProbeLimits",
    "ProbeResult",
    "Thumbnail",
    "ThumbnailSpec",
    "VideoStreamInfo",
    "probe_file",
]

#: FFmpeg codec names accepted for the video stream.
ALLOWED_VIDEO_CODECS: Final = frozenset({"h264", "hevc", "vp9", "av1", "prores"})
#: FFmpeg codec names accepted for audio streams (AAC, Opus, FLAC, linear PCM).
ALLOWED_AUDIO_CODECS: Final = frozenset(
    {"aac", "opus", "flac"}
    | {f"pcm_{kind}{bits}{end}" for kind in "su" for bits in (16, 24, 32) for end in ("le", "be")}
    | {"pcm_s8", "pcm_u8", "pcm_f32le", "pcm_f32be", "pcm_f64le", "pcm_f64be"}
)
#: Codec tags of data streams that may ride along (QuickTime timecode, Apple metadata);
#: they are never decoded.
ALLOWED_DATA_TAGS: Final = frozenset({"tmcd", "mebx"})

#: Most bytes of worker output read back (the JSON result with a base64 thumbnail).
MAX_WORKER_OUTPUT: Final = 4 << 20
_GiB: Final = 1 << 30


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ThumbnailSpec(_Frozen):
    """How the poster image is made."""

    format: Literal["jpeg", "webp"] = "jpeg"
    max_side: int = Field(default=640, ge=16, le=4096, description="longest side, pixels")
    max_bytes: int = Field(default=256 * 1024, ge=4096, le=4 << 20)
    position: float = Field(default=0.1, ge=0.0, le=1.0, description="fraction of duration")
    quality: int = Field(default=80, ge=1, le=100)


class ProbeLimits(_Frozen):
    """What a clip may be, and what probing it may cost. Defaults are the product's."""

    min_duration_s: float = Field(default=2.0, gt=0)
    max_duration_s: float = Field(default=600.0, gt=0)
    #: The shorter side of the coded picture, so portrait and landscape count alike.
    min_short_side: int = Field(default=480, ge=1)
    max_long_side: int = Field(default=7680, ge=1)
    max_short_side: int = Field(default=4320, ge=1)
    min_frame_rate: float = Field(default=1.0, gt=0)
    max_frame_rate: float = Field(default=240.0, gt=0)
    max_streams: int = Field(default=8, ge=1, le=1024)
    max_video_streams: int = Field(default=1, ge=1)
    video_codecs: frozenset[str] = ALLOWED_VIDEO_CODECS
    audio_codecs: frozenset[str] = ALLOWED_AUDIO_CODECS
    data_stream_tags: frozenset[str] = ALLOWED_DATA_TAGS
    measure_loudness: bool = True
    #: Most video frames decoded while looking for the thumbnail frame after a seek.
    max_thumbnail_decode_frames: int = Field(default=600, ge=1)
    cpu_seconds: int = Field(default=60, ge=1, le=3600)
    #: Address space the file may make the worker add (RLIMIT_AS is set to what the
    #: worker maps once the interpreter and FFmpeg are loaded, ~140 MiB, plus this).
    memory_bytes: int = Field(default=2 * _GiB, ge=1 << 20)
    wall_seconds: float = Field(default=120.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> ProbeLimits:
        if self.min_duration_s > self.max_duration_s:
            raise ValueError("min_duration_s exceeds max_duration_s")
        if self.min_frame_rate > self.max_frame_rate:
            raise ValueError("min_frame_rate exceeds max_frame_rate")
        if not self.min_short_side <= self.max_short_side <= self.max_long_side:
            raise ValueError("need min_short_side <= max_short_side <= max_long_side")
        return self


class VideoStreamInfo(_Frozen):
    """The video stream."""

    index: int
    codec: str = Field(max_length=64)
    profile: str | None = Field(default=None, max_length=128)
    width: int
    height: int
    pixel_format: str | None = Field(default=None, max_length=64)
    frame_rate: float
    frame_rate_exact: str = Field(max_length=32, description="as a fraction, e.g. 30000/1001")
    #: Clockwise degrees (0, 90, 180, 270) the picture is turned for display.
    rotation: int = 0
    bit_rate: int | None = None


class Loudness(_Frozen):
    """EBU R128 measurement of one audio stream (FFmpeg ``ebur128``)."""

    #: Integrated loudness in LUFS; None when every block is below the -70 LUFS gate.
    integrated_lufs: float | None
    loudness_range_lu: float | None
    #: Highest true peak over all channels, dBTP; None for digital silence.
    true_peak_dbtp: float | None


class AudioStreamInfo(_Frozen):
    """One audio stream; ``loudness`` is measured for the primary stream only."""

    index: int
    codec: str = Field(max_length=64)
    sample_rate: int
    channels: int
    channel_layout: str = Field(max_length=64)
    bit_rate: int | None = None
    loudness: Loudness | None = None


class Thumbnail(_Frozen):
    """The poster image."""

    # JSON carries the image as base64 (the worker's reply, the backend's API).
    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64"
    )

    media_type: Literal["image/jpeg", "image/webp"]
    width: int
    height: int
    timestamp_s: float
    data: bytes = Field(max_length=4 << 20)


class ProbeResult(_Frozen):
    """Everything the probe measured about an accepted clip."""

    container: ContainerFormat
    brand: str = Field(max_length=16)
    demuxer: str = Field(max_length=64, description="FFmpeg demuxer that read the file")
    size_bytes: int
    duration_s: float
    bit_rate: int | None = None
    stream_count: int
    video: VideoStreamInfo
    audio: tuple[AudioStreamInfo, ...] = ()
    data_streams: int = 0
    thumbnail: Thumbnail | None = None

    @property
    def primary_audio(self) -> AudioStreamInfo | None:
        """The audio stream that was measured (the first one), if any."""
        return self.audio[0] if self.audio else None


class _WorkerRequest(_Frozen):
    path: str
    size: int
    sniffed: SniffResult
    limits: ProbeLimits
    thumbnail: ThumbnailSpec | None


class _WorkerReply(BaseModel):
    ok: bool
    result: ProbeResult | None = None
    code: str | None = Field(default=None, max_length=64)
    message: str | None = Field(default=None, max_length=2000)


_CPU_SIGNALS: Final = frozenset({signal.SIGXCPU, signal.SIGKILL})


def _worker_env() -> dict[str, str]:
    package_parent = str(Path(__file__).resolve().parent.parent)
    return {
        "PATH": os.defpath,
        "LANG": "C.UTF-8",
        "PYTHONPATH": package_parent,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        # Each glibc arena reserves 64 MiB of address space, which RLIMIT_AS counts.
        "MALLOC_ARENA_MAX": "2",
        "OMP_NUM_THREADS": "1",
    }


def _run_worker(request: _WorkerRequest) -> _WorkerReply:
    command = [sys.executable, "-B", "-s", "-m", "ingest._probe_worker"]
    with subprocess.Popen(  # noqa: S603 - fixed argv, our own module
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_worker_env(),
        cwd="/",
        close_fds=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(
                request.model_dump_json().encode(), timeout=request.limits.wall_seconds
            )
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise ProbeTimeoutError(
                f"Probing took longer than {request.limits.wall_seconds:g} s and was stopped."
            ) from None
    code = process.returncode
    if code < 0 and -code in _CPU_SIGNALS:
        raise ProbeResourceLimitError(
            f"Probing used more than {request.limits.cpu_seconds} s of CPU time and was stopped."
        )
    if code < 0:
        # A crash: possibly a decoder bug hit by a hostile file, possibly an allocation
        # failure that PyAV does not check. Either way there is no verdict.
        raise ProbeFailedError(f"The probe worker crashed ({signal.Signals(-code).name}).")
    if len(stdout) > MAX_WORKER_OUTPUT:
        raise ProbeFailedError("The probe worker produced too much output.")
    try:
        return _WorkerReply.model_validate_json(stdout)
    except ValidationError:
        detail = stderr.decode("utf-8", "replace")[-500:].strip()
        raise ProbeFailedError(
            f"The probe worker ended without an answer (exit status {code})."
            + (f" Last output: {detail}" if detail else "")
        ) from None


def probe_file(
    path: str | os.PathLike[str],
    *,
    limits: ProbeLimits | None = None,
    thumbnail: ThumbnailSpec | None = None,
    sniffed: SniffResult | None = None,
    make_thumbnail: bool = True,
) -> ProbeResult:
    """Probe the local file at ``path`` in a resource-limited worker process.

    ``sniffed`` is the :func:`~ingest.sniff.sniff_file` result when the caller already
    has it; otherwise the file is sniffed first. ``thumbnail`` sets how the poster is
    made (defaults of :class:`ThumbnailSpec`); ``make_thumbnail=False`` skips it.

    Raises :class:`~ingest.errors.MediaRejectedError` subclasses for unacceptable
    files and :class:`~ingest.errors.ProbeFailedError` subclasses (timeout, CPU or
    memory limit, worker crash) when no verdict could be reached.
    """
    resolved = Path(path).resolve(strict=True)
    if not resolved.is_file():
        raise ValueError(f"{resolved} is not a regular file")
    if sniffed is None:
        sniffed = sniff_file(resolved)
    request = _WorkerRequest(
        path=str(resolved),
        size=resolved.stat().st_size,
        sniffed=sniffed,
        limits=limits or ProbeLimits(),
        thumbnail=(thumbnail or ThumbnailSpec()) if make_thumbnail else None,
    )
    reply = _run_worker(request)
    if reply.ok and reply.result is not None:
        return reply.result
    error: type[IngestError] = error_for_code(reply.code or "")
    raise error(reply.message or "The probe failed without a reason.")
