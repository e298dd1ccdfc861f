"""Frame sampling and audio decoding on real clips encoded with PyAV."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from scoring.errors import MediaLimitError, MissingStreamError, UndecodableMediaError
from scoring.frames import (
    AUDIO_RATE,
    SamplingLimits,
    decode_audio,
    sample_clip,
    sample_frames,
    target_times,
)
from tests.ingest.mediagen import ClipSpec, make_clip
from tests.scoring.clips import make_timecode_clip, read_timecode, timecode_picture

FPS = 25


@pytest.fixture(scope="module")
def timecode_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s at 25 fps, a keyframe every 2 s, B-frames."""
    return make_timecode_clip(tmp_path_factory.mktemp("clips") / "timecode.mp4")


@pytest.fixture(scope="module")
def long_gop_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s at 25 fps, a keyframe every 2 s: far-apart targets need seeks."""
    return make_timecode_clip(
        tmp_path_factory.mktemp("clips") / "long.mp4", seconds=10, width=160, height=120
    )


@pytest.fixture(scope="module")
def tone_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of H.264 + stereo AAC at 48 kHz, a 1 kHz sine at -20 dBFS in both channels."""
    return make_clip(tmp_path_factory.mktemp("clips") / "tone.mp4", ClipSpec(seconds=3.0))


def test_timecode_pictures_read_back_exactly() -> None:
    assert [read_timecode(timecode_picture(i, 160, 120)) for i in range(256)] == list(range(256))


def test_targets_are_the_middles_of_equal_spans() -> None:
    assert target_times(4.0, 4) == [0.5, 1.5, 2.5, 3.5]
    assert target_times(1.0, 1) == [0.5]
    with pytest.raises(ValueError, match="at least 1"):
        target_times(1.0, 0)


def test_default_samples_eight_frames_spread_over_the_clip(timecode_clip: Path) -> None:
    sampled = sample_frames(timecode_clip)
    assert len(sampled.frames) == len(sampled.timestamps) == 8
    assert sampled.duration == pytest.approx(4.0)
    assert sampled.timestamps == pytest.approx([0.24, 0.72, 1.24, 1.72, 2.24, 2.72, 3.24, 3.72])
    # Each timestamp is the frame on screen at its target: at most one frame earlier.
    for stamp, target in zip(sampled.timestamps, sampled.targets, strict=True):
        assert target - 1 / FPS < stamp <= target


def test_each_frame_shows_the_picture_displayed_at_its_timestamp(timecode_clip: Path) -> None:
    sampled = sample_frames(timecode_clip, count=16)
    shown = [read_timecode(frame) for frame in sampled.frames]
    assert shown == [round(stamp * FPS) for stamp in sampled.timestamps]
    assert shown == [int(target * FPS) for target in sampled.targets]


def test_frames_are_rgb_uint8_at_the_source_size(timecode_clip: Path) -> None:
    sampled = sample_frames(timecode_clip, count=2)
    assert (sampled.width, sampled.height) == (320, 240)
    frame = sampled.frames[0]
    assert frame.dtype == np.uint8
    assert frame.shape == (240, 320, 3)
    # The bottom band's colour encodes time: red up, blue down as frames advance.
    index = read_timecode(frame)
    band = frame[200:, :, :].reshape(-1, 3).mean(axis=0)
    assert band == pytest.approx([index * 3 % 256, 128, 255 - index * 3 % 256], abs=8)


def test_seeking_lands_on_the_exact_frame_between_keyframes(long_gop_clip: Path) -> None:
    sampled = sample_frames(long_gop_clip, count=4)  # 2.5 s apart: a seek for each
    assert [read_timecode(f) for f in sampled.frames] == [31, 93, 156, 218]
    assert sampled.decoded < 250 / 2, "keyframe-aware seeking decodes a fraction of the clip"


