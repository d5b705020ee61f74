"""The WebSocket hub: fan-out, slow consumers, book update ids, private routing,
heartbeats and the inbound protocol, driven by a real core and ``MarketData``."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from decimal import Decimal
from typing import Any

import pytest

from tests.support.md_stream import Driver, random_commands, setup_commands
from tradewind.core.events import Event, Trade
from tradewind.gateways.ws import CloseCode, HeartbeatPolicy, Hub, HubClient
from tradewind.services.marketdata import BookDiff, MarketData, Trades

SYM = "BTC-USDT"


class Exchange:
    """A core, its market data and a hub wired as the embedded runtime does."""

    def __init__(self, hub: Hub | None = None, **hub_args: Any) -> None:
        self.drv = Driver()
        self.md = MarketData()
        self.hub = hub or Hub(book_snapshot=self.md.book, is_symbol=self.md.has_symbol, **hub_args)
        self.md.subscribe(self.hub.publish_market)
        for cmd in setup_commands():
            self.do(cmd)

    def do(self, cmd: dict[str, Any]) -> list[Event]:
        seq, ts, events = self.drv.apply({"ts": self.drv.core.ts or 1_700_000_000_000, **cmd})
        self.md.apply(seq, ts, events)
        self.hub.publish_events(seq, ts, events)
        return events

    def place(self, id: int, user: int, side: str, price: int, qty: int, **kw: Any) -> list[Event]:
        return self.do(
            {
                "op": "place",
                "id": id,
                "user": user,
                "symbol": SYM,
                "side": side,
                "type": "limit",
                "price": price,
                "qty": qty,
                **kw,
            }
        )


def drain(c: HubClient) -> list[dict[str, Any]]:
    out = list(c._queue)
    c._queue.clear()
    return [json.loads(m) for m in out]


def test_fan_out_to_many_clients_encodes_once() -> None:
    ex = Exchange()
    hub = ex.hub
    clients = [hub.connect() for _ in range(300)]
    for c in clients:
        assert hub.subscribe(c, "trades", SYM)
        assert hub.subscribe(c, "book", SYM)
        assert hub.subscribe(c, "candles", SYM, "5m")
        drain(c)
    ex.place(1, 1, "sell", 100, 5)
    ex.place(2, 2, "buy", 100, 3)
    queues = [list(c._queue) for c in clients]
    assert all(q == queues[0] for q in queues)
    # the same string object in every queue: encoded once per publish, not per client
    for i in range(len(queues[0])):
        assert len({id(q[i]) for q in queues}) == 1
    msgs = [json.loads(m) for m in queues[0]]
    kinds = [(m["channel"], m.get("type")) for m in msgs]
    assert kinds == [("book", "diff"), ("trades", None), ("book", "diff"), ("candles", None)]
    trade = msgs[1]["data"]
    assert [(t["price"], t["qty"], t["side"]) for t in trade] == [(100, 3, "buy")]
    assert msgs[3]["interval"] == "5m" and msgs[3]["data"]["volume"] == 3


def test_slow_consumer_is_dropped_without_blocking_others() -> None:
    ex = Exchange(max_queue=8)
    hub = ex.hub
    slow, fast = hub.connect(), hub.connect()
    for c in (slow, fast):
        hub.subscribe(c, "book", SYM)
    got: list[dict[str, Any]] = drain(fast)
    drain(slow)
    for i in range(40):
        ex.place(10 + i, 1 + i % 2, "buy", 50 + i, 1)
        got += drain(fast)  # the fast reader keeps up; the slow one never reads
    assert slow.closed and slow.close_code == CloseCode.SLOW_CONSUMER
    assert CloseCode.SLOW_CONSUMER.value == 4008
    assert slow.pending == 0 and not slow.subs
    assert hub.dropped_slow == 1 and hub.client_count == 1
    assert not fast.closed
    diffs = [m for m in got if m.get("type") == "diff"]
    assert len(diffs) == 40
    assert asyncio.run(slow.next_batch()) == []
    assert asyncio.run(slow.next()) is None


def test_writer_loop_wakes_on_publish_and_ends_on_drop() -> None:
    async def scenario() -> None:
        ex = Exchange(max_queue=4)
        hub = ex.hub
        reader, stuck = hub.connect(), hub.connect()
        hub.subscribe(reader, "trades", SYM)
        hub.subscribe(stuck, "trades", SYM)
        received: list[str] = []

        async def writer(c: HubClient) -> None:
            while batch := await c.next_batch():
                received.extend(batch)

        task = asyncio.create_task(writer(reader))
        await asyncio.sleep(0)
        for i in range(10):
            ex.place(100 + 2 * i, 1, "sell", 100, 1)
            ex.place(101 + 2 * i, 2, "buy", 100, 1)
            await asyncio.sleep(0)  # the writer runs between publishes
        assert stuck.closed and stuck.close_code == CloseCode.SLOW_CONSUMER
        hub.disconnect(reader)
        await asyncio.wait_for(task, 1)
        trades = [json.loads(m) for m in received if '"trades"' in m and '"data"' in m]
        assert len(trades) == 10

    asyncio.run(scenario())


def test_book_update_ids_are_contiguous_and_resync_from_snapshot() -> None:
    ex = Exchange()
    hub = ex.hub
    early = hub.connect()
    hub.subscribe(early, "book", SYM)
    rng = random.Random(3)
    late: HubClient | None = None
    cmds = random_commands(rng, 1500, ex.drv.core)
    for i, cmd in enumerate(itertools.islice(cmds, 1500)):
        ex.do(cmd)
        if i == 700:
            late = hub.connect()
            hub.subscribe(late, "book", SYM)
    assert late is not None
    for c in (early, late):
        msgs = [m for m in drain(c) if m.get("channel") == "book" and "op" not in m]
        assert msgs[0]["type"] == "snapshot"
        book: dict[str, dict[int, int]] = {"bids": {}, "asks": {}}
        last = msgs[0]["u"]
        for side in ("bids", "asks"):
            book[side] = {p: q for p, q in msgs[0][side]}
        for m in msgs[1:]:
            assert m["type"] == "diff"
            assert m["U"] == last + 1, "a gap: the client would resync"
            last = m["u"]
            for side in ("bids", "asks"):
                for p, q in m[side]:
                    if q:
                        book[side][p] = q
                    else:
                        book[side].pop(p, None)
        snap = ex.md.book(SYM)
        assert snap is not None and last == snap.update_id
        assert sorted(book["bids"].items(), reverse=True) == snap.bids
        assert sorted(book["asks"].items()) == snap.asks


def test_a_lost_diff_shows_as_a_gap() -> None:
    hub = Hub()
    c = hub.connect()
    hub.subscribe(c, "book", SYM)
    drain(c)
    for first, last in ((1, 3), (4, 4), (7, 9)):  # 5..6 never reached this hub
        hub.publish_market([BookDiff(SYM, first, last, 1, 1, [(100, 1)], [])])
    msgs = drain(c)
    ids = [(m["U"], m["u"]) for m in msgs]
    gaps = [b[0] != a[1] + 1 for a, b in itertools.pairwise(ids)]
    assert gaps == [False, True]


def test_private_messages_reach_only_their_owner() -> None:
    balances = {(1, "BTC"): (5, 6), (1, "USDT"): (7, 8), (2, "BTC"): (9, 10), (2, "USDT"): (1, 2)}
    ex = Exchange(balances=lambda u, a: balances.get((u, a)))
    hub = ex.hub
    a1, a1b, b2, c3, anon = (hub.connect() for _ in range(5))
    for c, user in ((a1, 1), (a1b, 1), (b2, 2), (c3, 3)):
        assert hub.authenticate(c, user)
        for ch in ("orders", "fills", "balances"):
            assert hub.subscribe(c, ch)
        drain(c)
    assert not hub.subscribe(anon, "orders")
    assert drain(anon)[-1]["code"] == "unauthorized"
    assert not hub.authenticate(a1, 2)  # a connection stays its first user
    drain(a1)

    ex.place(1, 1, "sell", 100, 5, client_id="one")
    ex.place(2, 2, "buy", 101, 3)
    got1, got1b, got2, got3 = drain(a1), drain(a1b), drain(b2), drain(c3)
    assert got1 == got1b  # every connection of the user
    assert got3 == [] and drain(anon) == []

    def orders(msgs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            (m["data"]["id"], m["data"]["event"], m["data"]["status"], m["data"]["left"])
            for m in msgs
            if m["channel"] == "orders"
        ]

    assert orders(got1) == [(1, "accepted", "new", 5), (1, "trade", "partially_filled", 2)]
    assert orders(got2) == [
        (2, "accepted", "new", 3),
        (2, "trade", "filled", 0),
        (2, "released", "filled", 0),
    ]
    fills1 = [m["data"] for m in got1 if m["channel"] == "fills"]
    fills2 = [m["data"] for m in got2 if m["channel"] == "fills"]
    assert [
        (f["order_id"], f["role"], f["side"], f["price"], f["qty"], f["fee_asset"], f["client_id"])
        for f in fills1
    ] == [(1, "maker", "sell", 100, 3, "USDT", "one")]
    assert [(f["order_id"], f["role"], f["side"], f["fee_asset"]) for f in fills2] == [
        (2, "taker", "buy", "BTC")
    ]
    assert fills1[0]["fee"] == -(-300 * 10 // 10_000)  # maker 10 bps of the quote
    bal1 = [m["data"]["balances"] for m in got1 if m["channel"] == "balances"]
    assert bal1[-1] == [
        {"asset": "BTC", "available": 5, "locked": 6},
        {"asset": "USDT", "available": 7, "locked": 8},
    ]
    assert got1[-1]["channel"] == "balances"  # after the orders and fills of the command
    # every message names the receiver's own orders only
    assert {m["data"]["id"] for m in got1 if m["channel"] == "orders"} == {1}
    assert {m["data"]["id"] for m in got2 if m["channel"] == "orders"} == {2}

    ex.do({"op": "cancel", "id": 1, "user": 1, "symbol": SYM})
    assert orders(drain(a1)) == orders(drain(a1b)) == [(1, "cancelled", "cancelled", 2)]
    assert drain(b2) == []
    hub.unsubscribe(a1, "orders")
    drain(a1)
    ex.place(3, 1, "buy", 90, 1)
    assert [m["channel"] for m in drain(a1)] == ["balances"]
    assert orders(drain(a1b)) == [(3, "accepted", "new", 1)]


def data(c: HubClient, channel: str) -> list[dict[str, Any]]:
    return [m["data"] for m in drain(c) if m.get("channel") == channel and "op" not in m]


def test_private_statuses_follow_the_order_life() -> None:
    ex = Exchange()
    hub = ex.hub
    c = hub.connect()
    hub.authenticate(c, 1)
    hub.subscribe(c, "orders")
    ex.place(1, 2, "sell", 100, 3)
    # a stop-limit that triggers, fills in part, rests, and is amended down
    ex.do(
        {
            "op": "place",
            "id": 5,
            "user": 1,
            "symbol": SYM,
            "side": "buy",
            "type": "stop_limit",
            "stop_price": 100,
            "price": 100,
            "qty": 4,
        }
    )
    ex.place(2, 3, "buy", 100, 1)  # trades at 100: fires the stop
    ex.do({"op": "amend", "id": 5, "user": 1, "symbol": SYM, "qty": 1})
    msgs = data(c, "orders")
    assert [(m["event"], m["status"], m["qty"], m["filled"], m["left"]) for m in msgs] == [
        ("accepted", "untriggered", 4, 0, 4),
        ("triggered", "new", 4, 0, 4),
        ("trade", "partially_filled", 4, 2, 2),
        ("amended", "partially_filled", 3, 2, 1),
    ]
    assert msgs[0]["stop_price"] == 100 and msgs[1]["last_price"] == 100
    assert msgs[2]["last_price"] == 100 and msgs[2]["last_qty"] == 2
    assert msgs[3]["kept_priority"] is True
    # a market buy by quote amount, and a GTD order that expires
    ex.place(3, 2, "sell", 100, 5)
    ex.do(
        {
            "op": "place",
            "id": 7,
            "user": 1,
            "symbol": SYM,
            "side": "buy",
            "type": "market",
            "quote_qty": 250,
        }
    )
    ex.place(8, 1, "sell", 200, 1, tif="GTD", expire_ts=ex.drv.core.ts + 10)
    ex.do({"op": "tick", "ts": ex.drv.core.ts + 20})
    by_id: dict[int, list[tuple[str, str]]] = {}
    for m in data(c, "orders"):
        by_id.setdefault(m["id"], []).append((m["event"], m["status"]))
    assert by_id[7] == [
        ("accepted", "new"),
        ("trade", "partially_filled"),
        ("cancelled", "filled"),  # the budget's remainder (50) went back
    ]
    assert by_id[8] == [("accepted", "new"), ("cancelled", "expired")]
    assert hub.private.open_orders == len(ex.drv.core.orders) + len(ex.drv.core.stops)


def test_private_mapper_tracks_open_orders_of_a_random_stream() -> None:
    ex = Exchange()
    rng = random.Random(11)
    for cmd in random_commands(rng, 2000, ex.drv.core):
        ex.do(cmd)
        core = ex.drv.core
        assert set(ex.hub.private._orders) == set(core.orders) | set(core.stops)


def test_heartbeat_drops_silent_clients() -> None:
    hub = Hub(heartbeat=HeartbeatPolicy(interval_s=1, max_missed=2))
    alive, silent = hub.connect(), hub.connect()
    dropped = []
    for _ in range(5):
        dropped.append(hub.heartbeat_round())
        hub.handle(alive, '{"op":"pong"}')
    assert dropped == [0, 0, 1, 0, 0]  # two pings missed, dropped at the third round
    assert drain(alive)[0] == {"op": "ping"}
    assert silent.closed and silent.close_code == CloseCode.HEARTBEAT_TIMEOUT
    assert CloseCode.HEARTBEAT_TIMEOUT.value == 4009
    assert not alive.closed and hub.dropped_heartbeat == 1


def test_inbound_protocol() -> None:
    md = MarketData()
    hub = Hub(is_symbol=md.has_symbol)
    c = hub.connect()
    hub.handle(c, b"{not json")
    hub.handle(c, '{"op":"dance","id":4}')
    hub.handle(c, '{"op":"subscribe","channel":"trades","symbol":"NOPE-USDT","id":5}')
    hub.handle(c, '{"op":"subscribe","channel":"gossip","symbol":"NOPE-USDT"}')
    hub.handle(c, '{"op":"ping"}')
    auth = hub.handle(c, '{"op":"auth","token":"abc","id":9}')
    assert auth is not None and auth.token == "abc" and auth.id == 9
    msgs = drain(c)
    assert [m.get("code", m["op"]) for m in msgs] == [
        "bad_request",
        "unknown_op",
        "unknown_symbol",
        "unknown_channel",
        "pong",
    ]
    assert msgs[1]["id"] == 4 and msgs[2]["id"] == 5
    hub2 = Hub(max_subscriptions=2)
    d = hub2.connect()
    hub2.handle(d, '{"op":"subscribe","channel":"candles","symbol":"A-B","interval":"7m"}')
    hub2.handle(d, '{"op":"subscribe","channel":"candles","symbol":"A-B"}')
    hub2.handle(d, '{"op":"subscribe","channel":"ticker","symbol":"A-B"}')
    hub2.handle(d, '{"op":"subscribe","channel":"trades","symbol":"A-B"}')
    msgs = drain(d)
    assert [m.get("code", m["op"]) for m in msgs] == [
        "unknown_interval",
        "subscribed",
        "subscribed",
        "too_many_subscriptions",
    ]
    assert msgs[1]["interval"] == "1m"
    hub2.close_all()
    assert d.closed and d.close_code == CloseCode.GOING_AWAY and hub2.client_count == 0


class DecimalFormatter:
    def price(self, symbol: str, ticks: int) -> Any:
        return Decimal(ticks) / 100

    def qty(self, symbol: str, lots: int) -> Any:
        return Decimal(lots) / 10_000

    def quote(self, symbol: str, minor: int) -> Any:
        return Decimal(minor) / 10**6

    def amount(self, asset: str, minor: int) -> Any:
        return str(minor)


@pytest.mark.parametrize("channel", ["trades", "book", "ticker"])
def test_formatter_hook_converts_amounts(channel: str) -> None:
    ex = Exchange(formatter=DecimalFormatter())
    c = ex.hub.connect()
    ex.hub.subscribe(c, channel, SYM)
    drain(c)
    ex.place(1, 1, "sell", 12345, 5)
    events = ex.place(2, 2, "buy", 12345, 5)
    assert any(isinstance(e, Trade) for e in events)
    msg = drain(c)[-1]
    if channel == "trades":
        assert msg["data"][0]["price"] == "123.45" and msg["data"][0]["qty"] == "0.0005"
    elif channel == "book":
        assert msg["asks"] == [["123.45", "0"]]
    else:
        assert msg["data"]["last"] == "123.45" and msg["data"]["volume"] == "0.0005"


def _follow_book(msgs: list[dict[str, Any]], sym: str) -> tuple[int, dict[str, dict[Any, Any]]]:
    """A client's book from its snapshot and diffs; asserts there is no gap."""
    book_msgs = [
        m for m in msgs if m.get("channel") == "book" and m.get("symbol") == sym and "op" not in m
    ]
    assert book_msgs[0]["type"] == "snapshot"
    last = book_msgs[0]["u"]
    book = {side: {p: q for p, q in book_msgs[0][side]} for side in ("bids", "asks")}
    for m in book_msgs[1:]:
        assert m["type"] == "diff"
        if m["u"] <= last:
            continue  # stale: covered by the snapshot (as a client drops it)
        assert m["U"] <= last + 1, "a gap: the client would resync"
        last = m["u"]
        for side in ("bids", "asks"):
            for p, q in m[side]:
                if q:
                    book[side][p] = q
                else:
                    book[side].pop(p, None)
    return last, book


