"""Rate limits as API replicas apply them: two apps wired by ``build_protection`` with the
same Redis share one bucket per client address, so a client spreading its requests over
replicas gets the same 429 (with Retry-After) as on one."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from redis.asyncio import Redis

from tests.fakes import FakeClock
from tests.support.cleanup import delete_redis_prefix
from tradewind.adapters.sql import Database
from tradewind.gateways.rest.errors import JSON, install_error_handlers
from tradewind.gateways.rest.security import install_security
from tradewind.runtime.config import load_settings
from tradewind.runtime.protection import build_protection


class NoBus:
    available = False

    async def submit(self, cmd: object) -> object:
        raise AssertionError("no command in this test")


@pytest_asyncio.fixture
async def replicas(redis_url: str, sqlite_url: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    prefix = f"twtest{secrets.token_hex(4)}"
    settings = load_settings(
        None,
        environ={},
        overrides={"redis_prefix": prefix, "rate_limits": "ip=5/1h", "database_url": sqlite_url},
    )
    redis = Redis.from_url(redis_url)
    db = Database.from_url(sqlite_url)
    clients = []
    for _ in range(2):
        app = FastAPI()
        install_error_handlers(app)

        @app.get("/api/v1/markets")
        async def markets() -> JSON:
            return JSON([])

        protection = build_protection(settings, db, NoBus(), FakeClock(), redis=redis)  # type: ignore[arg-type]
        install_security(app, protection.security)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 1234))
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://replica"))
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()
        await redis.aclose()
        await db.dispose()
        await delete_redis_prefix(redis_url, prefix)


@pytest.mark.asyncio
async def test_one_bucket_across_replicas(replicas: list[httpx.AsyncClient]) -> None:
    statuses = [(await replicas[i % 2].get("/api/v1/markets")).status_code for i in range(5)]
    assert statuses == [200] * 5
    for replica in replicas:
        r = await replica.get("/api/v1/markets")
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1
        assert r.headers["X-RateLimit-Scope"] == "ip"
