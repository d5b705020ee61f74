"""The WebSocket hub: subscriptions, fan-out and the slow-consumer and heartbeat policies,
independent of any transport.

A gateway (FastAPI/Starlette, aiohttp, a test) owns the sockets. Per connection it calls
:meth:`Hub.connect`, feeds every inbound text frame to :meth:`Hub.handle` (which returns
the ``auth`` requests it must verify itself, then :meth:`Hub.authenticate`), and runs one
writer loop ``while (batch := await client.next_batch()): send each`` that ends when the
hub closes the client; it then closes the socket with ``client.close_code``. Market data
comes in through :meth:`Hub.publish_market` (a ``MarketData`` listener, or the Redis
feed); core events through :meth:`Hub.publish_events` (private channels).

Invariants:
- publishing never waits: each client has a bounded queue (``max_queue`` messages); a
  client whose queue is full when a message arrives is dropped at once with close code
  :attr:`CloseCode.SLOW_CONSUMER` (4008) and its queue is discarded, so one slow reader
  costs the others nothing;
- every message is JSON-encoded once per publish (msgspec), however many clients get it;
  a message for a channel without subscribers is not even built;
- per client, messages arrive in publish order; the book channel of a symbol carries
  Binance-style update ids (``U``/``u``): consecutive diffs satisfy ``U == previous u + 1``,
  so a client detects any gap and resyncs (docs/marketdata.md); between
  :meth:`Hub.begin_batch` and :meth:`Hub.end_batch` (a group commit) market data is
  held and sent coalesced: one diff spanning the batch's ids and one trades message per
  symbol, the newest candle and ticker;
- private channels (``orders``, ``fills``, ``balances``) need an authenticated client and
  are keyed by the user id the gateway vouched for: a user's messages reach only the
  connections authenticated as that user;
- heartbeats: every ``HeartbeatPolicy.interval_s`` the gateway calls
  :meth:`Hub.heartbeat_round`, which queues ``{"op":"ping"}`` to every client and drops
  (close code :attr:`CloseCode.HEARTBEAT_TIMEOUT`, 4009) those that have let
  ``max_missed`` pings in a row pass without sending anything (any inbound frame, a
  ``{"op":"pong"}`` or a WebSocket pong the gateway reports through
  :meth:`HubClient.touch`, counts).

Amounts stay integers up to the :class:`~tradewind.gateways.ws.format.Formatter` the
gateway passes in (decimal strings on the public API).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

import msgspec

from tradewind.core.events import Event
from tradewind.gateways.ws.format import Formatter, IntFormatter
from tradewind.gateways.ws.private import AssetsOf, BalanceLookup, PrivateMapper
from tradewind.services.marketdata import (
    INTERVALS,
    BookDiff,
    BookSnapshot,
    Candle,
    Level,
    MarketUpdate,
    Ticker,
    Trades,
)
from tradewind.services.marketdata.coalesce import coalesce

PUBLIC_CHANNELS: Final = frozenset({"trades", "book", "ticker", "candles"})
PRIVATE_CHANNELS: Final = frozenset({"orders", "fills", "balances", "margin"})
"""``margin``: level updates and margin-call / liquidation notices, published by
:class:`~tradewind.gateways.ws.margin.MarginChannel` through :meth:`Hub.send_private`."""

Key = tuple[str, str | int, str]
"""``(channel, symbol or user id, candle interval or "")``."""

SnapshotSource = Callable[[str], BookSnapshot | None]
"""A *synchronous* book snapshot by symbol, consistent with the diffs being published
(``MarketData.book``); lets a ``book`` subscription start with a snapshot."""


class CloseCode(IntEnum):
    """WebSocket close codes the gateway should use when the hub closes a client."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down
    POLICY_VIOLATION = 1008  # the gateway's own refusals (message too big, bad auth...)
    SLOW_CONSUMER = 4008  # outgoing queue overflowed: reconnect and resync
    HEARTBEAT_TIMEOUT = 4009  # missed pings


@dataclass(frozen=True, slots=True)
class HeartbeatPolicy:
    """Ping every ``interval_s`` seconds; drop after ``max_missed`` unanswered pings."""

    interval_s: float = 20.0
    max_missed: int = 2


