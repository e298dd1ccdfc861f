"""Scene alignment with the in-project model on real encoded clips: a mislabelled clip
fails, the true description passes, and the score follows its documented formula."""

from __future__ import annotations

import pytest
import torch

from scoring.clipgen import scene_frames, write_clip
from scoring.frames import sample_frames
from scoring.models import TEST_MODEL, ScoringModel
from scoring.profiles import ModelProfile, profile_for
from scoring.report import Component
from scoring.scene import (
    clip_embedding,
    distractor_bank,
    scene_contest,
    score_scene,
    synthetic_claims,
)
from scoring.synthetic import Caption, Scene, caption_matches
from shotbank.annotation.vocabulary import LightingSetup

L = LightingSetup
SHOWN = {
    "blue square": Scene("blue", "square", L.NATURAL, "checker"),
    "green triangle": Scene("green", "triangle", L.HIGH_KEY, "gradient"),
    "red circle": Scene("red", "circle", L.LOW_KEY, "stripes"),
    "yellow star": Scene("yellow", "star", L.NATURAL, "grain"),
}
#: (what the clip shows, a wrong description): wrong colour and shape, or only one of them.
MISLABELLED = [
    ("blue square", "a red circle"),
    ("blue square", "an orange square"),
    ("green triangle", "a yellow star"),
    ("green triangle", "a green circle"),
    ("red circle", "a red square"),
    ("yellow star", "a blue star"),
]


@pytest.fixture(scope="module")
def embeddings(
    tiny_model: ScoringModel, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, torch.Tensor]:
    """Frame embeddings (8 sampled frames) of one encoded clip per shown scene."""
    folder = tmp_path_factory.mktemp("scene")
    result = {}
    for seed, (name, scene) in enumerate(SHOWN.items()):
        path = write_clip(folder / f"{seed}.mp4", scene_frames(scene, seconds=1.0, seed=seed))
        result[name] = tiny_model.encode_images(list(sample_frames(path, count=8).frames))
    return result


@pytest.fixture(scope="module")
def tiny() -> ModelProfile:
    return profile_for(*TEST_MODEL)


@pytest.mark.parametrize(("shown", "declared"), MISLABELLED)
def test_a_mislabelled_clip_fails_alignment_and_names_what_it_shows_better(
    tiny_model: ScoringModel,
    tiny: ModelProfile,
    embeddings: dict[str, torch.Tensor],
    shown: str,
    declared: str,
) -> None:
    score = score_scene(tiny_model, embeddings[shown], declared, profile=tiny)
    assert score.value is not None
    assert score.value < tiny.component_thresholds[Component.SCENE]
    (reason,) = score.reasons
    assert reason.code == "scene.misaligned"
    assert f"better than the declared description '{declared}'" in reason.message
    # The caption that beat the description is true of what the clip shows.
    rival = synthetic_claims(str(score.measured["best_distractor"]))
    assert rival is not None
    assert caption_matches(rival, SHOWN[shown])


@pytest.mark.parametrize("shown", list(SHOWN))
def test_the_true_description_passes_alignment(
    tiny_model: ScoringModel, tiny: ModelProfile, embeddings: dict[str, torch.Tensor], shown: str
) -> None:
    declared = f"a {shown}"
    score = score_scene(tiny_model, embeddings[shown], declared, profile=tiny)
    assert score.value is not None
    assert score.value >= tiny.component_thresholds[Component.SCENE]
    assert [r.code for r in score.reasons] == ["scene.aligned"]
    assert score.measured["cosine"] > score.measured["best_distractor_cosine"]  # type: ignore[operator]


def test_a_vaguer_true_description_passes_and_an_unrelated_one_fails(
    tiny_model: ScoringModel, tiny: ModelProfile, embeddings: dict[str, torch.Tensor]
) -> None:
    threshold = tiny.component_thresholds[Component.SCENE]
    vague = score_scene(tiny_model, embeddings["blue square"], "a square shape", profile=tiny)
    assert vague.value is not None
    assert vague.value >= threshold
    unrelated = score_scene(
        tiny_model, embeddings["blue square"], "a dog running on a beach", profile=tiny
    )
    assert unrelated.value is not None
    assert unrelated.value < threshold
    assert unrelated.reasons[0].code == "scene.misaligned"


