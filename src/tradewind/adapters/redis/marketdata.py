"""Market data in Redis, so that several API replicas serve the same hot data.

One process (the projector, or whichever runs :class:`MarketData` on the event stream)
runs a :class:`RedisMarketDataWriter`; every API replica reads through a
:class:`RedisMarketDataReader` (a ``MarketDataReader``) and follows the update stream
(:meth:`RedisMarketDataReader.follow`) to feed its WebSocket hub.

Keys (``P`` is the prefix, default ``tw``; symbols never contain ``:``):

| key | type | holds |
|---|---|---|
| ``P:md:symbols`` | hash | symbol -> msgpack ``SymbolInfo`` |
| ``P:md:book:S:meta`` | hash | ``update_id``, ``seq``, ``ts`` of the stored book |
| ``P:md:book:S:bids:z`` / ``:asks:z`` | zset | price (member and score) |
| ``P:md:book:S:bids:h`` / ``:asks:h`` | hash | price -> visible qty |
| ``P:md:trades:S`` | list | msgpack ``PublicTrade``, newest first, trimmed |
| ``P:md:candles:S:I`` | zset | msgpack ``Candle`` scored by ``open_ts``, trimmed |
| ``P:md:tickers`` | hash | symbol -> msgpack ``Ticker`` |
| ``P:md:stream`` | stream | field ``u``: msgpack list of the ``MarketUpdate``s of one flush |
| ``P:md:seq`` | string | seq of the ``MarketData`` state the keys above hold |

Invariants:
- each flush is one ``MULTI``/``EXEC``: the book levels, its ``update_id`` and the stream
  entry carrying the same diffs change together, and a book is read by one Lua script,
  so a reader never sees a book between two update ids;
- the stored book at ``update_id = L`` equals the writer's ``MarketData`` book at ``L``;
  when the writer cannot keep up (more than ``max_pending`` updates queued) or a flush
  fails, it drops the queue and its next flush rewrites the whole state from the
  ``MarketData`` (the stream then has a gap in update ids, which clients detect and
  resync from, as after any loss);
- prices are stored as zset scores, exact up to 2**53 ticks;
- one Redis (or a primary with replicas / Sentinel): the multi-key transactions do not
  span Redis Cluster slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from tradewind.services.marketdata import (
    INTERVALS,
    BookDiff,
    BookSnapshot,
    Candle,
    Level,
    MarketData,
    MarketUpdate,
    PublicTrade,
    SymbolInfo,
    Ticker,
    Trades,
)

log = logging.getLogger(__name__)

_enc = msgspec.msgpack.Encoder()
_dec_updates = msgspec.msgpack.Decoder(list[MarketUpdate])
_dec_symbol = msgspec.msgpack.Decoder(SymbolInfo)
_dec_trade = msgspec.msgpack.Decoder(PublicTrade)
_dec_candle = msgspec.msgpack.Decoder(Candle)
_dec_ticker = msgspec.msgpack.Decoder(Ticker)

_BOOK_LUA: Final = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return false end
local meta = redis.call('HMGET', KEYS[2], 'update_id', 'seq', 'ts')
local n = tonumber(ARGV[2])
local stop = -1
if n > 0 then stop = n - 1 end
local bp = redis.call('ZREVRANGE', KEYS[3], 0, stop)
local bq = {}
for i, p in ipairs(bp) do bq[i] = redis.call('HGET', KEYS[4], p) end
local ap = redis.call('ZRANGE', KEYS[5], 0, stop)
local aq = {}
for i, p in ipairs(ap) do aq[i] = redis.call('HGET', KEYS[6], p) end
return {meta, bp, bq, ap, aq}
"""


class Keys:
    """Key names under one prefix."""

    def __init__(self, prefix: str = "tw") -> None:
        if not prefix or ":" in prefix[-1:]:
            raise ValueError("prefix must be non-empty and not end with ':'")
        p = f"{prefix}:md"
        self.symbols = f"{p}:symbols"
        self.tickers = f"{p}:tickers"
        self.stream = f"{p}:stream"
        self.seq = f"{p}:seq"
        self._p = p

    def meta(self, symbol: str) -> str:
        return f"{self._p}:book:{symbol}:meta"

    def side(self, symbol: str, buy: bool, part: str) -> str:
        """``part`` is ``z`` (prices) or ``h`` (quantities)."""
        return f"{self._p}:book:{symbol}:{'bids' if buy else 'asks'}:{part}"

    def trades(self, symbol: str) -> str:
        return f"{self._p}:trades:{symbol}"

    def candles(self, symbol: str, interval: str) -> str:
        return f"{self._p}:candles:{symbol}:{interval}"


