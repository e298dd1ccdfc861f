"""The weights registry: pins, lookups, and refusal of anything that is not the pinned file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scoring.errors import (
    ModelError,
    UnknownModelError,
    WeightsIntegrityError,
    WeightsNotFoundError,
)
from scoring.models import TEST_MODEL, load_model
from scoring.pretrained import (
    REGISTRY_PATH,
    WEIGHTS_DIR,
    get_pretrained,
    list_pretrained,
    resolve_weights,
    sha256_file,
)

NAME, TAG = TEST_MODEL


@pytest.fixture
def tiny_copy(tmp_path: Path) -> Path:
    """A copy of the in-project weights under the registered file name."""
    entry = get_pretrained(NAME, TAG)
    return Path(shutil.copyfile(WEIGHTS_DIR / entry.file, tmp_path / entry.file))


def test_registry_pins_the_committed_in_project_weights() -> None:
    entry = get_pretrained(NAME, TAG)
    path = WEIGHTS_DIR / entry.file
    assert entry.sha256 is not None
    assert entry.size is not None
    assert path.stat().st_size == entry.size
    assert sha256_file(path) == entry.sha256
    assert entry.size < 30_000_000, "the committed fixture must stay small"


def test_registry_names_the_real_deployment_default() -> None:
    assert ("ViT-B-32", "laion2b_s34b_b79k") in list_pretrained()
    entry = get_pretrained("ViT-B-32", "laion2b_s34b_b79k")
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in entry.source


def test_registry_file_is_valid_json_with_hex_pins_only() -> None:
    raw = json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))
    for tags in raw["models"].values():
        for fields in tags.values():
            pin = fields.get("sha256")
            assert pin is None or (len(pin) == 64 and pin == pin.lower())


def test_unknown_tag_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match="synthetic-v1"):
        resolve_weights(NAME, "no-such-tag")


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(UnknownModelError, match="no open_clip architecture"):
        load_model("no-such-model", TAG)


def test_registered_tag_resolves_to_the_package_weights() -> None:
    resolved = resolve_weights(NAME, TAG)
    assert resolved.path == WEIGHTS_DIR / get_pretrained(NAME, TAG).file
    assert resolved.tag == TAG


def test_weights_dirs_are_searched_before_the_package(tiny_copy: Path) -> None:
    resolved = resolve_weights(NAME, TAG, weights_dirs=[tiny_copy.parent])
    assert resolved.path == tiny_copy


def test_tampered_weights_refuse_to_load(tiny_copy: Path) -> None:
    data = bytearray(tiny_copy.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same size
    tiny_copy.write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError, match="does not match the pinned"):
        load_model(NAME, TAG, weights_dirs=[tiny_copy.parent], device="cpu")


def test_truncated_weights_are_refused_before_hashing(tiny_copy: Path) -> None:
    with tiny_copy.open("r+b") as stream:
        stream.truncate(1000)
    with pytest.raises(WeightsIntegrityError, match="1000 bytes"):
        resolve_weights(NAME, TAG, weights_dirs=[tiny_copy.parent])


def test_tampered_local_file_is_refused_as_unpinned(tiny_copy: Path) -> None:
    tiny_copy.write_bytes(tiny_copy.read_bytes() + b"\0")
    with pytest.raises(WeightsIntegrityError, match="not registered"):
        load_model(NAME, tiny_copy, device="cpu")


def test_local_file_with_a_registered_hash_takes_its_tag(tiny_copy: Path) -> None:
    renamed = tiny_copy.rename(tiny_copy.with_name("anything.safetensors"))
    assert resolve_weights(NAME, renamed).tag == TAG


def test_caller_pin_must_match_a_local_file(tiny_copy: Path) -> None:
    with pytest.raises(WeightsIntegrityError, match="not the pinned"):
        resolve_weights(NAME, tiny_copy, expected_sha256="0" * 64)


def test_caller_pin_contradicting_the_registry_is_refused() -> None:
    with pytest.raises(WeightsIntegrityError, match="contradicts"):
        resolve_weights(NAME, TAG, expected_sha256="0" * 64)


def test_unpinned_registry_entry_needs_a_caller_pin(tmp_path: Path) -> None:
    entry = get_pretrained("ViT-B-32", "laion2b_s34b_b79k")
    if entry.sha256 is not None:
        pytest.skip("the deployment default is pinned now")
    fake = tmp_path / entry.file
    fake.write_bytes(b"not weights")
    with pytest.raises(WeightsIntegrityError, match="no SHA-256 in the registry"):
        resolve_weights("ViT-B-32", "laion2b_s34b_b79k", weights_dirs=[tmp_path])
    pinned = resolve_weights(
        "ViT-B-32",
        "laion2b_s34b_b79k",
        weights_dirs=[tmp_path],
        expected_sha256=sha256_file(fake),
    )
    assert pinned.sha256 == sha256_file(fake)


def test_missing_registered_file_says_where_it_looked_and_where_it_comes_from(
    tmp_path: Path,
) -> None:
    with pytest.raises(WeightsNotFoundError, match="hf-hub:laion") as caught:
        resolve_weights(
            "ViT-B-32", "laion2b_s34b_b79k", weights_dirs=[tmp_path], expected_sha256="a" * 64
        )
    assert str(tmp_path) in str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)


def test_pickle_formats_outside_the_allow_list_are_refused(tmp_path: Path) -> None:
    pickle = tmp_path / "weights.pkl"
    pickle.write_bytes(b"\x80\x04.")
    with pytest.raises(WeightsIntegrityError, match=r"format \.pkl"):
        resolve_weights(NAME, pickle, allow_unpinned=True)


def test_errors_share_the_package_base_and_a_builtin_one() -> None:
    assert issubclass(WeightsIntegrityError, ModelError)
    assert issubclass(WeightsIntegrityError, ValueError)
    assert issubclass(UnknownModelError, LookupError)
