"""Datasets from the backend: listing, versions, verified downloads and remote streams.

Entry points are :class:`~shotbank.client.ShotbankClient`'s ``datasets()``,
``dataset(id)`` and ``version(dataset_id, number)``; they return the handles here:

* :class:`DatasetHandle` -- a dataset's definition (:class:`DatasetInfo`) and
  :meth:`~DatasetHandle.versions`;
* :class:`DatasetVersionHandle` -- one version: its :attr:`~DatasetVersionHandle.summary`,
  :meth:`~DatasetVersionHandle.index` (the parsed ``index.json``),
  :meth:`~DatasetVersionHandle.manifest` (the rows), :meth:`~DatasetVersionHandle.download`
  and :meth:`~DatasetVersionHandle.stream`.

Listing, summaries, the index and the manifest are public; shard bytes need a signed-in
client whose wallet holds a licence (``DatasetMarket.purchase``), else the server answers
402 and the SDK raises :class:`LicenceRequiredError` carrying the server's sentence, which
names the contract call that grants access.

Downloads (:meth:`DatasetVersionHandle.download`)
    ``index.json``, ``manifest.jsonl`` (checked: its SHA-256 is the version hash) and every
    shard, shards in parallel on a thread pool. A shard is written to ``<name>.part`` and
    renamed into place only after its size and SHA-256 equal the index's; an interrupted
    run leaves the ``.part``, which the next run continues with ``Range: bytes=<have>-``
    and ``If-Range: "<sha256>"`` (the shard's ETag), starting over when the server answers
    200. A finished shard whose size and SHA-256 match is not fetched again, so re-runs
    are idempotent. A shard whose bytes do not hash to the index's SHA-256 is deleted and
    fetched once more from zero; a second mismatch raises :class:`ShardVerificationError`
    naming the shard. With ``verify_cid=True`` each shard is also checked against its CID
    from the index (:mod:`shotbank.cid`, the backend's UnixFS rule), hashed in the same
    pass as it arrives; it is off by default because it doubles the hashing (both come
    from the same index, so it adds no integrity, only the content address for IPFS) and
    on a small machine the hashing is what bounds the download rate
    (``benchmarks/sdk``).

Access
    Shard bytes need a licence. The client sends its SIWE session's token, or, when it
    has an account but no session (or ``sign_requests=True``), a freshly signed
    ``Shotbank-Signature`` header per request (each Range request its own nonce).
    Without either, :class:`~shotbank.client.NotSignedInError` before any transfer.

Remote streaming (:meth:`DatasetVersionHandle.stream`)
    A :class:`~shotbank.datasets.stream.ShardStream` over
    :class:`~shotbank.datasets.stream.RangeShards` whose fetch sends one authenticated
    Range GET per sample (:class:`RemoteShardFetch`, picklable, one HTTP connection pool
    per process so DataLoader workers do not share sockets). Needs ``shotbank[torch]``.

Listings (:attr:`DatasetVersionSummary.listing`)
    A ready version's sale on chain: market, chain id, price, listed, status; what
    :meth:`~shotbank.client.ShotbankClient.buy` starts from.

Errors::

    ShotbankError
    ├── DatasetError (shotbank.datasets.format)
    │   ├── DownloadError                          a download that cannot complete
    │   │   └── ShardVerificationError (ValueError)  a shard's bytes do not match the index
    │   └── PurchaseError                          ``buy`` bought nothing (shotbank.datasets.market)
    └── ClientError (shotbank.client.errors)
        └── ApiError
            └── LicenceRequiredError (+DatasetError)  402: buy a licence first
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from eth_account import Account
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from shotbank import __version__
from shotbank.chain.deployments import ChecksumAddressStr
from shotbank.cid import CidHasher
from shotbank.client._responses import api_error
from shotbank.client.api import API_PREFIX, MAX_PAGE_SIZE, ShotbankClient
from shotbank.client.errors import ApiError, ApiUnavailableError, UnexpectedResponseError
from shotbank.client.signed import sign_request
from shotbank.datasets.format import (
    INDEX_NAME,
    MANIFEST_JSONL_NAME,
    MAX_INDEX_BYTES,
    DatasetError,
    ManifestRow,
    ShardEntry,
    ShardIndex,
    read_index,
    read_manifest_jsonl,
)
from shotbank.rewards.models import Amount

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from shotbank.datasets.stream import ShardStream

__all__ = [
    "MAX_DOWNLOAD_WORKERS",
    "MAX_MANIFEST_BYTES",
    "PART_SUFFIX",
    "DatasetHandle",
    "DatasetInfo",
    "DatasetListing",
    "DatasetPage",
    "DatasetVersionHandle",
    "DatasetVersionSummary",
    "DownloadError",
    "DownloadReport",
    "LicenceRequiredError",
    "RemoteShardFetch",
    "ShardVerificationError",
]

#: Suffix of a shard being downloaded; renamed away once verified.
PART_SUFFIX: Final = ".part"
#: Most parallel shard downloads of one :meth:`DatasetVersionHandle.download`.
MAX_DOWNLOAD_WORKERS: Final = 64
#: Largest ``manifest.jsonl`` read (a million rows of a few KB each fit).
MAX_MANIFEST_BYTES: Final = 8 * 1024**3
#: Bytes read per chunk of a streamed body, and per read when hashing a file.
_HASH_READ: Final = 4 * 1024 * 1024

_log = logging.getLogger(__name__)


class DownloadError(DatasetError):
    """A version's files could not be downloaded completely (the message says which)."""