def test_batches_send_one_diff_and_one_trades_message_per_symbol() -> None:
    """Between begin_batch and end_batch (a group commit) the book of each symbol goes out
    as one diff spanning the batch's update ids and the trades as one message, and a
    client following them (one from the start, one that joined in the middle of the
    stream) ends with the service's book and every trade exactly once."""
    ex = Exchange()
    hub = ex.hub
    early = hub.connect()
    for sym in ("BTC-USDT", "ETH-USDT"):
        hub.subscribe(early, "book", sym)
        hub.subscribe(early, "trades", sym)
        hub.subscribe(early, "ticker", sym)
    rng = random.Random(11)
    late: HubClient | None = None
    cmds = random_commands(rng, 3000, ex.drv.core)
    batches = 0
    updates = 0
    trades_published: list[tuple[str, int, int]] = []
    ex.md.subscribe(
        lambda us: trades_published.extend(
            (u.symbol, t.seq, t.idx) for u in us if isinstance(u, Trades) for t in u.trades
        )
    )
    while True:
        group = list(itertools.islice(cmds, rng.choice((1, 2, 5, 30))))
        if not group:
            break
        hub.begin_batch()
        for cmd in group:
            ex.do(cmd)
        hub.end_batch()
        batches += 1
        if late is None and batches == 40:
            late = hub.connect()
            hub.subscribe(late, "book", SYM)
    assert late is not None
    msgs = drain(early)
    for sym in ("BTC-USDT", "ETH-USDT"):
        last, book = _follow_book(msgs, sym)
        snap = ex.md.book(sym)
        assert snap is not None and last == snap.update_id
        assert sorted(book["bids"].items(), reverse=True) == snap.bids
        assert sorted(book["asks"].items()) == snap.asks
        diffs = [m for m in msgs if m.get("type") == "diff" and m["symbol"] == sym]
        updates += sum(m["u"] - m["U"] + 1 for m in diffs)
        assert len(diffs) <= batches
    assert updates > batches  # some diffs did cover several commands' updates
    got = [
        (m["symbol"], t["seq"], t["idx"])
        for m in msgs
        if "data" in m and m["channel"] == "trades"
        for t in m["data"]
    ]
    for sym in ("BTC-USDT", "ETH-USDT"):  # each trade once, in execution order
        mine = [t for t in got if t[0] == sym]
        assert mine == [t for t in trades_published if t[0] == sym] and mine
    last, book = _follow_book(drain(late), SYM)
    snap = ex.md.book(SYM)
    assert snap is not None and last == snap.update_id
    assert sorted(book["bids"].items(), reverse=True) == snap.bids


