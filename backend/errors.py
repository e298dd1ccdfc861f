"""The backend's exception tree and the one place that turns errors into HTTP responses.

Services raise these; they never raise HTTP errors. Each class carries a stable,
machine-readable ``code``; the handler below picks the HTTP status from the class and
answers ``{"error": {"code": ..., "message": ...}}``, plus the error's ``details`` (field
problems) and ``extra`` members where it has them (e.g. ``existing_clip_id``)::

    BackendError                            internal_error          500
    ├── ConfigurationError                  configuration_error     500
    ├── BadRequestError                     bad_request             400
    │   └── InvalidCidError                 invalid_cid             (not a CIDv1 sha2-256)
    ├── DependencyUnavailableError          dependency_unavailable  503
    │   ├── BlobDamagedError                blob_damaged            (bytes no longer match the CID)
    │   │   └── DatasetSampleDamagedError   dataset_sample_damaged  (clip bytes not as recorded)
    │   └── EpochFundingUnknownError        epoch_funding_unknown   (no indexed funding: no close)
    ├── InvalidInputError (ValueError)      invalid_input           422
    │   ├── FieldValidationError            validation_error        (+ details)
    │   ├── CameraPathInvalidError          camera_path_invalid     (+ line)
    │   ├── IdempotencyKeyReusedError       idempotency_key_reused
    │   ├── InvalidCursorError              invalid_cursor
    │   ├── ReportSignatureInvalidError     report_signature_invalid (not the caller's)
    │   ├── ReportDeadlineMismatchError     report_deadline_mismatch (not the lease's)
    │   ├── InvalidSignatureError           invalid_signature       (epoch root, not the caller's)
    │   ├── InvalidAddressError             invalid_address         (not a 20-byte hex address)
    │   ├── DatasetVersionInvalidError      dataset_version_invalid (samples that make no version)
    │   ├── RunDatasetMismatchError         run_dataset_mismatch    (not the version's sample count)
    │   └── DatasetFilterInvalidError       dataset_filter_invalid
    ├── NotFoundError (LookupError)         not_found               404
    │   ├── UploadNotFoundError             upload_not_found        404
    │   ├── BlobNotFoundError               blob_not_found          404
    │   ├── ClipNotFoundError               clip_not_found          404
    │   ├── PosterNotFoundError             poster_not_found        404
    │   ├── LeaseNotFoundError              lease_not_found         (unknown or another's)
    │   ├── ValidatorNotFoundError          validator_not_found
    │   ├── EpochNotFoundError              epoch_not_found         (unknown or still open)
    │   ├── DatasetNotFoundError            dataset_not_found
    │   ├── DatasetVersionNotFoundError     dataset_version_not_found
    │   ├── DatasetShardNotFoundError       dataset_shard_not_found (not a shard of the version)
    │   └── ModelNotFoundError              model_not_found         (no model has this hash)
    ├── ConflictError                       conflict                409
    │   ├── UploadOffsetMismatchError       upload_offset_mismatch
    │   ├── UploadBusyError                 upload_busy
    │   ├── UploadIncompleteError           upload_incomplete
    │   ├── UploadAlreadyUsedError          upload_already_used     (+ clip_id)
    │   ├── ClipDuplicateError              clip_duplicate          (+ existing_clip_id)
    │   ├── ClipBusyError                   clip_busy
    │   ├── ClipNotEditableError            clip_not_editable
    │   ├── LeaseReportedError              lease_reported          (cannot be returned)
    │   ├── LeaseExpiredError               lease_expired
    │   ├── LeaseReturnedError              lease_returned
    │   ├── AnnotationChangedError          annotation_changed
    │   ├── ReportDuplicateError            report_duplicate        (also a replay)
    │   ├── ClipDecidedError                clip_decided
    │   ├── ClipUndecidedError              clip_undecided          (no reports shown yet)
    │   ├── EpochOpenError                  epoch_open              (inputs not frozen yet)
    │   ├── EpochNotSignableError           epoch_not_signable      (open, empty, submitted, past)
    │   ├── EpochRootMismatchError          epoch_root_mismatch     (not the published root)
    │   ├── DatasetVersionExistsError       dataset_version_exists  (versions are immutable)
    │   ├── DatasetSlugTakenError           dataset_slug_taken
    │   ├── ModelExistsError                model_exists            (another record or registrant)
    │   └── DatasetEmptyMatchError          dataset_empty_match     (nothing to freeze)
    ├── AuthenticationError                 unauthenticated         401
    │   ├── SessionInvalidError             session_invalid
    │   ├── SessionExpiredError             session_expired
    │   ├── SignInRejectedError             sign_in_rejected
    │   │   ├── SiweMalformedError          siwe_malformed
    │   │   ├── SiweDomainMismatchError     siwe_domain_mismatch
    │   │   ├── SiweUriMismatchError        siwe_uri_mismatch
    │   │   ├── SiweChainMismatchError      siwe_chain_mismatch
    │   │   ├── SiweExpiredError            siwe_expired   (also not yet valid, no/too long expiry)
    │   │   ├── SiweInvalidSignatureError   siwe_invalid_signature
    │   │   ├── NonceUnknownError           nonce_unknown
    │   │   ├── NonceUsedError              nonce_used      (a replayed message)
    │   │   └── NonceExpiredError           nonce_expired
    │   └── SignedRequestRejectedError      invalid_authorization   (Shotbank-Signature header)
    │       ├── RequestSignatureInvalidError request_signature_invalid
    │       ├── RequestExpiredError         request_expired         (timestamp outside 300 s)
    │       └── RequestReplayedError        request_replayed        (nonce seen before)
    ├── LicenceRequiredError                licence_required        402 (names the purchase call)
    ├── PermissionDeniedError               permission_denied       403
    │   ├── ValidatorNotStakedError         validator_not_staked    (no active stake)
    │   └── NotAnOperatorError              not_an_operator         (not in SHOTBANK_OPERATORS)
    ├── LimitExceededError                  limit_exceeded          413
    │   ├── UploadTooLargeError             upload_too_large
    │   └── UploadQuotaExceededError        upload_quota_exceeded
    ├── RateLimitedError                    rate_limited            429
    ├── GoneError                           gone                    410
    │   └── UploadExpiredError              upload_expired
    ├── PreconditionFailedError             precondition_failed     412 (tus version)
    │   └── RevisionMismatchError           revision_mismatch       (stale If-Match)
    ├── UnsupportedMediaTypeError           unsupported_media_type  415
    ├── RequestTimeoutError                 request_timeout         408 (slow bodies)
    ├── ChecksumMismatchError               checksum_mismatch       460 (tus checksum)
    ├── RangeNotSatisfiableError            range_not_satisfiable   416 (+ Content-Range)
    └── DevstackError                       devstack_error          (never in a request)
        └── PortInUseError                  port_in_use

Requests the framework rejects use the same envelope with these codes:
``validation_error`` (422, with ``details``), ``not_found`` (404, unknown route),
``method_not_allowed`` (405), ``http_error`` (other 4xx/5xx raised by Starlette) and
``internal_error`` (500, an unexpected exception; its text is logged, not returned).

A subclass may narrow ``code`` (``ClipNotFoundError.code = "clip_not_found"``) but a
published code never changes meaning. Messages are shown to API callers: write them as
a sentence for a human and never put secrets in them.

Errors of the SDK (``shotbank.errors.ShotbankError`` and its chain branch) are a separate
tree; services translate the ones they expect into these.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

#: At most this many validation problems are echoed back in one response.
MAX_VALIDATION_DETAILS: Final = 50


class BackendError(Exception):
    """Base of every error the backend raises on purpose."""

    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the answer must carry (a protocol requires some)."""
        return {}

    @property
    def details(self) -> list[dict[str, Any]] | None:
        """Field-level problems (``{"loc", "msg", "type"}``), for a 422 answer."""
        return None

    @property
    def extra(self) -> dict[str, str | int]:
        """Further members of the error object (e.g. the id of a conflicting object)."""
        return {}


