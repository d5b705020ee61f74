"""ASGI middleware of the REST gateway.

Invariants:
- no request body larger than the limit is ever buffered: a declared
  ``Content-Length`` above it is refused before reading, and a streamed body is cut off
  as soon as it passes the limit; either way the client gets ``413 payload_too_large``;
- a request body is JSON: one sent with another (or no) ``Content-Type`` is refused
  with ``415 unsupported_media_type`` before anything reads it; the only exceptions
  are the upload routes of :data:`UPLOAD_ROUTES` (KYC documents, bank statements), which
  take only their own media types, up to their own limit;
- every query parameter of the API is single-valued: a name given twice
  (``?symbol=A&symbol=B``) is refused with ``400 duplicate_parameter`` rather than one of
  the values being silently taken.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradewind.gateways.rest.errors import error_response


class _TooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException, so the framework's body parsing
    passes it on unchanged to the error handlers (which answer 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


UPLOAD_ROUTES: dict[str, tuple[int, frozenset[bytes]]] = {
    "/api/v1/kyc/documents": (
        5 * 1024 * 1024,
        frozenset({b"image/jpeg", b"image/png", b"application/pdf"}),
    ),
    "/api/v1/admin/fiat/statements": (
        20 * 1024 * 1024,
        frozenset({b"application/xml", b"text/xml"}),
    ),
}
"""Exact path -> (largest body, accepted media types) of the routes that take files."""


def _repeated_parameter(query: bytes) -> str | None:
    """The first query parameter name that occurs more than once, if any."""
    seen: set[str] = set()
    for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return name
        seen.add(name)
    return None


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        uploads: dict[str, tuple[int, frozenset[bytes]]] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = UPLOAD_ROUTES if uploads is None else uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if b"&" in query:
            repeated = _repeated_parameter(query)
            if repeated is not None:
                response = error_response(
                    400,
                    "duplicate_parameter",
                    f"the query parameter {repeated!r} is given more than once",
                )
                await response(scope, receive, send)
                return
        # by path, whatever the method: the router answers 405 for a method it lacks
        upload = self.uploads.get(scope["path"])
        limit = self.max_bytes if upload is None else upload[0]
        has_body = False
        media_type = b""
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    await self._refuse(scope, receive, send, limit)
                    return
                has_body = has_body or declared > 0
            elif name == b"transfer-encoding":
                has_body = True
            elif name == b"content-type":
                media_type = value.split(b";", 1)[0].strip().lower()
        if upload is not None:
            if has_body and media_type not in upload[1]:
                accepted = ", ".join(sorted(t.decode() for t in upload[1]))
                response = error_response(
                    415, "unsupported_media_type", f"send the file as one of {accepted}"
                )
                await response(scope, receive, send)
                return
        elif has_body and not (media_type == b"application/json" or media_type.endswith(b"+json")):
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
                await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(
            413,
            "payload_too_large",
            f"the request body is larger than {limit} bytes",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
