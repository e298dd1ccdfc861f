"""``GET``/``HEAD /ipfs/{cid}``: stored content by CID, like a trustless IPFS gateway.

Mounted at the root (not under ``/api/v1``), where IPFS gateways serve content, so
``https://<backend>/ipfs/<cid>`` works wherever a gateway URL is expected.

* The CID must be a CIDv1, raw or dag-pb, sha2-256 (any multibase): else 400
  ``invalid_cid``; unknown -> 404 ``blob_not_found``.
* ``ETag`` is the canonical (base32) CID, strong; the content never changes, so
  ``Cache-Control: public, max-age=31536000, immutable``; ``If-None-Match`` -> 304.
* Always ``Content-Type: application/octet-stream`` with ``X-Content-Type-Options:
  nosniff`` and a sandboxing CSP: contributed bytes are never rendered as a page.
* ``Range``: one range of the forms ``bytes=a-b``, ``bytes=a-``, ``bytes=-n`` -> 206 with
  ``Content-Range``; unsatisfiable -> 416 with ``Content-Range: bytes */size``;
  several ranges, other units or unparsable headers are ignored (200 with the whole
  body); ``If-Range`` with another ETag also gives the whole body. Details in
  ``backend.api.ranges``.
* Integrity: a whole-body GET re-hashes the bytes while streaming them and holds the
  last chunk back until the digest matched the CID; on a mismatch the response is cut
  short (fewer bytes than ``Content-Length``, connection closed), never completed with
  wrong bytes, and the blob is logged and quarantined (later requests: 503
  ``blob_damaged``). A range is served from leaves checked one by one against the blob
  store's leaf index, which is itself authenticated against the CID (built by one full
  re-hash when missing). The whole argument is in ``backend.services.blobs``.
* Bodies are streamed in chunks of at most 256 KiB; a file is never read into memory.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import StreamingResponse

from backend.api.caching import NOSNIFF, if_none_match, if_range, strong_etag
from backend.api.deps import BlobStoreDep, QuarantineDep
from backend.api.ranges import select_range
from backend.errors import ErrorResponse
from backend.services import blobs

OCTET_STREAM: Final = "application/octet-stream"
IMMUTABLE: Final = "public, max-age=31536000, immutable"

router = APIRouter(tags=["ipfs"])


_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    status.HTTP_200_OK: {"content": {OCTET_STREAM: {}}, "description": "The content"},
    status.HTTP_206_PARTIAL_CONTENT: {"content": {OCTET_STREAM: {}}},
    status.HTTP_304_NOT_MODIFIED: {"description": "The client's copy is current"},
    status.HTTP_400_BAD_REQUEST: {"model": ErrorResponse},
    status.HTTP_404_NOT_FOUND: {"model": ErrorResponse},
    status.HTTP_416_RANGE_NOT_SATISFIABLE: {"model": ErrorResponse},
    status.HTTP_503_SERVICE_UNAVAILABLE: {"model": ErrorResponse},
}


@router.head(
    "/ipfs/{cid}", operation_id="head_content", response_class=Response, responses=_RESPONSES
)
@router.get(
    "/ipfs/{cid}", operation_id="read_content", response_class=Response, responses=_RESPONSES
)
def read_content(
    cid: str, request: Request, store: BlobStoreDep, quarantine: QuarantineDep
) -> Response:
    """The bytes of a stored blob, whole or one range, verified against the CID."""
    blob = blobs.head(store, quarantine, cid=cid)
    etag = strong_etag(blob.cid)
    headers = {
        "ETag": etag,
        "Cache-Control": IMMUTABLE,
        "Accept-Ranges": "bytes",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        **NOSNIFF,
    }
    if if_none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    part = None
    if if_range(request.headers.get("if-range"), etag):
        part = select_range(request.headers.get("range"), blob.size)
    status_code = status.HTTP_200_OK
    length = blob.size
    if part is not None:
        status_code = status.HTTP_206_PARTIAL_CONTENT
        length = part.length
        headers["Content-Range"] = part.content_range
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status_code, headers=headers, media_type=OCTET_STREAM)
    if part is None:
        body = blobs.open_full(store, quarantine, blob)
    else:
        body = blobs.open_part(store, quarantine, blob, start=part.start, end=part.end)
    return StreamingResponse(
        body, status_code=status_code, headers=headers, media_type=OCTET_STREAM
    )
