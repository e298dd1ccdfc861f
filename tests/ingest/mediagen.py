"""Real media for the ingest tests, encoded with PyAV (no numpy, no stored binaries).

Pictures are a moving luma gradient (so encoders and thumbnails see real content);
sound is a sine of known frequency and level in every channel, so loudness can be
checked against what EBU R128 says it must measure.
"""

from __future__ import annotations

import array
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

__all__ = ["ClipSpec", "make_clip", "patch_mp4_video_size", "remux_with_size"]


@dataclass(frozen=True)
class ClipSpec:
    """What :func:`make_clip` writes; the defaults are an acceptable H.264/AAC MP4."""

    format: str = "mp4"
    video_codec: str = "libx264"
    video_options: dict[str, str] = field(default_factory=lambda: {"preset": "ultrafast"})
    pix_fmt: str = "yuv420p"
    width: int = 640
    height: int = 480
    fps: int = 24
    seconds: float = 3.0
    audio_codec: str | None = "aac"
    audio_streams: int = 1
    sample_rate: int = 48_000
    layout: str = "stereo"
    #: Length of the sound; the picture's length (``seconds``) when None.
    audio_seconds: float | None = None
    tone_hz: float = 1000.0
    #: Peak level of the sine in dBFS; None writes digital silence.
    tone_dbfs: float | None = -20.0
    #: FFmpeg display-matrix rotation (counter-clockwise degrees), if any.
    rotation: int | None = None
    #: Samples per audio frame handed to the encoder (50 per second by default).
    audio_chunk: int = 960
    container_options: dict[str, str] = field(default_factory=dict)
    with_video: bool = True


def _video_frame(spec: ClipSpec, index: int) -> av.VideoFrame:
    frame = av.VideoFrame(spec.width, spec.height, "yuv420p")
    for number, plane in enumerate(frame.planes):
        pad = bytes(plane.line_size - plane.width)
        if number == 0:
            row = bytes((x + 4 * index) & 0xFF for x in range(plane.width)) + pad
        else:
            row = b"\x80" * plane.width + pad
        plane.update(row * plane.height)
    frame.pts = index
    frame.time_base = Fraction(1, spec.fps)
    return frame if spec.pix_fmt == "yuv420p" else frame.reformat(format=spec.pix_fmt)


def _tone_chunk(spec: ClipSpec, samples: int, channels: int) -> bytes:
    """Interleaved float samples that repeat seamlessly (whole periods only)."""
    periods = samples * spec.tone_hz / spec.sample_rate
    assert periods == int(periods), "pick a tone that fits whole periods in a chunk"
    if spec.tone_dbfs is None:
        return bytes(4 * samples * channels)
    amplitude = 10 ** (spec.tone_dbfs / 20)
    wave = array.array(
        "f",
        (
            amplitude * math.sin(2 * math.pi * spec.tone_hz * k / spec.sample_rate)
            for k in range(samples)
            for _channel in range(channels)
        ),
    )
    return wave.tobytes()


def make_clip(path: Path, spec: ClipSpec | None = None) -> Path:
    """Encode a clip described by ``spec`` to ``path``."""
    spec = spec or ClipSpec()
    with av.open(
        str(path), "w", format=spec.format, container_options=spec.container_options
    ) as out:
        video: av.VideoStream | None = None
        if spec.with_video:
            stream = out.add_stream(spec.video_codec, rate=spec.fps, options=spec.video_options)
            assert isinstance(stream, av.VideoStream)
            video = stream
            video.width, video.height, video.pix_fmt = spec.width, spec.height, spec.pix_fmt
            if spec.rotation is not None:
                video.set_display_rotation(spec.rotation)
        audios: list[av.AudioStream] = []
        if spec.audio_codec is not None:
            for _ in range(spec.audio_streams):
                audio = out.add_stream(spec.audio_codec, rate=spec.sample_rate, layout=spec.layout)
                assert isinstance(audio, av.AudioStream)
                audios.append(audio)
        if video is not None:
            for index in range(round(spec.seconds * spec.fps)):
                out.mux(video.encode(_video_frame(spec, index)))
            out.mux(video.encode(None))
        chunk_samples = spec.audio_chunk
        channels = av.AudioLayout(spec.layout).nb_channels
        chunk = _tone_chunk(spec, chunk_samples, channels)
        total = round((spec.audio_seconds or spec.seconds) * spec.sample_rate)
        for audio in audios:
            for pts in range(0, total, chunk_samples):
                # Packed samples: PyAV segfaults filling 8 planes of a planar 7.1 frame.
                frame = av.AudioFrame(format="flt", layout=spec.layout, samples=chunk_samples)
                plane = frame.planes[0]
                plane.update(chunk + bytes(plane.buffer_size - len(chunk)))
                frame.sample_rate = spec.sample_rate
                frame.pts = pts
                frame.time_base = Fraction(1, spec.sample_rate)
                out.mux(audio.encode(frame))
            out.mux(audio.encode(None))
    return path


def remux_with_size(source: Path, target: Path, width: int, height: int) -> Path:
    """Copy the video packets of ``source`` into a Matroska file whose header declares
    ``width`` x ``height`` (``PixelWidth``/``PixelHeight``) whatever the bitstream says."""
    with av.open(str(source)) as src, av.open(str(target), "w", format="matroska") as out:
        video_in = src.streams.video[0]
        video_out = out.add_stream_from_template(video_in)
        video_out.codec_context.width = width
        video_out.codec_context.height = height
        for packet in src.demux(video_in):
            if packet.dts is None:
                continue
            packet.stream = video_out
            out.mux(packet)
    return target


def patch_mp4_video_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the first video track's ``tkhd`` and ``stsd`` sizes of an FFmpeg MP4.

    ``stsd`` holds 16-bit sizes and ``tkhd`` 16.16 fixed point, so 65535 is the largest
    claim an MP4 header can make.
    """
    patched = bytearray(data)
    stsd = patched.index(b"stsd")
    entry = patched.index(b"avc1", stsd)  # the sample entry's type; payload follows
    size_at = entry + 4 + 24
    patched[size_at : size_at + 4] = width.to_bytes(2, "big") + height.to_bytes(2, "big")
    tkhd = patched.index(b"tkhd")
    box_end = tkhd - 4 + int.from_bytes(patched[tkhd - 4 : tkhd], "big")
    patched[box_end - 8 : box_end] = (width << 16).to_bytes(4, "big") + (height << 16).to_bytes(
        4, "big"
    )
    return bytes(patched)
