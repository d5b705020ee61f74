"""Every error leaves the REST gateway as ``{"code", "message"}`` with a precise status.

Invariants:
- handlers exist for every exception a request can raise (our :class:`ApiError`, the
  services' :class:`~tradewind.services.errors.ServiceError`, FastAPI's validation
  errors, Starlette's HTTP errors, and anything else), so no stack trace, HTML page or
  framework-shaped error ever reaches a client;
- an unexpected exception is logged with its traceback and answered ``500
  internal_error`` with a fixed message;
- malformed JSON is ``400 invalid_json``; a body or query that does not fit the schema
  is ``422``: ``unknown_field`` for a field the endpoint does not take, otherwise
  ``invalid_request``, with the offending location in the message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Route

from tradewind.services.errors import ServiceError
from tradewind.services.trading import CoreFailure, CoreRejected

log = structlog.get_logger(__name__)

_encoder = msgspec.json.Encoder()

HTTP_CODES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


REJECTION_MESSAGES: Mapping[str, str] = {
    "insufficient_balance": "the available balance does not cover this",
    "below_initial_margin": "the wallet's margin level would fall below its initial level "
    "(the least it must keep at its leverage)",
    "borrow_limit_exceeded": "the wallet's debt in this asset would be above the asset's "
    "borrow limit",
    "repay_exceeds_debt": "the amount is more than the wallet owes in this asset",
    "pool_insufficient": "the lending pool does not hold that much of this asset now",
    "filter_violated:min_qty": "the quantity is below the symbol's minimum quantity",
    "filter_violated:max_qty": "the quantity is above the symbol's maximum quantity",
    "filter_violated:min_notional": "the order's value is below the symbol's minimum notional",
    "filter_violated:price_band": "the price is too far from the last trade price",
}
"""Client-facing messages for core rejections whose core message speaks in ticks, lots
or minor units (the API speaks decimals); other reasons keep the core's message."""


class ApiError(Exception):
    """A refusal decided at the edge (conversion, auth, lookup)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: object,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra


class JSON(Response):
    """A JSON response encoded by msgspec (fast, exact ints, no float surprises)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None, **extra: object
) -> JSON:
    body: dict[str, object] = {"code": code, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSON(body, status_code=status, headers=dict(headers) if headers else None)


def _location(loc: Sequence[object]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
        prefix = "body"
    elif parts:
        prefix, parts = parts[0], parts[1:]
    else:
        prefix = "request"
    return ".".join([prefix, *parts]) if parts else prefix


def validation_response(errors: Sequence[Mapping[str, Any]]) -> JSON:
    for err in errors:
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "")
            return error_response(
                400, "invalid_json", f"the body is not valid JSON{': ' + detail if detail else ''}"
            )
    unknown = [e for e in errors if e.get("type") == "extra_forbidden"]
    if unknown:
        names = ", ".join(repr(str(e["loc"][-1])) for e in unknown)
        return error_response(422, "unknown_field", f"unknown field {names} in the body")
    messages = [f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors[:5]]
    return error_response(422, "invalid_request", "; ".join(messages) or "invalid request")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts at this path (FastAPI makes one route per method,
    so its own 405 names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches({**request.scope, "method": "GET"})
            if match != Match.NONE:
                methods |= route.methods
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.headers, **exc.extra)

    async def on_service_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        if isinstance(exc, CoreRejected):
            key = f"{exc.reason}:{exc.filter}" if exc.filter else exc.reason
            message = REJECTION_MESSAGES.get(key, exc.message)
            return error_response(exc.status, exc.reason, message, filter=exc.filter)
        return error_response(exc.status_hint, exc.code, exc.message)

    async def on_core_failure(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, CoreFailure)
        headers = {"Retry-After": "1"} if exc.status_hint == 503 else None
        return error_response(exc.status_hint, exc.code, exc.message, headers=headers)

    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return validation_response(exc.errors())

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        headers = exc.headers
        if exc.status_code == 404:
            message = "no such endpoint"
        elif exc.status_code == 405:
            allowed = allowed_methods(request)
            headers = {"Allow": ", ".join(allowed)}
            message = f"this endpoint takes {', '.join(allowed)}"
        return error_response(exc.status_code, code, message, headers=headers)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error(
            "unhandled error",
            method=request.method,
            path=request.url.path,
            error=repr(exc),
            exc_info=exc,
        )
        return error_response(500, "internal_error", "internal error")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(CoreFailure, on_core_failure)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
