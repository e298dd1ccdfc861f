"""``GET``/``HEAD /datasets/{id}/versions/{number}/shards/{name}``: a licensed download.

* Access: a SIWE session or a signed request (``Authorization: Shotbank-Signature``;
  401 without either) whose address holds a licence for the version (an indexed
  ``DatasetMarket.LicencePurchased``), or an operator's. Otherwise 402
  ``licence_required`` whose message names the purchase call, the market, the chain, the
  price and the confirmations (``backend.services.licences``).
* ``name`` must be one of the shard names of the version's ``index.json`` (404
  ``dataset_shard_not_found`` otherwise); the file opened is the index's, so no request
  can reach another file.
* ``ETag`` is the shard's SHA-256 (strong, quoted); a version never changes, so
  ``Cache-Control: private, max-age=31536000, immutable`` (private: the answer depends on
  the caller's licence). ``If-None-Match`` -> 304.
* ``Range``: one range (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) -> 206 with
  ``Content-Range``; unsatisfiable -> 416 with ``Content-Range: bytes */size``; several
  ranges or unparsable headers are ignored (200, whole body); ``If-Range`` with another
  validator also gives the whole body (``backend.api.ranges``, ``backend.api.caching``).
* The body is streamed in chunks of at most 256 KiB; a shard is never read into memory.
  Its bytes are not re-hashed here: clients check the SHA-256 the index and ``ETag``
  publish (the SDK does).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.responses import StreamingResponse

from backend.api.caching import NOSNIFF, if_none_match, if_range, strong_etag
from backend.api.deps import RequesterDep, SessionDep, SettingsDep
from backend.api.ranges import select_range
from backend.errors import DependencyUnavailableError, ErrorResponse
from backend.services import licences

TAR: Final = "application/x-tar"
#: Largest read per chunk of a streamed body.
CHUNK_BYTES: Final = 256 * 1024
PRIVATE_IMMUTABLE: Final = "private, max-age=31536000, immutable"

DatasetId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The dataset id.")]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="The version number.")]
ShardName = Annotated[
    str, Path(min_length=1, max_length=128, description="A shard name from the index.")
]

_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    status.HTTP_200_OK: {"content": {TAR: {}}, "description": "The shard"},
    status.HTTP_206_PARTIAL_CONTENT: {"content": {TAR: {}}},
    status.HTTP_304_NOT_MODIFIED: {"description": "The client's copy is current"},
    **{
        code: {"model": ErrorResponse}
        for code in (
            status.HTTP_401_UNAUTHORIZED,
            status.HTTP_402_PAYMENT_REQUIRED,
            status.HTTP_404_NOT_FOUND,
            status.HTTP_416_RANGE_NOT_SATISFIABLE,
            status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    },
}

router = APIRouter(prefix="/datasets", tags=["datasets"])

_PATH: Final = "/{dataset_id}/versions/{number}/shards/{name}"


def _stream(path: os.PathLike[str] | str, start: int, end: int) -> Iterator[bytes]:
    """Bytes ``[start, end)`` of the file, in chunks; stops short if the file shrank."""
    with open(path, "rb") as handle:
        handle.seek(start)
        left = end - start
        while left > 0:
            chunk = handle.read(min(CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


@router.head(_PATH, operation_id="head_shard", response_class=Response, responses=_RESPONSES)
@router.get(_PATH, operation_id="read_shard", response_class=Response, responses=_RESPONSES)
def read_shard(
    dataset_id: DatasetId,
    number: VersionNumber,
    name: ShardName,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    caller: RequesterDep,
) -> Response:
    """A shard of a licensed version, whole or one byte range."""
    version = licences.ready_version(db, dataset_id=dataset_id, number=number)
    shard = licences.shard_file(settings, version, name=name)
    licences.require_access(db, settings, version, address=caller)
    try:
        size = shard.path.stat().st_size
    except OSError as exc:
        raise DependencyUnavailableError(
            "The shard's file cannot be read; try again later."
        ) from exc
    if size != shard.size:
        raise DependencyUnavailableError(
            "The shard's file does not have the size its index records; it is not served."
        )
    etag = strong_etag(shard.sha256)
    headers = {
        "ETag": etag,
        "Cache-Control": PRIVATE_IMMUTABLE,
        "Accept-Ranges": "bytes",
        **NOSNIFF,
    }
    if if_none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    part = None
    if if_range(request.headers.get("if-range"), etag):
        part = select_range(request.headers.get("range"), size)
    status_code, start, end = status.HTTP_200_OK, 0, size
    if part is not None:
        status_code, start, end = status.HTTP_206_PARTIAL_CONTENT, part.start, part.end
        headers["Content-Range"] = part.content_range
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status_code, headers=headers, media_type=TAR)
    return StreamingResponse(
        _stream(shard.path, start, end), status_code=status_code, headers=headers, media_type=TAR
    )
