"""The exported JSON Schema: valid 2020-12, agrees with the models on what is accepted."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from shotbank.annotation import (
    ANNOTATION_SCHEMA_PATH,
    Annotation,
    annotation_json_schema,
    canonical_json,
)
from shotbank.annotation.vocabulary import MOVEMENT_DIRECTIONS, VOCABULARIES, VOCABULARY_VERSION

Validator = jsonschema.Draft202012Validator


def validator() -> jsonschema.Draft202012Validator:
    return Validator(annotation_json_schema(), format_checker=Validator.FORMAT_CHECKER)


def test_schema_is_valid_json_schema_2020_12() -> None:
    schema = annotation_json_schema()
    Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "Annotation"
    assert schema["additionalProperties"] is False
    assert schema["x-shotbank-vocabulary-version"] == VOCABULARY_VERSION
    json.dumps(schema)  # plain JSON, servable as is


def test_schema_gets_an_id_under_the_served_path() -> None:
    schema = annotation_json_schema(base_url="https://shotbank.example/")
    assert schema["$id"] == "https://shotbank.example/api/v1/schemas/annotation/v1"
    assert ANNOTATION_SCHEMA_PATH == "/api/v1/schemas/annotation/v1"
    assert "$id" not in annotation_json_schema()


def test_each_call_returns_a_fresh_copy() -> None:
    first = annotation_json_schema()
    first["$defs"].clear()
    assert annotation_json_schema()["$defs"]


def test_valid_documents_pass_the_schema(
    minimal_doc: dict[str, Any], full_doc: dict[str, Any]
) -> None:
    for document in (minimal_doc, full_doc):
        validator().validate(document)
        canonical = json.loads(canonical_json(Annotation.model_validate(document)))
        validator().validate(canonical)


def test_every_vocabulary_is_in_the_schema_with_exactly_its_terms() -> None:
    definitions = annotation_json_schema()["$defs"]
    for vocabulary in VOCABULARIES.values():
        assert definitions[vocabulary.__name__]["enum"] == [m.value for m in vocabulary]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("camera", "movement"), "whip_pan"),
        (("rights", "licence"), "gpl-3.0"),
        (("scene", "description"), "short"),
        (("scene", "description"), "x" * 2001),
        (("scene", "tags"), [f"t{i}" for i in range(33)]),
        (("scene", "reference_image_cids"), ["QmNotACid"]),
        (("schema_version",), "2"),
        (("lighting", "colour_temperature_k"), 25_000),
        (("lighting", "flicker"), True),
        (("camera", "direction"), "up"),  # the full document's camera trucks
        (("camera", "direction"), None),
        (("rights", "attribution"), None),
        (("audio",), {"dialogue": True, "recording": "field", "sample_rate_hz": 48000}),
        (
            ("camera", "path"),
            {
                "keyframes": [
                    {"time_s": 0, "position_m": [0, 0, 0], "orientation_wxyz": [1, 0, 0, 0]}
                ]
            },
        ),
    ],
)
def test_schema_rejects_what_the_models_reject(
    full_doc: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    target = full_doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert not validator().is_valid(full_doc)
    with pytest.raises(ValidationError):
        Annotation.model_validate(full_doc)


def test_schema_accepts_each_fitting_direction_and_refuses_a_superfluous_one(
    minimal_doc: dict[str, Any],
) -> None:
    for movement, allowed in MOVEMENT_DIRECTIONS.items():
        for direction in allowed:
            minimal_doc["camera"] = {"movement": movement.value, "direction": direction.value}
            validator().validate(minimal_doc)
        if not allowed:
            minimal_doc["camera"] = {"movement": movement.value}
            validator().validate(minimal_doc)
            minimal_doc["camera"]["direction"] = "left"
            assert not validator().is_valid(minimal_doc)