class ConfigurationError(BackendError):
    """The service is configured in a way it cannot work with (bad file, bad URL)."""

    code = "configuration_error"


class BadRequestError(BackendError):
    """The request is malformed in a way no validation model describes (a path token)."""

    code = "bad_request"


class InvalidCidError(BadRequestError):
    """The value is not a CID this service stores (CIDv1, raw or dag-pb, sha2-256)."""

    code = "invalid_cid"


class DependencyUnavailableError(BackendError):
    """A service the backend needs (database, chain node, blob store) did not answer."""

    code = "dependency_unavailable"


class BlobDamagedError(DependencyUnavailableError):
    """The stored bytes of a blob no longer hash to its CID; it is quarantined."""

    code = "blob_damaged"


class InvalidInputError(BackendError, ValueError):
    """A caller supplied a value that is well-formed but not acceptable."""

    code = "invalid_input"


class FieldValidationError(InvalidInputError):
    """Fields of the request are invalid; ``details`` says where and why.

    The same shape as the framework's own ``validation_error`` answers, for checks the
    services make themselves (an annotation after a merge patch, against the media).
    """

    code = "validation_error"

    def __init__(self, message: str, *, details: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(message)
        self._details = [dict(detail) for detail in details[:MAX_VALIDATION_DETAILS]]

    @property
    def details(self) -> list[dict[str, Any]]:
        """The field problems, at most :data:`MAX_VALIDATION_DETAILS`."""
        return self._details


class CameraPathInvalidError(InvalidInputError):
    """A camera-path text cannot be read; ``line`` is the 1-based line of the problem."""

    code = "camera_path_invalid"

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line

    @property
    def extra(self) -> dict[str, str | int]:
        """``line`` when the problem is on one line."""
        return {"line": self.line} if self.line is not None else {}


class IdempotencyKeyReusedError(InvalidInputError):
    """An ``Idempotency-Key`` was used before with a different request body."""

    code = "idempotency_key_reused"


class InvalidCursorError(InvalidInputError):
    """A pagination cursor is garbled, forged, or was made for another filter."""

    code = "invalid_cursor"


class NotFoundError(BackendError, LookupError):
    """The requested object does not exist (or the caller may not know that it does)."""

    code = "not_found"


class BlobNotFoundError(NotFoundError):
    """No blob with this CID is stored."""

    code = "blob_not_found"


class ClipNotFoundError(NotFoundError):
    """No such clip, or the caller may not see it (existence is not leaked)."""

    code = "clip_not_found"


class PosterNotFoundError(NotFoundError):
    """The clip has no poster (yet: it is made when the clip is probed)."""

    code = "poster_not_found"


class ConflictError(BackendError):
    """The request conflicts with the current state (duplicate, stale version)."""

    code = "conflict"


class UploadIncompleteError(ConflictError):
    """The upload has not received all its bytes yet."""

    code = "upload_incomplete"


class UploadAlreadyUsedError(ConflictError):
    """The upload's bytes are already bound to a clip (``clip_id`` when known)."""

    code = "upload_already_used"

    def __init__(self, message: str, *, clip_id: str | None = None) -> None:
        super().__init__(message)
        self.clip_id = clip_id

    @property
    def extra(self) -> dict[str, str | int]:
        """``clip_id``: the clip the upload is bound to."""
        return {"clip_id": self.clip_id} if self.clip_id is not None else {}


class ClipDuplicateError(ConflictError):
    """A live clip with the same content (SHA-256) exists, whoever submitted it."""

    code = "clip_duplicate"

    def __init__(self, message: str, *, existing_clip_id: str) -> None:
        super().__init__(message)
        self.existing_clip_id = existing_clip_id

    @property
    def extra(self) -> dict[str, str | int]:
        """``existing_clip_id``: the live clip with this content."""
        return {"existing_clip_id": self.existing_clip_id}


class ClipBusyError(ConflictError):
    """The clip is being worked on (probed) or changed meanwhile; try again shortly."""

    code = "clip_busy"


class ClipNotEditableError(ConflictError):
    """The clip is past the states in which its contributor may change or withdraw it."""

    code = "clip_not_editable"


class ReportSignatureInvalidError(InvalidInputError):
    """A report's signature is malformed or was not made by the signed-in validator over
    the report rebuilt from its lease (a forged report, or one meant for another lease)."""

    code = "report_signature_invalid"


class ReportDeadlineMismatchError(InvalidInputError):
    """A report's ``deadline`` is not its lease's."""

    code = "report_deadline_mismatch"


class LeaseNotFoundError(NotFoundError):
    """No lease with this id belongs to the caller (another validator's looks the same)."""

    code = "lease_not_found"


class ValidatorNotFoundError(NotFoundError):
    """The address has neither stake nor reports."""

    code = "validator_not_found"


class EpochNotFoundError(NotFoundError):
    """No closed epoch has this number (it does not exist yet, or it is still open)."""

    code = "epoch_not_found"


class EpochOpenError(ConflictError):
    """The epoch is still open: its inputs are not frozen yet."""

    code = "epoch_open"


class EpochNotSignableError(ConflictError):
    """The epoch takes no signatures: open, empty (no root), or its root is past signing."""

    code = "epoch_not_signable"


class EpochRootMismatchError(ConflictError):
    """A signature names another root or cumulative total than the epoch published."""

    code = "epoch_root_mismatch"


class InvalidSignatureError(InvalidInputError):
    """A signature is malformed, or was not made by the signed-in address over the
    message rebuilt from the request (an epoch root)."""

    code = "invalid_signature"


class InvalidAddressError(InvalidInputError):
    """The value is not a 20-byte hex address (``0x`` + 40 hex digits, any case)."""

    code = "invalid_address"


class DatasetSampleDamagedError(BlobDamagedError):
    """A clip's bytes, read to pack a dataset version, do not match its recorded SHA-256,
    CID or size; nothing of the version is kept."""

    code = "dataset_sample_damaged"


class DatasetVersionInvalidError(InvalidInputError):
    """The samples given cannot make a dataset version (none, a key twice, a record that
    breaks the format, a shard target out of range)."""

    code = "dataset_version_invalid"


class DatasetVersionExistsError(ConflictError):
    """A dataset version is already stored where a new one was to be written; versions
    are immutable."""

    code = "dataset_version_exists"


class DatasetFilterInvalidError(InvalidInputError):
    """A dataset's filter is not a valid ``DatasetFilter`` document."""

    code = "dataset_filter_invalid"


class DatasetSlugTakenError(ConflictError):
    """Another dataset already has this slug."""

    code = "dataset_slug_taken"


class DatasetEmptyMatchError(ConflictError):
    """No accepted clip matches the dataset's filter now: there is nothing to freeze."""

    code = "dataset_empty_match"


class DatasetNotFoundError(NotFoundError):
    """No dataset has this id."""

    code = "dataset_not_found"


class DatasetVersionNotFoundError(NotFoundError):
    """The dataset has no version of this number (or it is not ready for this read)."""

    code = "dataset_version_not_found"


class DatasetShardNotFoundError(NotFoundError):
    """The name is not one of the version's shards (per its ``index.json``)."""

    code = "dataset_shard_not_found"


class ModelNotFoundError(NotFoundError):
    """No registered model has this hash."""

    code = "model_not_found"


class ModelExistsError(ConflictError):
    """The model hash is registered already, with another run record or by another
    address (registering the identical record again is not an error)."""

    code = "model_exists"


class RunDatasetMismatchError(InvalidInputError):
    """A run record does not fit the dataset version it names (another sample count)."""

    code = "run_dataset_mismatch"


class LicenceRequiredError(BackendError):
    """The signed-in address holds no licence for the dataset version; the message names
    the DatasetMarket call that buys one."""

    code = "licence_required"


class EpochFundingUnknownError(DependencyUnavailableError):
    """An epoch cannot close before the reward indexer has read the distributor's funding
    at least once (it would allocate from a pool it does not know)."""

    code = "epoch_funding_unknown"


class LeaseReportedError(ConflictError):
    """The lease was already reported on; it cannot be returned."""

    code = "lease_reported"


class LeaseExpiredError(ConflictError):
    """The lease's deadline passed; its clip may be leased to someone else."""

    code = "lease_expired"


class LeaseReturnedError(ConflictError):
    """The lease was returned by its holder."""

    code = "lease_returned"


class AnnotationChangedError(ConflictError):
    """The clip's annotation is no longer the one that was leased."""

    code = "annotation_changed"


class ReportDuplicateError(ConflictError):
    """The validator already reported on this clip (a replayed report is one, too)."""

    code = "report_duplicate"


class ClipDecidedError(ConflictError):
    """The clip was decided already; no more reports are taken."""

    code = "clip_decided"


class ClipUndecidedError(ConflictError):
    """The clip is not decided yet; its reports stay hidden until it is."""

    code = "clip_undecided"


class AuthenticationError(BackendError):
    """The caller is not signed in, or its credentials are invalid or expired."""

    code = "unauthenticated"


class PermissionDeniedError(BackendError):
    """The caller is signed in but may not do this."""

    code = "permission_denied"


class NotAnOperatorError(PermissionDeniedError):
    """The caller is signed in but is not one of the operators (``SHOTBANK_OPERATORS``)."""

    code = "not_an_operator"


class ValidatorNotStakedError(PermissionDeniedError):
    """The caller has no active stake in the validator stake snapshot; the message says
    how much to stake where (``backend.services.stakes.require_validator``)."""

    code = "validator_not_staked"


class LimitExceededError(BackendError):
    """A size, count or rate limit was exceeded."""

    code = "limit_exceeded"


class UploadNotFoundError(NotFoundError):
    """No upload with this id belongs to the caller (another wallet's id looks the same)."""

    code = "upload_not_found"


class UploadOffsetMismatchError(ConflictError):
    """A tus ``PATCH`` did not start at the upload's current ``Upload-Offset``."""

    code = "upload_offset_mismatch"


class UploadBusyError(ConflictError):
    """Another request is writing to this upload right now."""

    code = "upload_busy"


class SessionInvalidError(AuthenticationError):
    """The session token is unknown or was revoked (logged out)."""

    code = "session_invalid"


class SessionExpiredError(AuthenticationError):
    """The session token was valid but has expired; sign in again."""

    code = "session_expired"


class SignInRejectedError(AuthenticationError):
    """A Sign-In with Ethereum attempt was rejected; subclasses say why."""

    code = "sign_in_rejected"


class SiweMalformedError(SignInRejectedError):
    """The message is not a valid, canonical EIP-4361 message (or is too long)."""

    code = "siwe_malformed"


class SiweDomainMismatchError(SignInRejectedError):
    """The message was written for another domain."""

    code = "siwe_domain_mismatch"


class SiweUriMismatchError(SignInRejectedError):
    """The message's URI is not this service's."""

    code = "siwe_uri_mismatch"


class SiweChainMismatchError(SignInRejectedError):
    """The message is for another chain id."""

    code = "siwe_chain_mismatch"


class SiweExpiredError(SignInRejectedError):
    """The message is outside its validity window (expired, not yet valid, no expiry)."""

    code = "siwe_expired"


class SiweInvalidSignatureError(SignInRejectedError):
    """The signature does not decode, or was not made by the message's address."""

    code = "siwe_invalid_signature"


class NonceUnknownError(SignInRejectedError):
    """The message's nonce was never issued by this service."""

    code = "nonce_unknown"


class NonceUsedError(SignInRejectedError):
    """The message's nonce was already used: the message is a replay."""

    code = "nonce_used"


class NonceExpiredError(SignInRejectedError):
    """The message's nonce was issued too long ago."""

    code = "nonce_expired"


class SignedRequestRejectedError(AuthenticationError):
    """A ``Shotbank-Signature`` header is malformed (or too long); subclasses say why else
    a signed request was refused."""

    code = "invalid_authorization"


class RequestSignatureInvalidError(SignedRequestRejectedError):
    """A signed request's signature does not recover to the address it names."""

    code = "request_signature_invalid"


class RequestExpiredError(SignedRequestRejectedError):
    """A signed request's timestamp is outside the accepted window."""

    code = "request_expired"


class RequestReplayedError(SignedRequestRejectedError):
    """A signed request's ``(address, nonce)`` was seen before."""

    code = "request_replayed"


class UploadTooLargeError(LimitExceededError):
    """An upload (or one request's body) is larger than allowed or than declared."""

    code = "upload_too_large"


class UploadQuotaExceededError(LimitExceededError):
    """A wallet's concurrent uploads or daily bytes would go over its quota."""

    code = "upload_quota_exceeded"


class RateLimitedError(BackendError):
    """Too many requests of this kind; try again later."""

    code = "rate_limited"


class GoneError(BackendError):
    """The object existed but is no longer available."""

    code = "gone"


class UploadExpiredError(GoneError):
    """The upload was not finished before its ``Upload-Expires`` time."""

    code = "upload_expired"


class PreconditionFailedError(BackendError):
    """A protocol precondition is not met (e.g. an unsupported ``Tus-Resumable``)."""

    code = "precondition_failed"


class RevisionMismatchError(PreconditionFailedError):
    """``If-Match`` names a revision that is no longer the current one."""

    code = "revision_mismatch"


class UnsupportedMediaTypeError(BackendError):
    """The request body has a content type this endpoint does not accept."""

    code = "unsupported_media_type"


class RequestTimeoutError(BackendError):
    """The request body arrived too slowly and was cut off."""

    code = "request_timeout"


class ChecksumMismatchError(BackendError):
    """The body does not match its ``Upload-Checksum``; it was discarded."""

    code = "checksum_mismatch"


class RangeNotSatisfiableError(BackendError):
    """No byte of the requested range lies inside the representation."""

    code = "range_not_satisfiable"

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size

    @property
    def headers(self) -> dict[str, str]:
        """RFC 9110 §15.5.17: the current length, as ``Content-Range: bytes */size``."""
        return {"Content-Range": f"bytes */{self.size}"}


class DevstackError(BackendError):
    """The local development stack (``make up``) cannot start or keep running."""

    code = "devstack_error"


class PortInUseError(DevstackError):
    """A port the devstack wants to listen on is already taken."""

    code = "port_in_use"


#: HTTP status per error class; the most specific class in the MRO wins.
_HTTP_STATUS: Final[dict[type[BackendError], int]] = {
    BackendError: 500,
    BadRequestError: 400,
    ConfigurationError: 500,
    DependencyUnavailableError: 503,
    InvalidInputError: 422,
    NotFoundError: 404,
    ConflictError: 409,
    AuthenticationError: 401,
    LicenceRequiredError: 402,
    PermissionDeniedError: 403,
    LimitExceededError: 413,
    RateLimitedError: 429,
    GoneError: 410,
    PreconditionFailedError: 412,
    UnsupportedMediaTypeError: 415,
    RequestTimeoutError: 408,
    # tus checksum extension: "460 Checksum Mismatch" (not an IANA status).
    ChecksumMismatchError: 460,
    RangeNotSatisfiableError: 416,
}


class ErrorBody(BaseModel):
    """What went wrong: a stable code for programs and a sentence for people.

    Some errors add members (``existing_clip_id``, ``clip_id``, ``line``): see the
    error classes' ``extra``.
    """

    model_config = ConfigDict(extra="allow")

    code: str = Field(max_length=64)
    message: str = Field(max_length=2000)
    details: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_VALIDATION_DETAILS)


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody


