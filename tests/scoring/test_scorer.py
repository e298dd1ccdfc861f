"""The scorer's three stages end to end on real encoded clips with the in-project model:
well-annotated clips pass, mislabelled, black, duplicate and undecodable ones do not, and
the stages compose (batching, pickling) the way the pipeline uses them."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from scoring.audio import ToneAudioTextModel
from scoring.clipgen import (
    camera_move_frames,
    scene_frames,
    solid_frames,
    textured_canvas,
    tone,
    write_clip,
)
from scoring.dedup import DuplicateIndex, decode_embedding
from scoring.frames import sample_frames
from scoring.models import TEST_MODEL, ScoringModel
from scoring.profiles import profile_for
from scoring.report import ClipScores, Component, Flag, Outcome
from scoring.scorer import MAX_AUDIO_EXCERPT_S, Analysis, FramePreprocessor, Scorer, analyse_clip
from scoring.synthetic import Scene
from shotbank.annotation import Annotation
from shotbank.annotation.vocabulary import LightingSetup

L = LightingSetup
BLUE_SQUARE = Scene("blue", "square", L.NATURAL, "checker")


def annotation(
    description: str,
    *,
    setup: str = "natural",
    camera: dict[str, Any] | None = None,
    audio: dict[str, Any] | None = None,
) -> Annotation:
    document: dict[str, Any] = {
        "schema_version": "1",
        "scene": {"description": description, "setting": "interior"},
        "camera": camera or {"movement": "static"},
        "lighting": {"setup": setup},
        "rights": {
            "licence": "cc0-1.0",
            "model_release": "not_required",
            "location_release": "not_required",
        },
    }
    if audio is not None:
        document["audio"] = audio
    return Annotation.model_validate(document)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("scorer")
    blue = write_clip(folder / "blue_square.mp4", scene_frames(BLUE_SQUARE, seconds=1.5, seed=1))
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(blue.read_bytes()[: blue.stat().st_size // 2])
    random_bytes = folder / "random.mp4"
    random_bytes.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    return {
        "blue_square": blue,
        "blue_square_copy": write_clip(
            folder / "copy.mp4",
            scene_frames(BLUE_SQUARE, seconds=1.5, seed=1, fps=30),
            # Another preset and frame rate at a quality that keeps the sensor grain (at
            # crf 20 and above x264 smooths it away and the copy reads as frozen too).
            fps=30,
            crf=18,
            preset="medium",
        ),
        "red_star_low_key": write_clip(
            folder / "red_star.mp4",
            scene_frames(Scene("red", "star", L.LOW_KEY, "grain"), seconds=1.5, seed=2),
        ),
        "green_circle_with_tone": write_clip(
            folder / "green_circle.mp4",
            scene_frames(Scene("green", "circle", L.HIGH_KEY), seconds=1.5, seed=3),
            audio=tone(440.0, seconds=1.5, dbfs=-20.0),
        ),
        "pan_left": write_clip(
            folder / "pan_left.mp4",
            camera_move_frames(textured_canvas(960, 720), "pan_left", seconds=1.5),
        ),
        "black": write_clip(folder / "black.mp4", solid_frames(seconds=1.5)),
        "truncated": truncated,
        "random": random_bytes,
    }


@pytest.fixture(scope="module")
def scorer(tiny_model: ScoringModel) -> Scorer:
    return Scorer(tiny_model, profile_for(tiny_model.identity))


def test_a_well_annotated_clip_passes_with_high_quality(
    scorer: Scorer, clips: dict[str, Path]
) -> None:
    result = scorer.score(clips["blue_square"], annotation("a blue square on a checker board"))
    assert result.outcome is Outcome.SCORED
    assert result.passed
    assert result.quality is not None
    assert result.quality >= 0.85
    assert result.flags == ()
    assert result.value(Component.SCENE) is not None
    assert result.value(Component.LIGHTING) is not None
    assert result.value(Component.CAMERA) == pytest.approx(1.0)
    assert result.value(Component.AUDIO) is None  # no sound, none declared
    assert [r.code for r in result.reasons] == ["quality.passed"]
    assert result.model == scorer.model.identity


@pytest.mark.parametrize("wrong", ["a red circle", "a green square", "a blue star"])
def test_a_mislabelled_clip_fails_with_scene_misaligned(
    scorer: Scorer, clips: dict[str, Path], wrong: str
) -> None:
    result = scorer.score(clips["blue_square"], annotation(wrong))
    assert result.outcome is Outcome.SCORED
    assert not result.passed
    assert result.quality is not None
    assert result.quality < result.pass_threshold
    codes = [r.code for r in result.reasons]
    assert codes[0] == "scene.misaligned"
    assert codes[-1] == "quality.below_threshold"
    assert wrong in result.reasons[0].message


def test_a_wrong_lighting_setup_fails_the_clip_with_the_measured_setup(
    scorer: Scorer, clips: dict[str, Path]
) -> None:
    result = scorer.score(clips["red_star_low_key"], annotation("a red star", setup="high_key"))
    assert not result.passed
    mismatch = next(r for r in result.reasons if r.code == "lighting.mismatch")
    assert "declared high-key" in mismatch.message
    assert "measured low-key" in mismatch.message
    right = scorer.score(clips["red_star_low_key"], annotation("a red star", setup="low_key"))
    assert right.passed


def test_a_camera_movement_mismatch_is_a_verdict_reason(
    scorer: Scorer, clips: dict[str, Path]
) -> None:
    declared_right = {"movement": "pan", "direction": "right"}
    result = scorer.score(
        clips["pan_left"], annotation("a colourful textured wall", camera=declared_right)
    )
    camera = result.scores[Component.CAMERA]
    assert camera.value is not None
    assert camera.value < scorer.profile.component_thresholds[Component.CAMERA]
    assert not result.passed
    assert any(r.code.startswith("camera.") for r in result.reasons)


def test_a_black_clip_fails_with_junk_black(scorer: Scorer, clips: dict[str, Path]) -> None:
    result = scorer.score(clips["black"], annotation("a blue square"))
    assert result.outcome is Outcome.SCORED
    assert not result.passed
    assert Flag.BLACK in result.raised()
    assert result.reasons[0].code == "junk.black"


@pytest.mark.parametrize("name", ["random", "truncated"])
def test_an_undecodable_file_gives_a_failed_outcome_and_never_raises(
    scorer: Scorer, clips: dict[str, Path], name: str
) -> None:
    analysis = scorer.analyse(clips[name])
    assert analysis.failed
    assert analysis.error_code == "scoring.media.undecodable"
    result = scorer.score(clips[name], annotation("a blue square"))
    assert result.outcome is Outcome.FAILED
    assert not result.passed
    assert [r.code for r in result.reasons] == ["scoring.media.undecodable"]
    assert str(clips[name].parent) not in result.reasons[0].message
    assert result.quality is None
    assert result.embedding is None
    (embeddings,) = scorer.embed([analysis])
    assert embeddings.shape == (0, scorer.profile.embedding_dim)


def test_a_missing_file_is_the_callers_error_not_a_verdict(scorer: Scorer, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scorer.analyse(tmp_path / "absent.mp4")


def test_the_verdict_round_trips_json_and_its_details_hash_is_stable(
    scorer: Scorer, clips: dict[str, Path]
) -> None:
    note = annotation("a blue square")
    first = scorer.score(clips["blue_square"], note)
    again = ClipScores.model_validate_json(first.model_dump_json())
    assert again == first
    assert again.details_hash() == first.details_hash()
    assert scorer.score(clips["blue_square"], note).details_hash() == first.details_hash()
    assert scorer.score(clips["blue_square"], annotation("a red circle")).details_hash() != (
        first.details_hash()
    )


def test_the_embedding_field_is_the_clips_normalised_mean_frame_embedding(
    scorer: Scorer, clips: dict[str, Path]
) -> None:
    analysis = scorer.analyse(clips["blue_square"])
    (frames,) = scorer.embed([analysis])
    result = scorer.judge(analysis, frames, annotation("a blue square"))
    assert result.embedding is not None
    decoded = decode_embedding(result.embedding, scorer.profile.embedding_dim)
    mean = frames.mean(dim=0)
    np.testing.assert_allclose(decoded, (mean / mean.norm()).numpy(), atol=2e-3)


def test_embedding_three_clips_in_one_batch_equals_embedding_each_alone(
    scorer: Scorer, clips: dict[str, Path]
) -> None:
    names = ["blue_square", "red_star_low_key", "black"]
    analyses = [scorer.analyse(clips[name]) for name in names]
    together = scorer.embed(analyses)
    assert [t.shape for t in together] == [(8, scorer.profile.embedding_dim)] * 3
    for analysis, batched in zip(analyses, together, strict=True):
        (alone,) = scorer.embed([analysis])
        torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-4)


def test_a_failed_analysis_in_a_batch_keeps_the_others_in_place(
    scorer: Scorer, clips: dict[str, Path]
) -> None:
    analyses = [scorer.analyse(clips[n]) for n in ("blue_square", "random", "black")]
    embeddings = scorer.embed(analyses)
    assert [e.shape[0] for e in embeddings] == [8, 0, 8]
    torch.testing.assert_close(embeddings[2], scorer.embed([analyses[2]])[0])


def test_an_analysis_pickles_without_model_tensors(scorer: Scorer, clips: dict[str, Path]) -> None:
    analysis = scorer.analyse(clips["green_circle_with_tone"], lighting=L.HIGH_KEY)
    assert analysis.frames.dtype == np.uint8
    assert analysis.frames.shape == (8, 64, 64, 3)
    assert not any(isinstance(v, torch.Tensor) for v in vars(analysis).values())
    copy = pickle.loads(pickle.dumps(analysis))
    assert isinstance(copy, Analysis)
    np.testing.assert_array_equal(copy.frames, analysis.frames)
    assert copy.motion == analysis.motion
    assert copy.audio == analysis.audio
    assert analysis.audio is not None
    assert analysis.audio_excerpt is None  # no audio-text model configured
    assert analysis.lighting is L.HIGH_KEY


def test_the_picklable_preprocessor_gives_the_models_own_tensors_bit_for_bit(
    tiny_model: ScoringModel, clips: dict[str, Path]
) -> None:
    rng = np.random.default_rng(3)
    frames = [
        *sample_frames(clips["blue_square"], count=4).frames,
        # Every channel value, odd sizes and aspects (crop, resize both ways).
        rng.integers(0, 256, (97, 301, 3), np.uint8),
        rng.integers(0, 256, (480, 33, 3), np.uint8),
        np.arange(256 * 3, dtype=np.uint16).reshape(16, 16, 3).astype(np.uint8),
    ]
    preprocess = pickle.loads(pickle.dumps(FramePreprocessor.from_model(tiny_model)))
    for frame in frames:
        pictures = preprocess([frame])
        assert pictures.dtype == np.uint8
        assert pictures.shape == (1, 64, 64, 3)
        batch = preprocess.normalise(torch.from_numpy(pictures))
        # What the worker pipeline always fed the model: the transform's float32 output
        # rounded to float16.
        expected = tiny_model.preprocess_frames([frame]).to(torch.float16)
        assert batch.dtype == torch.float16
        assert torch.equal(batch, expected)


def test_normalising_a_batch_equals_normalising_its_pictures_one_by_one(
    tiny_model: ScoringModel, clips: dict[str, Path]
) -> None:
    preprocess = FramePreprocessor.from_model(tiny_model)
    pictures = torch.from_numpy(preprocess(list(sample_frames(clips["blue_square"]).frames)))
    batch = preprocess.normalise(pictures)
    assert batch.shape == (8, 3, 64, 64)
    for index in range(8):
        assert torch.equal(batch[index : index + 1], preprocess.normalise(pictures[index:][:1]))


def test_normalise_refuses_anything_but_uint8_pictures(tiny_model: ScoringModel) -> None:
    preprocess = FramePreprocessor.from_model(tiny_model)
    with pytest.raises(ValueError, match="uint8"):
        preprocess.normalise(torch.zeros(1, 64, 64, 3))
    with pytest.raises(ValueError, match="uint8"):
        preprocess.normalise(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


def test_stage_one_runs_in_a_worker_process(scorer: Scorer, clips: dict[str, Path]) -> None:
    context = multiprocessing.get_context("spawn")
    profile = scorer.profile
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        remote = pool.submit(
            analyse_clip,
            clips["blue_square"],
            preprocess=scorer.preprocess,
            frame_count=8,
            junk_thresholds=profile.junk,
            camera_thresholds=profile.camera,
            audio_thresholds=profile.audio,
        ).result(timeout=120)
    local = scorer.analyse(clips["blue_square"])
    np.testing.assert_array_equal(remote.frames, local.frames)
    assert remote.motion == local.motion


def test_a_reencoded_copy_of_an_indexed_clip_is_flagged_duplicate(
    tiny_model: ScoringModel, clips: dict[str, Path]
) -> None:
    profile = profile_for(tiny_model.identity)
    index = DuplicateIndex.for_profile(profile)
    scorer = Scorer(tiny_model, profile, duplicates=index)
    note = annotation("a blue square")
    accepted = scorer.score(clips["blue_square"], note)
    assert accepted.passed
    assert accepted.embedding is not None
    index.add("clip-accepted", decode_embedding(accepted.embedding, profile.embedding_dim))
    copy = scorer.score(clips["blue_square_copy"], note)
    assert not copy.passed
    (flag,) = copy.flags
    assert flag.flag is Flag.DUPLICATE
    assert flag.duplicate_of == "clip-accepted"
    assert copy.reasons[0].code == "junk.duplicate"
    # Scoring the accepted clip itself again, under its own id, is no duplicate.
    assert scorer.score(clips["blue_square"], note, clip_id="clip-accepted").passed
    other = scorer.score(clips["red_star_low_key"], annotation("a red star", setup="low_key"))
    assert other.flags == ()


def test_with_an_audio_text_model_the_sound_is_kept_and_judged(
    tiny_model: ScoringModel, clips: dict[str, Path]
) -> None:
    scorer = Scorer(tiny_model, profile_for(tiny_model.identity), audio_model=ToneAudioTextModel())
    analysis = scorer.analyse(clips["green_circle_with_tone"], lighting=L.HIGH_KEY)
    assert analysis.audio_excerpt is not None
    assert analysis.audio_excerpt.duration <= MAX_AUDIO_EXCERPT_S
    assert analysis.audio_excerpt.duration == pytest.approx(1.5, abs=0.1)
    (frames,) = scorer.embed([analysis])
    sound = {"genre": "ambience", "dialogue": False, "recording": "synthesized"}
    result = scorer.judge(
        analysis, frames, annotation("a green circle", setup="high_key", audio=sound)
    )
    audio = result.scores[Component.AUDIO]
    assert audio.value is not None
    assert audio.reasons


def test_a_scorer_refuses_another_models_profile_or_index(tiny_model: ScoringModel) -> None:
    with pytest.raises(ValueError, match="not the profile"):
        Scorer(tiny_model, profile_for("ViT-B-32", "laion2b_s34b_b79k"))
    with pytest.raises(ValueError, match="512-d"):
        Scorer(tiny_model, profile_for(*TEST_MODEL), duplicates=DuplicateIndex(512))


def test_judge_refuses_embeddings_that_do_not_fit_the_analysis(
    scorer: Scorer, clips: dict[str, Path]
) -> None:
    analysis = scorer.analyse(clips["blue_square"])
    with pytest.raises(ValueError, match="frame embeddings"):
        scorer.judge(analysis, torch.zeros(3, 128), annotation("a blue square"))
