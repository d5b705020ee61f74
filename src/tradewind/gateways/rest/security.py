"""HTTP protections of the REST gateway: rate limits, security headers, strict CORS.

Invariants:
- every request is charged, before anything else runs, to its client IP's bucket with
  the weight of its route (:func:`request_weight`: an order costs more than a ticker
  read); password-hashing routes (``POST /api/v1/auth/...``) are also charged to the
  IP's ``auth`` bucket, so argon2 cannot be turned into a denial of service;
- once a request is authenticated it is charged to its user's bucket, and to its API
  key's when signed (:func:`charge_principal`, called by the auth dependency), so one
  account cannot escape its limit by spreading over addresses or keys;
- a refused request is ``429 rate_limited`` with ``Retry-After`` (whole seconds) and
  the ``X-RateLimit-Limit``/``-Remaining``/``-Reset`` headers, and nothing else runs
  (the route, the body read, the core: untouched); admitted responses carry the same
  headers for the most constrained bucket;
- every response carries the security headers (:class:`SecurityHeadersMiddleware`):
  a CSP that allows only this origin, frame denial (``X-Frame-Options: DENY`` and
  ``frame-ancestors 'none'``), ``nosniff``, no referrer, and HSTS when the request came
  over TLS (or the operator says TLS is terminated in front);
- CORS allows exactly the configured origins (none by default), never ``*`` with
  credentials. There are no cookie sessions (Bearer tokens only), so there is no
  ambient credential for CSRF to abuse; adding cookies would need a CSRF token first.
- at most ``max_password_checks`` password routes run at once in the process (others
  wait up to ``password_wait_s``, then get ``503 busy`` with ``Retry-After``): argon2id
  takes 64 MiB and a core for a fifth of a second, so a flood spread over many addresses
  still cannot exhaust memory or starve trading (bench/results/auth.json);
- health, readiness and metrics are not limited (probes must not be throttled).

The client IP is the ASGI peer: behind a proxy, uvicorn's ``--forwarded-allow-ips``
must name the proxy so ``X-Forwarded-For`` is believed (docs/security.md).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradewind.gateways.rest.errors import error_response
from tradewind.services.ratelimit import Decision, RateLimited, RateLimiter

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
AUTH_PREFIX = "/api/v1/auth/"
NOT_PASSWORD_ROUTES = frozenset({"/api/v1/auth/logout"})
ORDER_PATH = "/api/v1/orders"
STATE_KEY = "tradewind.ratelimit"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = (
    # /docs loads Swagger UI from its CDN and runs an inline bootstrap script
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


def request_weight(method: str, path: str) -> int:
    """The weight of a request in the ``ip``/``user``/``key`` buckets (docs/security.md).

    Order commands weigh 10 (each goes through the core and the journal's fsync),
    history pages 5 (SQL reads of up to 1000 rows), book depth 2, anything else 1.
    ``0`` means not limited."""
    if path in UNLIMITED_PATHS:
        return 0
    if path == ORDER_PATH or path.startswith(ORDER_PATH + "/"):
        if method in ("POST", "PATCH"):
            return 10
        if method == "DELETE":
            return 5 if path == ORDER_PATH else 2
        return 5 if path == ORDER_PATH else 1
    if path.startswith("/api/v1/fills"):
        return 5
    if path.startswith("/api/v1/markets/") and path.endswith("/book"):
        return 2
    return 1


def is_password_route(method: str, path: str) -> bool:
    """``POST /api/v1/auth/...`` (login, registration, password reset...) but logout."""
    return method == "POST" and path.startswith(AUTH_PREFIX) and path not in NOT_PASSWORD_ROUTES


def rate_headers(decision: Decision | None) -> list[tuple[bytes, bytes]]:
    if decision is None:
        return []
    headers = [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(max(0, -(-decision.reset_ms // 1000))).encode()),
        (b"x-ratelimit-scope", decision.scope.encode()),
    ]
    if not decision.allowed:
        seconds = max(1, -(-decision.retry_after_ms // 1000))
        headers.append((b"retry-after", str(seconds).encode()))
    return headers


def too_many(exc: RateLimited) -> Response:
    headers = {name.decode(): value.decode() for name, value in rate_headers(exc.decision)}
    return error_response(
        429, exc.code, exc.message, headers=headers, retry_after=exc.retry_after_s
    )


def _tighter(a: Decision | None, b: Decision | None) -> Decision | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a.remaining <= b.remaining else b


class RateLimitMiddleware:
    """Per-IP buckets in front of everything; remembers the decision in the request
    state so :func:`charge_principal` can tighten it and the response can show it."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        max_password_checks: int = 0,
        password_wait_s: float = 2.0,
    ) -> None:
        self.app = app
        self.limiter = limiter
        slots = max_password_checks or (os.cpu_count() or 1)
        self._password_slots = asyncio.Semaphore(slots)
        self._password_wait_s = password_wait_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limiter.enabled:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        weight = request_weight(method, path)
        if weight == 0:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        try:
            decision = await self.limiter.take(weight, ip=ip)
            password_route = is_password_route(method, path)
            if password_route:
                decision = _tighter(decision, await self.limiter.take(1, auth=ip))
        except RateLimited as exc:
            await too_many(exc)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state[STATE_KEY] = (decision, weight)
        if password_route:
            try:
                await asyncio.wait_for(self._password_slots.acquire(), self._password_wait_s)
            except TimeoutError:
                busy = error_response(
                    503,
                    "busy",
                    "too many password checks in progress; retry in a second",
                    headers={"Retry-After": "1"},
                )
                await busy(scope, receive, send)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                # a 429 from inside (user, key or order buckets) already has its own
                if not any(name.lower() == b"x-ratelimit-limit" for name, _ in headers):
                    shown = state.get(STATE_KEY, (None, 0))[0]
                    message["headers"] = [*headers, *rate_headers(shown)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if password_route:
                self._password_slots.release()


async def charge_principal(request: Request, user_id: int, key_id: str | None) -> None:
    """Charge an authenticated request to its user's (and key's) buckets with the same
    weight as its IP's; raises :class:`RateLimited` (answered 429 by the error handler).
    A no-op unless :func:`install_security` installed a limiter."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None or not limiter.enabled:
        return
    state = request.scope.setdefault("state", {})
    seen, weight = state.get(STATE_KEY, (None, 0))
    if weight == 0:
        weight = request_weight(request.method, request.url.path)
        if weight == 0:
            return
    if state.get(STATE_KEY + ".charged"):
        return  # one charge per request, however many dependencies authenticate
    state[STATE_KEY + ".charged"] = True
    decision = await limiter.take(weight, user=user_id, key=key_id)
    state[STATE_KEY] = (_tighter(seen, decision), weight)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.always_hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        csp = DOCS_CSP if path in ("/docs", "/redoc") else CSP
        extra = [
            (b"content-security-policy", csp.encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if self.always_hsts or scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", HSTS.encode()))
        if path.startswith("/api/"):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((n, v) for n, v in extra if n not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass(frozen=True, slots=True)
class SecurityOptions:
    limiter: RateLimiter | None = None
    cors_origins: Sequence[str] = ()
    """Exact origins (``https://app.example.com``) allowed to call the API from a
    browser; empty: no cross-origin access at all."""
    hsts: bool = False
    """Send HSTS on every response (TLS terminated by a proxy in front)."""


def install_security(app: FastAPI, options: SecurityOptions) -> None:
    """Add the middlewares (outermost last: headers wrap CORS wrap the limiter, so even a
    429 carries the security headers)."""

    async def on_rate_limited(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RateLimited)
        return too_many(exc)

    # more specific than the ServiceError handler: adds Retry-After and X-RateLimit-*
    app.add_exception_handler(RateLimited, on_rate_limited)
    if options.limiter is not None:
        app.state.rate_limiter = options.limiter
        app.add_middleware(RateLimitMiddleware, limiter=options.limiter)
    if options.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(options.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "TW-KEY",
                "TW-TIMESTAMP",
                "TW-SIGNATURE",
                "TW-RECV-WINDOW",
                "TW-TOTP",
            ],
            expose_headers=[
                "Retry-After",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
            ],
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware, hsts=options.hsts)
