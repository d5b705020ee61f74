"""A restarting core (or a standby taking over) builds its market data from Redis's last
flush plus the journal after it, and ends exactly where a replay of the whole journal
ends: books with their update ids, trades, candles and tickers. When Redis holds nothing
usable it replays the journal instead."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.support.cleanup import delete_redis_prefix
from tradewind.adapters.redis.marketdata import RedisMarketDataReader, RedisMarketDataWriter
from tradewind.journal.recovery import JournaledCore
from tradewind.journal.snapshot import list_snapshots
from tradewind.runtime.mdstart import start_market_data
from tradewind.runtime.streamgen import generate_stream
from tradewind.services.marketdata import INTERVALS, MarketData


@pytest_asyncio.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[tuple[Redis, str]]:
    prefix = f"twwarm{secrets.token_hex(4)}"
    redis = Redis.from_url(redis_url)
    try:
        yield redis, prefix
    finally:
        await redis.aclose()
        await delete_redis_prefix(redis_url, prefix)


def view(md: MarketData) -> dict[str, object]:
    out: dict[str, object] = {}
    for info in md.symbols():
        s = info.symbol
        out[s] = (
            md.book(s),
            md.trades(s, md.trades_kept),
            [md.candles(s, i, md.candles_kept) for i in INTERVALS],
            md.ticker(s),
        )
    return out


async def journal_and_redis(
    data_dir: Path, redis: Redis, prefix: str, flush_at: int
) -> tuple[MarketData, int]:
    """A journal of a trading session, Redis flushed at ``flush_at``; returns the market
    data of the whole session (applied live) and the last seq."""
    commands = generate_stream(1500, n_symbols=2, n_accounts=20, seed=7)
    live = MarketData(trades_kept=50, candles_kept=40)
    writer = RedisMarketDataWriter(redis, live, prefix=prefix)
    writer.attach()
    jcore = JournaledCore(data_dir, snapshot_every=200)
    for cmd in commands:
        events = jcore.submit(cmd)
        if cmd.seq % 50 == 0:
            jcore.flush()
        live.apply(cmd.seq, cmd.ts, events)
        if cmd.seq == flush_at:
            await writer.flush()
    jcore.close()
    return live, commands[-1].seq


def must_not_replay() -> None:
    raise AssertionError("replayed the whole journal")


@pytest.mark.asyncio
async def test_warm_start_equals_a_full_replay(
    redis_prefix: tuple[Redis, str], tmp_path: Path
) -> None:
    redis, prefix = redis_prefix
    live, last = await journal_and_redis(tmp_path, redis, prefix, flush_at=1333)
    assert [seq for seq, _ in list_snapshots(tmp_path)]  # some snapshots to start from
    assert live.trades(live.symbols()[0].symbol)  # the session traded

    md = MarketData(trades_kept=50, candles_kept=40)
    writer = RedisMarketDataWriter(redis, md, prefix=prefix)
    mode = await start_market_data(
        md, writer, RedisMarketDataReader(redis, prefix=prefix), tmp_path, last, must_not_replay
    )
    assert mode == "warm"
    assert md.seq == last
    assert view(md) == view(live)


@pytest.mark.asyncio
async def test_nothing_in_redis_or_redis_ahead_replays_the_journal(
    redis_prefix: tuple[Redis, str], tmp_path: Path
) -> None:
    redis, prefix = redis_prefix
    _, last = await journal_and_redis(tmp_path, redis, prefix, flush_at=10**9)
    reader = RedisMarketDataReader(redis, prefix=prefix)
    replays: list[int] = []

    md = MarketData(trades_kept=50, candles_kept=40)
    writer = RedisMarketDataWriter(redis, md, prefix=prefix)
    mode = await start_market_data(md, writer, reader, tmp_path, last, lambda: replays.append(1))
    assert (mode, replays) == ("replay", [1])

    await redis.set(f"{prefix}:md:seq", last + 5)  # Redis of a newer journal than this one
    md = MarketData(trades_kept=50, candles_kept=40)
    mode = await start_market_data(md, writer, reader, tmp_path, last, lambda: replays.append(2))
    assert (mode, replays) == ("replay", [1, 2])
    assert md.seq == 0 and md.symbols() == []  # left clean for the replay


@pytest.mark.asyncio
async def test_redis_of_another_journal_is_not_trusted(
    redis_prefix: tuple[Redis, str], tmp_path: Path
) -> None:
    redis, prefix = redis_prefix
    await journal_and_redis(tmp_path / "old", redis, prefix, flush_at=1000)
    # a fresh data dir with another session, the same Redis prefix
    commands = generate_stream(1500, n_symbols=2, n_accounts=20, seed=8)
    jcore = JournaledCore(tmp_path / "new")
    for cmd in commands:
        jcore.submit(cmd)
    jcore.close()
    replays: list[int] = []
    md = MarketData(trades_kept=50, candles_kept=40)
    writer = RedisMarketDataWriter(redis, md, prefix=prefix)
    reader = RedisMarketDataReader(redis, prefix=prefix)
    mode = await start_market_data(
        md, writer, reader, tmp_path / "new", commands[-1].seq, lambda: replays.append(1)
    )
    assert (mode, replays) == ("replay", [1])
