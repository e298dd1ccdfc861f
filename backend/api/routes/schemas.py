"""``GET /schemas/annotation/v1`` (the JSON Schema) and ``.../vocabularies``.

Both documents are generated from the SDK (``shotbank.annotation``), so they cannot
drift from what the backend validates. They are cacheable: a strong ``ETag`` over the
exact bytes (``If-None-Match`` -> 304) and an hour of ``max-age``; a new vocabulary
version changes the bytes and so the ETag.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request, Response, status

from backend.api.caching import cacheable_json
from shotbank.annotation import SCHEMA_VERSION, annotation_json_schema, vocabularies

#: Relative to ``/api/v1``; with it, ``shotbank.annotation.ANNOTATION_SCHEMA_PATH``.
ANNOTATION_SCHEMA_ROUTE: Final = f"/schemas/annotation/v{SCHEMA_VERSION}"
SCHEMA_MEDIA_TYPE: Final = "application/schema+json"
CACHE_CONTROL: Final = "public, max-age=3600"

router = APIRouter(tags=["schemas"])

_NOT_MODIFIED: Final[dict[int | str, dict[str, Any]]] = {
    status.HTTP_304_NOT_MODIFIED: {"description": "Unchanged"}
}


@router.get(
    ANNOTATION_SCHEMA_ROUTE,
    response_class=Response,
    responses={
        status.HTTP_200_OK: {"content": {SCHEMA_MEDIA_TYPE: {}}, "description": "JSON Schema"},
        **_NOT_MODIFIED,
    },
)
def read_annotation_schema(request: Request) -> Response:
    """The JSON Schema (2020-12) of annotation v1; ``$id`` is its URL on this server."""
    base_url = str(request.base_url)
    return cacheable_json(
        request,
        annotation_json_schema(base_url=base_url),
        media_type=SCHEMA_MEDIA_TYPE,
        cache_control=CACHE_CONTROL,
    )


@router.get(
    ANNOTATION_SCHEMA_ROUTE + "/vocabularies",
    response_class=Response,
    responses={
        status.HTTP_200_OK: {"content": {"application/json": {}}, "description": "Vocabularies"},
        **_NOT_MODIFIED,
    },
)
def read_vocabularies(request: Request) -> Response:
    """The closed vocabularies of annotation v1 with their ``version`` (terms, labels,
    which directions fit which movement, licences needing attribution, sensor widths)."""
    return cacheable_json(
        request, vocabularies(), media_type="application/json", cache_control=CACHE_CONTROL
    )
