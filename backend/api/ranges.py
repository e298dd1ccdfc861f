"""Parsing the HTTP ``Range`` header (RFC 9110 §14) for byte ranges of a known size.

Policy (what :func:`select_range` answers):

* no ``Range``, another unit than ``bytes``, or a header that does not parse (e.g.
  ``bytes=5-2``, junk): ignored, the whole representation is sent (§14.2 allows a
  server to ignore ``Range``);
* several ranges (``bytes=0-1,5-6``): ignored as well; we never send
  ``multipart/byteranges`` (§14.2: a server MAY ignore ``Range``). The client gets a
  plain 200 with the whole body, which every client handles;
* one satisfiable range: ``bytes=a-b`` (``b`` clamped to the last byte), ``bytes=a-``,
  ``bytes=-n`` (the last ``n`` bytes, the whole body when ``n`` exceeds it) -> 206;
* one unsatisfiable range (``a`` at or past the end, ``bytes=-0``) -> 416 with
  ``Content-Range: bytes */size``;
* an empty representation is always sent whole (no range of it can be expressed in a
  ``Content-Range``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from backend.errors import RangeNotSatisfiableError

#: Longest Range header parsed; longer ones are ignored (the body is sent whole).
MAX_RANGE_CHARS: Final = 1024
_SPEC: Final = re.compile(r"(?P<first>\d{1,19})?-(?P<last>\d{1,19})?")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``[start, end)`` of a representation of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        """Bytes in the range."""
        return self.end - self.start

    @property
    def content_range(self) -> str:
        """The ``Content-Range`` value of a 206 answer (inclusive last byte)."""
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


def select_range(header: str | None, size: int) -> ByteRange | None:
    """The one range to send, or None to send everything; see the module docstring.

    Raises RangeNotSatisfiableError for a single unsatisfiable range.
    """
    if header is None or len(header) > MAX_RANGE_CHARS or size == 0:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    spec = spec.strip()
    if "," in spec:
        return None
    match = _SPEC.fullmatch(spec)
    if match is None:
        return None
    first, last = match["first"], match["last"]
    if first is None:
        if last is None:
            return None
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiableError("A range of the last 0 bytes is empty.", size=size)
        return ByteRange(start=max(0, size - suffix), end=size, size=size)
    start = int(first)
    if last is not None and int(last) < start:
        return None  # invalid range-spec: ignore the header
    if start >= size:
        raise RangeNotSatisfiableError(
            f"The range starts at byte {start}, but the content has {size} bytes.", size=size
        )
    end = size if last is None else min(int(last) + 1, size)
    return ByteRange(start=start, end=end, size=size)
