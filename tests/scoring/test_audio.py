"""Audio measures on sounds of known level, the stand-in audio-text model, the score."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.audio import (
    GENRE_PROMPTS,
    AudioMeasures,
    AudioTextModel,
    AudioThresholds,
    ToneAudioTextModel,
    audio_zero_shot,
    measure_audio,
    score_audio,
    style_prompts,
)
from scoring.clipgen import Samples, silence, solid_frames, tone, white_noise, write_clip
from scoring.errors import MediaLimitError
from scoring.frames import AUDIO_RATE, AudioTrack, decode_audio
from shotbank.annotation import Audio
from shotbank.annotation.vocabulary import AmbienceTag, AudioGenre, AudioMood, RecordingKind

RATE = AUDIO_RATE
PROMPTS = ["silence", "a low hum", "a high tone", "white noise", "music"]


def track(samples: Samples, rate: int = RATE) -> AudioTrack:
    return AudioTrack(
        samples=samples.astype(np.float32), sample_rate=rate, source_rate=rate, source_channels=1
    )


def declared(*ambience: AmbienceTag, genre: AudioGenre | None = None) -> Audio:
    return Audio(genre=genre, ambience=ambience, dialogue=False, recording=RecordingKind.FIELD)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, AudioTrack]:
    """Sounds at 48 kHz encoded to AAC in real clips, decoded by the sampler (16 kHz)."""
    folder = tmp_path_factory.mktemp("audio")
    sounds = {
        "tone": tone(1000.0, seconds=4.0, dbfs=-20.0),
        "overdriven": np.clip(tone(440.0, seconds=4.0, dbfs=12.0), -1.0, 1.0),
        "noise": white_noise(seconds=4.0, dbfs=-20.0),
        "silence": silence(seconds=4.0),
    }
    return {
        name: decode_audio(
            write_clip(folder / f"{name}.mp4", solid_frames((90, 90, 90), seconds=4.0), audio=sound)
        )
        for name, sound in sounds.items()
    }


# --- measures -------------------------------------------------------------------------


def test_a_full_scale_sine_is_about_minus_3_lufs() -> None:
    measures = measure_audio(track(tone(1000.0, rate=RATE, seconds=3.0, dbfs=0.0)))
    assert measures.integrated_lufs == pytest.approx(-3.01, abs=0.1)
    assert measures.peak_dbfs == pytest.approx(0.0, abs=1e-3)


def test_a_minus_20_dbfs_sine_is_about_minus_23_lufs() -> None:
    measures = measure_audio(track(tone(1000.0, rate=RATE, seconds=3.0, dbfs=-20.0)))
    assert measures.integrated_lufs == pytest.approx(-23.01, abs=0.1)
    assert measures.rms_dbfs == pytest.approx(-23.01, abs=0.01)
    assert measures.silence_share == 0.0
    assert measures.clipping_share == 0.0
    # A steady tone has no loudness range.
    assert measures.loudness_range_lu == pytest.approx(0.0, abs=0.1)


def test_the_tone_of_a_real_clip_keeps_its_loudness(clips: dict[str, AudioTrack]) -> None:
    measures = measure_audio(clips["tone"])
    assert measures.sample_rate == RATE
    assert measures.duration_s == pytest.approx(4.0, abs=0.05)
    assert measures.integrated_lufs == pytest.approx(-23.0, abs=0.3)
    assert measures.clipping_share == 0.0


def test_loudness_range_spans_the_levels_of_a_stepped_signal() -> None:
    # 4 s each at -30, -20 and -10 dBFS: short-term loudness from -33 to -13 LUFS.
    steps = np.concatenate([tone(1000.0, rate=RATE, seconds=4.0, dbfs=d) for d in (-30, -20, -10)])
    measures = measure_audio(track(steps))
    assert measures.loudness_range_lu == pytest.approx(20.0, abs=1.0)


def test_silence_is_measured_silent(clips: dict[str, AudioTrack]) -> None:
    measures = measure_audio(clips["silence"])
    assert measures.silence_share == 1.0
    assert measures.integrated_lufs is None
    assert measures.loudness_range_lu is None
    assert measures.peak_dbfs is None


def test_an_overdriven_signal_is_measured_as_clipping(clips: dict[str, AudioTrack]) -> None:
    measures = measure_audio(clips["overdriven"])
    assert measures.clipping_share > AudioThresholds().clipping_share_max
    clean = measure_audio(track(np.clip(tone(440.0, rate=RATE, dbfs=12.0), -1.0, 1.0)))
    assert clean.clipping_share > 0.5  # before the codec: most samples sit at full scale


def test_audio_shorter_than_a_loudness_block_is_measured_as_one_block() -> None:
    short = measure_audio(track(tone(1000.0, rate=RATE, seconds=0.2, dbfs=-20.0)))
    assert short.integrated_lufs == pytest.approx(-23.0, abs=0.2)
    assert short.loudness_range_lu is None
    tiny = measure_audio(track(tone(1000.0, rate=RATE, seconds=0.005)))
    assert tiny.integrated_lufs is None
    empty = measure_audio(track(np.zeros(0, np.float32)))
    assert (empty.duration_s, empty.silence_share, empty.peak_dbfs) == (0.0, 1.0, None)


def test_a_track_over_the_limit_is_refused() -> None:
    with pytest.raises(MediaLimitError, match="limit"):
        measure_audio(
            track(silence(rate=RATE, seconds=2.0)), thresholds=AudioThresholds(max_duration_s=1.0)
        )


# --- the stand-in model ---------------------------------------------------------------


def test_the_stand_in_is_an_audio_text_model_with_unit_embeddings() -> None:
    model = ToneAudioTextModel()
    assert isinstance(model, AudioTextModel)
    assert model.identity == ToneAudioTextModel().identity
    assert np.linalg.norm(model.embed_audio(white_noise(rate=RATE))) == pytest.approx(1.0)
    texts = model.embed_texts(PROMPTS)
    assert texts.shape[0] == len(PROMPTS)
    assert np.linalg.norm(texts, axis=1) == pytest.approx(np.ones(len(PROMPTS)))


@pytest.mark.parametrize(
    ("sound", "expected"),
    [
        (white_noise(rate=RATE, seconds=2.0), "white noise"),
        (tone(4000.0, rate=RATE, seconds=2.0), "a high tone"),
        (tone(100.0, rate=RATE, seconds=2.0), "a low hum"),
        (silence(rate=RATE, seconds=2.0), "silence"),
        (tone(262.0, rate=RATE) + tone(330.0, rate=RATE) + tone(392.0, rate=RATE), "music"),
    ],
    ids=["noise", "4khz", "100hz", "silence", "chord"],
)
def test_the_stand_in_names_the_sound(sound: Samples, expected: str) -> None:
    probabilities = audio_zero_shot(ToneAudioTextModel(), sound, PROMPTS)
    assert PROMPTS[int(np.argmax(probabilities))] == expected
    assert probabilities.sum() == pytest.approx(1.0)


def test_the_stand_in_hears_noise_in_a_real_clip(clips: dict[str, AudioTrack]) -> None:
    model = ToneAudioTextModel()
    assert PROMPTS[int(np.argmax(audio_zero_shot(model, clips["noise"].samples, PROMPTS)))] == (
        "white noise"
    )


def test_every_genre_has_a_prompt_and_every_term_is_ranked_against_its_vocabulary() -> None:
    assert set(GENRE_PROMPTS) == set(AudioGenre)
    audio = Audio(
        genre=AudioGenre.JAZZ,
        mood=AudioMood.CALM,
        ambience=(AmbienceTag.RAIN, AmbienceTag.WIND),
        dialogue=False,
        recording=RecordingKind.STUDIO,
    )
    groups = {group.what: group for group in style_prompts(audio)}
    assert set(groups) == {
        "genre jazz",
        "mood calm",
        "ambience rain",
        "ambience wind",
        "recording studio",
    }
    assert groups["genre jazz"].declared == "jazz music"
    assert len(groups["genre jazz"].alternatives) == len(AudioGenre) - 1
    # A declared tag is never an alternative to another declared tag.
    assert "the sound of wind" not in groups["ambience rain"].alternatives
    assert len(groups["ambience rain"].alternatives) == len(AmbienceTag) - 2


# --- the score ------------------------------------------------------------------------


def test_no_track_and_no_declared_sound_is_not_scorable() -> None:
    score = score_audio(None, None)
    assert score.value is None
    assert [r.code for r in score.reasons] == ["audio.absent"]


def test_a_silent_track_without_declared_sound_is_not_scorable(
    clips: dict[str, AudioTrack],
) -> None:
    score = score_audio(measure_audio(clips["silence"]), None)
    assert score.value is None
    assert score.reasons[0].code == "audio.absent"


def test_silence_where_sound_is_declared_scores_low(clips: dict[str, AudioTrack]) -> None:
    score = score_audio(measure_audio(clips["silence"]), declared(AmbienceTag.RAIN))
    assert score.value == pytest.approx(AudioThresholds().silent_value)
    assert score.reasons[0].code == "audio.silent"
    assert "silent" in score.reasons[0].message
    missing = score_audio(None, declared(AmbienceTag.RAIN))
    assert missing.reasons[0].code == "audio.silent"
    assert "no audio track" in missing.reasons[0].message


def test_clipping_is_penalised(clips: dict[str, AudioTrack]) -> None:
    audio = declared(AmbienceTag.MACHINERY)
    clipped = score_audio(measure_audio(clips["overdriven"]), audio)
    clean = score_audio(measure_audio(clips["tone"]), audio)
    assert [r.code for r in clipped.reasons] == ["audio.clipping", "audio.style_not_checked"]
    assert [r.code for r in clean.reasons] == ["audio.style_not_checked"]
    assert clean.value == 1.0
    assert clipped.value == pytest.approx(1.0 - AudioThresholds().clipping_penalty)


def test_too_quiet_and_extreme_range_are_mild_penalties() -> None:
    th = AudioThresholds()
    quiet = AudioMeasures(
        duration_s=10.0,
        sample_rate=RATE,
        peak_dbfs=-40.0,
        rms_dbfs=-50.0,
        silence_share=0.2,
        clipping_share=0.0,
        integrated_lufs=-52.0,
        loudness_range_lu=30.0,
    )
    score = score_audio(quiet, declared(AmbienceTag.WIND))
    assert [r.code for r in score.reasons][:2] == ["audio.too_quiet", "audio.loudness_range"]
    assert score.value == pytest.approx(1.0 - th.quiet_penalty - th.range_penalty)


def test_sound_without_an_audio_section_is_capped(clips: dict[str, AudioTrack]) -> None:
    score = score_audio(measure_audio(clips["tone"]), None)
    assert score.value == pytest.approx(AudioThresholds().undeclared_sound_value)
    assert score.reasons[-1].code == "audio.undeclared"


def test_declared_rain_on_noise_matches_the_style(clips: dict[str, AudioTrack]) -> None:
    noise = clips["noise"]
    score = score_audio(
        measure_audio(noise), declared(AmbienceTag.RAIN), model=ToneAudioTextModel(), track=noise
    )
    assert score.reasons[-1].code == "audio.style_match"
    assert score.value is not None
    assert score.value > 0.7
    assert score.measured["style_model"] == "tone-stand-in"


def test_declared_rain_on_a_high_tone_is_a_style_mismatch() -> None:
    beep = track(tone(4000.0, rate=RATE, seconds=3.0))
    score = score_audio(
        measure_audio(beep), declared(AmbienceTag.RAIN), model=ToneAudioTextModel(), track=beep
    )
    (reason,) = score.reasons
    assert reason.code == "audio.style_mismatch"
    assert "ambience rain" in reason.message
    assert "'the sound of birds'" in reason.message
    assert score.value == pytest.approx(1.0 - AudioThresholds().style_weight)


def test_terms_the_model_cannot_tell_apart_are_not_checked() -> None:
    # The stand-in knows nothing of moods or recording kinds: every prompt ties.
    beep = track(tone(4000.0, rate=RATE, seconds=3.0))
    audio = Audio(mood=AudioMood.CALM, dialogue=False, recording=RecordingKind.STUDIO)
    score = score_audio(measure_audio(beep), audio, model=ToneAudioTextModel(), track=beep)
    assert score.reasons[-1].code == "audio.style_not_checked"
    assert score.value == 1.0


def test_a_model_needs_the_track_at_its_rate() -> None:
    beep = track(tone(4000.0, rate=RATE, seconds=1.0))
    measures = measure_audio(beep)
    with pytest.raises(ValueError, match="needs the track"):
        score_audio(measures, declared(AmbienceTag.RAIN), model=ToneAudioTextModel())
    loud = track(tone(4000.0, rate=48_000, seconds=1.0), rate=48_000)
    with pytest.raises(ValueError, match="16000 Hz"):
        score_audio(measures, declared(AmbienceTag.RAIN), model=ToneAudioTextModel(), track=loud)


def test_audio_scores_stay_in_the_unit_interval(clips: dict[str, AudioTrack]) -> None:
    model = ToneAudioTextModel()
    for sound in clips.values():
        measures = measure_audio(sound)
        for audio in (None, declared(AmbienceTag.RAIN), declared(genre=AudioGenre.ROCK)):
            value = score_audio(measures, audio, model=model, track=sound).value
            assert value is None or 0.0 <= value <= 1.0
