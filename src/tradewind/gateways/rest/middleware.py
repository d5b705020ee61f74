"""ASGI middleware of the REST gateway.

Invariants:
- no request body larger than the limit is ever buffered: a declared
  ``Content-Length`` above it is refused before reading, and a streamed body is cut off
  as soon as it passes the limit; either way the client gets ``413 payload_too_large``;
- a request body is JSON: one sent with another (or no) ``Content-Type`` is refused
  with ``415 unsupported_media_type`` before anything reads it.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradewind.gateways.rest.errors import error_response


class _TooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException, so the framework's body parsing
    passes it on unchanged to the error handlers (which answer 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        has_body = False
        media_type = b""
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    await self._refuse(scope, receive, send)
                    return
                has_body = has_body or declared > 0
            elif name == b"transfer-encoding":
                has_body = True
            elif name == b"content-type":
                media_type = value.split(b";", 1)[0].strip().lower()
        if has_body and not (media_type == b"application/json" or media_type.endswith(b"+json")):
            response = error_response(
                415, "unsupported_media_type", "send the body as Content-Type: application/json"
            )
            await response(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "payload_too_large",
            f"the request body is larger than {self.max_bytes} bytes",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