def test_captions_compatible_with_the_description_are_not_distractors(
    tiny_model: ScoringModel, tiny: ModelProfile
) -> None:
    kept, left_out = distractor_bank(tiny_model, "a red circle", profile=tiny)
    for paraphrase in (
        "a red circle",
        "a circle",
        "a red shape",
        "a red circle in low-key lighting",
    ):
        assert paraphrase not in kept
    for rival in ("a blue square", "a red square", "a blue circle", "a silhouette of a circle"):
        assert rival in kept
    assert left_out > 0
    assert len(set(kept)) == len(kept)


def test_the_value_follows_the_documented_formula(
    tiny_model: ScoringModel, tiny: ModelProfile, embeddings: dict[str, torch.Tensor]
) -> None:
    distractors = ["a red circle", "a green star", "a blue circle", "a purple triangle"]
    listed = tiny.model_copy(
        update={
            "scene": tiny.scene.model_copy(
                update={"distractor_source": "list", "distractors": tuple(distractors)}
            )
        }
    )
    frames = embeddings["blue square"]
    description = "a blue square"
    contest = scene_contest(tiny_model, frames, description, profile=listed)
    assert contest is not None
    assert contest.distractors == len(distractors)
    # Recomputed here from the model's own embeddings and logit scale.
    clip = torch.nn.functional.normalize(frames.mean(dim=0), dim=0)
    texts = tiny_model.encode_texts([description, *distractors])
    cosines = texts @ clip
    tau = tiny_model.logit_scale
    share = torch.sigmoid(tau * (cosines[0] - cosines[1:])).mean().item()
    runner_up = torch.sigmoid(tau * (cosines[0] - cosines[1:].max())).item()
    w = listed.scene.runner_up_weight
    assert contest.share == pytest.approx(share, abs=1e-6)
    assert contest.runner_up == pytest.approx(runner_up, abs=1e-6)
    assert contest.value == pytest.approx((1 - w) * share + w * runner_up, abs=1e-6)
    assert contest.best_distractor == "a blue circle"


def test_a_description_every_distractor_paraphrases_is_not_scorable(
    tiny_model: ScoringModel, tiny: ModelProfile, embeddings: dict[str, torch.Tensor]
) -> None:
    only_itself = tiny.model_copy(
        update={
            "scene": tiny.scene.model_copy(
                update={
                    "distractor_source": "list",
                    "distractors": ("a blue square", " A Blue Square "),
                }
            )
        }
    )
    score = score_scene(tiny_model, embeddings["blue square"], "a blue square", profile=only_itself)
    assert score.value is None
    assert [r.code for r in score.reasons] == ["scene.not_scorable"]


def test_synthetic_claims_read_colour_shape_and_lighting_words() -> None:
    assert synthetic_claims("A red circle in low-key lighting, held.") == Caption(
        "A red circle in low-key lighting, held.", colour="red", shape="circle", lighting=L.LOW_KEY
    )
    assert synthetic_claims("two squares") == Caption("two squares", shape="square")
    assert synthetic_claims("a red and blue circle") is None
    assert synthetic_claims("a dog running on a beach") is None
    assert synthetic_claims("a reddish circular shape") is None


def test_frame_embeddings_must_be_a_non_empty_matrix() -> None:
    with pytest.raises(ValueError, match="K x D"):
        clip_embedding(torch.zeros(128))
    with pytest.raises(ValueError, match="K x D"):
        clip_embedding(torch.zeros(0, 128))
    with pytest.raises(ValueError, match="not finite"):
        clip_embedding(torch.full((2, 4), float("nan")))


def test_the_clip_embedding_is_the_normalised_mean_of_its_frames(
    embeddings: dict[str, torch.Tensor],
) -> None:
    frames = embeddings["red circle"]
    clip = clip_embedding(frames)
    assert float(clip.norm()) == pytest.approx(1.0, abs=1e-6)
    expected = frames.mean(dim=0) / frames.mean(dim=0).norm()
    torch.testing.assert_close(clip, expected)
