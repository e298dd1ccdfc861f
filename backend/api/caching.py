"""HTTP caching helpers shared by routes: entity tags and ``If-None-Match`` (RFC 9110 §13).

Only what our immutable and versioned documents need: strong ETags, ``If-None-Match``
with weak comparison (as §13.1.2 prescribes), ``If-Range`` with strong comparison.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from fastapi import Request, Response

#: Longest conditional header looked at; longer ones are treated as not matching.
MAX_CONDITION_CHARS: Final = 8192

NOSNIFF: Final = {"X-Content-Type-Options": "nosniff"}


def strong_etag(opaque: str) -> str:
    """A strong entity tag (quoted) from an opaque value without ``"``."""
    return f'"{opaque}"'


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def if_none_match(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` matches ``etag`` (``*`` or a weakly equal tag).

    A match means the client's copy is current: answer 304 to GET/HEAD.
    """
    if header is None or len(header) > MAX_CONDITION_CHARS:
        return False
    opaque = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == opaque for tag in _tags(header))


def if_range(header: str | None, etag: str) -> bool:
    """Whether a ``Range`` may be honoured under ``If-Range`` (absent, or strongly equal).

    We send no ``Last-Modified``, so a date in ``If-Range`` never matches (§13.1.5:
    then the full representation is sent).
    """
    if header is None:
        return True
    tag = header.strip()
    return not tag.startswith("W/") and tag == etag


def cacheable_json(
    request: Request, content: Any, *, media_type: str, cache_control: str
) -> Response:
    """A JSON document with a strong ETag over its bytes; 304 when the client has it."""
    body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    etag = strong_etag(hashlib.sha256(body).hexdigest()[:32])
    headers = {"ETag": etag, "Cache-Control": cache_control, **NOSNIFF}
    if if_none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type=media_type, headers=headers)