def http_status_for(error: BackendError) -> int:
    """The HTTP status that ``error`` is answered with."""
    for cls in type(error).__mro__:
        if cls in _HTTP_STATUS:
            return _HTTP_STATUS[cls]
    return 500  # pragma: no cover - BackendError itself is always in the table


def _respond(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, str | int] | None = None,
) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorBody(code=code, message=message, details=details, **(extra or {}))
    )
    return JSONResponse(
        status_code=status, content=body.model_dump(exclude_none=True), headers=headers
    )


async def _handle_backend_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BackendError)
    status = http_status_for(exc)
    if status >= 500:
        logger.error("%s: %s", exc.code, exc.message)
    return _respond(
        status,
        exc.code,
        exc.message,
        details=exc.details,
        headers=exc.headers or None,
        extra=exc.extra,
    )


async def _handle_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    # The offending input is deliberately not echoed: it may be large or secret.
    details = [
        {
            "loc": list(problem.get("loc", ())),
            "msg": str(problem.get("msg", ""))[:500],
            "type": str(problem.get("type", ""))[:64],
        }
        for problem in problems[:MAX_VALIDATION_DETAILS]
    ]
    count = len(problems)
    message = f"The request is invalid ({count} problem{'s' if count != 1 else ''})."
    return _respond(422, "validation_error", message, details)


_HTTP_CODES: Final = {404: "not_found", 405: "method_not_allowed"}


async def _handle_http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    try:
        default_message = HTTPStatus(exc.status_code).phrase
    except ValueError:
        default_message = "HTTP error"
    detail = exc.detail if isinstance(exc.detail, str) else default_message
    return _respond(exc.status_code, code, detail, headers=exc.headers)


async def _handle_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error", exc_info=exc)
    return _respond(500, "internal_error", "An internal error occurred.")


def register_error_handlers(app: FastAPI) -> None:
    """Make ``app`` answer every error with an :class:`ErrorResponse` body."""
    app.add_exception_handler(BackendError, _handle_backend_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(Exception, _handle_unexpected)
