"""``ShotbankClient``: the backend's HTTP API for contributors' programs and the CLI.

Signing in is Sign-In with Ethereum: the server's nonce endpoint says which domain, URI
and chain id to sign for, the client builds and signs the EIP-4361 message with the
wallet's key and keeps the session's Bearer token. Uploads speak tus with tuspy
(:mod:`shotbank.client.uploads`); everything else is JSON over httpx.

Errors: every non-2xx answer raises :class:`ApiError` (status, code, message and the
envelope's other members); no answer after the retries raises
:class:`ApiUnavailableError`. Retried, per :class:`RetryPolicy`: idempotent requests
(``GET``, ``HEAD``, ``DELETE``, and ``POST /clips`` with an ``Idempotency-Key``) on
connection failures, timeouts and 502/503/504; any request when the connection could
not even be opened (nothing was sent).

Access to licensed data (shard downloads and streams, :meth:`ShotbankClient.licences`)
uses the SIWE session when there is one; a client given an ``account`` but no session
(or built with ``sign_requests=True``) signs each such request instead
(``Authorization: Shotbank-Signature ...``, :mod:`shotbank.client.signed`), with a fresh
nonce per request and the backend's chain id (``GET /version``, fetched once).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar
from urllib.parse import quote

import httpx
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ValidationError

from shotbank import __version__
from shotbank.annotation import Annotation
from shotbank.chain.siwe import build_siwe_message, sign_siwe_message
from shotbank.client._responses import api_error
from shotbank.client.errors import (
    ApiError,
    ApiUnavailableError,
    NotSignedInError,
    UnexpectedResponseError,
)
from shotbank.client.models import (
    Clip,
    ClipPage,
    EpochPage,
    EpochSummary,
    Licence,
    LicenceList,
    NonceChallenge,
    PublishedEpochInputs,
    Rewards,
    SessionInfo,
    UploadInfo,
    UploadRef,
)
from shotbank.client.retry import RETRY_STATUSES, RetryPolicy
from shotbank.client.settings import ClientSettings
from shotbank.client.signed import sign_request
from shotbank.client.uploads import DEFAULT_CHUNK_SIZE, ProgressCallback, tus_upload

__all__ = ["API_PREFIX", "MAX_EPOCH_INPUTS_BYTES", "MAX_PAGE_SIZE", "ShotbankClient"]

API_PREFIX: Final = "/api/v1"
#: The backend's upper bound for ``limit`` on list endpoints.
MAX_PAGE_SIZE: Final = 100
#: Largest ``/epochs/{n}/inputs`` body read. An epoch at the API's limits (a million clips,
#: ten million previous accounts) is larger; real ones are a few megabytes.
MAX_EPOCH_INPUTS_BYTES: Final = 512 * 1024 * 1024
_ADDRESS: Final = re.compile(r"^0x[0-9a-fA-F]{40}$")
_TUS: Final = {"Tus-Resumable": "1.0.0"}
_SIGN_IN_STATEMENT: Final = "Sign in to Shotbank."

if TYPE_CHECKING:
    from shotbank.client.lineage import Lineage, Model, ModelPage
    from shotbank.datasets.client import (
        DatasetHandle,
        DatasetVersionHandle,
        DatasetVersionSummary,
    )
    from shotbank.runs import RunRecord

_Model = TypeVar("_Model", bound=BaseModel)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


class ShotbankClient:
    """A client of one Shotbank backend, signed in as at most one wallet.

    ``base_url`` is the server's root (``http://127.0.0.1:8000``); ``timeout`` bounds one
    HTTP exchange (connect, each read, each write); ``token`` resumes an existing session.
    Use it as a context manager, or call :meth:`close`.

    ``account`` is the wallet that signs requests and licence purchases (:meth:`sign_in`
    sets it too); ``sign_requests`` makes data access use signed requests even with a
    session; ``rpc_url`` is the chain's JSON-RPC URL for :meth:`buy`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        account: LocalAccount | None = None,
        sign_requests: bool = False,
        rpc_url: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.account = account
        self.sign_requests = sign_requests
        self.rpc_url = rpc_url
        self._chain_id: int | None = None
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._token = token
        self._address: str | None = None
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url + API_PREFIX,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": f"shotbank-sdk/{__version__}"},
        )

    @classmethod
    def from_settings(cls, settings: ClientSettings | None = None, **options: Any) -> Self:
        """A client for ``settings`` (read from ``SHOTBANK_*`` when not given)."""
        settings = settings or ClientSettings()
        options.setdefault("timeout", settings.api_timeout_s)
        options.setdefault("rpc_url", settings.rpc_url)
        return cls(settings.api_url, **options)

    # --- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections (the session stays valid on the server)."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------------

    @property
    def token(self) -> str | None:
        """The session's Bearer token, once signed in."""
        return self._token

    @property
    def address(self) -> str | None:
        """The signed-in wallet's checksummed address (``None`` before :meth:`sign_in`)."""
        return self._address

    def _auth_headers(self) -> dict[str, str]:
        if self._token is None:
            raise NotSignedInError("sign in first (ShotbankClient.sign_in)")
        return {"Authorization": f"Bearer {self._token}"}

    @property
    def signs_requests(self) -> bool:
        """Whether data access sends signed requests (an account, and no session or
        ``sign_requests``) rather than the session's Bearer token."""
        return self.account is not None and (self.sign_requests or self._token is None)

    def chain_id(self) -> int:
        """The backend's chain id (``GET /version``), fetched once and kept."""
        if self._chain_id is None:
            response = self._request("GET", "/version", idempotent=True, auth=False)
            value = response.json().get("chain_id") if response.content else None
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**64:
                raise UnexpectedResponseError("GET /version answered no valid chain_id")
            self._chain_id = value
        return self._chain_id

    def _access_headers(self, method: str, target: str, body: bytes = b"") -> dict[str, str]:
        """Credentials for one request to licensed data: ``target`` is the path and query
        as sent (with ``/api/v1``). A signed header is fresh each call (its own nonce), so
        parallel and repeated requests never share one."""
        if not self.signs_requests:
            return self._auth_headers()
        assert self.account is not None  # signs_requests says so
        header = sign_request(self.account, method.upper(), target, body, self.chain_id())
        return {"Authorization": header}

    def _request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        auth: bool = True,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        access: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """One API call, retried per :class:`RetryPolicy`. ``auth`` sends the session's
        token; ``access`` (which overrides ``auth``) the credentials of licensed data
        (:meth:`_access_headers`), signed afresh for every attempt."""
        signed = access and self.signs_requests
        use_token = (access and not signed) or (auth and not access)
        all_headers = {**(self._auth_headers() if use_token else {}), **(headers or {})}
        attempts = self.retry.attempts
        url = self.base_url + API_PREFIX + path
        for attempt in range(1, attempts + 1):
            try:
                request = self._http.build_request(method, path, headers=all_headers, **kwargs)
                if signed:
                    request.headers.update(
                        self._access_headers(
                            method, request.url.raw_path.decode("ascii"), request.read()
                        )
                    )
                if max_bytes is None:
                    response = self._http.send(request)
                else:
                    response = self._bounded(request, max_bytes)
            except httpx.TransportError as exc:
                # A refused connection sent nothing, so even a non-idempotent call may repeat.
                if not (idempotent or isinstance(exc, httpx.ConnectError)) or attempt == attempts:
                    raise ApiUnavailableError(
                        f"{method} {url} failed: {exc or type(exc).__name__}",
                        method=method,
                        url=url,
                    ) from exc
                self._sleep(self.retry.delay(attempt))
                continue
            if response.status_code in RETRY_STATUSES and idempotent and attempt < attempts:
                self._sleep(self.retry.delay(attempt, retry_after=_retry_after(response)))
                continue
            if response.status_code >= 400:
                raise api_error(response.status_code, response.content)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _bounded(self, request: httpx.Request, max_bytes: int) -> httpx.Response:
        """``request`` sent, reading at most ``max_bytes`` of the body (a larger one is
        refused as soon as it shows, without being held in memory)."""
        method = request.method
        response = self._http.send(request, stream=True)
        try:
            announced = response.headers.get("content-length", "")
            too_large = announced.isdigit() and int(announced) > max_bytes
            body = bytearray()
            if not too_large:
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        too_large = True
                        break
        finally:
            response.close()
        if too_large:
            raise UnexpectedResponseError(
                f"{method} {request.url.path} answered more than {max_bytes} bytes"
            )
        return httpx.Response(
            response.status_code, headers=response.headers, content=bytes(body), request=request
        )

    @staticmethod
    def _parse(model: type[_Model], response: httpx.Response) -> _Model:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise UnexpectedResponseError(
                f"{response.request.method} {response.request.url.path} answered a body that "
                f"is not a {model.__name__}: {exc.error_count()} problem(s)"
            ) from exc

    # --- sign-in -------------------------------------------------------------------------

    def nonce(self) -> NonceChallenge:
        """A fresh single-use nonce and the domain, URI and chain id to sign for."""
        response = self._request("GET", "/auth/nonce", idempotent=True, auth=False)
        return self._parse(NonceChallenge, response)

    def sign_in(self, account: LocalAccount, *, statement: str = _SIGN_IN_STATEMENT) -> SessionInfo:
        """Sign in as ``account`` (SIWE) and keep the session token for later calls."""
        challenge = self.nonce()
        message = build_siwe_message(
            domain=challenge.domain,
            address=account.address,
            uri=challenge.uri,
            chain_id=challenge.chain_id,
            nonce=challenge.nonce,
            statement=statement,
        )
        response = self._request(
            "POST",
            "/auth/verify",
            idempotent=False,
            auth=False,
            json={"message": message, "signature": sign_siwe_message(account, message)},
        )
        body = response.json() if response.content else {}
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise UnexpectedResponseError("the sign-in answer holds no session token")
        session = self._parse(SessionInfo, response)
        self._token = token
        self._address = session.address
        self.account = account
        return session

    def session(self) -> SessionInfo:
        """The current session (raises :class:`ApiError` 401 once it has expired)."""
        return self._parse(SessionInfo, self._request("GET", "/auth/session", idempotent=True))

    def logout(self) -> None:
        """Revoke the session on the server and forget the token."""
        if self._token is None:
            return
        try:
            self._request("POST", "/auth/logout", idempotent=True)
        except ApiError as exc:
            if exc.status != 401:  # an expired or revoked session is logged out already
                raise
        finally:
            self._token = None
            self._address = None

    # --- uploads -------------------------------------------------------------------------

    def upload(
        self,
        path: Path | str,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        resume_url: str | None = None,
        filename: str | None = None,
        on_progress: ProgressCallback | None = None,
        on_created: Callable[[UploadRef], None] | None = None,
    ) -> UploadRef:
        """Upload the file at ``path`` with tus (sha256 checksums); return the upload.

        ``resume_url`` continues an earlier upload of the same file from the server's
        offset (a new upload is started when the server no longer knows it).
        ``on_progress(sent, total)`` reports bytes; ``on_created(ref)`` is called when a
        new upload exists on the server, before its first chunk (record it to resume).
        The file name sent as metadata is ``filename`` or the path's name.
        """
        file_path = Path(path)
        with file_path.open("rb") as stream:
            return tus_upload(
                stream,
                endpoint=f"{self.base_url}{API_PREFIX}/uploads/",
                headers=self._auth_headers(),
                metadata={"filename": filename or file_path.name},
                resume_url=resume_url,
                chunk_size=chunk_size,
                timeout=self.timeout,
                retry=self.retry,
                on_progress=on_progress,
                on_created=on_created,
                sleep=self._sleep,
            )

    def get_upload(self, upload_id: str) -> UploadInfo:
        """The state of one of the caller's uploads (and its digests once complete)."""
        response = self._request(
            "GET", f"/uploads/{quote(upload_id, safe='')}", idempotent=True, headers=_TUS
        )
        return self._parse(UploadInfo, response)

    def delete_upload(self, upload_id: str) -> bool:
        """Terminate an unfinished upload; ``False`` when the server no longer knows it."""
        try:
            self._request(
                "DELETE", f"/uploads/{quote(upload_id, safe='')}", idempotent=True, headers=_TUS
            )
        except ApiError as exc:
            if exc.status in (404, 410):
                return False
            raise
        return True

    # --- clips ---------------------------------------------------------------------------

    def create_clip(
        self,
        upload_id: str,
        annotation: Annotation | Mapping[str, Any],
        *,
        camera_path_text: str | None = None,
        idempotency_key: str | None = None,
    ) -> Clip:
        """Submit a complete upload with its annotation; the new clip (owner's view).

        With ``idempotency_key`` the call is safe to repeat: the same key and body give
        the same clip again, so it is retried like a read. A ``409 clip_duplicate``
        carries ``extra["existing_clip_id"]``.
        """
        document = (
            annotation.model_dump(mode="json", exclude_none=True)
            if isinstance(annotation, Annotation)
            else dict(annotation)
        )
        body: dict[str, Any] = {"upload_id": upload_id, "annotation": document}
        if camera_path_text is not None:
            body["camera_path_text"] = camera_path_text
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        response = self._request(
            "POST", "/clips", idempotent=idempotency_key is not None, json=body, headers=headers
        )
        return self._parse(Clip, response)

    def get_clip(self, clip_id: str) -> Clip:
        """One clip: the owner's view for the owner, the public view of an accepted clip."""
        response = self._request("GET", f"/clips/{quote(clip_id, safe='')}", idempotent=True)
        return self._parse(Clip, response)

    def list_clips(
        self, *, status: Iterable[str] | None = None, page_size: int = MAX_PAGE_SIZE
    ) -> Iterator[Clip]:
        """The caller's clips, newest first, following the pages' cursors."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be within 1..{MAX_PAGE_SIZE}")
        statuses = [str(s) for s in status or ()]
        cursor: str | None = None
        while True:
            params: list[tuple[str, str | int]] = [("limit", page_size)]
            params += [("status", s) for s in statuses]
            if cursor is not None:
                params.append(("cursor", cursor))
            page = self._parse(
                ClipPage, self._request("GET", "/clips", idempotent=True, params=params)
            )
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def wait_for_clip(
        self,
        clip_id: str,
        *,
        timeout_s: float,
        interval_s: float = 1.0,
        done: Callable[[Clip], bool] = lambda clip: not clip.is_pending,
    ) -> Clip:
        """Poll a clip until ``done`` (default: ingest decided) or ``timeout_s`` passed.

        Returns the last state seen, which is still pending when the time ran out.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            clip = self.get_clip(clip_id)
            if done(clip) or time.monotonic() >= deadline:
                return clip
            self._sleep(min(interval_s, max(deadline - time.monotonic(), 0.0)))

    # --- rewards -------------------------------------------------------------------------

    def epochs(self, *, limit: int = 20, before: int | None = None) -> EpochPage:
        """Closed epochs, newest first: ``limit`` (1..100) of them, older than ``before``."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be within 1..{MAX_PAGE_SIZE}")
        params: dict[str, int] = {"limit": limit}
        if before is not None:
            params["before"] = before
        response = self._request("GET", "/epochs", idempotent=True, auth=False, params=params)
        return self._parse(EpochPage, response)

    def epoch(self, epoch: int) -> EpochSummary:
        """One closed epoch (``404 epoch_not_found`` for an unknown or open one)."""
        response = self._request(
            "GET", f"/epochs/{_epoch_number(epoch)}", idempotent=True, auth=False
        )
        return self._parse(EpochSummary, response)

    def epoch_inputs(
        self, epoch: int, *, max_bytes: int = MAX_EPOCH_INPUTS_BYTES
    ) -> PublishedEpochInputs:
        """The published inputs of a closed epoch and the backend's result.

        Recompute with ``shotbank.rewards.allocate(published.inputs)`` and compare. A body
        over ``max_bytes`` or one that is not valid inputs raises
        :class:`UnexpectedResponseError`; ``409 epoch_open`` while the epoch is open.
        """
        from shotbank.rewards import EpochInputs, EpochResult, RewardsError

        response = self._request(
            "GET",
            f"/epochs/{_epoch_number(epoch)}/inputs",
            idempotent=True,
            auth=False,
            max_bytes=max_bytes,
        )
        where = f"GET {response.request.url.path}"
        try:
            body = json.loads(response.content)
        except ValueError as exc:
            raise UnexpectedResponseError(f"{where} answered a body that is not JSON") from exc
        if not isinstance(body, dict) or not isinstance(body.get("result"), dict):
            raise UnexpectedResponseError(f"{where} answered no inputs with a result")
        result = body.pop("result")
        try:
            return PublishedEpochInputs(
                inputs=EpochInputs.model_validate(body), result=EpochResult.model_validate(result)
            )
        except ValidationError as exc:
            raise UnexpectedResponseError(
                f"{where} answered inputs that do not validate: {exc.error_count()} "
                f"problem(s), first: {exc.errors(include_url=False)[0]['msg']}"
            ) from exc
        except RewardsError as exc:
            raise UnexpectedResponseError(f"{where} answered inconsistent inputs: {exc}") from exc

    # --- datasets ------------------------------------------------------------------------

    def datasets(self, *, page_size: int = 20) -> Iterator[DatasetHandle]:
        """Every dataset, in id order, following the pages (public; no sign-in needed)."""
        from shotbank.datasets.client import list_datasets

        return list_datasets(self, page_size=page_size)

    def dataset(self, dataset_id: str) -> DatasetHandle:
        """One dataset, with ``.versions()`` (:mod:`shotbank.datasets.client`)."""
        from shotbank.datasets.client import get_dataset

        return get_dataset(self, dataset_id)

    def version(self, dataset_id: str, number: int) -> DatasetVersionHandle:
        """One dataset version: ``.summary``, ``.index()``, ``.manifest()``,
        ``.download(dir)`` and ``.stream()`` (:mod:`shotbank.datasets.client`)."""
        from shotbank.datasets.client import get_version

        return get_version(self, dataset_id, number)

    def version_by_hash(self, version_hash: str) -> DatasetVersionHandle | None:
        """The ready version whose manifest hashes to ``version_hash`` (the on-chain
        ``versionId`` without ``0x``), or ``None`` when the backend has none."""
        from shotbank.datasets.client import get_version_by_hash

        return get_version_by_hash(self, version_hash)

    def licences(self, address: str | None = None) -> list[Licence]:
        """Licences, newest first: the caller's (session or signed request) or, with
        ``address``, that wallet's (public: purchases are public on chain)."""
        if address is None:
            response = self._request("GET", "/licences", idempotent=True, access=True)
        else:
            if not _ADDRESS.match(address):
                raise ValueError(f"not a 20-byte hex address: {address!r}")
            response = self._request("GET", f"/licences/{address}", idempotent=True, auth=False)
        return list(self._parse(LicenceList, response).licences)

    def buy(
        self,
        version: DatasetVersionHandle | DatasetVersionSummary,
        *,
        account: LocalAccount | None = None,
        rpc_url: str | None = None,
        max_price: int | None = None,
        permit: bool = True,
        timeout: float = 300.0,
        progress: bool = True,
    ) -> Licence:
        """Buy a licence for ``version`` on chain and wait until the backend grants access.

        One ``purchaseWithPermit`` transaction (``permit=False``: ``approve`` then
        ``purchase``) from ``account`` (default: the client's), paying at most
        ``max_price`` (default: the listed price), through ``rpc_url`` (default: the
        client's, ``SHOTBANK_RPC_URL``). Returns the :class:`Licence` once ``GET
        /licences`` shows it (after the backend's confirmations), waiting at most
        ``timeout`` seconds in all. See :mod:`shotbank.datasets.market` for the errors.
        """
        from shotbank.datasets.market import buy_licence

        return buy_licence(
            self,
            version,
            account=account,
            rpc_url=rpc_url,
            max_price=max_price,
            permit=permit,
            timeout=timeout,
            progress=progress,
        )

    # --- models --------------------------------------------------------------------------

    def register_model(self, record: RunRecord | Mapping[str, Any]) -> Model:
        """Register a fine-tuning run (its ``run.json`` record; session or signed request)
        and return the model. Idempotent: the same record again answers the same model
        (:mod:`shotbank.client.lineage`)."""
        from shotbank.client.lineage import register_model

        return register_model(self, record)

    def model(self, model_hash: str) -> Model:
        """A registered model by its hash (its weights' SHA-256); public."""
        from shotbank.client.lineage import get_model

        return get_model(self, model_hash)

    def models(
        self, *, registrant: str | None = None, limit: int = 20, before: str | None = None
    ) -> ModelPage:
        """Registered models, newest first (``next_before`` pages on); public."""
        from shotbank.client.lineage import list_models

        return list_models(self, registrant=registrant, limit=limit, before=before)

    def lineage(self, model_hash: str, *, limit: int = 1000) -> Lineage:
        """The dataset versions and contributors behind a registered model; public."""
        from shotbank.client.lineage import get_lineage

        return get_lineage(self, model_hash, limit=limit)

    def rewards(self, address: str) -> Rewards:
        """What ``address`` earned, claimed and can claim now, with the claim's proof."""
        if not _ADDRESS.match(address):
            raise ValueError(f"not a 20-byte hex address: {address!r}")
        response = self._request("GET", f"/rewards/{address}", idempotent=True, auth=False)
        return self._parse(Rewards, response)


def _epoch_number(epoch: int) -> int:
    if isinstance(epoch, bool) or not 1 <= epoch < 2**64:
        raise ValueError(f"not an epoch number: {epoch!r}")
    return epoch


class Client(ShotbankClient):
    """``Client(api_url, account=...)``: a :class:`ShotbankClient` signed in at once.

    With an ``account`` it signs in with Sign-In with Ethereum before returning (its
    session then authenticates every call; the account still signs purchases); without
    one it is a public client. ``sign_in=False`` keeps the account for signed requests
    only (no session). Other options are :class:`ShotbankClient`'s.
    """

    def __init__(
        self,
        api_url: str,
        *,
        account: LocalAccount | None = None,
        sign_in: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(api_url, account=account, **options)
        if account is not None and sign_in:
            try:
                self.sign_in(account)
            except BaseException:
                self.close()
                raise
