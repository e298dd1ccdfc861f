"""The JSON Schema of annotation schema v1, as the backend serves it.

The document is generated from :class:`~shotbank.annotation.models.Annotation`
(JSON Schema 2020-12, validation mode), so it cannot drift from the models. Checks a
JSON Schema cannot express (direction fits movement, keyframes in time order, unit
quaternions, CID checksums, attribution for CC BY) are still made by the models, with
the same field-level messages.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any, Final

from shotbank.annotation.models import SCHEMA_VERSION, Annotation
from shotbank.annotation.vocabulary import VOCABULARY_VERSION

__all__ = ["ANNOTATION_SCHEMA_PATH", "JSON_SCHEMA_DIALECT", "annotation_json_schema"]

#: Where the backend serves the schema (relative to its base URL).
ANNOTATION_SCHEMA_PATH: Final = f"/api/v1/schemas/annotation/v{SCHEMA_VERSION}"
JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


@cache
def _schema() -> dict[str, Any]:
    generated = Annotation.model_json_schema(mode="validation")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        **generated,
        "x-shotbank-schema-version": SCHEMA_VERSION,
        "x-shotbank-vocabulary-version": VOCABULARY_VERSION,
    }


def annotation_json_schema(*, base_url: str | None = None) -> dict[str, Any]:
    """The JSON Schema of :class:`Annotation` (a fresh copy the caller may modify).

    With ``base_url`` (e.g. ``"https://shotbank.example"``) the schema gets an ``$id``
    of ``base_url + ANNOTATION_SCHEMA_PATH``.
    """
    schema = copy.deepcopy(_schema())
    if base_url is not None:
        schema = {"$id": base_url.rstrip("/") + ANNOTATION_SCHEMA_PATH, **schema}
    return schema