class ClientOp(msgspec.Struct, frozen=True):
    """An inbound message. ``id`` (any JSON scalar) is echoed in the reply."""

    op: str
    channel: str | None = None
    symbol: str | None = None
    interval: str | None = None
    id: int | str | None = None
    # auth (checked by the gateway): a session token, or an API-key signature
    token: str | None = None
    key: str | None = None
    timestamp: int | str | None = None
    signature: str | None = None


_decode_op = msgspec.json.Decoder(ClientOp).decode
_encode = msgspec.json.Encoder().encode
_PING: Final = '{"op":"ping"}'
_PONG: Final = '{"op":"pong"}'


def encode(message: Any) -> str:
    """JSON text of one message (msgspec; ``Decimal`` becomes a string)."""
    return _encode(message).decode()


class HubClient:
    """The hub's side of one connection: its queue, identity and subscriptions."""

    __slots__ = (
        "_queue",
        "_waiter",
        "close_code",
        "close_reason",
        "closed",
        "id",
        "max_queue",
        "missed",
        "subs",
        "user",
    )

    def __init__(self, id: int, max_queue: int) -> None:
        self.id = id
        self.max_queue = max_queue
        self.user: int | None = None
        self.subs: set[Key] = set()
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.missed = 0
        self._queue: deque[str] = deque()
        self._waiter: asyncio.Future[None] | None = None

    @property
    def pending(self) -> int:
        """Messages queued and not yet taken by the writer loop."""
        return len(self._queue)

    def touch(self) -> None:
        """The peer showed life (any frame, a pong): reset the missed-ping count."""
        self.missed = 0

    def _push(self, message: str) -> bool:
        """Queue one message; ``False`` if the queue is full (the hub drops the client)."""
        q = self._queue
        if len(q) >= self.max_queue:
            return False
        q.append(message)
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)
        return True

    def _close(self, code: int, reason: str) -> None:
        self.closed = True
        self.close_code = code
        self.close_reason = reason
        self._queue.clear()
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)

    async def _wait(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = fut
        try:
            await fut
        finally:
            if self._waiter is fut:
                self._waiter = None

    async def next(self) -> str | None:
        """The next message; ``None`` once the hub has closed this client."""
        while not self._queue:
            if self.closed:
                return None
            await self._wait()
        return None if self.closed else self._queue.popleft()

    async def next_batch(self, limit: int = 256) -> list[str]:
        """Everything queued (at least one message, at most ``limit``); ``[]`` once the
        hub has closed this client. Sending a batch per wake-up keeps the writer cheap."""
        q = self._queue
        while not q:
            if self.closed:
                return []
            await self._wait()
        if self.closed:
            return []
        if len(q) <= limit:
            out = list(q)
            q.clear()
            return out
        return [q.popleft() for _ in range(limit)]


class Hub:
    """Subscriptions and fan-out for every connected client of one gateway process."""

    def __init__(
        self,
        *,
        max_queue: int = 1024,
        max_subscriptions: int = 64,
        heartbeat: HeartbeatPolicy | None = None,
        formatter: Formatter | None = None,
        is_symbol: Callable[[str], bool] | None = None,
        book_snapshot: SnapshotSource | None = None,
        balances: BalanceLookup | None = None,
        assets_of: AssetsOf | None = None,
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be positive")
        self.max_queue = max_queue
        self.max_subscriptions = max_subscriptions
        self.heartbeat = heartbeat or HeartbeatPolicy()
        self.fmt: Formatter = formatter or IntFormatter()
        self.is_symbol = is_symbol
        self.book_snapshot = book_snapshot
        self.private = PrivateMapper(self.fmt, balances, assets_of)
        self._clients: dict[int, HubClient] = {}
        self._subs: dict[Key, dict[int, HubClient]] = {}
        self._private_subs: dict[int, int] = {}  # user -> private subscriptions
        self._next_id = 0
        self._held: list[MarketUpdate] | None = None  # between begin_batch and end_batch
        # counters (for /metrics)
        self.messages_out = 0
        self.dropped_slow = 0
        self.dropped_heartbeat = 0

    # ------------------------------------------------------------------ connections

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def connect(self) -> HubClient:
        self._next_id += 1
        c = HubClient(self._next_id, self.max_queue)
        self._clients[c.id] = c
        return c

    def disconnect(self, client: HubClient, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Forget a client (its socket closed, or the gateway closes it). Idempotent."""
        self._drop(client, code, reason)

    def close_all(self, code: int = CloseCode.GOING_AWAY, reason: str = "shutting down") -> None:
        for c in list(self._clients.values()):
            self._drop(c, code, reason)

    def authenticate(self, client: HubClient, user: int, id: int | str | None = None) -> bool:
        """The gateway verified ``client`` as ``user``; private channels open to it.
        A client stays the user it first authenticated as (``False`` otherwise)."""
        if client.closed:
            return False
        if client.user is not None and client.user != user:
            self.send_error(client, "already_authenticated", "connection is bound to a user", id)
            return False
        client.user = user
        self._send(client, {"op": "authenticated", "user": user, "id": id})
        return True

    def send_error(
        self, client: HubClient, code: str, message: str, id: int | str | None = None
    ) -> None:
        self._send(client, {"op": "error", "code": code, "message": message, "id": id})

    def _send(self, client: HubClient, message: Any) -> None:
        if not client.closed:
            self._deliver(client, encode(message))

    def _deliver(self, client: HubClient, text: str) -> bool:
        if client._push(text):
            self.messages_out += 1
            return True
        self.dropped_slow += 1
        self._drop(client, CloseCode.SLOW_CONSUMER, "slow consumer")
        return False

    def _drop(self, client: HubClient, code: int, reason: str) -> None:
        if self._clients.pop(client.id, None) is None and client.closed:
            return
        for key in client.subs:
            subs = self._subs.get(key)
            if subs is not None:
                subs.pop(client.id, None)
                if not subs:
                    del self._subs[key]
            if key[0] in PRIVATE_CHANNELS:
                self._unprivate(key[1])
        client.subs.clear()
        if not client.closed:
            client._close(code, reason)

    def _unprivate(self, user: str | int) -> None:
        assert isinstance(user, int)
        n = self._private_subs.get(user, 0) - 1
        if n > 0:
            self._private_subs[user] = n
        else:
            self._private_subs.pop(user, None)

    # ------------------------------------------------------------------ inbound

    def handle(self, client: HubClient, raw: str | bytes) -> ClientOp | None:
        """Process one inbound frame. Returns the ``auth`` request for the gateway to
        verify (then :meth:`authenticate` or :meth:`send_error`); replies to the rest."""
        client.touch()
        try:
            op = _decode_op(raw)
        except msgspec.DecodeError as exc:
            self.send_error(client, "bad_request", f"malformed message: {exc}")
            return None
        kind = op.op
        if kind == "subscribe" or kind == "unsubscribe":
            if op.channel is None:
                self.send_error(client, "bad_request", "channel is required", op.id)
            elif kind == "subscribe":
                self.subscribe(client, op.channel, op.symbol, op.interval, op.id)
            else:
                self.unsubscribe(client, op.channel, op.symbol, op.interval, op.id)
        elif kind == "ping":
            self._deliver(client, _PONG)
        elif kind == "pong":
            pass
        elif kind == "auth":
            return op
        else:
            self.send_error(client, "unknown_op", f"unknown op {kind!r}", op.id)
        return None

    def _key(
        self,
        client: HubClient,
        channel: str,
        symbol: str | None,
        interval: str | None,
        id: int | str | None,
    ) -> Key | None:
        if channel in PUBLIC_CHANNELS:
            if symbol is None or (self.is_symbol is not None and not self.is_symbol(symbol)):
                self.send_error(client, "unknown_symbol", f"unknown symbol {symbol!r}", id)
                return None
            if channel == "candles":
                interval = interval or "1m"
                if interval not in INTERVALS:
                    self.send_error(
                        client, "unknown_interval", f"interval is one of {list(INTERVALS)}", id
                    )
                    return None
                return (channel, symbol, interval)
            return (channel, symbol, "")
        if channel in PRIVATE_CHANNELS:
            if client.user is None:
                self.send_error(client, "unauthorized", "authenticate first", id)
                return None
            return (channel, client.user, "")
        self.send_error(client, "unknown_channel", f"unknown channel {channel!r}", id)
        return None

    def subscribe(
        self,
        client: HubClient,
        channel: str,
        symbol: str | None = None,
        interval: str | None = None,
        id: int | str | None = None,
    ) -> bool:
        if client.closed:
            return False
        key = self._key(client, channel, symbol, interval, id)
        if key is None:
            return False
        # a book snapshot is of the book as it is now: what is held (mid-batch) goes out
        # first, without this client, which would take it as stale or as older news
        self._release_held()
        if key not in client.subs:
            if len(client.subs) >= self.max_subscriptions:
                self.send_error(
                    client, "too_many_subscriptions", f"at most {self.max_subscriptions}", id
                )
                return False
            client.subs.add(key)
            self._subs.setdefault(key, {})[client.id] = client
            if channel in PRIVATE_CHANNELS:
                assert client.user is not None
                self._private_subs[client.user] = self._private_subs.get(client.user, 0) + 1
        ack: dict[str, Any] = {"op": "subscribed", "channel": channel, "id": id}
        if channel in PUBLIC_CHANNELS:
            ack["symbol"] = symbol
        if channel == "candles":
            ack["interval"] = key[2]
        self._send(client, ack)
        if channel == "book" and self.book_snapshot is not None and symbol is not None:
            snap = self.book_snapshot(symbol)
            if snap is not None:
                self._send(client, self._snapshot_message(snap))
        return True

    def unsubscribe(
        self,
        client: HubClient,
        channel: str,
        symbol: str | None = None,
        interval: str | None = None,
        id: int | str | None = None,
    ) -> bool:
        key = self._key(client, channel, symbol, interval, id)
        if key is None:
            return False
        if key in client.subs:
            client.subs.discard(key)
            subs = self._subs.get(key)
            if subs is not None:
                subs.pop(client.id, None)
                if not subs:
                    del self._subs[key]
            if channel in PRIVATE_CHANNELS:
                self._unprivate(key[1])
        self._send(client, {"op": "unsubscribed", "channel": channel, "id": id})
        return True

    # ------------------------------------------------------------------ heartbeats

    def heartbeat_round(self) -> int:
        """Ping every client; drop those that missed ``max_missed`` pings in a row.
        Call every ``heartbeat.interval_s`` seconds; returns how many were dropped."""
        dropped = 0
        limit = self.heartbeat.max_missed
        for c in list(self._clients.values()):
            if c.missed >= limit:
                dropped += 1
                self.dropped_heartbeat += 1
                self._drop(c, CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
            else:
                c.missed += 1
                self._deliver(c, _PING)
        return dropped

    # ------------------------------------------------------------------ outbound

    def _fanout(self, subs: dict[int, HubClient], text: str) -> None:
        slow: list[HubClient] | None = None
        n = 0
        for c in subs.values():
            if c._push(text):
                n += 1
            else:
                if slow is None:
                    slow = []
                slow.append(c)
        self.messages_out += n
        if slow:
            for c in slow:
                self.dropped_slow += 1
                self._drop(c, CloseCode.SLOW_CONSUMER, "slow consumer")

    def begin_batch(self) -> None:
        """Hold market-data updates until :meth:`end_batch` (the core runner's group
        commit: one book diff and one trades message per symbol for the whole group,
        :func:`~tradewind.services.marketdata.coalesce.coalesce`). Idempotent."""
        if self._held is None:
            self._held = []

    def end_batch(self) -> None:
        """Fan out what was held since :meth:`begin_batch`, coalesced."""
        self._release_held()
        self._held = None

    def _release_held(self) -> None:
        held = self._held
        if held:
            self._held = []
            self._publish_market(coalesce(held))

    def publish_market(self, updates: Sequence[MarketUpdate]) -> None:
        """Fan out one batch of market-data updates (a ``MarketData`` listener); held
        for the batch's end between :meth:`begin_batch` and :meth:`end_batch`."""
        held = self._held
        if held is not None:
            held.extend(updates)
            return
        self._publish_market(updates)

    def _publish_market(self, updates: Sequence[MarketUpdate]) -> None:
        subs_of = self._subs
        for u in updates:
            if isinstance(u, BookDiff):
                subs = subs_of.get(("book", u.symbol, ""))
                if subs:
                    self._fanout(subs, encode(self._diff_message(u)))
            elif isinstance(u, Trades):
                subs = subs_of.get(("trades", u.symbol, ""))
                if subs:
                    self._fanout(subs, encode(self._trades_message(u)))
            elif isinstance(u, Candle):
                subs = subs_of.get(("candles", u.symbol, u.interval))
                if subs:
                    self._fanout(subs, encode(self._candle_message(u)))
            elif isinstance(u, Ticker):
                subs = subs_of.get(("ticker", u.symbol, ""))
                if subs:
                    self._fanout(subs, encode(self._ticker_message(u)))

    def publish_events(self, seq: int, ts: int, events: Sequence[Event]) -> None:
        """Fan out the private messages of one command's core events."""
        private_subs = self._private_subs
        msgs = self.private.map(seq, ts, events, private_subs.__contains__)
        subs_of = self._subs
        for m in msgs:
            subs = subs_of.get((m.channel, m.user, ""))
            if subs:
                self._fanout(subs, encode({"channel": m.channel, "data": m.data}))

    def subscribed(self, channel: str, user: int) -> bool:
        """Whether some client of ``user`` subscribed to private ``channel``."""
        return bool(self._subs.get((channel, user, "")))

    def subscribers(self, channel: str) -> list[int]:
        """The users with a subscription to private ``channel``."""
        return [k[1] for k, subs in self._subs.items() if k[0] == channel and subs]  # type: ignore[misc]

    def send_private(self, channel: str, user: int, data: dict[str, Any]) -> bool:
        """Send ``data`` on private ``channel`` to ``user``'s subscribed clients (built
        elsewhere, e.g. the margin channel); ``False`` if nobody listens."""
        subs = self._subs.get((channel, user, ""))
        if not subs:
            return False
        self._fanout(subs, encode({"channel": channel, "data": data}))
        return True

    # ------------------------------------------------------------------ message shapes

    def _levels(self, symbol: str, levels: Iterable[Level]) -> list[list[Any]]:
        fmt = self.fmt
        return [[fmt.price(symbol, p), fmt.qty(symbol, q)] for p, q in levels]

    def _snapshot_message(self, s: BookSnapshot) -> dict[str, Any]:
        return {
            "channel": "book",
            "symbol": s.symbol,
            "type": "snapshot",
            "u": s.update_id,
            "seq": s.seq,
            "ts": s.ts,
            "bids": self._levels(s.symbol, s.bids),
            "asks": self._levels(s.symbol, s.asks),
        }

    def _diff_message(self, d: BookDiff) -> dict[str, Any]:
        return {
            "channel": "book",
            "symbol": d.symbol,
            "type": "diff",
            "U": d.first_id,
            "u": d.last_id,
            "seq": d.seq,
            "ts": d.ts,
            "bids": self._levels(d.symbol, d.bids),
            "asks": self._levels(d.symbol, d.asks),
        }

    def _trades_message(self, t: Trades) -> dict[str, Any]:
        fmt, sym = self.fmt, t.symbol
        return {
            "channel": "trades",
            "symbol": sym,
            "data": [
                {
                    "seq": x.seq,
                    "idx": x.idx,
                    "ts": x.ts,
                    "price": fmt.price(sym, x.price),
                    "qty": fmt.qty(sym, x.qty),
                    "quote": fmt.quote(sym, x.quote),
                    "side": x.side,
                }
                for x in t.trades
            ],
        }

    def _candle_message(self, c: Candle) -> dict[str, Any]:
        fmt, sym = self.fmt, c.symbol
        return {
            "channel": "candles",
            "symbol": sym,
            "interval": c.interval,
            "data": {
                "open_ts": c.open_ts,
                "open": fmt.price(sym, c.open),
                "high": fmt.price(sym, c.high),
                "low": fmt.price(sym, c.low),
                "close": fmt.price(sym, c.close),
                "volume": fmt.qty(sym, c.volume),
                "quote_volume": fmt.quote(sym, c.quote_volume),
                "count": c.count,
            },
        }

    def _ticker_message(self, t: Ticker) -> dict[str, Any]:
        fmt, sym = self.fmt, t.symbol

        def price(v: int | None) -> Any:
            return None if v is None else fmt.price(sym, v)

        return {
            "channel": "ticker",
            "symbol": sym,
            "data": {
                "ts": t.ts,
                "last": price(t.last),
                "open": price(t.open),
                "high": price(t.high),
                "low": price(t.low),
                "change": price(t.change),
                "volume": fmt.qty(sym, t.volume),
                "quote_volume": fmt.quote(sym, t.quote_volume),
                "count": t.count,
            },
        }
