"""The in-project model loads like real weights and knows its synthetic world."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scoring.device import detect_hardware
from scoring.models import (
    PREPROCESSING_VERSION,
    TEST_MODEL,
    ModelIdentity,
    ScoringModel,
    load_model,
)
from scoring.pretrained import get_pretrained
from scoring.synthetic import COLOURS, LIGHTING, SHAPES, Scene, describe, lighting_phrase, render
from shotbank.annotation.vocabulary import LightingSetup

NAME, TAG = TEST_MODEL


def _pictures(
    scene: Scene, count: int, seed: int, size: tuple[int, int] = (64, 64)
) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [render(scene, width=size[0], height=size[1], rng=rng) for _ in range(count)]


def test_identity_names_model_tag_weights_and_preprocessing(tiny_model: ScoringModel) -> None:
    identity = tiny_model.identity
    assert (identity.model, identity.tag) == TEST_MODEL
    assert identity.weights_sha256 == get_pretrained(NAME, TAG).sha256
    assert identity.preprocessing.startswith(f"{PREPROCESSING_VERSION}-")
    assert ModelIdentity.model_validate_json(identity.model_dump_json()) == identity


def test_identity_is_stable_across_loads(tiny_model: ScoringModel) -> None:
    again = load_model(NAME, TAG, device="cpu", precision="fp32")
    assert again.identity == tiny_model.identity


def test_embeddings_are_unit_vectors_of_the_model_width(tiny_model: ScoringModel) -> None:
    images = tiny_model.encode_images(
        _pictures(Scene("red", "circle", LightingSetup.NATURAL), 3, 0)
    )
    texts = tiny_model.encode_texts(["a red circle", "a blue square"])
    assert images.shape == (3, 128)
    assert texts.shape == (2, 128)
    assert images.dtype == texts.dtype == torch.float32
    assert torch.allclose(images.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(texts.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_text_embeddings_are_cached_and_order_preserving(tiny_model: ScoringModel) -> None:
    first = tiny_model.encode_texts(["a green star", "a purple triangle"])
    swapped = tiny_model.encode_texts(["a purple triangle", "a green star"])
    assert torch.equal(first, swapped.flip(0))


@pytest.mark.parametrize(
    ("shown", "right", "wrong"),
    [
        (Scene("red", "circle", LightingSetup.NATURAL), "a red circle", "a blue square"),
        (Scene("blue", "square", LightingSetup.NATURAL), "a blue square", "a red circle"),
        (
            Scene("red", "circle", LightingSetup.HIGH_KEY, "stripes"),
            "a red circle",
            "a blue square",
        ),
        (
            Scene("blue", "square", LightingSetup.LOW_KEY, "checker"),
            "a blue square",
            "a red circle",
        ),
    ],
)
def test_the_true_caption_beats_the_false_one(
    tiny_model: ScoringModel, shown: Scene, right: str, wrong: str
) -> None:
    probs = tiny_model.zero_shot(_pictures(shown, 4, seed=11), [right, wrong])
    assert (probs[:, 0] > 0.9).all(), probs


def test_zero_shot_over_the_whole_vocabulary_on_frame_sized_pictures(
    tiny_model: ScoringModel,
) -> None:
    """Pictures the size of video frames (16:9), scaled by the model's own preprocessing."""
    rng = np.random.default_rng(2026)
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    scenes = [
        Scene(c, s, LIGHTING[int(rng.integers(3))]) for c, s in pairs
    ]  # one of each, any visible lighting
    frames = [render(scene, width=256, height=144, rng=rng) for scene in scenes]
    probs = tiny_model.zero_shot(frames, [describe(c, s) for c, s in pairs])
    accuracy = float(np.mean(probs.argmax(axis=1) == np.arange(len(pairs))))
    assert accuracy >= 0.75, accuracy


def test_lighting_setups_are_told_apart(tiny_model: ScoringModel) -> None:
    prompts = [f"{lighting_phrase(setup)} lighting" for setup in LIGHTING]
    for index, setup in enumerate(LIGHTING):
        probs = tiny_model.zero_shot(_pictures(Scene("orange", "star", setup), 3, seed=7), prompts)
        assert (probs.argmax(axis=1) == index).all(), (setup, probs)


def test_zero_shot_rows_are_distributions(tiny_model: ScoringModel) -> None:
    probs = tiny_model.zero_shot(
        _pictures(Scene("yellow", "triangle", LightingSetup.NATURAL), 2, 3), ["a", "b", "c"]
    )
    assert probs.shape == (2, 3)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_bf16_autocast_on_cpu_agrees_with_fp32(tiny_model: ScoringModel) -> None:
    if not detect_hardware().cpu_bf16:
        pytest.skip("this CPU has no bf16 instructions (fp32 is the plan here)")
    fast = load_model(NAME, TAG, device="cpu", precision="amp_bf16")
    assert fast.plan.autocast_dtype is torch.bfloat16
    assert fast.identity == tiny_model.identity
    pictures = _pictures(Scene("red", "circle", LightingSetup.NATURAL), 2, 5)
    reference = tiny_model.encode_images(pictures)
    approx = fast.encode_images(pictures)
    assert torch.nn.functional.cosine_similarity(reference, approx).min() > 0.98


def test_default_device_is_auto_selected() -> None:
    model = load_model(NAME, TAG)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert model.plan.device == expected
    assert next(model.model.parameters()).device.type == expected
