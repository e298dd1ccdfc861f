"""Model profiles: every committed profile parses and is complete, lookups fail clearly,
and the overall-quality rule does what its docstring promises."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from scoring._openclip import open_clip
from scoring.errors import ScoringError, UnknownProfileError
from scoring.models import TEST_MODEL, ScoringModel
from scoring.profiles import ModelProfile, list_profiles, load_profiles, profile_for
from scoring.report import Component, ModelIdentity
from scoring.synthetic import LIGHTING
from shotbank.annotation.vocabulary import LightingSetup

C = Component


def _body(profile: ModelProfile, **changes: Any) -> dict[str, Any]:
    return {**profile.model_dump(mode="json"), **changes}


def test_every_profile_parses_with_weights_summing_to_one_and_every_component() -> None:
    profiles = load_profiles()
    assert set(profiles) == {TEST_MODEL, ("ViT-B-32", "laion2b_s34b_b79k")}
    for key, profile in profiles.items():
        assert profile.key == key
        assert set(profile.weights) == set(Component)
        assert set(profile.component_thresholds) == set(Component)
        assert math.isclose(math.fsum(profile.weights.values()), 1.0, abs_tol=1e-9)
        assert 0 < profile.pass_threshold < 1
        assert 0 < profile.duplicate_cosine < 1
        assert profile.provenance


def test_the_test_profile_knows_exactly_the_synthetic_lighting_setups() -> None:
    tiny = profile_for(*TEST_MODEL)
    assert set(tiny.lighting.setups) == set(LIGHTING)
    assert tiny.scene.distractor_source == "synthetic"
    assert tiny.embedding_dim == 128


def test_the_deployment_profile_knows_every_lighting_term_and_a_hundred_distractors() -> None:
    vit = profile_for("ViT-B-32", "laion2b_s34b_b79k")
    assert set(vit.lighting.setups) == set(LightingSetup)
    assert vit.scene.distractor_source == "list"
    assert len(vit.scene.distractors) >= 100
    assert len({d.lower() for d in vit.scene.distractors}) == len(vit.scene.distractors)
    assert vit.embedding_dim == 512
    assert vit.lighting.prompts(LightingSetup.LOW_KEY)[0] == "a photo with dark low-key lighting"


def test_profile_for_takes_the_model_identity(tiny_model: ScoringModel) -> None:
    assert profile_for(tiny_model.identity).key == TEST_MODEL


def test_an_unknown_model_or_an_untagged_file_has_no_profile() -> None:
    with pytest.raises(UnknownProfileError, match=r"ViT-L-14.*profiles exist for"):
        profile_for("ViT-L-14", "openai")
    untagged = ModelIdentity(
        model="shotbank-tiny", tag=None, weights_sha256="0" * 64, preprocessing="1-000000000000"
    )
    with pytest.raises(UnknownProfileError) as caught:
        profile_for(untagged)
    assert caught.value.code == "scoring.profile.unknown"
    assert isinstance(caught.value, LookupError)
    assert isinstance(caught.value, ScoringError)
    assert ("ViT-L-14", "openai") not in list_profiles()


def test_weights_that_do_not_sum_to_one_are_refused() -> None:
    tiny = profile_for(*TEST_MODEL)
    weights = {"scene": 0.5, "lighting": 0.2, "camera": 0.25, "audio": 0.15}
    with pytest.raises(ValidationError, match="weights sum to"):
        ModelProfile.model_validate(_body(tiny, weights=weights))
    partial = {"scene": 0.6, "lighting": 0.4}
    with pytest.raises(ValidationError, match="weights lacks"):
        ModelProfile.model_validate(_body(tiny, weights=partial))


def test_a_lighting_template_without_one_placeholder_is_refused() -> None:
    tiny = profile_for(*TEST_MODEL)
    lighting = {"templates": ["lighting"], "setups": {"low_key": "low-key", "natural": "n"}}
    with pytest.raises(ValidationError, match="exactly one"):
        ModelProfile.model_validate(_body(tiny, lighting=lighting))


def test_quality_is_the_weighted_mean_when_every_component_clears_its_threshold() -> None:
    tiny = profile_for(*TEST_MODEL)
    values = {C.SCENE: 0.9, C.LIGHTING: 0.8, C.CAMERA: 1.0, C.AUDIO: 0.7}
    expected = 0.4 * 0.9 + 0.2 * 0.8 + 0.25 * 1.0 + 0.15 * 0.7
    assert tiny.quality(dict(values)) == pytest.approx(expected)


def test_an_unscorable_component_gives_its_weight_to_the_others() -> None:
    tiny = profile_for(*TEST_MODEL)
    values: dict[Component, float | None] = {
        C.SCENE: 0.9,
        C.LIGHTING: None,
        C.CAMERA: 0.7,
        C.AUDIO: None,
    }
    assert tiny.quality(values) == pytest.approx((0.4 * 0.9 + 0.25 * 0.7) / 0.65)
    assert tiny.quality({C.SCENE: None}) is None


def test_a_component_below_its_threshold_caps_quality_below_the_pass_threshold() -> None:
    tiny = profile_for(*TEST_MODEL)
    scene_threshold = tiny.component_thresholds[C.SCENE]
    # Everything else perfect: the mean alone would pass.
    values: dict[Component, float | None] = {C.SCENE: 0.4, C.LIGHTING: 1.0, C.CAMERA: 1.0}
    quality = tiny.quality(values)
    assert quality == pytest.approx(tiny.pass_threshold * 0.4 / scene_threshold)
    assert quality is not None
    assert quality < tiny.pass_threshold
    # At the threshold the cap no longer bites.
    values[C.SCENE] = scene_threshold
    assert tiny.quality(values) == pytest.approx((0.4 * scene_threshold + 0.45) / 0.85)


def test_quality_never_falls_when_a_component_rises() -> None:
    tiny = profile_for(*TEST_MODEL)
    steps = [i / 20 for i in range(21)]
    for component in Component:
        previous = -1.0
        for step in steps:
            values: dict[Component, float | None] = dict.fromkeys(Component, 0.7)
            values[component] = step
            quality = tiny.quality(values)
            assert quality is not None
            assert quality >= previous - 1e-12
            previous = quality


def test_every_prompt_of_every_profile_fits_its_models_text_context() -> None:
    for (model, _), profile in load_profiles().items():
        tokenizer = open_clip.get_tokenizer(model)
        texts = list(profile.scene.distractors)
        texts += [p for setup in profile.lighting.setups for p in profile.lighting.prompts(setup)]
        tokens = tokenizer(texts)
        # A truncated text fills the whole context; a fitting one ends in padding.
        assert int((tokens != 0).sum(dim=1).max()) < tokenizer.context_length, model
