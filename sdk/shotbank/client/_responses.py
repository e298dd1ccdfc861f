"""Turning the backend's error envelope into :class:`ApiError`."""

from __future__ import annotations

import json
from typing import Any, Final

from shotbank.client.errors import ApiError

#: Longest error body that is parsed; the backend's are a few hundred bytes.
_MAX_ERROR_BODY: Final = 256 * 1024
_MAX_MESSAGE_CHARS: Final = 2000


def api_error(status: int, body: bytes | None, *, fallback: str | None = None) -> ApiError:
    """The :class:`ApiError` for an error answer with ``body`` (an envelope, or anything)."""
    envelope: Any = None
    if body and len(body) <= _MAX_ERROR_BODY:
        try:
            envelope = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            envelope = None
    error = envelope.get("error") if isinstance(envelope, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        message = str(error.get("message", ""))[:_MAX_MESSAGE_CHARS]
        details = error.get("details")
        if isinstance(details, list):
            details = [item for item in details if isinstance(item, dict)]
        extra = {k: v for k, v in error.items() if k not in ("code", "message", "details")}
        return ApiError(
            status,
            error["code"],
            message,
            details=details if isinstance(details, list) else None,
            extra=extra,
        )
    return ApiError(status, f"http_{status}", fallback or f"the server answered HTTP {status}")
