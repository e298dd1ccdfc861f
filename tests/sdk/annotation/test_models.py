"""Annotation schema v1: what contributors may send, and the messages they get back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shotbank.annotation import Annotation, AudioMeasurements
from shotbank.annotation.fields import is_valid_cid, normalise_tag
from shotbank.annotation.models import MEASURED_AUDIO_KEYS
from shotbank.annotation.vocabulary import (
    MOVEMENT_DIRECTIONS,
    VOCABULARIES,
    AmbienceTag,
    AudioGenre,
    AudioMood,
    CameraMovement,
    CameraRig,
    Contrast,
    KeyLightDirection,
    Licence,
    LightingSetup,
    MovementDirection,
    PositionScale,
    RecordingKind,
    ReleaseStatus,
    SceneSetting,
    SensorFormat,
    TimeOfDay,
)
from tests.sdk.annotation.conftest import CID_V0, CID_V1_DAG_PB, CID_V1_RAW


def errors_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The validation errors of ``document`` (failing the test if it is valid)."""
    with pytest.raises(ValidationError) as caught:
        Annotation.model_validate(document)
    return caught.value.errors(include_url=False)


def only_error(document: dict[str, Any]) -> dict[str, Any]:
    errors = errors_of(document)
    assert len(errors) == 1, errors
    return errors[0]


