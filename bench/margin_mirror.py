"""Margin figures on API replicas (ADR 0033): what publishing the inputs costs the core
process, and what a replica's read costs, on the real Redis.

Setup (not timed): ``bench/margin.py``'s core, 10 symbols x N isolated wallets with debts.

Timed (wall clock, one at a time, Redis on this machine):
- ``rewrite``: a starting core's first round, every wallet's row and the globals;
- ``round_after_mark``: a round after one ``mark`` (the globals only: no wallet row is
  rewritten, whatever the number of wallets);
- ``round_after_borrow``: a round after a borrow (one wallet row and the globals);
- ``replica_read``: a replica's ``prepare`` (one Redis transaction) plus the account view
  and max-borrowable computed on a scratch core.

Run: ``.venv/bin/python bench/margin_mirror.py [--wallets-per-symbol N] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).parent))
from margin import SYMBOLS, mark, setup
from tradewind.adapters.redis.margin import RedisMarginSink, RedisMarginSource
from tradewind.core import commands as C
from tradewind.runtime.benchmark import machine_info
from tradewind.services.margin_mirror import (
    MarginPublisher,
    MirroredMarginState,
    _touched,
)


def ms(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "median_ms": round(statistics.median(values) * 1000, 3),
        "p99_ms": round(values[int(len(values) * 0.99) - 1] * 1000, 3),
    }


async def bench(per_symbol: int, rounds: int, url: str) -> dict[str, Any]:
    core, do = setup(per_symbol)
    wallets = len(core.margin.wallets)
    print(f"setup: {wallets:,} wallets", file=sys.stderr)
    redis = Redis.from_url(url)
    prefix = f"twbench{secrets.token_hex(4)}"
    pub = MarginPublisher(lambda: core, RedisMarginSink(redis, prefix=prefix))
    try:
        pub.start_at(do.seq)
        t = time.perf_counter()
        await pub._rewrite()
        rewrite_s = time.perf_counter() - t
        print(f"rewrite: {rewrite_s:.2f} s", file=sys.stderr)

        async def round_of(events: list[Any]) -> float:
            touched: set[int] = set()
            t = time.perf_counter()
            glob = _touched(events, touched)
            pub._seq = do.seq
            await pub._write(touched, glob)
            return time.perf_counter() - t

        after_mark = []
        for i in range(rounds):
            sym = f"A{i % SYMBOLS}-USDT"
            events = do(mark(sym, 999 if (i // SYMBOLS) % 2 == 0 else 1000))
            after_mark.append(await round_of(events))
        after_borrow = []
        w: dict[str, Any] = {"wallet": "isolated", "symbol": "A0-USDT"}
        for i in range(rounds):
            user = 1 + i % per_symbol
            events = do(C.Borrow(user=user, asset="USDT", amount=1, **w))
            after_borrow.append(await round_of(events))

        reader = MirroredMarginState(RedisMarginSource(redis, prefix=prefix))

        async def zero() -> int:
            return 0

        reads = []
        for i in range(rounds):
            user = 1 + i % per_symbol
            t = time.perf_counter()
            await reader.prepare(user, zero)
            reader.wallets(user)
            reader.max_borrowable(user, "isolated", "A0-USDT", "USDT")
            reads.append(time.perf_counter() - t)
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i : i + 1000])
        await redis.aclose()
    return {
        "what": "margin figures on replicas: publishing the inputs, and a replica's read",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "machine_note": "shared 2-vCPU VM, Redis on the same machine, other runs loading it",
        "wallets": wallets,
        "rewrite_seconds": round(rewrite_s, 2),
        "round_after_mark": ms(after_mark),
        "round_after_borrow": ms(after_borrow),
        "replica_read": ms(reads),
        "rounds": rounds,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--wallets-per-symbol", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=500)
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "margin_mirror.json"))
    a = p.parse_args()
    res = asyncio.run(bench(a.wallets_per_symbol, a.rounds, a.redis_url))
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
