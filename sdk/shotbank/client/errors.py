"""Exceptions of the HTTP API client, as one tree.

The backend answers every error with ``{"error": {"code", "message", ...}}``;
:class:`ApiError` carries that envelope (HTTP status, stable code, human sentence,
field ``details`` and any extra members such as ``existing_clip_id``), so callers branch
on ``code``, never on message text. As elsewhere in the SDK, subclasses that mean
"cannot connect" or "bad value" also inherit from the matching built-in exception.

::

    ShotbankError
    └── ClientError
        ├── ApiError                               the server answered with an error envelope
        ├── ApiUnavailableError (+ConnectionError)  no answer after the allowed retries
        ├── UnexpectedResponseError (+ValueError)   an answer that does not fit the API contract
        ├── NotSignedInError                        the call needs ``sign_in`` first
        └── KeyLoadError (+ValueError)              a private key cannot be loaded
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shotbank.errors import ShotbankError

__all__ = [
    "ApiError",
    "ApiUnavailableError",
    "ClientError",
    "KeyLoadError",
    "NotSignedInError",
    "UnexpectedResponseError",
]


class ClientError(ShotbankError):
    """Base class of every error raised by :mod:`shotbank.client`."""


class ApiError(ClientError):
    """The server answered a request with an error.

    ``status`` is the HTTP status, ``code`` the stable machine-readable code of the
    envelope (``"clip_duplicate"``, ``"upload_expired"``...; ``"http_<status>"`` when the
    answer had no envelope), ``message`` the server's sentence, ``details`` the field
    problems of a ``validation_error`` and ``extra`` every other member of the error
    object (``existing_clip_id`` for a duplicate).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: list[dict[str, Any]] = list(details or ())
        self.extra: dict[str, Any] = dict(extra or {})


class ApiUnavailableError(ClientError, ConnectionError):
    """The server could not be reached (refused, timed out, 503) after the allowed retries.

    For a request that is not idempotent the outcome is unknown: the server may have
    acted on it. ``method`` and ``url`` name the request.
    """

    def __init__(self, message: str, *, method: str, url: str) -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class UnexpectedResponseError(ClientError, ValueError):
    """The server's answer does not fit the API contract (wrong shape, missing header)."""


class NotSignedInError(ClientError):
    """The call needs a session: call :meth:`ShotbankClient.sign_in` first."""


class KeyLoadError(ClientError, ValueError):
    """A private key cannot be loaded: missing, unreadable, malformed or wrong password.

    The message never contains key material.
    """