class ShardVerificationError(DownloadError, ValueError):
    """A shard's downloaded bytes do not have the size, SHA-256 or CID of the index.

    ``shard`` is the shard's name; ``expected`` and ``actual`` the SHA-256 hex digests
    (or the CIDs, when the SHA-256 matched and the CID did not).
    """

    def __init__(self, message: str, *, shard: str, expected: str, actual: str) -> None:
        super().__init__(message)
        self.shard = shard
        self.expected = expected
        self.actual = actual


class LicenceRequiredError(ApiError, DatasetError):
    """402 ``licence_required``: the signed-in wallet holds no licence for the version.

    :attr:`message` is the server's sentence: it names the ``DatasetMarket`` call that
    grants access (``purchase(versionId, price)``), the chain and the confirmations.
    """


def _raise_api_error(status: int, body: bytes) -> None:
    error = api_error(status, body)
    if status == 402:
        raise LicenceRequiredError(
            error.status, error.code, error.message, details=error.details, extra=error.extra
        )
    raise error


# -- what the server answers -------------------------------------------------------------


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class DatasetListing(_Answer):
    """A ready version's listing on the ``DatasetMarket`` (``docs/api/datasets.md``).

    ``status`` is ``unpriced`` (not for sale), ``pending`` (listing sent, not yet
    indexed), ``listed`` or ``unlisted``; ``price``/``listed``/``terms_uri`` are the
    indexed on-chain values (``None`` until indexed). ``price`` is SHOT base units.
    """

    version_id: str = Field(pattern=r"^0x[0-9a-f]{64}$")
    market: ChecksumAddressStr | None = None
    chain_id: int = Field(ge=1, lt=2**64)
    price: Amount | None = None
    listed: bool | None = None
    terms_uri: str | None = Field(default=None, max_length=2048)
    status: str = Field(max_length=32)


class DatasetVersionSummary(_Answer):
    """A version's summary (``GET /datasets/{id}/versions/{n}``).

    ``status`` is ``packing``, ``ready`` or ``failed`` (a plain string, so a newer
    server's states do not break the SDK); hash, bytes and shards are known once ready.
    """

    dataset_id: str = Field(max_length=32)
    number: int = Field(ge=1)
    status: str = Field(max_length=32)
    version_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    samples: int = Field(ge=0)
    contributors: int = Field(ge=0)
    total_bytes: int | None = Field(default=None, ge=0)
    shard_bytes: int = Field(ge=1)
    shards: int | None = Field(default=None, ge=0)
    error: str | None = Field(default=None, max_length=10_000)
    created_at: datetime
    ready_at: datetime | None = None
    listing: DatasetListing | None = None
    """The sale on chain (``None`` until ready, or from a backend without listings)."""

    @property
    def version_id(self) -> str | None:
        """The on-chain ``versionId``: ``0x`` + the version hash (``None`` until ready)."""
        return None if self.version_hash is None else "0x" + self.version_hash


class DatasetInfo(_Answer):
    """A dataset's definition and its versions, oldest first (``GET /datasets/{id}``)."""

    id: str = Field(max_length=32)
    slug: str = Field(max_length=64)
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=10_000)
    filter: dict[str, JsonValue]
    licence_terms: str = Field(default="", max_length=10_000)
    created_by: str = Field(max_length=42)
    created_at: datetime
    versions: list[DatasetVersionSummary] = Field(default_factory=list, max_length=100_000)


