"""The near-duplicate index and the embedding wire format: re-encoded clips are caught with
the in-project model's embeddings, the index survives save/load and switching to HNSW,
and hostile input is refused."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from scoring.clipgen import scene_frames, write_clip
from scoring.dedup import (
    DuplicateIndex,
    check_duplicate,
    decode_embedding,
    encode_embedding,
    normalised,
)
from scoring.frames import sample_frames
from scoring.models import TEST_MODEL, ScoringModel
from scoring.profiles import profile_for
from scoring.report import Flag
from scoring.scene import clip_embedding
from scoring.synthetic import Scene
from shotbank.annotation.vocabulary import LightingSetup

Vector = npt.NDArray[np.float32]
ORIGINAL = Scene("blue", "square", LightingSetup.NATURAL, "checker")


def _units(count: int, dim: int, seed: int = 0) -> Vector:
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((count, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def _embed(model: ScoringModel, path: Path) -> Vector:
    frames = sample_frames(path, count=8)
    vector: Vector = clip_embedding(model.encode_images(list(frames.frames))).numpy()
    return vector


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An original clip, two re-encoded copies of it and two different clips."""
    folder = tmp_path_factory.mktemp("dedup")
    frames = list(scene_frames(ORIGINAL, seconds=1.0, seed=3))
    smaller = [
        cv2.resize(f, (256, 192), interpolation=cv2.INTER_AREA).astype(np.uint8) for f in frames
    ]
    return {
        "original": write_clip(folder / "original.mp4", frames),
        "smaller_worse": write_clip(folder / "smaller.mp4", smaller, crf=32, preset="ultrafast"),
        "other_preset_rate": write_clip(
            folder / "other.mp4", frames, crf=28, preset="medium", fps=30
        ),
        "other_placement": write_clip(
            folder / "placement.mp4", scene_frames(ORIGINAL, seconds=1.0, seed=4)
        ),
        "other_colour": write_clip(
            folder / "colour.mp4",
            scene_frames(
                Scene("red", "square", LightingSetup.NATURAL, "checker"), seconds=1.0, seed=3
            ),
        ),
    }


@pytest.mark.parametrize("copy", ["smaller_worse", "other_preset_rate"])
def test_a_reencoded_copy_of_an_accepted_clip_is_flagged_as_its_duplicate(
    tiny_model: ScoringModel, clips: dict[str, Path], copy: str
) -> None:
    profile = profile_for(*TEST_MODEL)
    index = DuplicateIndex.for_profile(profile)
    index.add("clip-original", _embed(tiny_model, clips["original"]))
    flag = check_duplicate(
        index, _embed(tiny_model, clips[copy]), threshold=profile.duplicate_cosine
    )
    assert flag is not None
    assert flag.flag is Flag.DUPLICATE
    assert flag.duplicate_of == "clip-original"
    assert flag.reason.code == "junk.duplicate"
    assert "clip-original" in flag.reason.message
    assert flag.measure is not None
    assert flag.measure >= profile.duplicate_cosine


@pytest.mark.parametrize("other", ["other_placement", "other_colour"])
def test_a_different_scene_is_not_a_duplicate(
    tiny_model: ScoringModel, clips: dict[str, Path], other: str
) -> None:
    profile = profile_for(*TEST_MODEL)
    index = DuplicateIndex.for_profile(profile)
    index.add("clip-original", _embed(tiny_model, clips["original"]))
    vector = _embed(tiny_model, clips[other])
    assert check_duplicate(index, vector, threshold=profile.duplicate_cosine) is None
    assert index.search(vector, 1)[0][1] < profile.duplicate_cosine


def test_a_clip_is_not_its_own_duplicate_when_excluded() -> None:
    index = DuplicateIndex(16)
    vector = _units(1, 16)[0]
    index.add("clip-a", vector)
    assert check_duplicate(index, vector, threshold=0.9, exclude="clip-a") is None
    flag = check_duplicate(index, vector, threshold=0.9)
    assert flag is not None
    assert flag.measure == pytest.approx(1.0)


