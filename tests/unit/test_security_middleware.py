"""The REST protections' building blocks: the documented request weights, and the cap
on password checks running at once (a flood from many addresses waits or gets 503,
it never runs more argon2 hashes at once than there are slots)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.fakes import FakeClock
from tradewind.gateways.rest.security import (
    RateLimitMiddleware,
    is_password_route,
    request_weight,
)
from tradewind.services.ratelimit import MemoryBuckets, RateLimiter, RatePolicy, Rule


def test_request_weights() -> None:
    assert request_weight("GET", "/api/v1/markets/BTC-USDT/ticker") == 1
    assert request_weight("GET", "/api/v1/markets/BTC-USDT/book") == 2
    assert request_weight("POST", "/api/v1/orders") == 10
    assert request_weight("PATCH", "/api/v1/orders/7") == 10
    assert request_weight("DELETE", "/api/v1/orders/7") == 2
    assert request_weight("DELETE", "/api/v1/orders") == 5
    assert request_weight("GET", "/api/v1/orders") == 5
    assert request_weight("GET", "/api/v1/orders/7") == 1
    assert request_weight("GET", "/api/v1/fills") == 5
    for probe in ("/healthz", "/readyz", "/metrics"):
        assert request_weight("GET", probe) == 0


def test_password_routes_are_the_auth_posts_but_logout() -> None:
    assert is_password_route("POST", "/api/v1/auth/login")
    assert is_password_route("POST", "/api/v1/auth/register")
    assert is_password_route("POST", "/api/v1/auth/password/reset")
    assert not is_password_route("POST", "/api/v1/auth/logout")
    assert not is_password_route("GET", "/api/v1/auth/sessions")
    assert not is_password_route("POST", "/api/v1/orders")


class Blocking:
    """An ASGI app whose requests wait until released; counts how many ran at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running = 0
        self.peak = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.release.wait()
        finally:
            self.running -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def call(app: Any, path: str) -> tuple[int, dict[bytes, bytes]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "client": ("10.0.0.1", 1)}
    await app(scope, receive, send)
    start = sent[0]
    return start["status"], dict(start["headers"])


@pytest.mark.asyncio
async def test_password_checks_are_capped_and_the_rest_wait_then_get_503() -> None:
    inner = Blocking()
    policy = RatePolicy({"ip": Rule(1000, 1000), "auth": Rule(1000, 1000)})  # generous
    limiter = RateLimiter(MemoryBuckets(), FakeClock(), policy)
    app = RateLimitMiddleware(inner, limiter, max_password_checks=2, password_wait_s=0.05)
    first = [asyncio.create_task(call(app, "/api/v1/auth/login")) for _ in range(2)]
    while inner.running < 2:
        await asyncio.sleep(0)
    status, headers = await call(app, "/api/v1/auth/login")
    assert status == 503 and headers[b"retry-after"] == b"1"
    # other routes are not held back by the password slots
    other = asyncio.create_task(call(app, "/api/v1/orders"))
    while inner.running < 3:
        await asyncio.sleep(0)
    inner.release.set()
    assert [s for s, _ in await asyncio.gather(*first)] == [200, 200]
    assert (await other)[0] == 200
    assert inner.peak == 3  # two password checks and the order, never three checks
    assert (await call(app, "/api/v1/auth/login"))[0] == 200
