"""The closed vocabularies and their export for user interfaces."""

from __future__ import annotations

import json
import re
from enum import StrEnum

import pytest

from shotbank.annotation import vocabularies
from shotbank.annotation.vocabulary import (
    ATTRIBUTION_REQUIRED,
    MOVEMENT_DIRECTIONS,
    SENSOR_WIDTH_MM,
    VOCABULARIES,
    VOCABULARY_VERSION,
    CameraMovement,
    Licence,
    LightingSetup,
    MovementDirection,
    term_label,
)


def test_version_is_one() -> None:
    assert VOCABULARY_VERSION == "1"
    assert vocabularies()["version"] == "1"


@pytest.mark.parametrize("name", list(VOCABULARIES))
def test_terms_are_unique_lower_case_identifiers(name: str) -> None:
    vocabulary = VOCABULARIES[name]
    values = [member.value for member in vocabulary]
    assert len(values) == len(set(values))
    pattern = (
        r"[a-z0-9]+(-[a-z0-9.]+)*" if vocabulary is Licence else r"[a-z][a-z0-9]*(_[a-z0-9]+)*"
    )
    for value in values:
        assert re.fullmatch(pattern, value), value


def test_export_lists_every_vocabulary_with_labels() -> None:
    exported = vocabularies()
    json.dumps(exported)
    assert set(exported["vocabularies"]) == set(VOCABULARIES)
    for name, enum_cls in VOCABULARIES.items():
        entry = exported["vocabularies"][name]
        assert entry["label"]
        assert [t["value"] for t in entry["terms"]] == [m.value for m in enum_cls]
        for term in entry["terms"]:
            assert term["label"][0].isupper() or term["label"][0] in '1"', term


def test_export_says_which_direction_fits_which_movement() -> None:
    directions = vocabularies()["movement_directions"]
    assert set(directions) == {m.value for m in CameraMovement}
    assert directions["pan"] == ["left", "right"]
    assert directions["orbit"] == ["cw", "ccw"]
    assert directions["static"] == []
    used = {d for ds in MOVEMENT_DIRECTIONS.values() for d in ds}
    assert used == set(MovementDirection)


def test_export_lists_attribution_licences_and_sensor_widths() -> None:
    exported = vocabularies()
    assert exported["attribution_required"] == sorted(lic.value for lic in ATTRIBUTION_REQUIRED)
    assert exported["sensor_widths_mm"]["full_frame"] == 36.0
    assert len(exported["sensor_widths_mm"]) == len(SENSOR_WIDTH_MM)


def test_export_is_a_fresh_copy() -> None:
    vocabularies()["vocabularies"].clear()
    assert vocabularies()["vocabularies"]


def test_mappings_are_read_only() -> None:
    with pytest.raises(TypeError):
        MOVEMENT_DIRECTIONS[CameraMovement.PAN] = ()  # type: ignore[index]
    with pytest.raises(TypeError):
        VOCABULARIES["x"] = StrEnum  # type: ignore[index]


@pytest.mark.parametrize(
    ("term", "label"),
    [
        (LightingSetup.HIGH_KEY, "High-key"),
        (LightingSetup.NATURAL, "Natural"),
        (Licence.CC_BY_SA_4_0, "CC BY-SA 4.0"),
        (MovementDirection.CCW, "Counter-clockwise (seen from above)"),
        (CameraMovement.PEDESTAL, "Pedestal"),
    ],
)
def test_term_labels(term: StrEnum, label: str) -> None:
    assert term_label(term) == label


def test_vocabulary_matches_the_architecture_lists() -> None:
    # ARCHITECTURE.md "Annotation schema v1" names these terms.
    assert {m.value for m in CameraMovement} == {
        "static",
        "pan",
        "tilt",
        "dolly",
        "truck",
        "pedestal",
        "zoom",
        "orbit",
        "crane",
        "handheld",
        "drone",
    }
    assert {"high_key", "low_key", "three_point", "natural", "silhouette", "practical"} <= {
        m.value for m in LightingSetup
    }
