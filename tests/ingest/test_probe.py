"""ingest.probe on real clips encoded by PyAV, through the real worker process."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from pydantic import ValidationError

from ingest.errors import (
    CorruptMediaError,
    DurationOutOfBoundsError,
    EmptyFileError,
    IngestError,
    NoVideoStreamError,
    PlaylistError,
    ProbeResourceLimitError,
    ProbeTimeoutError,
    ResolutionOutOfBoundsError,
    TooManyStreamsError,
    TruncatedMediaError,
    UnsupportedCodecError,
    UnsupportedContainerError,
)
from ingest.probe import ProbeLimits, ProbeResult, ThumbnailSpec, probe_file
from ingest.sniff import ContainerFormat, sniff_file
from tests.ingest.mediagen import patch_mp4_video_size, remux_with_size

MakeMedia = Callable[..., Path]


def _decode_image(data: bytes) -> av.VideoFrame:
    with av.open(io.BytesIO(data), "r") as image:
        frame = next(image.decode(video=0))
    assert isinstance(frame, av.VideoFrame)
    return frame


def _rejects(path: Path, error: type[IngestError], **limits: object) -> IngestError:
    with pytest.raises(error) as caught:
        probe_file(path, limits=ProbeLimits.model_validate(limits))
    assert type(caught.value).code == caught.value.code
    return caught.value


# --- accepted clips ------------------------------------------------------------------


def test_h264_aac_mp4_is_accepted_with_its_facts(h264_mp4: Path) -> None:
    result = probe_file(h264_mp4)
    assert result.container is ContainerFormat.MP4
    assert result.demuxer.startswith("mov")
    assert result.duration_s == pytest.approx(3.0, abs=0.05)
    assert result.stream_count == 2
    video = result.video
    assert (video.codec, video.width, video.height) == ("h264", 640, 480)
    assert video.frame_rate == 24.0
    assert video.frame_rate_exact == "24/1"
    assert video.rotation == 0
    audio = result.primary_audio
    assert audio is not None
    assert (audio.codec, audio.sample_rate, audio.channels) == ("aac", 48_000, 2)
    assert result.size_bytes == h264_mp4.stat().st_size


def test_vp9_opus_webm_is_accepted(vp9_webm: Path) -> None:
    result = probe_file(vp9_webm)
    assert result.container is ContainerFormat.MATROSKA
    assert result.brand == "webm"
    assert (result.video.codec, result.video.width, result.video.height) == ("vp9", 854, 480)
    assert result.audio[0].codec == "opus"
    assert result.duration_s == pytest.approx(3.0, abs=0.05)


@pytest.mark.slow
def test_prores_with_pcm_in_mov_is_accepted(make_media: MakeMedia) -> None:
    clip = make_media(
        "prores.mov",
        format="mov",
        video_codec="prores_ks",
        video_options={"profile": "0"},
        pix_fmt="yuv422p10le",
        width=480,
        seconds=2.5,
        audio_codec="pcm_s24le",
    )
    result = probe_file(clip)
    assert result.brand == "qt  "
    assert result.video.codec == "prores"
    assert result.audio[0].codec == "pcm_s24le"


def test_result_survives_a_json_round_trip(h264_mp4: Path) -> None:
    result = probe_file(h264_mp4)
    assert ProbeResult.model_validate_json(result.model_dump_json()) == result


# --- loudness ------------------------------------------------------------------------


@pytest.mark.parametrize("level", [-20.0, -32.0])
def test_loudness_of_a_stereo_sine_matches_ebu_r128(make_media: MakeMedia, level: float) -> None:
    # EBU Tech 3341: a 1 kHz sine at X dBFS in both stereo channels reads X LUFS
    # (K-weighting adds ~+0.69 dB at 1 kHz, the -0.691 offset takes it away).
    clip = make_media(
        f"tone{level}.webm",
        format="webm",
        video_codec="libvpx-vp9",
        video_options={"deadline": "realtime", "cpu-used": "8"},
        audio_codec="libopus",
        tone_dbfs=level,
        seconds=4.0,
    )
    loudness = probe_file(clip, make_thumbnail=False).audio[0].loudness
    assert loudness is not None
    assert loudness.integrated_lufs == pytest.approx(level, abs=0.5)
    assert loudness.true_peak_dbtp == pytest.approx(level, abs=1.0)


def test_digital_silence_has_no_integrated_loudness(make_media: MakeMedia) -> None:
    clip = make_media("silent.mp4", tone_dbfs=None)
    loudness = probe_file(clip, make_thumbnail=False).audio[0].loudness
    assert loudness is not None
    assert loudness.integrated_lufs is None
    assert loudness.true_peak_dbtp is None


def test_loudness_can_be_switched_off(h264_mp4: Path) -> None:
    result = probe_file(h264_mp4, limits=ProbeLimits(measure_loudness=False))
    assert result.audio[0].loudness is None


# --- thumbnails ----------------------------------------------------------------------


def test_thumbnail_is_a_decodable_jpeg_near_ten_percent(h264_mp4: Path) -> None:
    thumbnail = probe_file(h264_mp4).thumbnail
    assert thumbnail is not None
    assert thumbnail.media_type == "image/jpeg"
    assert thumbnail.data.startswith(b"\xff\xd8\xff")
    assert thumbnail.timestamp_s == pytest.approx(0.3, abs=1 / 24 + 1e-6)
    frame = _decode_image(thumbnail.data)
    assert (frame.width, frame.height) == (thumbnail.width, thumbnail.height) == (640, 480)


def test_thumbnail_respects_size_and_byte_bounds(vp9_webm: Path) -> None:
    spec = ThumbnailSpec(format="webp", max_side=200, max_bytes=4096, position=0.5)
    thumbnail = probe_file(vp9_webm, thumbnail=spec).thumbnail
    assert thumbnail is not None
    assert thumbnail.media_type == "image/webp"
    assert thumbnail.data[:4] == b"RIFF"
    assert thumbnail.data[8:12] == b"WEBP"
    assert len(thumbnail.data) <= 4096
    assert max(thumbnail.width, thumbnail.height) <= 200
    assert thumbnail.timestamp_s == pytest.approx(1.5, abs=0.1)
    frame = _decode_image(thumbnail.data)
    assert (frame.width, frame.height) == (thumbnail.width, thumbnail.height)


def test_rotated_clip_reports_rotation_and_gets_an_upright_thumbnail(
    make_media: MakeMedia,
) -> None:
    clip = make_media("rotated.mp4", rotation=90)  # 90 deg counter-clockwise = 270 clockwise
    result = probe_file(clip)
    assert result.video.rotation == 270
    assert (result.video.width, result.video.height) == (640, 480)
    assert result.thumbnail is not None
    assert (result.thumbnail.width, result.thumbnail.height) == (480, 640)


def test_thumbnail_can_be_skipped(h264_mp4: Path) -> None:
    assert probe_file(h264_mp4, make_thumbnail=False).thumbnail is None


# --- rejections ----------------------------------------------------------------------


def test_one_second_clip_is_too_short(make_media: MakeMedia) -> None:
    error = _rejects(make_media("short.mp4", seconds=1.0), DurationOutOfBoundsError)
    assert error.code == "media.duration_out_of_bounds"
    assert "at least 2 s" in error.message


def test_duration_is_the_pictures_not_the_sounds(make_media: MakeMedia) -> None:
    clip = make_media("short_picture.mp4", seconds=1.0, audio_seconds=4.0)
    assert "1.00 s long" in _rejects(clip, DurationOutOfBoundsError).message


def test_clip_longer_than_the_limit_is_rejected(h264_mp4: Path) -> None:
    _rejects(h264_mp4, DurationOutOfBoundsError, max_duration_s=2.5)


def test_320x240_is_too_small(make_media: MakeMedia) -> None:
    clip = make_media("small.mp4", width=320, height=240)
    error = _rejects(clip, ResolutionOutOfBoundsError)
    assert error.code == "media.resolution_out_of_bounds"
    assert "320x240" in error.message


def test_portrait_clip_is_judged_by_its_short_side(make_media: MakeMedia) -> None:
    clip = make_media("portrait.mp4", width=480, height=854, audio_codec=None)
    result = probe_file(clip, make_thumbnail=False)
    assert (result.video.width, result.video.height) == (480, 854)
    assert result.audio == ()


def test_clip_with_twenty_audio_streams_has_too_many_streams(make_media: MakeMedia) -> None:
    clip = make_media("many.mp4", audio_streams=20, seconds=2.5, audio_chunk=4800)
    error = _rejects(clip, TooManyStreamsError)
    assert error.code == "media.too_many_streams"
    assert "21 streams" in error.message


def test_audio_only_file_has_no_video_stream(make_media: MakeMedia) -> None:
    clip = make_media("audio_only.mp4", with_video=False)
    assert _rejects(clip, NoVideoStreamError).code == "media.no_video_stream"


@pytest.mark.parametrize(
    ("name", "fields", "codec"),
    [
        ("mpeg4.mp4", {"video_codec": "mpeg4", "video_options": {}}, "mpeg4"),
        ("ac3.mp4", {"audio_codec": "ac3"}, "ac3"),
    ],
)
def test_codec_off_the_allow_list_is_rejected(
    make_media: MakeMedia, name: str, fields: dict[str, object], codec: str
) -> None:
    error = _rejects(make_media(name, **fields), UnsupportedCodecError)
    assert error.code == "media.unsupported_codec"
    assert repr(codec) in error.message


def test_timecode_track_rides_along(h264_mp4: Path, tmp_path: Path) -> None:
    clip = tmp_path / "timecode.mov"
    with av.open(str(h264_mp4)) as src, av.open(str(clip), "w", format="mov") as out:
        video_out = out.add_stream_from_template(src.streams.video[0])
        video_out.metadata["timecode"] = "01:00:00:00"  # the mov muxer adds a tmcd track
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video_out
                out.mux(packet)
    result = probe_file(clip, make_thumbnail=False)
    assert result.data_streams == 1


@pytest.mark.parametrize("faststart", [False, True], ids=["moov_last", "moov_first"])
def test_mp4_cut_in_half_is_truncated(
    make_media: MakeMedia, tmp_path: Path, faststart: bool
) -> None:
    options = {"movflags": "faststart"} if faststart else {}
    clip = make_media(f"whole-{faststart}.mp4", container_options=options)
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    error = _rejects(cut, TruncatedMediaError)
    assert error.code == "media.truncated"


def test_webm_cut_in_half_is_truncated(vp9_webm: Path, tmp_path: Path) -> None:
    data = vp9_webm.read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[: len(data) // 2])
    assert "Segment" in _rejects(cut, TruncatedMediaError).message


def test_matroska_header_claiming_100000_square_is_rejected_before_decoding(
    vp9_webm: Path, tmp_path: Path
) -> None:
    liar = remux_with_size(vp9_webm, tmp_path / "liar.mkv", 100_000, 100_000)
    error = _rejects(liar, ResolutionOutOfBoundsError)
    assert "declares a 100000x100000 video" in error.message


def test_mp4_header_claiming_65535_square_is_rejected(h264_mp4: Path, tmp_path: Path) -> None:
    liar = tmp_path / "liar.mp4"
    liar.write_bytes(patch_mp4_video_size(h264_mp4.read_bytes(), 65_535, 65_535))
    error = _rejects(liar, ResolutionOutOfBoundsError)
    assert "65535x65535" in error.message


def test_garbage_after_a_valid_ftyp_is_corrupt(h264_mp4: Path, tmp_path: Path) -> None:
    data = h264_mp4.read_bytes()
    ftyp_size = int.from_bytes(data[:4], "big")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(data[:ftyp_size] + b"\x00\x00\x00\x10junk" + bytes(8))
    assert "no moov" in _rejects(junk, CorruptMediaError).message


def test_noise_instead_of_media_data_is_corrupt(h264_mp4: Path, tmp_path: Path) -> None:
    data = bytearray(h264_mp4.read_bytes())
    mdat = data.index(b"mdat")
    size = int.from_bytes(data[mdat - 4 : mdat], "big")
    # The box tree stays intact; the coded frames and audio become noise.
    data[mdat + 4 : mdat - 4 + size] = bytes((i * 131 + 7) & 0xFF for i in range(size - 8))
    broken = tmp_path / "noise.mp4"
    broken.write_bytes(bytes(data))
    assert _rejects(broken, CorruptMediaError).code == "media.corrupt"


def test_non_video_bytes_named_mp4_never_reach_the_demuxer(tmp_path: Path) -> None:
    fake = tmp_path / "holiday.mp4"
    fake.write_bytes(b"PK\x03\x04" + bytes(200))
    _rejects(fake, UnsupportedContainerError)


def test_hls_playlist_named_mp4_is_rejected(tmp_path: Path) -> None:
    playlist = tmp_path / "clip.mp4"
    playlist.write_text("#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1:9/evil.ts\n")
    assert _rejects(playlist, PlaylistError).code == "media.playlist"


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert _rejects(empty, EmptyFileError).code == "media.empty"


def test_a_caller_supplied_sniff_result_is_used(h264_mp4: Path) -> None:
    result = probe_file(h264_mp4, sniffed=sniff_file(h264_mp4), make_thumbnail=False)
    assert result.video.codec == "h264"


# --- the worker's limits -------------------------------------------------------------


def test_wall_clock_limit_kills_the_worker(h264_mp4: Path) -> None:
    error = _rejects(h264_mp4, ProbeTimeoutError, wall_seconds=0.01)
    assert error.code == "media.probe_timeout"


def test_memory_limit_stops_the_worker(h264_mp4: Path) -> None:
    # 1 MiB on top of the loaded interpreter: opening the decoders already fails.
    error = _rejects(h264_mp4, ProbeResourceLimitError, memory_bytes=1 << 20)
    assert error.code == "media.probe_resource_limit"


@pytest.mark.slow
def test_cpu_limit_stops_the_worker(make_media: MakeMedia) -> None:
    # Ten minutes of 7.1 audio: R128 metering alone needs several CPU seconds.
    clip = make_media(
        "long71.mkv",
        format="matroska",
        fps=1,
        seconds=590,
        audio_codec="flac",
        layout="7.1",
        tone_dbfs=None,
        audio_chunk=48_000,
    )
    error = _rejects(clip, ProbeResourceLimitError, cpu_seconds=1)
    assert "CPU" in error.message


def test_limits_reject_inconsistent_settings() -> None:
    with pytest.raises(ValidationError):
        ProbeLimits(min_duration_s=10, max_duration_s=5)
    with pytest.raises(ValidationError):
        ProbeLimits(min_short_side=5000)
    with pytest.raises(ValidationError):
        ProbeLimits(cpu_seconds=0)