class DatasetPage(_Answer):
    """One page of ``GET /datasets``; ``next_after`` continues it."""

    items: list[DatasetInfo] = Field(max_length=MAX_PAGE_SIZE)
    next_after: str | None = Field(default=None, max_length=32)


_AnswerT = TypeVar("_AnswerT", bound=_Answer)


def _dataset_id(value: str) -> str:
    if len(value) != 32 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"not a dataset id (32 lower-case hex digits): {value[:40]!r}")
    return value


def _version_number(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**31:
        raise ValueError(f"not a version number: {value!r}")
    return value


def _parse(model: type[_AnswerT], response: httpx.Response) -> _AnswerT:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise UnexpectedResponseError(
            f"{response.request.method} {response.request.url.path} answered a body that "
            f"is not a {model.__name__}: {exc.error_count()} problem(s)"
        ) from exc


# -- client calls (ShotbankClient.datasets / dataset / version delegate here) ------------


def list_datasets(client: ShotbankClient, *, page_size: int = 20) -> Iterator[DatasetHandle]:
    """Every dataset, in id order, following the pages (``page_size`` 1..100 per page)."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be within 1..{MAX_PAGE_SIZE}")
    after: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": page_size}
        if after is not None:
            params["after"] = after
        page = _parse(
            DatasetPage,
            client._request("GET", "/datasets", idempotent=True, auth=False, params=params),
        )
        for info in page.items:
            yield DatasetHandle(client, info)
        if page.next_after is None or not page.items:
            return
        after = page.next_after


def get_dataset(client: ShotbankClient, dataset_id: str) -> DatasetHandle:
    """One dataset (``404 dataset_not_found`` as :class:`ApiError`)."""
    path = f"/datasets/{_dataset_id(dataset_id)}"
    info = _parse(DatasetInfo, client._request("GET", path, idempotent=True, auth=False))
    return DatasetHandle(client, info)


def get_version(client: ShotbankClient, dataset_id: str, number: int) -> DatasetVersionHandle:
    """One version of a dataset, with its current summary."""
    path = f"/datasets/{_dataset_id(dataset_id)}/versions/{_version_number(number)}"
    summary = _parse(
        DatasetVersionSummary, client._request("GET", path, idempotent=True, auth=False)
    )
    return DatasetVersionHandle(client, summary)


def get_version_by_hash(client: ShotbankClient, version_hash: str) -> DatasetVersionHandle | None:
    """The ready version whose manifest hashes to ``version_hash`` (the on-chain
    ``versionId`` without ``0x``), or ``None`` when the backend has none."""
    if not re.fullmatch(r"[0-9a-f]{64}", version_hash):
        raise ValueError(f"a version hash is 64 lower-case hex digits, got {version_hash[:80]!r}")
    try:
        response = client._request(
            "GET", f"/dataset-versions/{version_hash}", idempotent=True, auth=False
        )
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    summary = _parse(DatasetVersionSummary, response)
    if summary.version_hash != version_hash:
        raise UnexpectedResponseError(
            f"GET /dataset-versions/{version_hash} answered version {summary.version_hash}"
        )
    return DatasetVersionHandle(client, summary)


class DatasetHandle:
    """A dataset of the backend: :attr:`info` as fetched, :meth:`versions` fresh."""

    def __init__(self, client: ShotbankClient, info: DatasetInfo) -> None:
        self.client = client
        self.info = info

    @property
    def id(self) -> str:
        """The dataset id."""
        return self.info.id

    def versions(self) -> list[DatasetVersionHandle]:
        """The dataset's versions, oldest first (fetched again: statuses move on)."""
        fresh = get_dataset(self.client, self.info.id).info
        return [DatasetVersionHandle(self.client, summary) for summary in fresh.versions]

    def version(self, number: int) -> DatasetVersionHandle:
        """Version ``number`` of the dataset."""
        return get_version(self.client, self.info.id, number)

    def __repr__(self) -> str:
        return f"DatasetHandle(id={self.info.id!r}, slug={self.info.slug!r})"


# -- downloads ---------------------------------------------------------------------------


@dataclass
class DownloadReport:
    """What one :meth:`DatasetVersionHandle.download` did.

    ``bytes_downloaded`` counts shard bytes received (index and manifest not included);
    ``skipped`` are shards already in place and verified, ``resumed`` shards continued
    from a ``.part`` (206), ``restarted`` shards whose ``.part`` the server answered with
    the whole body (200), ``refetched`` shards fetched again after a hash mismatch.
    """

    directory: Path
    shards: int = 0
    bytes_downloaded: int = 0
    skipped: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    refetched: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def _add(self, kind: str, name: str) -> None:
        with self._lock:
            getattr(self, kind).append(name)

    def _count(self, size: int) -> None:
        with self._lock:
            self.bytes_downloaded += size


def _file_sha256(path: Path, hasher: Any = None, *, limit: int | None = None) -> Any:
    """``hasher`` (a new SHA-256 by default) fed the first ``limit`` bytes of ``path``."""
    digest = hasher if hasher is not None else hashlib.sha256()
    left = limit
    with path.open("rb") as handle:
        while left is None or left > 0:
            chunk = handle.read(_HASH_READ if left is None else min(_HASH_READ, left))
            if not chunk:
                break
            digest.update(chunk)
            if left is not None:
                left -= len(chunk)
    return digest


class _ShardDigest:
    """SHA-256 of a shard, and its CID when asked, fed together as its bytes arrive."""

    def __init__(self, cid: bool) -> None:
        self.sha256 = hashlib.sha256()
        self.cid = CidHasher() if cid else None

    def update(self, data: bytes) -> None:
        self.sha256.update(data)
        if self.cid is not None:
            self.cid.update(data)

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()


def _content_range_start(response: httpx.Response) -> int | None:
    value = response.headers.get("content-range", "")
    unit, _, rest = value.partition(" ")
    start, _, _ = rest.partition("-")
    return int(start) if unit == "bytes" and start.isdigit() else None


class _Downloader:
    """The shard downloads of one ``download`` call: one connection pool, many threads."""

    def __init__(
        self,
        handle: DatasetVersionHandle,
        directory: Path,
        http: httpx.Client,
        progress: Progress,
        task: Any,
        report: DownloadReport,
        *,
        verify_cid: bool = False,
    ) -> None:
        self.verify_cid = verify_cid
        self.handle = handle
        self.directory = directory
        self.http = http
        self.progress = progress
        self.task = task
        self.report = report

    def shard(self, entry: ShardEntry) -> None:
        """Put ``entry`` in place, verified: skip, resume, or fetch (once more on a bad hash)."""
        final = self.directory / entry.name
        part = self.directory / (entry.name + PART_SUFFIX)
        if final.exists():
            if final.stat().st_size == entry.size and self._matches(final, entry):
                self.report._add("skipped", entry.name)
                self.progress.advance(self.task, entry.size)
                return
            _log.warning("%s: the file in place does not match the index; fetching it", final)
            final.unlink()
        try:
            self._fetch(entry, part)
        except ShardVerificationError as exc:
            part.unlink(missing_ok=True)
            _log.warning("%s; deleted the partial file, fetching the shard again", exc)
            self.report._add("refetched", entry.name)
            self._fetch(entry, part)
        os.replace(part, final)

    def _matches(self, path: Path, entry: ShardEntry) -> bool:
        digest: _ShardDigest = _file_sha256(path, _ShardDigest(self.verify_cid))
        return digest.hexdigest() == entry.sha256 and (
            digest.cid is None or digest.cid.finalize() == entry.cid
        )

    def _fetch(self, entry: ShardEntry, part: Path) -> None:
        """Fill ``part`` with the shard (continuing what it holds) and verify it."""
        have = part.stat().st_size if part.exists() else 0
        if have > entry.size:
            part.unlink()
            have = 0
        hasher = _ShardDigest(self.verify_cid)
        if have:
            hasher = _file_sha256(part, hasher, limit=have)
        self.progress.advance(self.task, have)
        attempts = self.handle.client.retry.attempts
        attempt = 0
        while have < entry.size:
            attempt += 1
            try:
                have, hasher = self._receive(entry, part, have, hasher)
            except httpx.TransportError as exc:
                # What arrived is on disk: the next attempt continues it with a Range.
                have = part.stat().st_size
                if attempt >= attempts:
                    raise DownloadError(
                        f"{entry.name}: the download failed after {attempt} attempts: {exc}"
                    ) from exc
                self.handle.client._sleep(self.handle.client.retry.delay(attempt))
        actual = hasher.hexdigest()
        if have != entry.size or actual != entry.sha256:
            part.unlink(missing_ok=True)
            self.progress.advance(self.task, -have)
            raise ShardVerificationError(
                f"shard {entry.name} is corrupt: its SHA-256 is {actual}, the index says "
                f"{entry.sha256} ({have} of {entry.size} bytes)",
                shard=entry.name,
                expected=entry.sha256,
                actual=actual,
            )
        cid = hasher.cid.finalize() if hasher.cid is not None else entry.cid
        if cid != entry.cid:
            part.unlink(missing_ok=True)
            self.progress.advance(self.task, -have)
            raise ShardVerificationError(
                f"shard {entry.name} is corrupt: its CID is {cid}, the index says {entry.cid} "
                "(its SHA-256 matches: the index's CID and SHA-256 disagree)",
                shard=entry.name,
                expected=entry.cid,
                actual=cid,
            )

    def _receive(self, entry: ShardEntry, part: Path, have: int, hasher: Any) -> tuple[int, Any]:
        """One GET of the shard from ``have`` on, appended to ``part``."""
        url = f"{self.handle._path}/shards/{quote(entry.name, safe='')}"
        # Fresh credentials per request: a signed header is single-use.
        headers = self.handle.client._access_headers("GET", API_PREFIX + url)
        if have:
            headers["Range"] = f"bytes={have}-"
            headers["If-Range"] = f'"{entry.sha256}"'
        with self.http.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if status == 206 and _content_range_start(response) == have and have:
                mode = "ab"
                self.report._add("resumed", entry.name)
            elif status == 200:
                if have:
                    # The server ignored the range (another ETag): start over.
                    self.report._add("restarted", entry.name)
                    self.progress.advance(self.task, -have)
                mode, have, hasher = "wb", 0, _ShardDigest(self.verify_cid)
            elif status == 416:
                # The part is at or past the end (it cannot be, sizes were checked):
                # discard it and let the caller's verification decide.
                response.read()
                part.unlink(missing_ok=True)
                return 0, _ShardDigest(self.verify_cid)
            elif status >= 400:
                _raise_api_error(status, response.read()[: 256 * 1024])
                raise AssertionError("unreachable")  # pragma: no cover
            else:
                raise UnexpectedResponseError(
                    f"GET {url} answered {status} (Content-Range "
                    f"{response.headers.get('content-range')!r}) to a request from byte {have}"
                )
            with part.open(mode) as out:
                # As the connection delivers them: re-chunking to a fixed size copies
                # every byte again under the GIL (a third of the throughput with 4 threads).
                for chunk in response.iter_bytes():
                    if have + len(chunk) > entry.size:
                        raise ShardVerificationError(
                            f"shard {entry.name} is corrupt: the server sent more than "
                            f"the index's {entry.size} bytes",
                            shard=entry.name,
                            expected=entry.sha256,
                            actual="",
                        )
                    out.write(chunk)
                    hasher.update(chunk)
                    have += len(chunk)
                    self.report._count(len(chunk))
                    self.progress.advance(self.task, len(chunk))
        if have < entry.size and status in (200, 206):
            # A body that ended early: a broken connection, retried with a Range.
            raise httpx.ReadError(f"{entry.name}: the body ended after {have} bytes")
        return have, hasher


# -- remote streaming --------------------------------------------------------------------


class RemoteShardFetch:
    """``fetch(entry, start, stop) -> bytes`` for :class:`RangeShards`: one Range GET.

    Picklable (DataLoader workers get a copy); each process opens its own connection
    pool on first use. Carries the session token, or the ``account`` (and the backend's
    ``chain_id``) that signs every request afresh, so it reads only what that wallet is
    licensed for (402 raises :class:`LicenceRequiredError`).
    """

    def __init__(
        self,
        base_url: str,
        path: str,
        token: str | None,
        timeout: float,
        *,
        account: LocalAccount | None = None,
        chain_id: int | None = None,
    ) -> None:
        if account is not None and chain_id is None:
            raise ValueError("signing requests needs the backend's chain_id")
        self.base_url = base_url
        self.path = path
        self.token = token
        self.timeout = timeout
        self.account = account
        self.chain_id = chain_id
        self._http: httpx.Client | None = None
        self._pid = 0

    def __getstate__(self) -> dict[str, Any]:
        # A LocalAccount does not pickle; its key does (the copy stays in this machine's
        # worker processes, as the account did in this one).
        key = None if self.account is None else bytes(self.account.key)
        return {**self.__dict__, "_http": None, "_pid": 0, "account": None, "_key": key}

    def __setstate__(self, state: dict[str, Any]) -> None:
        key = state.pop("_key", None)
        self.__dict__.update(state)
        if key is not None:
            self.account = Account.from_key(key)

    def close(self) -> None:
        """Close this process's connections (a later call opens new ones)."""
        if self._http is not None and self._pid == os.getpid():
            self._http.close()
        self._http = None

    def __del__(self) -> None:
        # A stream is usually dropped, not closed: release the sockets with it.
        self.close()

    def _client(self) -> httpx.Client:
        if self._http is None or self._pid != os.getpid():
            self._http = httpx.Client(
                base_url=self.base_url,
                timeout=self.timeout,
                headers={"User-Agent": f"shotbank-sdk/{__version__}"},
            )
            self._pid = os.getpid()
        return self._http

    def __call__(self, entry: ShardEntry, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of shard ``entry``."""
        headers = {"Range": f"bytes={start}-{stop - 1}", "If-Range": f'"{entry.sha256}"'}
        url = f"{self.path}/shards/{quote(entry.name, safe='')}"
        if self.account is not None and self.chain_id is not None:
            target = urlsplit(self.base_url).path.rstrip("/") + url
            headers["Authorization"] = sign_request(self.account, "GET", target, b"", self.chain_id)
        elif self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self._client().get(url, headers=headers)
        except httpx.TransportError as exc:
            # An OSError, so the stream's on_error policy applies to it.
            raise ApiUnavailableError(
                f"GET {url} failed: {exc or type(exc).__name__}", method="GET", url=url
            ) from exc
        if response.status_code != 206 or _content_range_start(response) != start:
            if response.status_code >= 400:
                _raise_api_error(response.status_code, response.content[: 256 * 1024])
            raise UnexpectedResponseError(
                f"GET {url} answered {response.status_code} to a Range request"
            )
        return response.content


class DatasetVersionHandle:
    """One version of a dataset: summary, index, manifest, download and stream.

    :attr:`summary` is as fetched (call :meth:`refresh` to see a packing version
    become ready). Shard bytes need a licence held by the client's wallet: sign in, or
    give the client an ``account`` to sign each request
    (:meth:`~shotbank.client.ShotbankClient.buy` gets one).
    """

    def __init__(self, client: ShotbankClient, summary: DatasetVersionSummary) -> None:
        self.client = client
        self.summary = summary
        self._path = f"/datasets/{summary.dataset_id}/versions/{summary.number}"

    def __repr__(self) -> str:
        s = self.summary
        return f"DatasetVersionHandle({s.dataset_id!r}, {s.number}, status={s.status!r})"

    def refresh(self) -> DatasetVersionSummary:
        """Fetch the summary again and keep it."""
        self.summary = get_version(
            self.client, self.summary.dataset_id, self.summary.number
        ).summary
        return self.summary

    def _require_access(self) -> None:
        """Fail early (:class:`NotSignedInError`) when there are no credentials to send."""
        if self.client.signs_requests:
            self.client.chain_id()
        else:
            self.client._auth_headers()

    def _ready_hash(self) -> str:
        if self.summary.status != "ready" or self.summary.version_hash is None:
            self.refresh()
        if self.summary.status != "ready" or self.summary.version_hash is None:
            raise DownloadError(
                f"version {self.summary.number} of dataset {self.summary.dataset_id} is "
                f"{self.summary.status}, not ready"
            )
        return self.summary.version_hash

    def _check_index(self, index: ShardIndex) -> ShardIndex:
        if index.version_hash != self._ready_hash():
            raise UnexpectedResponseError(
                f"the index is of version {index.version_hash}, not {self.summary.version_hash}"
            )
        return index

    def index(self) -> ShardIndex:
        """The version's ``index.json``, validated and checked against the version hash."""
        response = self.client._request(
            "GET",
            f"{self._path}/{INDEX_NAME}",
            idempotent=True,
            auth=False,
            max_bytes=MAX_INDEX_BYTES,
        )
        try:
            index = ShardIndex.model_validate_json(response.content)
        except ValidationError as exc:
            raise UnexpectedResponseError(f"the server's {INDEX_NAME} is not valid: {exc}") from exc
        return self._check_index(index)

    def manifest(self) -> list[ManifestRow]:
        """The manifest's rows, each checked, the whole file hashing to the version hash."""
        expected = self._ready_hash()
        with tempfile.TemporaryDirectory(prefix="shotbank-manifest-") as folder:
            path = Path(folder) / MANIFEST_JSONL_NAME
            self._save(MANIFEST_JSONL_NAME, path, MAX_MANIFEST_BYTES)
            return read_manifest_jsonl(path, expected_hash=expected)

    def _save(self, name: str, path: Path, max_bytes: int) -> None:
        """A public file of the version, streamed to ``path`` (at most ``max_bytes``)."""
        response = self.client._request(
            "GET", f"{self._path}/{name}", idempotent=True, auth=False, max_bytes=max_bytes
        )
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(response.content)
        os.replace(temporary, path)

    def download(
        self,
        directory: str | os.PathLike[str],
        *,
        workers: int = 4,
        progress: bool = True,
        verify_cid: bool = False,
    ) -> DownloadReport:
        """Download the version into ``directory``: index, manifest and verified shards.

        See the module docstring for resume, idempotence and verification. ``workers``
        (1..64) shards are fetched at once; ``progress`` shows a bar over the shards'
        total bytes; ``verify_cid`` checks each shard's CID as well as its SHA-256.
        Returns what was done; raises :class:`LicenceRequiredError` (402)
        without a licence, :class:`ShardVerificationError` for a shard that is corrupt
        twice, :class:`DownloadError` when the network gives up.
        """
        if isinstance(workers, bool) or not 1 <= workers <= MAX_DOWNLOAD_WORKERS:
            raise ValueError(f"workers must be within 1..{MAX_DOWNLOAD_WORKERS}")
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        self._require_access()  # fail before any transfer without credentials
        self._save(INDEX_NAME, folder / INDEX_NAME, MAX_INDEX_BYTES)
        index = self._check_index(read_index(folder / INDEX_NAME))
        self._save(MANIFEST_JSONL_NAME, folder / MANIFEST_JSONL_NAME, MAX_MANIFEST_BYTES)
        manifest_hash = _file_sha256(folder / MANIFEST_JSONL_NAME).hexdigest()
        if manifest_hash != index.version_hash:
            raise DownloadError(
                f"the server's {MANIFEST_JSONL_NAME} hashes to {manifest_hash}, "
                f"not the version hash {index.version_hash}"
            )
        report = DownloadReport(directory=folder, shards=len(index.shards))
        total = sum(entry.size for entry in index.shards)
        columns = (
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with (
            httpx.Client(
                base_url=self.client.base_url + API_PREFIX,
                timeout=self.client.timeout,
                limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
                headers={"User-Agent": f"shotbank-sdk/{__version__}"},
            ) as http,
            Progress(*columns, disable=not progress) as bar,
        ):
            task = bar.add_task(f"version {index.version_hash[:12]}", total=total)
            downloader = _Downloader(self, folder, http, bar, task, report, verify_cid=verify_cid)
            with ThreadPoolExecutor(workers, thread_name_prefix="shotbank-download") as pool:
                # list(): the first failure surfaces here, after the others finish.
                futures = [pool.submit(downloader.shard, entry) for entry in index.shards]
                errors = [f.exception() for f in futures]
        failures = [error for error in errors if error is not None]
        if failures:
            raise failures[0]
        return report

    def stream(self, **options: Any) -> ShardStream:
        """The version as a :class:`~shotbank.datasets.stream.ShardStream` read over HTTP.

        One authenticated Range GET per sample (:class:`RemoteShardFetch`); ``options``
        are :class:`ShardStream`'s. Needs ``shotbank[torch]``.
        """
        from shotbank.datasets.stream import RangeShards, ShardStream

        client = self.client
        signer = client.account if client.signs_requests else None
        fetch = RemoteShardFetch(
            client.base_url + API_PREFIX,
            self._path,
            None if signer is not None else client.token,
            client.timeout,
            account=signer,
            chain_id=client.chain_id() if signer is not None else None,
        )
        return ShardStream(self.index(), RangeShards(fetch), **options)
