"""Start-up of the core process's market data without replaying the whole journal.

The market data a core mirrors to Redis (books with update ids, trades, candles, tickers)
is a function of the journal. Replaying the journal from seq 1 at every start made a
restart, and a standby's takeover, as slow as the exchange is old. Instead:

1. Redis holds the state of the last flush and its seq ``R`` (``P:md:seq``, written in the
   same transaction as the rest by :class:`RedisMarketDataWriter`);
2. the core's state at ``R`` is rebuilt from the newest snapshot at or before ``R`` plus
   the journal up to ``R``; :meth:`MarketData.seed` takes books, stops, symbols and last
   prices from it, with the book update ids stored in Redis;
3. trades and candles (hence the 24 h tickers) are loaded back from Redis;
4. the journal's batches ``R+1 .. last`` are applied as usual.

Before trusting Redis, the books seeded from the journal at ``R`` are compared with the
books Redis holds at ``R``: they differ if Redis was written from another journal (a
reused prefix, a new data dir), and then the journal is replayed instead.

So a start costs the journal since the snapshot before ``R`` (bounded by
``snapshot_every`` plus what the writer had not flushed), not the whole journal.

Invariant: the result equals what a replay from seq 1 gives, in books, update ids,
trades and candles (tested in tests/integration/test_md_warm_start.py). Whenever that
cannot be guaranteed (nothing in Redis, Redis ahead of the journal, a seq it cannot
reach from a snapshot, Redis unreachable), it falls back to the full replay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import structlog
from redis.exceptions import RedisError

from tradewind.adapters.redis.marketdata import RedisMarketDataReader, RedisMarketDataWriter
from tradewind.core.codec import decode_command
from tradewind.core.engine import Core
from tradewind.journal.journal import JOURNAL_FILE, read_journal
from tradewind.journal.snapshot import SnapshotError, list_snapshots, read_snapshot
from tradewind.services.marketdata import (
    INTERVALS,
    BookSnapshot,
    Candle,
    MarketData,
    PublicTrade,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StoredMarketData:
    """What Redis holds for a warm start, read before any CPU work."""

    seq: int
    update_ids: dict[str, int]
    trades: dict[str, list[PublicTrade]]
    candles: list[Candle]
    books: dict[str, BookSnapshot]


class CannotWarmStart(Exception):
    """The stored state cannot be joined to the journal: replay it all instead."""


async def read_stored(
    writer: RedisMarketDataWriter, reader: RedisMarketDataReader, md: MarketData
) -> StoredMarketData | None:
    seq = await writer.stored_seq()
    if seq is None:
        return None
    ids = await writer.stored_update_ids()
    trades: dict[str, list[PublicTrade]] = {}
    candles: list[Candle] = []
    books: dict[str, BookSnapshot] = {}
    for symbol in ids:
        trades[symbol] = await reader.get_trades(symbol, md.trades_kept)
        for interval in INTERVALS:
            candles.extend(await reader.get_candles(symbol, interval, md.candles_kept))
        book = await reader.get_book(symbol)
        if book is not None:
            books[symbol] = book
    return StoredMarketData(seq, ids, trades, candles, books)


def _same_books(md: MarketData, stored: StoredMarketData) -> bool:
    """Whether the books seeded from the journal's core at ``stored.seq`` are those Redis
    holds: a Redis written from another journal (a reused prefix) would differ."""
    if {s.symbol for s in md.symbols()} != set(stored.books):
        return False
    for symbol, theirs in stored.books.items():
        mine = md.book(symbol)
        if mine is None or (mine.bids, mine.asks) != (theirs.bids, theirs.asks):
            return False
    return True


def warm(md: MarketData, stored: StoredMarketData, data_dir: Path, last: int) -> int:
    """Seed ``md`` at ``stored.seq`` and apply the journal up to ``last`` (synchronous:
    run it in a worker thread before anything listens to ``md``). Returns the number of
    commands re-applied through a core (snapshot to ``last``)."""
    at = stored.seq
    if at > last:
        raise CannotWarmStart(f"Redis holds market data at seq {at}, the journal ends at {last}")
    core = Core()
    for seq, path in list_snapshots(data_dir):
        if seq > at:
            continue
        try:
            core = Core.restore(read_snapshot(path).state)
            break
        except (SnapshotError, OSError, ValueError, TypeError, KeyError, msgspec.DecodeError):
            log.warning("snapshot skipped for market data", path=str(path))
    applied = 0
    seeded = False

    def seed() -> None:
        md.seed(core, stored.update_ids)
        if not _same_books(md, stored):
            raise CannotWarmStart(f"the books in Redis are not the journal's at seq {at}")
        for symbol, trades in stored.trades.items():
            md.load_trades(symbol, trades)
        md.load_candles(stored.candles)

    if core.seq == at:
        seed()
        seeded = True
    expected = core.seq + 1
    for _, seq, payload in read_journal(data_dir / JOURNAL_FILE):
        if seq < expected:
            continue
        if seq != expected or seq > last:
            break
        cmd = decode_command(payload)
        events = core.apply(cmd)
        applied += 1
        expected += 1
        if seeded:
            md.apply(seq, cmd.ts, events)
        elif seq == at:
            seed()
            seeded = True
    if not seeded or md.seq != last:
        raise CannotWarmStart(f"the journal does not join seq {at} to seq {last}")
    return applied


async def start_market_data(
    md: MarketData,
    writer: RedisMarketDataWriter,
    reader: RedisMarketDataReader,
    data_dir: Path,
    last: int,
    full_replay: Callable[[], object],
) -> str:
    """Bring ``md`` to seq ``last``: from Redis + the journal's tail when possible, else
    by ``await full_replay()``. Returns ``"warm"``, ``"empty"`` or ``"replay"``."""
    if last == 0:
        return "empty"
    try:
        stored = await read_stored(writer, reader, md)
    except (RedisError, OSError, msgspec.DecodeError) as e:
        log.warning("market data in Redis unreadable; replaying the journal", error=repr(e))
        stored = None
    if stored is not None:
        try:
            applied = await asyncio.to_thread(warm, md, stored, data_dir, last)
        except CannotWarmStart as e:
            log.warning("market data warm start impossible; replaying the journal", why=str(e))
        else:
            log.info("market data from Redis + journal tail", redis_seq=stored.seq, applied=applied)
            return "warm"
        md.seed(Core())  # back to nothing
    result = full_replay()
    if asyncio.iscoroutine(result):
        await result
    return "replay"
