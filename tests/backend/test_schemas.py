"""The served annotation JSON Schema and vocabularies: real validation, caching, ``$id``."""

from __future__ import annotations

import copy

import jsonschema
import pytest
from fastapi.testclient import TestClient

from shotbank.annotation import ANNOTATION_SCHEMA_PATH, VOCABULARY_VERSION, vocabularies
from tests.sdk.annotation.conftest import FULL, MINIMAL

VOCABULARIES_PATH = ANNOTATION_SCHEMA_PATH + "/vocabularies"


def served_validator(client: TestClient) -> jsonschema.Draft202012Validator:
    schema = client.get(ANNOTATION_SCHEMA_PATH).json()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_schema_is_served_as_schema_json_with_its_id_on_this_server(client: TestClient) -> None:
    response = client.get(ANNOTATION_SCHEMA_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/schema+json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "max-age=" in response.headers["cache-control"]
    schema = response.json()
    assert schema["$id"] == "http://testserver" + ANNOTATION_SCHEMA_PATH
    assert schema["x-shotbank-vocabulary-version"] == VOCABULARY_VERSION


def test_schema_id_follows_the_request_host(client: TestClient) -> None:
    schema = client.get(ANNOTATION_SCHEMA_PATH, headers={"Host": "shotbank.example"}).json()
    assert schema["$id"] == "http://shotbank.example" + ANNOTATION_SCHEMA_PATH


def test_served_schema_accepts_real_annotations(client: TestClient) -> None:
    validator = served_validator(client)
    validator.validate(FULL)
    validator.validate(MINIMAL)


@pytest.mark.parametrize(
    ("section", "field", "term"),
    [("camera", "movement", "whip_pan"), ("rights", "licence", "gpl-3.0")],
)
def test_served_schema_rejects_an_unknown_vocabulary_term(
    client: TestClient, section: str, field: str, term: str
) -> None:
    document = copy.deepcopy(FULL)
    document[section][field] = term
    errors = list(served_validator(client).iter_errors(document))
    assert errors, f"{term!r} was accepted"


def test_schema_etag_answers_304_when_the_client_has_it(client: TestClient) -> None:
    first = client.get(ANNOTATION_SCHEMA_PATH)
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    again = client.get(ANNOTATION_SCHEMA_PATH, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    weak = client.get(ANNOTATION_SCHEMA_PATH, headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    stale = client.get(ANNOTATION_SCHEMA_PATH, headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200


def test_schema_etag_differs_per_host_because_the_id_does(client: TestClient) -> None:
    here = client.get(ANNOTATION_SCHEMA_PATH).headers["etag"]
    there = client.get(ANNOTATION_SCHEMA_PATH, headers={"Host": "other.example"})
    assert there.headers["etag"] != here
    assert (
        client.get(
            ANNOTATION_SCHEMA_PATH, headers={"Host": "other.example", "If-None-Match": here}
        ).status_code
        == 200
    )


def test_vocabularies_are_served_with_their_version(client: TestClient) -> None:
    response = client.get(VOCABULARIES_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == vocabularies()
    assert body["version"] == VOCABULARY_VERSION
    terms = [t["value"] for t in body["vocabularies"]["camera_movement"]["terms"]]
    assert "truck" in terms
    cached = client.get(VOCABULARIES_PATH, headers={"If-None-Match": response.headers["etag"]})
    assert cached.status_code == 304
