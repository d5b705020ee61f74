"""End to end: ``tradewind marketmaker`` keeps a two-sided book and trades in a distributed
deployment (core, projector, API replicas as real processes), and a second one stands by
until the first stops."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_distributed import Deployment, eventually
from tests.support.distributed import Process

TAPE_TIMEOUT_S = 90.0
"""How long the tape may stay still. The bot requotes one market per step (three demo
markets, a step every 0.5 s plus its commands' round trips) and crosses in 35 % of its
steps, so BTC-USDT trades about every 5 s on an idle machine; on a loaded 2-core CI
machine a step takes seconds and a run of six steps without a cross is not rare."""


@pytest.fixture
def deployment(tmp_path: Path, pg_url: str, redis_url: str, amqp_url: str) -> Iterator[Deployment]:
    d = Deployment(tmp_path, pg_url, redis_url, amqp_url)
    # 2 s, as in test_standby: a bot on a loaded 2-core CI machine must not be late to renew
    env = {**d.core.env, "TRADEWIND_CORE_LEASE_MS": "2000"}
    d.bots = [  # type: ignore[attr-defined]
        Process(
            f"bot{i}",
            ["marketmaker"],
            {**env, "TRADEWIND_DATA_DIR": str(tmp_path / f"b{i}")},
            tmp_path,
        )
        for i in range(2)
    ]
    try:
        yield d
    finally:
        d.stop(*d.bots)  # type: ignore[attr-defined]
        d.cleanup()


def market(url: str) -> dict[str, Any]:
    book = httpx.get(f"{url}/api/v1/markets/BTC-USDT/book").json()
    trades = httpx.get(f"{url}/api/v1/markets/BTC-USDT/trades").json()["items"]
    return {"bids": book["bids"], "asks": book["asks"], "trades": trades}


def test_the_market_maker_runs_in_distributed_mode(deployment: Deployment) -> None:
    d = deployment
    d.start()
    first, second = d.bots  # type: ignore[attr-defined]
    first.start(lambda: first.printed("Tradewind market maker running"))
    second.start(lambda: second.printed("standing by"))

    url = d.urls[1]
    seen = eventually(
        lambda: market(url), lambda m: m["bids"] and m["asks"] and m["trades"], timeout_s=30
    )
    assert seen["bids"] and seen["asks"] and seen["trades"], seen
    best_bid, best_ask = float(seen["bids"][0][0]), float(seen["asks"][0][0])
    assert best_bid < best_ask  # two-sided, not crossed
    assert 30_000 < best_bid < 130_000  # around the demo reference price of 65,000

    first.stop()  # releases its lease: the standby takes over at once
    second.wait(lambda: second.printed("Tradewind market maker running"), timeout_s=20)
    took_over = time.monotonic()
    newest = market(url)["trades"][0]  # the first bot has exited: the rest is the second's
    later = eventually(
        lambda: market(url), lambda m: m["trades"][0] != newest, timeout_s=TAPE_TIMEOUT_S
    )
    assert later["trades"][0] != newest, second.tail()  # the tape moves again
    print(f"tape moved {time.monotonic() - took_over:.1f} s after the takeover")
