"""How often, and how patiently, the client repeats a request that may safely be repeated.

Only idempotent requests are retried (reads, tus ``HEAD``/``PATCH`` -- a ``PATCH`` names
its offset, so a repeat that arrives twice is refused, not applied twice -- and a
``POST /clips`` that carries an ``Idempotency-Key``), and only on failures that say
"try again": no connection, a timeout, ``503``. Backoff is exponential with jitter and
capped, and the number of attempts is bounded.
"""

from __future__ import annotations

import random
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RETRY_STATUSES", "RetryPolicy"]

#: HTTP statuses that mean "the server is busy or restarting: try again".
RETRY_STATUSES: Final = frozenset({502, 503, 504})


class RetryPolicy(BaseModel):
    """Attempts per request and the backoff between them."""

    model_config = ConfigDict(frozen=True)

    attempts: int = Field(default=4, ge=1, le=20)
    """Tries in all, the first included."""
    backoff_s: float = Field(default=0.5, ge=0, le=30)
    """Pause before the second try; doubled for each further one."""
    max_backoff_s: float = Field(default=8.0, ge=0, le=300)
    """Longest pause between two tries."""

    def delay(self, retry: int, *, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the second try).

        A server's ``Retry-After`` is honoured up to ``max_backoff_s``.
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff_s)
        base: float = min(self.backoff_s * 2.0 ** (retry - 1), self.max_backoff_s)
        return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not a secret
