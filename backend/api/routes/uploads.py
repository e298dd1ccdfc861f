"""Resumable uploads speaking tus 1.0 under ``/uploads/`` (sign-in required).

Core (``HEAD``, ``PATCH``, ``OPTIONS``) and the ``creation``, ``creation-with-upload``,
``termination``, ``checksum`` (sha256) and ``expiration`` extensions. Every response
carries ``Tus-Resumable`` (added by :class:`TusHeadersMiddleware`). ``GET /uploads/{id}``
is ours, not tus: it reports the state and, once complete, the SHA-256 and CID.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response, status
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.deps import (
    CurrentAddress,
    DigestsDep,
    EngineDep,
    SessionDep,
    SettingsDep,
)
from backend.errors import (
    ErrorResponse,
    InvalidInputError,
    PreconditionFailedError,
    UnsupportedMediaTypeError,
)
from backend.models.uploads import Upload, UploadState
from backend.services import uploads
from backend.services.uploads import TUS_VERSION, BodyInterruptedError

UPLOADS_PATH = "/uploads"
_OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
_MAX_INT_HEADER = 20


def require_tus_version(request: Request) -> None:
    """Refuse requests (other than ``OPTIONS``) without ``Tus-Resumable: 1.0.0``."""
    if request.method != "OPTIONS" and request.headers.get("tus-resumable") != TUS_VERSION:
        raise PreconditionFailedError(f"Send 'Tus-Resumable: {TUS_VERSION}'.")


router = APIRouter(
    prefix=UPLOADS_PATH,
    tags=["uploads"],
    dependencies=[Depends(require_tus_version)],
    responses={
        status.HTTP_401_UNAUTHORIZED: {"model": ErrorResponse},
        status.HTTP_404_NOT_FOUND: {"model": ErrorResponse},
    },
)


class UploadPublic(BaseModel):
    """An upload as its owner sees it."""

    id: str = Field(max_length=32)
    state: UploadState
    length: int
    offset: int
    filename: str | None = Field(default=None, max_length=1024)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=256)
    created_at: datetime
    expires_at: datetime
    sha256: str | None = Field(default=None, max_length=64)
    cid: str | None = Field(default=None, max_length=128)


def _int_header(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > _MAX_INT_HEADER:
        raise InvalidInputError(f"{name} must be a non-negative integer.")
    return int(value)


def _tus_headers(upload: Upload) -> dict[str, str]:
    headers = {
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
        "Cache-Control": "no-store",
    }
    if upload.state == UploadState.ACTIVE:
        headers["Upload-Expires"] = format_datetime(upload.expires_at, usegmt=True)
    return headers


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for piece in request.stream():
            if piece:
                yield piece
    except ClientDisconnect as exc:
        raise BodyInterruptedError from exc


def _check_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != _OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaTypeError(f"The body must be {_OFFSET_CONTENT_TYPE}.")


@router.options("/", status_code=status.HTTP_204_NO_CONTENT)
@router.options("/{upload_id}", status_code=status.HTTP_204_NO_CONTENT)
def options(settings: SettingsDep) -> Response:
    """Advertise the tus versions, extensions, size limit and checksum algorithms."""
    return Response(
        status_code=status.HTTP_204_NO_CONTENT,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": ",".join(uploads.TUS_EXTENSIONS),
            "Tus-Max-Size": str(settings.upload_max_size),
            "Tus-Checksum-Algorithm": ",".join(uploads.CHECKSUM_ALGORITHMS),
        },
    )


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create(
    request: Request,
    address: CurrentAddress,
    db: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
    digests: DigestsDep,
    upload_length: Annotated[str | None, Header()] = None,
    upload_metadata: Annotated[str | None, Header()] = None,
    upload_checksum: Annotated[str | None, Header()] = None,
    content_length: Annotated[str | None, Header()] = None,
) -> Response:
    """Create an upload (``Upload-Length`` required); a body is its first chunk."""
    length = _int_header(upload_length, "Upload-Length")
    if length is None:
        raise InvalidInputError("Upload-Length is required (deferred lengths are not supported).")
    upload = uploads.create_upload(
        db, settings=settings, owner=address, length=length, metadata_header=upload_metadata
    )
    body_length = _int_header(content_length, "Content-Length")
    if body_length and upload.state == UploadState.ACTIVE:
        _check_content_type(request)
        try:
            upload = await uploads.append(
                engine,
                settings=settings,
                digests=digests,
                owner=address,
                upload_id=upload.id,
                offset=0,
                content_length=body_length,
                checksum=upload_checksum,
                body=_body(request),
            )
        except BodyInterruptedError:
            return Response(status_code=status.HTTP_400_BAD_REQUEST)
    headers = _tus_headers(upload)
    headers["Location"] = f"{request.url.path.rstrip('/')}/{upload.id}"
    return Response(status_code=status.HTTP_201_CREATED, headers=headers)


@router.head("/{upload_id}")
def head(upload_id: str, address: CurrentAddress, db: SessionDep) -> Response:
    """The upload's current ``Upload-Offset`` and ``Upload-Length``."""
    upload = uploads.get_upload(db, owner=address, upload_id=upload_id)
    headers = _tus_headers(upload)
    metadata: dict[str, str] = json.loads(upload.metadata_json)
    if metadata:
        headers["Upload-Metadata"] = uploads.encode_metadata(metadata)
    return Response(status_code=status.HTTP_200_OK, headers=headers)


