"""A cap on request body size for every route that reads its body whole (JSON).

Streaming routes (the tus uploads) are excluded by prefix: they enforce their own
limits while they stream. Routes whose documents are legitimately larger (a clip
submission may carry a camera path of thousands of keyframes) get their own cap by path
prefix.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.errors import ErrorBody, ErrorResponse


class BodySizeLimitMiddleware:
    """Answer 413 when a body (declared or streamed) exceeds ``max_bytes``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        exclude_prefix: str,
        prefix_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exclude_prefix = exclude_prefix
        self.prefix_limits = dict(prefix_limits or {})

    def _limit_for(self, path: str) -> int:
        for prefix, limit in self.prefix_limits.items():
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check ``Content-Length`` up front and count streamed bytes as they arrive."""
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(self.exclude_prefix):
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(path)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._reject(send, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLargeError
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLargeError:
            await self._reject(send, limit)

    async def _reject(self, send: Send, limit: int) -> None:
        body = ErrorResponse(
            error=ErrorBody(
                code="request_too_large",
                message=f"The request body is larger than {limit} bytes.",
            )
        ).model_dump_json(exclude_none=True)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


class _TooLargeError(Exception):
    """Raised inside the app's ``receive`` when the streamed body is too large."""
