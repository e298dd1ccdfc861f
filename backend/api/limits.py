"""A cap on request body size for every route that reads its body whole (JSON).

Streaming routes (the tus uploads) are excluded by prefix: they enforce their own
limits while they stream.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.errors import ErrorBody, ErrorResponse


class BodySizeLimitMiddleware:
    """Answer 413 when a body (declared or streamed) exceeds ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, exclude_prefix: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exclude_prefix = exclude_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check ``Content-Length`` up front and count streamed bytes as they arrive."""
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(self.exclude_prefix):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLargeError
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLargeError:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = ErrorResponse(
            error=ErrorBody(
                code="request_too_large",
                message=f"The request body is larger than {self.max_bytes} bytes.",
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
