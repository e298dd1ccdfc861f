"""Lighting consistency with the in-project model on real encoded clips under each of the
four setups it knows."""

from __future__ import annotations

import itertools

import pytest
import torch

from scoring.clipgen import scene_frames, write_clip
from scoring.frames import sample_frames
from scoring.lighting import lighting_probabilities, score_lighting
from scoring.models import TEST_MODEL, ScoringModel
from scoring.profiles import ModelProfile, profile_for
from scoring.report import Component
from scoring.synthetic import LIGHTING, Scene, lighting_phrase
from shotbank.annotation.vocabulary import LightingSetup

L = LightingSetup


@pytest.fixture(scope="module")
def tiny() -> ModelProfile:
    return profile_for(*TEST_MODEL)


@pytest.fixture(scope="module")
def embeddings(
    tiny_model: ScoringModel, tmp_path_factory: pytest.TempPathFactory
) -> dict[LightingSetup, torch.Tensor]:
    """Frame embeddings of one clip per setup (different subjects and backdrops)."""
    folder = tmp_path_factory.mktemp("lighting")
    subjects = [("purple", "circle", "plain"), ("orange", "star", "stripes")]
    result = {}
    for i, setup in enumerate(LIGHTING):
        colour, shape, texture = subjects[i % 2]
        scene = Scene(colour, shape, setup, texture)
        path = write_clip(folder / f"{setup.value}.mp4", scene_frames(scene, seconds=1.0, seed=i))
        result[setup] = tiny_model.encode_images(list(sample_frames(path, count=8).frames))
    return result


@pytest.mark.parametrize("setup", LIGHTING)
def test_the_declared_setup_of_a_clip_lit_that_way_is_consistent(
    tiny_model: ScoringModel,
    tiny: ModelProfile,
    embeddings: dict[LightingSetup, torch.Tensor],
    setup: LightingSetup,
) -> None:
    score = score_lighting(tiny_model, embeddings[setup], setup, profile=tiny)
    assert score.value is not None
    assert score.value >= tiny.component_thresholds[Component.LIGHTING]
    assert [r.code for r in score.reasons] == ["lighting.consistent"]
    assert score.measured["likeliest"] == setup.value


@pytest.mark.parametrize(("shown", "declared"), list(itertools.permutations(LIGHTING, 2)))
def test_a_wrong_declared_setup_is_a_mismatch_naming_the_measured_one(
    tiny_model: ScoringModel,
    tiny: ModelProfile,
    embeddings: dict[LightingSetup, torch.Tensor],
    shown: LightingSetup,
    declared: LightingSetup,
) -> None:
    score = score_lighting(tiny_model, embeddings[shown], declared, profile=tiny)
    assert score.value is not None
    assert score.value < tiny.component_thresholds[Component.LIGHTING]
    (reason,) = score.reasons
    assert reason.code == "lighting.mismatch"
    assert f"lighting declared {lighting_phrase(declared)}" in reason.message
    assert f"measured {lighting_phrase(shown)}" in reason.message


def test_a_setup_the_model_does_not_know_is_not_scorable(
    tiny_model: ScoringModel, tiny: ModelProfile, embeddings: dict[LightingSetup, torch.Tensor]
) -> None:
    score = score_lighting(tiny_model, embeddings[L.LOW_KEY], L.REMBRANDT, profile=tiny)
    assert score.value is None
    (reason,) = score.reasons
    assert reason.code == "lighting.not_scorable"
    assert "rembrandt" in reason.message


def test_probabilities_are_averaged_over_frames_so_a_change_of_light_splits_them(
    tiny_model: ScoringModel, tiny: ModelProfile, embeddings: dict[LightingSetup, torch.Tensor]
) -> None:
    # Four low-key frames then four high-key ones: a shot whose lights come on.
    frames = torch.cat([embeddings[L.LOW_KEY][:4], embeddings[L.HIGH_KEY][4:]])
    probabilities = lighting_probabilities(tiny_model, frames, profile=tiny)
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert probabilities[L.LOW_KEY] == pytest.approx(0.5, abs=0.1)
    assert probabilities[L.HIGH_KEY] == pytest.approx(0.5, abs=0.1)
    low = score_lighting(tiny_model, frames, L.LOW_KEY, profile=tiny)
    assert low.value == pytest.approx(probabilities[L.LOW_KEY])


def test_frame_embeddings_of_another_width_are_refused(
    tiny_model: ScoringModel, tiny: ModelProfile
) -> None:
    with pytest.raises(ValueError, match="512-d"):
        score_lighting(tiny_model, torch.ones(8, 512) / 512**0.5, L.NATURAL, profile=tiny)
