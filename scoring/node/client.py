"""The validator API from the node's side (``docs/api/validator.md``), and verified downloads.

:class:`ValidatorClient` is the SDK's :class:`~shotbank.client.ShotbankClient` (SIWE
sign-in, error envelopes, retries of idempotent requests, the public epoch routes) plus
the validator routes: node config, leases, reports, the accepted clips' embeddings and
signatures over epoch roots. It remembers the account it signed in with and signs in
again, once, when a call answers 401 (the session expired while the node ran).

Media is fetched from the lease's ``content_url`` (relative to the backend, or a
gateway's absolute URL) by a second HTTP client that never carries the session token,
streamed to a file while its size, SHA-256 and CIDv1 are computed in the same pass
(:class:`ingest.cid.StreamingDigest`, the blob store's own hasher). More bytes than the
lease says stop the download at once; any difference in size, SHA-256 or CID discards
the file (:class:`~scoring.node.errors.ContentMismatchError`): the node never scores
bytes other than the ones the contributor's clip is addressed by.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import httpx
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.cid import StreamingDigest, normalize_cid
from ingest.errors import InvalidCidError
from scoring.node.errors import ContentMismatchError, FetchError
from scoring.report import ClipScores
from shotbank import __version__
from shotbank.client import ApiError, ShotbankClient, UnexpectedResponseError
from shotbank.client.models import SessionInfo
from shotbank.rewards.models import Amount

__all__ = [
    "MAX_JOBS_PER_REQUEST",
    "EmbeddingPage",
    "EpochSignatureReceipt",
    "FetchedContent",
    "Lease",
    "LeaseBatch",
    "ReportReceipt",
    "StoredEmbedding",
    "ValidatorClient",
    "ValidatorConfig",
]

#: The API's upper bound for ``max_jobs`` in one lease request.
MAX_JOBS_PER_REQUEST: Final = 16
#: Largest page of embeddings asked for at once.
MAX_EMBEDDINGS_PAGE: Final = 1000
_READ_CHUNK: Final = 1 << 20
_HEX32: Final = r"^[0-9a-f]{32}$"
_BYTES32: Final = r"^0x[0-9a-fA-F]{64}$"


class _Answer(BaseModel):
    # A newer backend may add members; the node reads only what it knows.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ValidatorConfig(_Answer):
    """``GET /validator/config``: the chain, the registry and the rules of the game."""

    chain_id: int = Field(ge=1, le=2**53)
    validator_registry: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    min_stake_wei: int = Field(ge=0, lt=2**256)
    snapshot_block: int | None = None
    quorum: int = Field(ge=1, le=1000)
    lease_ttl_s: int = Field(ge=1)
    max_jobs_per_lease: int = Field(ge=1, le=1000)
    report_version: int = Field(ge=1)


class Lease(_Answer):
    """One scoring job: a clip leased to this validator until ``expires_at``."""

    lease_id: str = Field(pattern=_HEX32)
    clip_id: str = Field(pattern=_HEX32)
    content_cid: str = Field(min_length=1, max_length=128)
    content_url: str = Field(min_length=1, max_length=2048)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)
    annotation: dict[str, Any]
    annotation_hash: str = Field(pattern=_BYTES32)
    media: dict[str, Any] | None = None
    issued_at: datetime
    expires_at: datetime
    deadline: int = Field(ge=0, lt=2**64)


class LeaseBatch(_Answer):
    """``POST /validator/leases`` (and ``GET``): leases, and when to ask again if none."""

    leases: tuple[Lease, ...] = Field(default=(), max_length=1000)
    retry_after_s: float | None = Field(default=None, ge=0)


class ReportReceipt(_Answer):
    """``201`` of ``POST /validator/reports``."""

    report_id: str = Field(max_length=64)
    clip_id: str = Field(max_length=64)
    clip_status: str = Field(max_length=32)


class StoredEmbedding(_Answer):
    """One accepted clip's embedding under one model (``scoring.report.ClipScores.embedding``)."""

    clip_id: str = Field(min_length=1, max_length=64)
    embedding: str = Field(max_length=16_384)


class EmbeddingPage(_Answer):
    """``GET /validator/embeddings``: accepted clips' embeddings after a cursor.

    ``next_cursor`` is where the next page (or, on the last one, the next poll) starts;
    ``has_more`` says whether more were waiting when this page was cut.
    """

    items: tuple[StoredEmbedding, ...] = Field(default=(), max_length=MAX_EMBEDDINGS_PAGE)
    next_cursor: str | None = Field(default=None, max_length=64)
    has_more: bool = False


class EpochSignatureReceipt(_Answer):
    """``POST /validator/epochs/{n}/signatures``: the stake that has signed the root so far."""

    epoch: int = Field(ge=1, lt=2**64)
    signed_stake: Amount
    total_stake: Amount
    quorum_reached: bool