def test_a_subscription_during_a_batch_gets_a_consistent_snapshot() -> None:
    ex = Exchange()
    hub = ex.hub
    a = hub.connect()
    hub.subscribe(a, "book", SYM)
    hub.begin_batch()
    ex.place(1, 1, "buy", 100, 5)
    b = hub.connect()
    hub.subscribe(b, "book", SYM)  # the held diff goes out first, to ``a`` only
    ex.place(2, 1, "buy", 99, 5)
    hub.end_batch()
    for c in (a, b):
        last, book = _follow_book(drain(c), SYM)
        assert last == ex.md.book(SYM).update_id  # type: ignore[union-attr]
        assert book["bids"] == {100: 5, 99: 5}


def test_a_lost_diff_inside_a_batch_still_shows_as_a_gap() -> None:
    hub = Hub()
    c = hub.connect()
    hub.subscribe(c, "book", SYM)
    drain(c)
    hub.begin_batch()
    for first, last in ((1, 3), (4, 4), (7, 9)):  # 5..6 never reached this hub
        hub.publish_market([BookDiff(SYM, first, last, first, first, [(100, first)], [])])
    hub.end_batch()
    msgs = drain(c)
    assert [(m["U"], m["u"], m["bids"]) for m in msgs] == [(1, 4, [[100, 4]]), (7, 9, [[100, 7]])]