@pytest.fixture(scope="module")
def one_gop_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s at 25 fps in one GOP with 3 B-frames between references: every target is
    reached by decoding forward from the first frame."""
    return make_timecode_clip(
        tmp_path_factory.mktemp("clips") / "one-gop.mp4",
        seconds=10,
        width=160,
        height=120,
        keyint=250,
        bframes=3,
    )


@pytest.mark.parametrize("count", [4, 8, 16])
def test_skipping_non_reference_frames_decodes_less_and_returns_the_same_frames(
    one_gop_clip: Path, count: int
) -> None:
    skipping = sample_frames(one_gop_clip, count=count)
    full = sample_frames(one_gop_clip, count=count, skip_margin_s=0.0)
    expected = [int(target * 25) for target in target_times(10.0, count)]
    assert [read_timecode(f) for f in skipping.frames] == expected
    assert [read_timecode(f) for f in full.frames] == expected
    assert skipping.timestamps == full.timestamps
    assert skipping.decoded < 0.8 * full.decoded


def test_frames_further_apart_than_the_skip_margin_are_still_exact(tmp_path: Path) -> None:
    # 2 fps: frames 0.5 s apart, wider than the margin asked for, so the frame on screen
    # at a target can lie before it; the margin widens to two frames.
    clip = make_timecode_clip(
        tmp_path / "slow.mp4", seconds=10, fps=2, width=160, height=120, keyint=20, bframes=3
    )
    for count in (4, 8, 16):
        skipping = sample_frames(clip, count=count, skip_margin_s=0.01)
        expected = [int(target * 2) for target in target_times(10.0, count)]
        assert [read_timecode(f) for f in skipping.frames] == expected


def test_one_decoder_thread_gives_the_same_frames_as_ffmpegs_own_choice(
    timecode_clip: Path,
) -> None:
    default = sample_clip(timecode_clip)
    single = sample_clip(timecode_clip, threads=1)
    assert single.frames.timestamps == default.frames.timestamps
    for got, want in zip(single.frames.frames, default.frames.frames, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("threads", [0, 65])
def test_decoder_threads_are_bounded(timecode_clip: Path, threads: int) -> None:
    with pytest.raises(ValueError, match="threads must be between 1 and 64"):
        sample_frames(timecode_clip, threads=threads)


def test_output_frames_are_scaled_to_the_size_limit(timecode_clip: Path) -> None:
    sampled = sample_frames(timecode_clip, count=3, limits=SamplingLimits(max_side=160))
    assert sampled.frames[0].shape == (120, 160, 3)
    assert [read_timecode(f) for f in sampled.frames] == [16, 50, 83]


def test_display_rotation_is_applied(tmp_path: Path) -> None:
    # mediagen draws a luma ramp that is dark at the left edge and bright near the right.
    path = make_clip(tmp_path / "r.mp4", ClipSpec(seconds=0.5, rotation=90, audio_codec=None))
    sampled = sample_frames(path, count=1)
    frame = sampled.frames[0].mean(axis=2)
    assert frame.shape == (640, 480)
    assert (sampled.width, sampled.height) == (480, 640)
    # Turned a quarter counter-clockwise: the right edge is now on top.
    assert frame[-5:].mean() < 40 < 120 < frame[:5].mean()


def test_reads_from_a_file_object(timecode_clip: Path) -> None:
    sampled = sample_frames(io.BytesIO(timecode_clip.read_bytes()), count=2)
    assert [read_timecode(f) for f in sampled.frames] == [25, 75]


def test_picture_over_the_pixel_limit_is_refused(timecode_clip: Path) -> None:
    with pytest.raises(MediaLimitError, match="pixel limit"):
        sample_frames(timecode_clip, limits=SamplingLimits(max_pixels=320 * 239))


def test_clip_over_the_duration_limit_is_refused(timecode_clip: Path) -> None:
    with pytest.raises(MediaLimitError, match="over the 3 s limit"):
        sample_frames(timecode_clip, limits=SamplingLimits(max_duration_s=3))


def test_keyframes_too_far_apart_are_refused(long_gop_clip: Path) -> None:
    with pytest.raises(MediaLimitError, match="frames decoded to reach"):
        sample_frames(long_gop_clip, count=2, limits=SamplingLimits(max_decoded_per_target=20))


def test_frame_count_is_bounded(timecode_clip: Path) -> None:
    with pytest.raises(ValueError, match="between 1 and 64"):
        sample_frames(timecode_clip, count=65)


def test_garbage_is_undecodable(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(UndecodableMediaError, match="not a media file") as caught:
        sample_frames(junk)
    assert caught.value.code == "scoring.media.undecodable"


def test_truncated_clip_is_undecodable(timecode_clip: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(timecode_clip.read_bytes()[:2000])
    with pytest.raises(UndecodableMediaError):
        sample_frames(cut)


def test_sound_only_clip_has_no_frames_to_sample(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.m4a", ClipSpec(format="mp4", with_video=False, seconds=1))
    with pytest.raises(MissingStreamError, match="no video stream"):
        sample_frames(path)


def test_missing_file_is_a_plain_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sample_frames(tmp_path / "absent.mp4")


def test_audio_is_mono_16khz_float32_of_the_clip_length(tone_clip: Path) -> None:
    audio = decode_audio(tone_clip)
    assert audio.sample_rate == AUDIO_RATE == 16_000
    assert (audio.source_rate, audio.source_channels) == (48_000, 2)
    assert audio.samples.dtype == np.float32
    assert audio.samples.ndim == 1
    # AAC adds up to one 1024-sample frame of padding at 48 kHz (341 samples at 16 kHz).
    assert 3 * 16_000 <= len(audio.samples) <= 3 * 16_000 + 342
    assert audio.duration == pytest.approx(3.0, abs=0.03)


def test_audio_keeps_the_level_and_pitch_of_a_tone_common_to_both_channels(
    tone_clip: Path,
) -> None:
    samples = decode_audio(tone_clip).samples[1600:-1600]
    amplitude = 10 ** (-20 / 20)
    rms = float(np.sqrt(np.mean(samples**2)))
    assert rms == pytest.approx(amplitude / np.sqrt(2), rel=0.03)  # a channel average, no 1.41 gain
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.fft.rfftfreq(len(samples), 1 / 16_000)[spectrum.argmax()] == pytest.approx(
        1000, abs=2
    )


def test_silent_clip_without_audio_stream(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "v.mp4", ClipSpec(seconds=1, audio_codec=None))
    with pytest.raises(MissingStreamError, match="no audio stream"):
        decode_audio(path)
    assert sample_clip(path, count=2).audio is None


def test_audio_over_the_duration_limit_is_refused(tone_clip: Path) -> None:
    with pytest.raises(MediaLimitError, match="over the 2 s limit"):
        decode_audio(tone_clip, limits=SamplingLimits(max_duration_s=2))


def test_sample_clip_gives_frames_and_audio_from_one_open(tone_clip: Path) -> None:
    clip = sample_clip(tone_clip, count=4)
    assert len(clip.frames.frames) == 4
    assert clip.frames.timestamps[-1] > 2.5
    assert clip.audio is not None
    assert clip.audio.duration == pytest.approx(3.0, abs=0.03)