def test_search_returns_the_most_similar_clips_with_their_cosine_best_first() -> None:
    rows = _units(50, 32)
    index = DuplicateIndex(32)
    assert index.add_many((f"clip-{i}", row) for i, row in enumerate(rows)) == 50
    hits = index.search(rows[7], 5)
    assert hits[0][0] == "clip-7"
    assert hits[0][1] == pytest.approx(1.0, abs=1e-6)
    expected = np.sort(rows @ rows[7])[::-1][:5]
    assert [c for _, c in hits] == pytest.approx(expected.tolist(), abs=1e-5)
    assert len(index) == 50
    assert "clip-7" in index
    assert "clip-50" not in index


def test_adding_an_indexed_clip_again_changes_nothing() -> None:
    rows = _units(2, 8)
    index = DuplicateIndex(8)
    assert index.add("clip-a", rows[0])
    assert not index.add("clip-a", rows[1])
    assert len(index) == 1
    np.testing.assert_allclose(index.vector("clip-a"), rows[0], atol=1e-6)


def test_a_removed_clip_is_no_longer_found_and_can_come_back() -> None:
    rows = _units(10, 8)
    index = DuplicateIndex(8)
    index.add_many((f"clip-{i}", row) for i, row in enumerate(rows))
    assert index.remove("clip-3")
    assert not index.remove("clip-3")
    assert len(index) == 9
    assert all(clip != "clip-3" for clip, _ in index.search(rows[3], 9))
    assert index.add("clip-3", rows[3])
    assert index.search(rows[3], 1)[0][0] == "clip-3"


def test_the_index_turns_approximate_past_its_size_threshold_and_still_finds_copies() -> None:
    rows = _units(600, 64)
    index = DuplicateIndex(64, approximate_above=200, ivf_lists=8, ivf_probes=2)
    index.add_many((f"clip-{i}", row) for i, row in enumerate(rows[:200]))
    assert not index.approximate
    index.add_many((f"clip-{i}", row) for i, row in enumerate(rows[200:], start=200))
    assert index.approximate
    assert len(index) == 600
    rng = np.random.default_rng(1)
    for i in (0, 150, 450, 599):
        copy = rows[i] + 0.05 * rng.standard_normal(64).astype(np.float32) / 8
        hits = index.search(copy / np.linalg.norm(copy), 1)
        assert hits[0][0] == f"clip-{i}"
        assert index.search(copy / np.linalg.norm(copy), 1, exact=True)[0][0] == f"clip-{i}"
        assert index.search(copy / np.linalg.norm(copy), 1, exclude=f"clip-{i}")[0][0] != (
            f"clip-{i}"
        )
    assert len(index.search(rows[0], 5, exclude="clip-0")) == 5


def test_removed_clips_stay_unfound_before_and_after_the_index_compacts() -> None:
    rows = _units(300, 32)
    index = DuplicateIndex(32, approximate_above=100, ivf_lists=4, ivf_probes=2)
    index.add_many((f"clip-{i}", row) for i, row in enumerate(rows))
    assert index.approximate
    for i in range(0, 100):
        assert index.remove(f"clip-{i}")
    assert len(index) == 200
    for i in (0, 50, 99):
        assert all(clip != f"clip-{i}" for clip, _ in index.search(rows[i], 5))
    for i in (100, 200, 299):
        assert index.search(rows[i], 1)[0][0] == f"clip-{i}"
        np.testing.assert_allclose(index.vector(f"clip-{i}"), rows[i], atol=1e-6)


@pytest.mark.parametrize("approximate_above", [1000, 50])
def test_save_and_load_give_the_same_answers(tmp_path: Path, approximate_above: int) -> None:
    rows = _units(120, 16)
    index = DuplicateIndex(16, approximate_above=approximate_above, ivf_lists=2, ivf_probes=1)
    index.add_many((f"clip-{i}", row) for i, row in enumerate(rows))
    index.remove("clip-5")
    path = tmp_path / "index.dup"
    index.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["index.dup"]  # no temporary left
    loaded = DuplicateIndex.load(path)
    assert len(loaded) == len(index) == 119
    assert loaded.approximate == index.approximate == (approximate_above == 50)
    assert (loaded.dim, loaded.ivf_lists, loaded.ivf_probes) == (16, 2, 1)
    for i in (0, 5, 77, 119):
        assert loaded.search(rows[i], 3) == index.search(rows[i], 3)
    np.testing.assert_allclose(loaded.vector("clip-77"), rows[77], atol=1e-6)
    assert loaded.add("clip-new", rows[5])
    assert loaded.search(rows[5], 1)[0][0] == "clip-new"


