"""Resumable uploads with tuspy (tus 1.0), the way the backend wants them.

tuspy builds the requests (creation, ``HEAD`` for the offset, ``PATCH`` per chunk with an
``Upload-Checksum``); this module adds what a bulk uploader needs on top:

- ``sha256`` checksums -- tuspy defaults to sha1, which the backend refuses;
- a timeout on every request (tuspy sends without one, so a dead connection would hang
  forever) and progress while a chunk's bytes are being sent, not only after it;
- retries of a chunk on "try again" failures (no connection, timeout, 503, a busy
  upload, a checksum mismatch), each after asking the server for its offset again;
- starting over once when the server says the upload is unknown or expired.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Mapping
from typing import IO, Any, Final
from urllib.parse import urlsplit

import requests
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.request import TusRequest, catch_requests_error
from tusclient.uploader.uploader import Uploader

from shotbank.client._responses import api_error
from shotbank.client.errors import ApiError, ApiUnavailableError, UnexpectedResponseError
from shotbank.client.models import UploadRef
from shotbank.client.retry import RETRY_STATUSES, RetryPolicy

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "MIN_CHUNK_SIZE",
    "ProgressCallback",
    "tus_upload",
    "upload_id_of",
]

DEFAULT_CHUNK_SIZE: Final = 8 * 1024**2
MIN_CHUNK_SIZE: Final = 1024
#: A chunk is held in memory while it is sent (the checksum needs all of it).
MAX_CHUNK_SIZE: Final = 512 * 1024**2

#: ``on_progress(bytes_sent, total)``: bytes of the file the server has or is receiving.
ProgressCallback = Callable[[int, int], None]

#: Statuses of a chunk worth sending again: busy, mismatched checksum, timeouts, restarts.
_CHUNK_RETRY_STATUSES: Final = RETRY_STATUSES | {408, 409, 460}
_GONE_STATUSES: Final = {404: "upload_not_found", 410: "upload_expired"}


def upload_id_of(url: str) -> str:
    """The upload id in a tus upload URL (its last path segment)."""
    upload_id = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    if not upload_id:
        raise UnexpectedResponseError(f"no upload id in the upload URL {url!r}")
    return upload_id


class _CountingBody(io.BytesIO):
    """A chunk as a stream, reporting how far the HTTP library has read it."""

    def __init__(self, chunk: bytes, on_read: Callable[[int], None]) -> None:
        super().__init__(chunk)
        self._on_read = on_read

    def read(self, size: int | None = -1, /) -> bytes:
        block = super().read(size)
        self._on_read(self.tell())
        return block


class _StreamingTusRequest(TusRequest):  # type: ignore[misc]
    """tuspy's ``PATCH``, with a timeout and progress while the body is sent."""

    def __init__(self, uploader: _Sha256Uploader) -> None:
        super().__init__(uploader)
        self._timeout = uploader.timeout
        self._start = uploader.offset
        self._on_sent = uploader.on_sent

    def perform(self) -> None:
        chunk = self.file.read(self._content_length)
        self.add_checksum(chunk)
        body = _CountingBody(chunk, lambda done: self._on_sent(self._start + done))
        try:
            response = requests.patch(
                self._url,
                data=body,
                headers=self._request_headers,
                verify=self.verify_tls_cert,
                cert=self.client_cert,
                timeout=self._timeout,
            )
        except requests.exceptions.RequestException as exc:
            raise TusUploadFailed(exc) from exc
        self.status_code = response.status_code
        self.response_content = response.content
        self.response_headers = {k.lower(): v for k, v in response.headers.items()}


