"""The shared service fixtures: each service is really there, ``pg_url`` is a fresh
database, and an unreachable service skips, or fails under TRADEWIND_REQUIRE_SERVICES=1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import run_coroutine

ROOT = Path(__file__).resolve().parents[2]


def test_redis_is_reachable(redis_url: str) -> None:
    assert redis_url.startswith(("redis://", "rediss://"))


def test_rabbitmq_is_reachable(amqp_url: str) -> None:
    assert amqp_url.startswith(("amqp://", "amqps://"))


def test_pg_url_is_a_fresh_empty_database(pg_url: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    async def inspect() -> tuple[str, int]:
        connection = await asyncpg.connect(pg_url.replace("+asyncpg", ""))
        try:
            name = await connection.fetchval("SELECT current_database()")
            tables = await connection.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            )
            return str(name), int(tables)
        finally:
            await connection.close()

    name, tables = run_coroutine(inspect())
    assert name.startswith("tradewind_test_") and tables == 0


@pytest.mark.parametrize(("required", "outcome"), [("", "1 skipped"), ("1", "1 error")])
def test_an_unreachable_service_skips_or_fails(required: str, outcome: str) -> None:
    env = {
        **os.environ,
        "TRADEWIND_TEST_REDIS_URL": "redis://127.0.0.1:1/0",
        "TRADEWIND_REQUIRE_SERVICES": required,
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-rs",
            f"{Path(__file__).relative_to(ROOT)}::test_redis_is_reachable",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert outcome in result.stdout, result.stdout + result.stderr
    assert "Redis not reachable at redis://127.0.0.1:1/0" in result.stdout
    assert (result.returncode == 0) == (required == "")