def put(document: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


# --- valid documents ---------------------------------------------------------------


def test_minimal_annotation_is_valid_and_fills_defaults(minimal_doc: dict[str, Any]) -> None:
    annotation = Annotation.model_validate(minimal_doc)
    assert annotation.scene.tags == ()
    assert annotation.scene.time_of_day is None
    assert annotation.camera.movement is CameraMovement.STATIC
    assert annotation.camera.direction is None
    assert annotation.audio is None
    assert annotation.rights.attribution is None


def test_full_annotation_is_valid_and_typed(full_doc: dict[str, Any]) -> None:
    annotation = Annotation.model_validate_json(json.dumps(full_doc))
    assert annotation.camera.direction is MovementDirection.RIGHT
    assert annotation.camera.lens is not None
    assert annotation.camera.lens.effective_sensor_width_mm == 24.89
    assert annotation.camera.path is not None
    assert len(annotation.camera.path.keyframes) == 2
    assert annotation.audio is not None
    assert annotation.audio.ambience == (AmbienceTag.RAIN, AmbienceTag.TRAFFIC)
    assert annotation.rights.licence is Licence.CC_BY_4_0
    assert annotation.scene.reference_image_cids == (CID_V1_RAW, CID_V0)


def test_validated_dump_validates_again_to_the_same_annotation(full_doc: dict[str, Any]) -> None:
    annotation = Annotation.model_validate(full_doc)
    again = Annotation.model_validate_json(annotation.model_dump_json())
    assert again == annotation


def test_annotations_are_immutable(minimal_doc: dict[str, Any]) -> None:
    annotation = Annotation.model_validate(minimal_doc)
    with pytest.raises(ValidationError, match="frozen"):
        annotation.scene.description = "something else entirely"  # type: ignore[misc]


# --- closed vocabularies -------------------------------------------------------------

VOCABULARY_FIELDS: list[tuple[tuple[str | int, ...], type[Any], dict[str, Any]]] = [
    (("scene", "setting"), SceneSetting, {}),
    (("scene", "time_of_day"), TimeOfDay, {}),
    (("camera", "movement"), CameraMovement, {}),
    (("camera", "direction"), MovementDirection, {"camera": {"movement": "pan"}}),
    (("camera", "rig"), CameraRig, {}),
    (("camera", "lens", "sensor"), SensorFormat, {"camera": {"lens": {"focal_length_mm": 50}}}),
    (("camera", "path", "position_scale"), PositionScale, {}),
    (("lighting", "setup"), LightingSetup, {}),
    (("lighting", "key_direction"), KeyLightDirection, {}),
    (("lighting", "contrast"), Contrast, {}),
    (("lighting", "time_of_day"), TimeOfDay, {}),
    (("audio", "genre"), AudioGenre, {}),
    (("audio", "mood"), AudioMood, {}),
    (("audio", "ambience", 0), AmbienceTag, {}),
    (("audio", "recording"), RecordingKind, {}),
    (("rights", "licence"), Licence, {}),
    (("rights", "model_release"), ReleaseStatus, {}),
    (("rights", "location_release"), ReleaseStatus, {}),
]


def test_every_vocabulary_is_checked_by_some_field() -> None:
    assert {vocab for _, vocab, _ in VOCABULARY_FIELDS} == set(VOCABULARIES.values())


@pytest.mark.parametrize(
    ("loc", "vocabulary", "override"),
    VOCABULARY_FIELDS,
    ids=[".".join(map(str, loc)) for loc, _, _ in VOCABULARY_FIELDS],
)
def test_unknown_term_is_rejected_naming_every_allowed_value(
    full_doc: dict[str, Any],
    loc: tuple[str | int, ...],
    vocabulary: type[Any],
    override: dict[str, Any],
) -> None:
    for section, values in override.items():
        for key, value in values.items():
            full_doc[section][key] = value
    if loc[:2] == ("camera", "lens"):
        full_doc["camera"]["lens"] = {"focal_length_mm": 50}
    put(full_doc, loc, "definitely_not_a_term")
    error = only_error(full_doc)
    assert error["loc"] == loc
    assert error["type"] == "unknown_term"
    message = error["msg"]
    assert message.startswith("'definitely_not_a_term' is not in the ")
    assert " vocabulary (v1). Allowed values: " in message
    allowed = message.split("Allowed values: ", 1)[1].rstrip(".")
    assert allowed.split(", ") == [member.value for member in vocabulary]


def test_unknown_term_message_suggests_the_closest_term(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["lighting"]["setup"] = "High-Key"
    error = only_error(minimal_doc)
    assert "Did you mean 'high_key'?" in error["msg"]
    assert "'High-Key' is not in the lighting setup vocabulary (v1)" in error["msg"]


def test_terms_are_case_sensitive_and_not_silently_mapped(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["camera"]["movement"] = "Static"
    assert only_error(minimal_doc)["type"] == "unknown_term"


def test_non_string_term_is_rejected_readably(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["scene"]["setting"] = 3
    error = only_error(minimal_doc)
    assert error["msg"].startswith("3 is not in the interior / exterior vocabulary (v1).")


def test_long_unknown_term_is_shortened_in_the_message(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["camera"]["movement"] = "x" * 5000
    assert len(only_error(minimal_doc)["msg"]) < 400


def test_duplicate_ambience_term_is_rejected(full_doc: dict[str, Any]) -> None:
    full_doc["audio"]["ambience"] = ["rain", "wind", "rain"]
    error = only_error(full_doc)
    assert error["loc"] == ("audio", "ambience")
    assert error["type"] == "duplicate_value"
    assert "'rain' is listed twice" in error["msg"]


# --- camera movement and direction --------------------------------------------------


@pytest.mark.parametrize("movement", list(CameraMovement))
def test_every_direction_that_fits_the_movement_is_accepted(
    minimal_doc: dict[str, Any], movement: CameraMovement
) -> None:
    allowed = MOVEMENT_DIRECTIONS[movement]
    for direction in allowed or (None,):
        minimal_doc["camera"] = {"movement": movement.value}
        if direction is not None:
            minimal_doc["camera"]["direction"] = direction.value
        annotation = Annotation.model_validate(minimal_doc)
        assert annotation.camera.direction == direction


@pytest.mark.parametrize("movement", list(CameraMovement))
def test_direction_that_does_not_fit_the_movement_is_rejected(
    minimal_doc: dict[str, Any], movement: CameraMovement
) -> None:
    allowed = MOVEMENT_DIRECTIONS[movement]
    for direction in set(MovementDirection) - set(allowed):
        minimal_doc["camera"] = {"movement": movement.value, "direction": direction.value}
        error = only_error(minimal_doc)
        assert error["loc"] == ("camera", "direction")
        assert error["type"] == "direction_mismatch"
        if allowed:
            assert f"'{direction.value}' does not fit a" in error["msg"]
            assert movement.value in error["msg"]
            assert " or ".join(d.value for d in allowed) in error["msg"]
        else:
            assert "has no direction" in error["msg"]


def test_pan_without_direction_asks_for_one(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["camera"] = {"movement": "pan"}
    error = only_error(minimal_doc)
    assert error["loc"] == ("camera", "direction")
    assert error["msg"] == "a pan needs a direction: left or right"


def test_orbit_direction_is_clockwise_or_counter_clockwise(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["camera"] = {"movement": "orbit", "direction": "left"}
    assert only_error(minimal_doc)["msg"] == "'left' does not fit an orbit, which goes cw or ccw"


def test_unknown_movement_reports_only_the_movement(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["camera"] = {"movement": "whip_pan", "direction": "left"}
    assert only_error(minimal_doc)["loc"] == ("camera", "movement")


# --- scene text, tags and CIDs ------------------------------------------------------


def test_description_is_trimmed_and_nfc_normalised(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["scene"]["description"] = "  Cafe\u0301 terrace at dusk\r\nwith people  "
    annotation = Annotation.model_validate(minimal_doc)
    assert annotation.scene.description == "Caf\u00e9 terrace at dusk\nwith people"


def test_description_too_short_after_trimming_is_rejected(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["scene"]["description"] = "   beach        "
    error = only_error(minimal_doc)
    assert error["loc"] == ("scene", "description")
    assert error["type"] == "text_too_short"
    assert "at least 10 characters" in error["msg"]


def test_description_of_10k_characters_is_rejected(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["scene"]["description"] = "a" * 10_000
    error = only_error(minimal_doc)
    assert error["loc"] == ("scene", "description")
    assert error["type"] == "string_too_long"
    assert "2000" in error["msg"]


def test_description_of_exactly_2000_characters_is_accepted(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["scene"]["description"] = "a" * 2000
    assert len(Annotation.model_validate(minimal_doc).scene.description) == 2000


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\u2028", "\x85"])
def test_description_with_control_characters_is_rejected(
    minimal_doc: dict[str, Any], char: str
) -> None:
    minimal_doc["scene"]["description"] = f"A long enough text {char} here"
    error = only_error(minimal_doc)
    assert error["type"] == "invalid_text"
    assert f"U+{ord(char):04X}" in error["msg"]


def test_description_with_lone_surrogate_is_rejected(minimal_doc: dict[str, Any]) -> None:
    raw = json.dumps(minimal_doc).replace("empty beach", "empty \\ud800 beach")
    with pytest.raises(ValidationError) as caught:
        Annotation.model_validate_json(raw)
    assert caught.value.errors()[0]["loc"][:2] in {("scene", "description"), ()}


def test_tags_are_normalised(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["scene"]["tags"] = ["  Golden   Hour ", "ÉTÉ", "sci-fi", "東京"]
    annotation = Annotation.model_validate(minimal_doc)
    assert annotation.scene.tags == ("golden hour", "été", "sci-fi", "東京")


def test_tags_differing_only_in_case_are_duplicates(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["scene"]["tags"] = ["Beach", "beach"]
    error = only_error(minimal_doc)
    assert error["loc"] == ("scene", "tags")
    assert error["type"] == "duplicate_value"
    assert "'beach' is listed twice" in error["msg"]


@pytest.mark.parametrize("tag", ["#beach", "a/b", "-dash", "nul\x00byte", "x!", "emoji 🎥"])
def test_tags_with_punctuation_are_rejected(minimal_doc: dict[str, Any], tag: str) -> None:
    minimal_doc["scene"]["tags"] = [tag]
    error = only_error(minimal_doc)
    assert error["loc"] == ("scene", "tags", 0)
    assert error["type"] == "invalid_text"


def test_10k_tags_are_rejected(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["scene"]["tags"] = [f"tag{i}" for i in range(10_000)]
    error = only_error(minimal_doc)
    assert error["loc"] == ("scene", "tags")
    assert error["type"] == "too_long"
    assert "32" in error["msg"]


def test_tag_longer_than_40_characters_is_rejected(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["scene"]["tags"] = ["t" * 41]
    assert only_error(minimal_doc)["type"] == "string_too_long"


@given(st.text(max_size=60))
def test_normalised_tags_are_fixed_points(text: str) -> None:
    try:
        tag = normalise_tag(text)
    except ValueError:
        return
    assert normalise_tag(tag) == tag
    assert 1 <= len(tag) <= 40
    assert tag == tag.lower().strip()
    assert "  " not in tag


@pytest.mark.parametrize("cid", [CID_V1_RAW, CID_V1_DAG_PB, CID_V0])
def test_valid_cids_are_accepted(cid: str) -> None:
    assert is_valid_cid(cid)


@pytest.mark.parametrize(
    "cid",
    [
        "",
        "QmNotACid",
        CID_V0[:-1] + "0",  # '0' is not base58
        CID_V0[:-1],  # too short
        CID_V1_RAW.upper(),  # CIDv1 must be lower-case base32
        "z" + CID_V1_RAW[1:],  # other multibase prefixes are not accepted
        CID_V1_RAW[:-1] + "f",  # non-zero padding bits: not the canonical encoding
        "bafkqaaa",  # identity hash
        "bafyreielbokdwvorei3ygsxpyzpp4zerefwxa3ww7gwhxs2wedz4tkfege",  # dag-cbor codec
        "b" + "a" * 58,
        " " + CID_V1_RAW,
    ],
)
def test_invalid_cids_are_rejected(minimal_doc: dict[str, Any], cid: str) -> None:
    assert not is_valid_cid(cid)
    minimal_doc["scene"]["reference_image_cids"] = [cid]
    error = only_error(minimal_doc)
    assert error["loc"] == ("scene", "reference_image_cids", 0)
    assert error["type"] in {"invalid_cid", "string_too_long"}


def test_cid_check_agrees_with_multiformats() -> None:
    multiformats = pytest.importorskip("multiformats")
    import hashlib

    for seed in range(50):
        digest = multiformats.multihash.wrap(hashlib.sha256(bytes([seed])).digest(), "sha2-256")
        for version, codec, base in (
            (1, "raw", "base32"),
            (1, "dag-pb", "base32"),
            (0, "dag-pb", "base58btc"),
        ):
            text = str(multiformats.CID(base, version, codec, digest))
            assert is_valid_cid(text), text
            assert multiformats.CID.decode(text).digest == digest


def test_invalid_cid_message_says_what_is_expected(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["scene"]["reference_image_cids"] = ["QmNotACid"]
    assert "CIDv1 in base32" in only_error(minimal_doc)["msg"]


def test_duplicate_reference_images_are_rejected(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["scene"]["reference_image_cids"] = [CID_V0, CID_V0]
    assert only_error(minimal_doc)["type"] == "duplicate_value"


def test_more_than_8_reference_images_are_rejected(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["scene"]["reference_image_cids"] = [CID_V0] * 9
    assert only_error(minimal_doc)["type"] == "too_long"


# --- numbers -------------------------------------------------------------------------


@pytest.mark.parametrize("kelvin", [999, 20001, -5])
def test_colour_temperature_out_of_range_is_rejected(
    minimal_doc: dict[str, Any], kelvin: int
) -> None:
    minimal_doc["lighting"]["colour_temperature_k"] = kelvin
    error = only_error(minimal_doc)
    assert error["loc"] == ("lighting", "colour_temperature_k")


@pytest.mark.parametrize("kelvin", [1000, 5600, 20000])
def test_colour_temperature_in_range_is_accepted(minimal_doc: dict[str, Any], kelvin: int) -> None:
    minimal_doc["lighting"]["colour_temperature_k"] = kelvin
    assert Annotation.model_validate(minimal_doc).lighting.colour_temperature_k == kelvin


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_rejected(minimal_doc: dict[str, Any], raw: str) -> None:
    minimal_doc["camera"]["lens"] = {"focal_length_mm": "PLACEHOLDER"}
    text = json.dumps(minimal_doc).replace('"PLACEHOLDER"', raw)
    with pytest.raises(ValidationError) as caught:
        Annotation.model_validate_json(text)
    assert caught.value.errors()[0]["loc"] == ("camera", "lens", "focal_length_mm")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_python_floats_are_rejected(minimal_doc: dict[str, Any], value: float) -> None:
    minimal_doc["camera"]["lens"] = {"focal_length_mm": value}
    assert only_error(minimal_doc)["loc"] == ("camera", "lens", "focal_length_mm")


# --- audio: measured facts are read-only --------------------------------------------


@pytest.mark.parametrize("key", sorted(MEASURED_AUDIO_KEYS))
def test_contributor_cannot_set_measured_audio_facts(full_doc: dict[str, Any], key: str) -> None:
    full_doc["audio"][key] = 48000
    error = only_error(full_doc)
    assert error["loc"] == ("audio",)
    assert error["type"] == "read_only_field"
    assert f"'{key}'" in error["msg"]
    assert "filled in by Shotbank" in error["msg"]


def test_measured_audio_facts_have_their_own_model() -> None:
    measured = AudioMeasurements(sample_rate_hz=48000, channels=2, integrated_loudness_lufs=-23.0)
    assert measured.true_peak_dbtp is None
    with pytest.raises(ValidationError):
        AudioMeasurements(sample_rate_hz=48000, channels=0)


def test_audio_section_needs_dialogue_and_recording(full_doc: dict[str, Any]) -> None:
    full_doc["audio"] = {"genre": "jazz"}
    assert {tuple(e["loc"]) for e in errors_of(full_doc)} == {
        ("audio", "dialogue"),
        ("audio", "recording"),
    }


# --- rights ------------------------------------------------------------------------


@pytest.mark.parametrize("licence", ["cc-by-4.0", "cc-by-sa-4.0"])
def test_attribution_licences_require_attribution(
    minimal_doc: dict[str, Any], licence: str
) -> None:
    minimal_doc["rights"]["licence"] = licence
    error = only_error(minimal_doc)
    assert error["loc"] == ("rights", "attribution")
    assert error["type"] == "attribution_required"
    assert "requires attribution" in error["msg"]


@pytest.mark.parametrize("licence", ["cc0-1.0", "shotbank-training-v1"])
def test_other_licences_need_no_attribution(minimal_doc: dict[str, Any], licence: str) -> None:
    minimal_doc["rights"]["licence"] = licence
    assert Annotation.model_validate(minimal_doc).rights.licence.value == licence


def test_attribution_is_one_trimmed_line(full_doc: dict[str, Any]) -> None:
    full_doc["rights"]["attribution"] = "  Jane   Doe "
    assert Annotation.model_validate(full_doc).rights.attribution == "Jane Doe"
    full_doc["rights"]["attribution"] = "Jane\nDoe"
    assert only_error(full_doc)["type"] == "invalid_text"
    full_doc["rights"]["attribution"] = "x" * 301
    assert only_error(full_doc)["type"] == "string_too_long"


# --- structure ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "section",
    [(), ("scene",), ("camera",), ("camera", "lens"), ("lighting",), ("audio",), ("rights",)],
)
def test_unknown_keys_are_rejected_everywhere(
    full_doc: dict[str, Any], section: tuple[str, ...]
) -> None:
    target = full_doc
    for key in section:
        target = target[key]
    target["colour_grade"] = "teal and orange"
    error = only_error(full_doc)
    assert error["loc"] == (*section, "colour_grade")
    assert error["type"] == "extra_forbidden"


@pytest.mark.parametrize("version", ["2", 1, None, "1.0"])
def test_unsupported_schema_version_is_rejected(minimal_doc: dict[str, Any], version: Any) -> None:
    minimal_doc["schema_version"] = version
    error = only_error(minimal_doc)
    assert error["loc"] == ("schema_version",)
    assert error["type"] == "unsupported_schema_version"
    assert "schema version '1'" in error["msg"]


def test_missing_schema_version_is_required(minimal_doc: dict[str, Any]) -> None:
    del minimal_doc["schema_version"]
    assert only_error(minimal_doc)["type"] == "missing"


def test_all_errors_are_reported_at_once(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["scene"]["setting"] = "outdoors"
    minimal_doc["lighting"]["setup"] = "moody"
    minimal_doc["rights"]["licence"] = "gpl-3.0"
    locs = {tuple(e["loc"]) for e in errors_of(minimal_doc)}
    assert locs == {("scene", "setting"), ("lighting", "setup"), ("rights", "licence")}


def test_white_space_inside_tags_collapses_to_one_space(minimal_doc: dict[str, Any]) -> None:
    minimal_doc["scene"]["tags"] = ["night\tsky", " night   sky "]
    assert only_error(minimal_doc)["msg"] == (
        "'night sky' is listed twice; list each tag (tags ignore case) once"
    )