class _Sha256Uploader(Uploader):  # type: ignore[misc]
    """tuspy's uploader with sha256 checksums, timeouts and no retries of its own."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)

    def __init__(
        self,
        *,
        timeout: float,
        on_sent: Callable[[int], None],
        **kwargs: Any,
    ) -> None:
        self.timeout = timeout
        self.on_sent = on_sent
        self.server_length: int | None = None
        super().__init__(upload_checksum=True, **kwargs)  # asks for the offset if given a URL

    @catch_requests_error  # type: ignore[untyped-decorator]
    def get_offset(self) -> int:
        response = requests.head(
            self.url,
            headers=self.get_headers(),
            verify=self.verify_tls_cert,
            cert=self.client_cert,
            timeout=self.timeout,
        )
        offset = response.headers.get("upload-offset")
        if response.status_code != 200 or offset is None or not offset.isdigit():
            raise TusCommunicationError(
                f"asking for the upload offset failed with status {response.status_code}",
                response.status_code,
                response.content,
            )
        length = response.headers.get("upload-length")
        self.server_length = int(length) if length and length.isdigit() else None
        return int(offset)

    @catch_requests_error  # type: ignore[untyped-decorator]
    def create_url(self) -> str:
        response = requests.post(
            self.client.url,
            headers=self.get_url_creation_headers(),
            verify=self.verify_tls_cert,
            cert=self.client_cert,
            timeout=self.timeout,
        )
        location = response.headers.get("location")
        if response.status_code != 201 or location is None:
            raise TusCommunicationError(
                f"creating the upload failed with status {response.status_code}",
                response.status_code,
                response.content,
            )
        return str(requests.compat.urljoin(self.client.url, location))

    def _do_request(self) -> None:
        self.request = _StreamingTusRequest(self)
        self.request.perform()
        if not 200 <= self.request.status_code < 300:
            raise TusUploadFailed("", self.request.status_code, self.request.response_content)


def _as_client_error(exc: TusCommunicationError, *, method: str, url: str) -> Exception:
    status = exc.status_code
    if status is None:
        return ApiUnavailableError(f"{method} {url} failed: {exc}", method=method, url=url)
    content = exc.response_content if isinstance(exc.response_content, bytes) else None
    error = api_error(status, content)
    if error.code.startswith("http_") and status in _GONE_STATUSES:
        return ApiError(status, _GONE_STATUSES[status], "the upload is unknown or has expired")
    return error


def _is_gone(error: Exception) -> bool:
    return isinstance(error, ApiError) and error.code in _GONE_STATUSES.values()


def _retryable(error: Exception) -> bool:
    if isinstance(error, ApiUnavailableError):
        return True
    return isinstance(error, ApiError) and (
        error.status in _CHUNK_RETRY_STATUSES and error.code != "upload_quota_exceeded"
    )


def tus_upload(
    stream: IO[bytes],
    *,
    endpoint: str,
    headers: Mapping[str, str],
    metadata: Mapping[str, str] | None = None,
    resume_url: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    on_progress: ProgressCallback | None = None,
    on_created: Callable[[UploadRef], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> UploadRef:
    """Upload ``stream`` (seekable, binary) to the tus ``endpoint``; return the upload.

    With ``resume_url`` the upload continues from the offset the server reports; when the
    server no longer knows it (404/410) a new upload is started. ``on_created`` is called
    with every newly created upload before its first chunk, so a caller can record the
    URL and resume after a crash. Raises :class:`ApiError` for a refusal and
    :class:`ApiUnavailableError` when the server stays unreachable.
    """
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be within {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE}")
    policy = retry or RetryPolicy()
    size = stream.seek(0, io.SEEK_END)
    total = size

    def sent(offset: int) -> None:
        if on_progress is not None:
            on_progress(min(offset, total), total)

    client = TusClient(endpoint, headers=dict(headers))
    options: dict[str, Any] = {
        "file_stream": stream,
        "client": client,
        "chunk_size": chunk_size,
        "metadata": dict(metadata or {}),
        "timeout": timeout,
        "on_sent": sent,
    }
    uploader: _Sha256Uploader | None = None
    if resume_url is not None:
        try:
            uploader = _Sha256Uploader(url=resume_url, **options)
        except TusCommunicationError as exc:
            error = _as_client_error(exc, method="HEAD", url=resume_url)
            if not _is_gone(error):
                raise error from exc
        if uploader is not None and uploader.server_length not in (None, size):
            raise UnexpectedResponseError(
                f"the upload at {resume_url} is {uploader.server_length} bytes long, "
                f"the file {size}: it belongs to other bytes"
            )
    restarted = False
    failures = 0
    while True:
        try:
            if uploader is None:
                uploader = _Sha256Uploader(**options)
            if not uploader.url:
                uploader.set_url(uploader.create_url())
                uploader.offset = 0
                if on_created is not None:
                    on_created(UploadRef(upload_id_of(uploader.url), uploader.url))
            sent(uploader.offset)
            while uploader.offset < size:
                uploader.upload_chunk()
                sent(uploader.offset)
                failures = 0
            url: str = uploader.url
            return UploadRef(upload_id_of(url), url)
        except TusCommunicationError as exc:
            where = uploader.url if uploader is not None and uploader.url else endpoint
            error = _as_client_error(exc, method="PATCH", url=where)
            if _is_gone(error) and uploader is not None and uploader.url and not restarted:
                restarted, uploader = True, None
                continue
            failures += 1
            if not _retryable(error) or failures >= policy.attempts:
                raise error from exc
            sleep(policy.delay(failures))
            if uploader is not None and uploader.url:
                try:
                    uploader.offset = uploader.get_offset()
                except TusCommunicationError:
                    continue  # counted when the next chunk fails the same way