@router.patch("/{upload_id}", status_code=status.HTTP_204_NO_CONTENT)
async def patch(
    upload_id: str,
    request: Request,
    address: CurrentAddress,
    engine: EngineDep,
    settings: SettingsDep,
    digests: DigestsDep,
    upload_offset: Annotated[str | None, Header()] = None,
    upload_checksum: Annotated[str | None, Header()] = None,
    content_length: Annotated[str | None, Header()] = None,
) -> Response:
    """Append the body at ``Upload-Offset``; answers the new offset."""
    _check_content_type(request)
    offset = _int_header(upload_offset, "Upload-Offset")
    if offset is None:
        raise InvalidInputError("Upload-Offset is required.")
    try:
        upload = await uploads.append(
            engine,
            settings=settings,
            digests=digests,
            owner=address,
            upload_id=upload_id,
            offset=offset,
            content_length=_int_header(content_length, "Content-Length"),
            checksum=upload_checksum,
            body=_body(request),
        )
    except BodyInterruptedError:
        return Response(status_code=status.HTTP_400_BAD_REQUEST)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=_tus_headers(upload))


@router.delete("/{upload_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(
    upload_id: str,
    address: CurrentAddress,
    db: SessionDep,
    settings: SettingsDep,
    digests: DigestsDep,
) -> Response:
    """Terminate the upload: its bytes are deleted and its id answers 404 afterwards."""
    uploads.terminate_upload(
        db, settings=settings, digests=digests, owner=address, upload_id=upload_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{upload_id}")
def read_upload(upload_id: str, address: CurrentAddress, db: SessionDep) -> UploadPublic:
    """State of one of the caller's uploads, with SHA-256 and CID once complete."""
    upload = uploads.get_upload(db, owner=address, upload_id=upload_id)
    return UploadPublic(
        id=upload.id,
        state=upload.state,
        length=upload.length,
        offset=upload.offset,
        filename=upload.filename,
        metadata=json.loads(upload.metadata_json),
        created_at=upload.created_at,
        expires_at=upload.expires_at,
        sha256=upload.sha256,
        cid=upload.cid,
    )


class TusHeadersMiddleware:
    """Add ``Tus-Resumable`` to every response under ``prefix`` (errors included), and
    ``Tus-Version`` to a 412 there, as tus 1.0 requires."""

    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, adding the headers to the response start."""
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefix):
            await self.app(scope, receive, send)
            return

        async def send_with_tus(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"tus-resumable", TUS_VERSION.encode()))
                if message["status"] == status.HTTP_412_PRECONDITION_FAILED:
                    headers.append((b"tus-version", TUS_VERSION.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_tus)