FLUSH_INTERVAL_S = 0.01
"""Least time between two background flushes. Under load a flush per core group was
hundreds of Redis transactions a second, and every API replica made one ``XREAD`` per
flush (docs/performance.md, distributed mode); this caps both at 100 a second and
delays market data by at most as much."""


class RedisMarketDataWriter:
    """Mirrors one :class:`MarketData` into Redis, batching its updates per flush."""

    def __init__(
        self,
        redis: Redis,
        md: MarketData,
        *,
        prefix: str = "tw",
        stream_maxlen: int = 100_000,
        max_pending: int = 100_000,
        retry_s: float = 0.5,
        min_interval_s: float = FLUSH_INTERVAL_S,
    ) -> None:
        self.redis = redis
        self.min_interval_s = min_interval_s
        self.md = md
        self.keys = Keys(prefix)
        self.stream_maxlen = stream_maxlen
        self.max_pending = max_pending
        self.retry_s = retry_s
        self.trades_kept = md.trades_kept
        self.candles_kept = md.candles_kept
        self._pending: list[MarketUpdate] = []
        self._resync = True  # the first flush writes the whole state
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None
        self.flushes = 0
        self.resyncs = 0

    # ------------------------------------------------------------------ lifecycle

    def attach(self) -> None:
        """Listen to the ``MarketData`` (without a background task: call :meth:`flush`)."""
        if self._unsubscribe is None:
            self._unsubscribe = self.md.subscribe(self._on_updates)

    def start(self) -> None:
        """Listen and flush in a background task whenever updates arrive."""
        self.attach()
        self._wake.set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="md-redis-writer")

    async def stop(self) -> None:
        """Stop the task, then flush what is left (best effort)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _on_updates(self, updates: Sequence[MarketUpdate]) -> None:
        pending = self._pending
        pending.extend(updates)
        if len(pending) > self.max_pending:
            pending.clear()
            self._resync = True
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            started = loop.time()
            try:
                await self.flush()
            except Exception:
                log.exception("market data: Redis flush failed; will rewrite the full state")
                await asyncio.sleep(self.retry_s)
                self._wake.set()
                continue
            # what arrives meanwhile goes out together at the next flush
            rest = self.min_interval_s - (loop.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    # ------------------------------------------------------------------ writing

    async def stored_update_ids(self) -> dict[str, int]:
        """The book update id stored per symbol (for seeding after a restart: start the
        new ``MarketData`` above them, see ``MarketData.seed``)."""
        names = await self.redis.hkeys(self.keys.symbols)
        out: dict[str, int] = {}
        for raw in names:
            sym = raw.decode() if isinstance(raw, bytes) else str(raw)
            uid = await self.redis.hget(self.keys.meta(sym), "update_id")
            out[sym] = int(uid) if uid is not None else 0
        return out

    async def stored_seq(self) -> int | None:
        """The seq of the ``MarketData`` state stored in Redis (None: nothing stored, or
        stored by a version that did not record it). A restarting core starts from it
        plus the journal after it instead of replaying the whole journal."""
        raw = await self.redis.get(self.keys.seq)
        return None if raw is None else int(raw)

    async def flush(self) -> int:
        """Write what is queued (or the whole state, after a loss) in one transaction;
        returns the number of updates written to the stream."""
        updates, self._pending = self._pending, []
        resync, self._resync = self._resync, False
        if not resync and not updates:
            return 0
        pipe = self.redis.pipeline(transaction=True)
        # everything queued so far was made by batches up to md.seq (no await since)
        pipe.set(self.keys.seq, self.md.seq)
        if resync:
            self._write_full(pipe)
        else:
            self._write_updates(pipe, updates)
        if updates:
            pipe.xadd(
                self.keys.stream,
                {"u": _enc.encode(updates)},
                maxlen=self.stream_maxlen,
                approximate=True,
            )
        try:
            await pipe.execute()
        except BaseException:
            self._resync = True
            raise
        self.flushes += 1
        if resync:
            self.resyncs += 1
        return len(updates)

    def _write_full(self, pipe: Pipeline) -> None:
        """The whole state of the ``MarketData``, read now (no ``await`` in between)."""
        k, md = self.keys, self.md
        for info in md.symbols():
            sym = info.symbol
            pipe.hset(k.symbols, sym, _enc.encode(info))
            snap = md.book(sym)
            assert snap is not None
            for buy, levels in ((True, snap.bids), (False, snap.asks)):
                z, h = k.side(sym, buy, "z"), k.side(sym, buy, "h")
                pipe.delete(z, h)
                if levels:
                    pipe.zadd(z, {str(p): p for p, _ in levels})
                    pipe.hset(h, mapping={str(p): q for p, q in levels})
            pipe.hset(
                k.meta(sym),
                mapping={"update_id": snap.update_id, "seq": snap.seq, "ts": snap.ts},
            )
            tkey = k.trades(sym)
            pipe.delete(tkey)
            trades = md.trades(sym, self.trades_kept)
            if trades:
                pipe.lpush(tkey, *[_enc.encode(t) for t in trades])
            for interval in INTERVALS:
                ckey = k.candles(sym, interval)
                pipe.delete(ckey)
                candles = md.candles(sym, interval, self.candles_kept)
                if candles:
                    pipe.zadd(ckey, {_enc.encode(c): c.open_ts for c in candles})
            ticker = md.ticker(sym)
            if ticker is not None:
                pipe.hset(k.tickers, sym, _enc.encode(ticker))

    def _write_updates(self, pipe: Pipeline, updates: Sequence[MarketUpdate]) -> None:
        k = self.keys
        levels: dict[tuple[str, bool], dict[int, int]] = {}
        meta: dict[str, tuple[int, int, int]] = {}
        trades: dict[str, list[bytes]] = {}
        candles: dict[tuple[str, str, int], Candle] = {}
        tickers: dict[str, Ticker] = {}
        for u in updates:
            if isinstance(u, BookDiff):
                for buy, side in ((True, u.bids), (False, u.asks)):
                    if side:
                        d = levels.setdefault((u.symbol, buy), {})
                        for p, q in side:
                            d[p] = q
                meta[u.symbol] = (u.last_id, u.seq, u.ts)
            elif isinstance(u, Trades):
                trades.setdefault(u.symbol, []).extend(_enc.encode(t) for t in u.trades)
            elif isinstance(u, Candle):
                candles[(u.symbol, u.interval, u.open_ts)] = u
            elif isinstance(u, Ticker):
                tickers[u.symbol] = u
            elif isinstance(u, SymbolInfo):
                pipe.hset(k.symbols, u.symbol, _enc.encode(u))
                pipe.hsetnx(k.meta(u.symbol), "update_id", 0)
        for (sym, buy), d in levels.items():
            z, h = k.side(sym, buy, "z"), k.side(sym, buy, "h")
            gone = [str(p) for p, q in d.items() if not q]
            live = {p: q for p, q in d.items() if q}
            if gone:
                pipe.zrem(z, *gone)
                pipe.hdel(h, *gone)
            if live:
                pipe.zadd(z, {str(p): p for p in live})
                pipe.hset(h, mapping={str(p): q for p, q in live.items()})
        for sym, (uid, seq, ts) in meta.items():
            pipe.hset(k.meta(sym), mapping={"update_id": uid, "seq": seq, "ts": ts})
        for sym, blobs in trades.items():
            tkey = k.trades(sym)
            pipe.lpush(tkey, *blobs)
            pipe.ltrim(tkey, 0, self.trades_kept - 1)
        trimmed: set[str] = set()
        for (sym, interval, open_ts), c in candles.items():
            ckey = k.candles(sym, interval)
            pipe.zremrangebyscore(ckey, open_ts, open_ts)
            pipe.zadd(ckey, {_enc.encode(c): open_ts})
            trimmed.add(ckey)
        for ckey in trimmed:
            pipe.zremrangebyrank(ckey, 0, -(self.candles_kept + 1))
        if tickers:
            pipe.hset(k.tickers, mapping={s: _enc.encode(t) for s, t in tickers.items()})


class RedisMarketDataReader:
    """A ``MarketDataReader`` over what a :class:`RedisMarketDataWriter` stored."""

    def __init__(self, redis: Redis, *, prefix: str = "tw") -> None:
        self.redis = redis
        self.keys = Keys(prefix)
        self._book_script = redis.register_script(_BOOK_LUA)

    async def get_symbols(self) -> list[SymbolInfo]:
        raw = await self.redis.hvals(self.keys.symbols)
        return sorted((_dec_symbol.decode(_buf(b)) for b in raw), key=lambda s: s.symbol)

    async def get_book(self, symbol: str, depth: int = 0) -> BookSnapshot | None:
        k = self.keys
        res: Any = await self._book_script(
            keys=[
                k.symbols,
                k.meta(symbol),
                k.side(symbol, True, "z"),
                k.side(symbol, True, "h"),
                k.side(symbol, False, "z"),
                k.side(symbol, False, "h"),
            ],
            args=[symbol, max(depth, 0)],
        )
        if not res:
            return None
        meta, bp, bq, ap, aq = res
        uid, seq, ts = (int(x) if x is not None else 0 for x in meta)
        return BookSnapshot(symbol, uid, seq, ts, _levels(bp, bq), _levels(ap, aq))

    async def get_trades(self, symbol: str, limit: int = 100) -> list[PublicTrade]:
        if limit <= 0:
            return []
        raw = await self.redis.lrange(self.keys.trades(symbol), 0, limit - 1)
        out = [_dec_trade.decode(_buf(b)) for b in raw]
        out.reverse()
        return out

    async def get_candles(
        self,
        symbol: str,
        interval: str,
        limit: int = 500,
        start_ts: int | None = None,
        end_ts: int | None = None,
    ) -> list[Candle]:
        if interval not in INTERVALS or limit <= 0:
            return []
        raw: list[Any] = await self.redis.zrevrangebyscore(
            self.keys.candles(symbol, interval),
            "+inf" if end_ts is None else end_ts,
            "-inf" if start_ts is None else start_ts,
            start=0,
            num=limit,
        )
        out = [_dec_candle.decode(_buf(b)) for b in raw]
        out.reverse()
        return out

    async def get_ticker(self, symbol: str) -> Ticker | None:
        raw = await self.redis.hget(self.keys.tickers, symbol)
        return None if raw is None else _dec_ticker.decode(_buf(raw))

    async def get_tickers(self) -> list[Ticker]:
        raw = await self.redis.hvals(self.keys.tickers)
        return sorted((_dec_ticker.decode(_buf(b)) for b in raw), key=lambda t: t.symbol)

    async def stream_tail_id(self) -> str:
        """Id of the newest entry of the update stream (``"0"`` if empty): follow from it
        to miss nothing written after this call, e.g. while taking snapshots."""
        res: Any = await self.redis.xrevrange(self.keys.stream, count=1)
        if not res:
            return "0"
        entry_id = res[0][0]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def follow(
        self, *, start: str = "$", block_ms: int = 5_000, count: int = 100
    ) -> AsyncIterator[list[MarketUpdate]]:
        """The updates of each writer flush, in order, from ``start`` (a stream id;
        ``"$"``: from now on). Runs until cancelled; feed them to ``Hub.publish_market``.
        After a connection error it resumes from the last id it yielded."""
        last = start
        stream = self.keys.stream
        while True:
            try:
                res: Any = await self.redis.xread({stream: last}, count=count, block=block_ms)
            except (RedisError, OSError) as exc:
                log.warning("market data: stream read failed (%s); retrying", exc)
                await asyncio.sleep(0.5)
                continue
            if not res:
                continue
            for _name, entries in res:
                for entry_id, fields in entries:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                    blob = fields.get(b"u") if b"u" in fields else fields.get("u")
                    if blob is not None:
                        yield _dec_updates.decode(blob)


def _buf(x: bytes | str) -> bytes:
    return x if isinstance(x, bytes) else x.encode()


def _levels(prices: list[bytes], qtys: list[bytes | None]) -> list[Level]:
    return [(int(p), int(q)) for p, q in zip(prices, qtys, strict=True) if q is not None]