@dataclass(frozen=True, slots=True)
class FetchedContent:
    """A downloaded clip whose size, SHA-256 and CID are the leased ones."""

    path: Path
    size: int
    sha256: str
    cid: str
    seconds: float


def _parse(model: type[_Answer], response: httpx.Response) -> Any:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise UnexpectedResponseError(
            f"{response.request.method} {response.request.url.path} answered a body that is "
            f"not a {model.__name__}: {exc.error_count()} problem(s), first: "
            f"{exc.errors(include_url=False)[0]['msg']}"
        ) from exc


class ValidatorClient(ShotbankClient):
    """The backend's validator routes for one signed-in validator (see the module docstring)."""

    def __init__(self, base_url: str, *, fetch_timeout: float = 60.0, **options: Any) -> None:
        """A client of ``base_url``; ``fetch_timeout`` bounds each wait of a media download."""
        super().__init__(base_url, **options)
        self._account: LocalAccount | None = None
        self._sign_in_lock = threading.Lock()
        self._content_http = httpx.Client(
            timeout=fetch_timeout,
            follow_redirects=True,
            max_redirects=5,
            headers={"User-Agent": f"shotbank-validator/{__version__}"},
        )

    def close(self) -> None:
        """Close both HTTP clients."""
        self._content_http.close()
        super().close()

    # --- session -------------------------------------------------------------------------

    def sign_in(self, account: LocalAccount, **options: Any) -> SessionInfo:
        """Sign in as ``account`` (SIWE) and remember it for signing in again on a 401."""
        session = super().sign_in(account, **options)
        self._account = account
        return session

    def _signed_in(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> Any:
        """``_request`` that signs in again, once, when the session has expired."""
        token = self.token
        try:
            return self._request(method, path, idempotent=idempotent, **kwargs)
        except ApiError as exc:
            if exc.status != 401 or self._account is None:
                raise
        with self._sign_in_lock:
            if self.token == token:  # another thread may have renewed it meanwhile
                self.sign_in(self._account)
        return self._request(method, path, idempotent=idempotent, **kwargs)

    # --- validator routes ----------------------------------------------------------------

    def validator_config(self) -> ValidatorConfig:
        """The node configuration the backend publishes (no session needed)."""
        response = self._request("GET", "/validator/config", idempotent=True, auth=False)
        config: ValidatorConfig = _parse(ValidatorConfig, response)
        return config

    def lease(self, max_jobs: int) -> LeaseBatch:
        """Lease up to ``max_jobs`` (1..16) clips to score.

        Not repeated after a timeout (the server may have granted leases the answer
        never brought): :meth:`active_leases` finds such leases again.
        """
        if not 1 <= max_jobs <= MAX_JOBS_PER_REQUEST:
            raise ValueError(f"max_jobs must be within 1..{MAX_JOBS_PER_REQUEST}")
        response = self._signed_in(
            "POST", "/validator/leases", idempotent=False, json={"max_jobs": max_jobs}
        )
        batch: LeaseBatch = _parse(LeaseBatch, response)
        return batch

    def active_leases(self) -> tuple[Lease, ...]:
        """The caller's active leases (a restarted node's unfinished work)."""
        response = self._signed_in("GET", "/validator/leases", idempotent=True)
        body = response.json() if response.content else None
        if isinstance(body, list):  # a bare list is accepted as well as {"leases": [...]}
            body = {"leases": body}
        try:
            return LeaseBatch.model_validate(body).leases
        except ValidationError as exc:
            raise UnexpectedResponseError(
                f"GET /validator/leases answered something else than leases: {exc.error_count()}"
                " problem(s)"
            ) from exc

    def return_lease(self, lease_id: str) -> bool:
        """Give an unfinished lease back; ``False`` when it was reported or is not ours."""
        try:
            self._signed_in("DELETE", f"/validator/leases/{lease_id}", idempotent=True)
        except ApiError as exc:
            if exc.code in ("lease_reported", "lease_not_found"):
                return False
            raise
        return True

    def submit_report(
        self, lease_id: str, scores: ClipScores, *, deadline: int, signature: bytes
    ) -> ReportReceipt:
        """Submit a signed report for ``lease_id``.

        Safe to repeat (a replay is refused as ``409 report_duplicate``), so it is retried
        like a read on connection failures and 502/503/504.
        """
        body = {
            "lease_id": lease_id,
            "scores": scores.model_dump(mode="json"),
            "deadline": deadline,
            "signature": "0x" + signature.hex(),
        }
        response = self._signed_in("POST", "/validator/reports", idempotent=True, json=body)
        receipt: ReportReceipt = _parse(ReportReceipt, response)
        return receipt

    def embeddings(self, *, weights_sha256: str, after: str | None, limit: int) -> EmbeddingPage:
        """A page of accepted clips' embeddings under the weights ``weights_sha256``, in
        acceptance order after cursor ``after`` (``None``: from the start)."""
        if not 1 <= limit <= MAX_EMBEDDINGS_PAGE:
            raise ValueError(f"limit must be within 1..{MAX_EMBEDDINGS_PAGE}")
        params: dict[str, str | int] = {"weights_sha256": weights_sha256, "limit": limit}
        if after is not None:
            params["after"] = after
        response = self._signed_in("GET", "/validator/embeddings", idempotent=True, params=params)
        page: EmbeddingPage = _parse(EmbeddingPage, response)
        return page

    def submit_epoch_signature(
        self, epoch: int, *, root: str, cumulative_total: int, signature: bytes
    ) -> EpochSignatureReceipt:
        """Hand in this validator's EIP-712 signature over ``epoch``'s root and total.

        A byte-identical repeat is answered like the first (``200`` instead of ``201``),
        so it is retried like a read on connection failures and 502/503/504.
        """
        body = {
            "root": root,
            "cumulative_total": str(cumulative_total),
            "signature": "0x" + signature.hex(),
        }
        response = self._signed_in(
            "POST", f"/validator/epochs/{epoch}/signatures", idempotent=True, json=body
        )
        receipt: EpochSignatureReceipt = _parse(EpochSignatureReceipt, response)
        return receipt

    # --- media ---------------------------------------------------------------------------

    def content_url(self, lease: Lease) -> str:
        """The absolute URL of the lease's media (relative URLs are the backend's)."""
        url = urljoin(self.base_url + "/", lease.content_url)
        if urlsplit(url).scheme not in ("http", "https"):
            raise FetchError(
                f"lease {lease.lease_id}: content URL {lease.content_url!r} is not HTTP"
            )
        return url

    def fetch_content(
        self,
        lease: Lease,
        directory: Path,
        *,
        max_bytes: int,
        cancel: threading.Event | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> FetchedContent:
        """Download the lease's media into ``directory`` and verify it is the leased content.

        Raises :class:`ContentMismatchError` (file removed) when size, SHA-256 or CID
        differ, or the lease is larger than ``max_bytes``; :class:`FetchError` when the
        download fails or ``cancel`` is set (file removed).
        """
        try:
            expected_cid = normalize_cid(lease.content_cid)
        except InvalidCidError as exc:
            raise ContentMismatchError(
                f"lease {lease.lease_id}: {lease.content_cid!r} is not a CID this node verifies"
            ) from exc
        if lease.size_bytes > max_bytes:
            raise ContentMismatchError(
                f"lease {lease.lease_id}: the clip is {lease.size_bytes} bytes, over this "
                f"node's limit of {max_bytes}"
            )
        url = self.content_url(lease)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{lease.lease_id}.media"
        started = time.monotonic()
        try:
            digest = self._download(lease, url, path, cancel=cancel, on_bytes=on_bytes)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            raise
        result = digest.finalize()
        problems = []
        if result.size != lease.size_bytes:
            problems.append(f"{result.size} bytes, leased {lease.size_bytes}")
        if result.sha256 != lease.sha256:
            problems.append(f"SHA-256 {result.sha256}, leased {lease.sha256}")
        if result.cid != expected_cid:
            problems.append(f"CID {result.cid}, leased {expected_cid}")
        if problems:
            path.unlink(missing_ok=True)
            raise ContentMismatchError(
                f"lease {lease.lease_id}: the bytes from {url} are not the leased content: "
                + "; ".join(problems)
            )
        return FetchedContent(
            path=path,
            size=result.size,
            sha256=result.sha256,
            cid=result.cid,
            seconds=time.monotonic() - started,
        )

    def _download(
        self,
        lease: Lease,
        url: str,
        path: Path,
        *,
        cancel: threading.Event | None,
        on_bytes: Callable[[int], None] | None,
    ) -> StreamingDigest:
        digest = StreamingDigest()
        try:
            with self._content_http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise FetchError(f"GET {url} answered HTTP {response.status_code}")
                announced = response.headers.get("content-length", "")
                if announced.isdigit() and int(announced) > lease.size_bytes:
                    raise ContentMismatchError(
                        f"lease {lease.lease_id}: {url} announces {announced} bytes, "
                        f"leased {lease.size_bytes}"
                    )
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as sink:
                    for chunk in response.iter_bytes(_READ_CHUNK):
                        if cancel is not None and cancel.is_set():
                            raise FetchError(f"download of {url} cancelled")
                        if digest.size + len(chunk) > lease.size_bytes:
                            # Stop at once: a server sending more than leased is not
                            # allowed to fill the disk.
                            raise ContentMismatchError(
                                f"lease {lease.lease_id}: {url} sent more than the leased "
                                f"{lease.size_bytes} bytes"
                            )
                        digest.update(chunk)
                        sink.write(chunk)
                        if on_bytes is not None:
                            on_bytes(len(chunk))
        except httpx.HTTPError as exc:
            raise FetchError(f"GET {url} failed: {exc or type(exc).__name__}") from exc
        return digest