def test_saving_over_an_existing_file_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "index.dup"
    first = DuplicateIndex(8)
    first.add("clip-a", _units(1, 8)[0])
    first.save(path)
    second = DuplicateIndex(8)
    second.add_many([("clip-b", _units(1, 8, 1)[0]), ("clip-c", _units(1, 8, 2)[0])])
    second.save(path)
    assert len(DuplicateIndex.load(path)) == 2


def test_a_damaged_or_foreign_index_file_is_refused(tmp_path: Path) -> None:
    index = DuplicateIndex(8)
    index.add_many((f"clip-{i}", row) for i, row in enumerate(_units(20, 8)))
    good = tmp_path / "good.dup"
    index.save(good)
    data = good.read_bytes()
    foreign = tmp_path / "foreign.dup"
    foreign.write_bytes(b"PK\x03\x04" + data[4:])
    truncated = tmp_path / "truncated.dup"
    truncated.write_bytes(data[: len(data) // 2])
    header_only = tmp_path / "header.dup"
    header_only.write_bytes(data[:40])
    for path in (foreign, truncated, header_only):
        with pytest.raises(ValueError, match="index"):
            DuplicateIndex.load(path)


def test_vectors_of_the_wrong_width_or_not_finite_or_not_unit_are_refused() -> None:
    index = DuplicateIndex(8)
    good = _units(1, 8)[0]
    nan = good.copy()
    nan[2] = np.nan
    for bad, message in (
        (good[:7], "8-d"),
        (np.concatenate([good, [0.0]]), "8-d"),
        (nan, "NaN"),
        (good * 3, "not normalised"),
        (np.zeros(8), "not normalised"),
    ):
        with pytest.raises(ValueError, match=message):
            index.add("clip-x", bad)
        with pytest.raises(ValueError, match=message):
            index.search(bad, 1)
    with pytest.raises(ValueError, match="clip id"):
        index.add("x" * 65, good)
    # One bad item leaves a batch unapplied.
    with pytest.raises(ValueError, match="NaN"):
        index.add_many([("clip-1", good), ("clip-2", nan)])
    assert len(index) == 0


def test_concurrent_adds_and_searches_from_threads_lose_nothing() -> None:
    rows = _units(800, 16)
    index = DuplicateIndex(16, approximate_above=300, ivf_lists=4, ivf_probes=2)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(offset, 800, 4):
                index.add(f"clip-{i}", rows[i])
                index.search(rows[i], 3)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(index) == 800
    assert index.approximate


def test_an_embedding_survives_its_wire_format_to_float16_precision() -> None:
    vector = _units(1, 128)[0]
    text = encode_embedding(vector)
    assert len(text) == 344  # ceil(256 bytes / 3) * 4
    raw = base64.b64decode(text)
    np.testing.assert_array_equal(np.frombuffer(raw, "<f2"), vector.astype("<f2"))
    decoded = decode_embedding(text, 128)
    assert decoded.dtype == np.float32
    np.testing.assert_allclose(decoded, vector, atol=1e-3)
    assert float(np.linalg.norm(decoded)) == pytest.approx(1.0, abs=1e-6)


def test_hostile_embedding_strings_are_refused() -> None:
    vector = _units(1, 16)[0]
    good = encode_embedding(vector)
    nan = vector.astype("<f2")
    nan[0] = np.nan
    cases = {
        "wrong width": (good, 32),
        "not base64": ("!" * len(good), 16),
        "NaN": (base64.b64encode(nan.tobytes()).decode(), 16),
        "not unit": (base64.b64encode((vector * 2).astype("<f2").tobytes()).decode(), 16),
        "empty": ("", 16),
        "non-ascii": ("é" * len(good), 16),
    }
    for name, (text, dim) in cases.items():
        with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
            decode_embedding(text, dim)
        assert name


def test_normalised_rescales_a_nearly_unit_vector_exactly() -> None:
    vector = _units(1, 32)[0] * 1.004
    assert float(np.linalg.norm(normalised(vector, 32))) == pytest.approx(1.0, abs=1e-6)
