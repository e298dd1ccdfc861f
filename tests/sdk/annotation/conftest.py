"""Annotation documents as a contributor would send them: a minimal and a full one."""

from __future__ import annotations

import copy
from typing import Any

import pytest

#: sha2-256 of b"shotbank reference image" as CIDv1 raw, CIDv1 dag-pb and CIDv0.
CID_V1_RAW = "bafkreielbokdwvorei3ygsxpyzpp4zerefwxa3ww7gwhxs2wedz4tkfege"
CID_V1_DAG_PB = "bafybeielbokdwvorei3ygsxpyzpp4zerefwxa3ww7gwhxs2wedz4tkfege"
CID_V0 = "QmXhRcvCfE4h3abAFmkZYrdk9qhfmJkGLrFmJ7CwneHFKv"

MINIMAL: dict[str, Any] = {
    "schema_version": "1",
    "scene": {"description": "Waves roll onto an empty beach.", "setting": "exterior"},
    "camera": {"movement": "static"},
    "lighting": {"setup": "natural"},
    "rights": {
        "licence": "cc0-1.0",
        "model_release": "not_required",
        "location_release": "not_required",
    },
}

FULL: dict[str, Any] = {
    "schema_version": "1",
    "scene": {
        "description": "A cyclist crosses a rainy city square at night.\nNeon signs reflect.",
        "tags": ["city", "rain", "neon lights", "cyclist"],
        "setting": "exterior",
        "time_of_day": "night",
        "reference_image_cids": [CID_V1_RAW, CID_V0],
    },
    "camera": {
        "movement": "truck",
        "direction": "right",
        "rig": "slider",
        "lens": {"focal_length_mm": 35, "sensor": "super35"},
        "path": {
            "position_scale": "metric",
            "keyframes": [
                {
                    "time_s": 0,
                    "position_m": [0, 0, 1.5],
                    "orientation_wxyz": [0.7071067811865476, -0.7071067811865475, 0, 0],
                    "focal_length_mm": 35,
                },
                {
                    "time_s": 2.5,
                    "position_m": [1.2, 0, 1.5],
                    "orientation_wxyz": [0.7071067811865476, -0.7071067811865475, 0, 0],
                    "focal_length_mm": 35,
                },
            ],
        },
    },
    "lighting": {
        "setup": "practical",
        "key_direction": "front_left",
        "colour_temperature_k": 3200,
        "contrast": "high",
        "time_of_day": "night",
    },
    "audio": {
        "genre": "ambience",
        "mood": "mysterious",
        "ambience": ["rain", "traffic"],
        "dialogue": False,
        "recording": "field",
    },
    "rights": {
        "licence": "cc-by-4.0",
        "model_release": "obtained",
        "location_release": "not_required",
        "attribution": "Jane Doe / Shotbank",
    },
}


@pytest.fixture
def minimal_doc() -> dict[str, Any]:
    """The smallest valid annotation (a fresh copy the test may change)."""
    return copy.deepcopy(MINIMAL)


@pytest.fixture
def full_doc() -> dict[str, Any]:
    """An annotation that fills every section and optional field (a fresh copy)."""
    return copy.deepcopy(FULL)
