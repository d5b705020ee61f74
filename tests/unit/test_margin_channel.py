"""The margin pieces around the core: the state reader's figures, the WebSocket margin
channel's coalescing and addressing, the mark feeder's rounds, the price feeds and the
``[margin]`` config. On the standard margin market of ``margin_setup`` (isolated
BTC-USDT at 5x: initial 1.25, call 1.15, liquidation 1.1; mark 100)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.unit.helpers import SYM
from tests.unit.margin_setup import long_position, margin_market, mark
from tradewind.adapters.pricefeed import HttpPriceFeed, StaticPriceFeed
from tradewind.core.commands import AnyCommand, Mark, Tick
from tradewind.core.events import Event, Rejected
from tradewind.gateways.ws.format import IntFormatter
from tradewind.gateways.ws.margin import MarginChannel, level_text
from tradewind.services.catalog import MarketInfo
from tradewind.services.margin_feed import (
    FeedPrice,
    MarginFeedError,
    MarkFeeder,
    parse_margin_config,
    to_ticks,
)
from tradewind.services.margin_state import CoreMarginState


class Sink:
    """The hub as the channel sees it: who listens, and what was sent."""

    def __init__(self, *users: int) -> None:
        self.users = set(users)
        self.sent: list[tuple[int, dict[str, Any]]] = []

    def subscribed(self, channel: str, user: int) -> bool:
        return channel == "margin" and user in self.users

    def subscribers(self, channel: str) -> list[int]:
        return sorted(self.users)

    def send_private(self, channel: str, user: int, data: dict[str, Any]) -> bool:
        if user not in self.users:
            return False
        self.sent.append((user, data))
        return True


def test_state_reader_figures_are_the_cores() -> None:
    ex = margin_market()
    wid = long_position(ex)  # 500,000 BTC minor units, owes 4,000 USDT: 1.25
    state = CoreMarginState(lambda: ex.core)
    (w,) = state.wallets(1)
    assert (w.wallet, w.kind, w.symbol) == (wid, "isolated", SYM)
    assert (w.assets_value, w.liabilities_value, w.level) == (5000, 4000, 12500)
    assert w.liquidation == (SYM, 1, 88)  # docs/margin.md: long, <= 88
    assert (w.initial_level, w.margin_call_level, w.liquidation_level) == (12500, 11500, 11000)
    assert state.owner(wid) == 1 and state.owner(-999) is None
    # at the initial level already: nothing more may leave or be borrowed
    assert state.max_transferable(1, "isolated", SYM, "BTC") == 0
    assert state.max_borrowable(1, "isolated", SYM, "USDT") == 0
    assert state.max_transferable(1, "cross", None, "USDT") == 0  # no cross wallet
    mark(ex, 110)  # 5,500 / 4,000: room for (10000*5500 - 12500*4000) / (10000*11) lots
    assert state.max_transferable(1, "isolated", SYM, "BTC") == 45_454
    assert state.mark_preview(SYM, ((120, ex.ts),), ex.ts) == 120
    assert state.mark_preview(SYM, ((200, ex.ts),), ex.ts) == 121  # 10 % move limit
    assert state.mark_preview(SYM, (), ex.ts) is None  # no book mid, no feed
    assert not state.interest_due(ex.ts)
    assert state.interest_due(ex.ts + 3_600_000)
    config = state.config()
    assert config.valuation_asset == "USDT" and [s.mark for s in config.symbols] == [110]


def test_channel_coalesces_level_updates_per_user() -> None:
    ex = margin_market()
    long_position(ex, user=1)
    long_position(ex, user=3)
    state = CoreMarginState(lambda: ex.core)
    sink = Sink(1)  # user 3 is not listening
    channel = MarginChannel(sink, state, IntFormatter(), state.owner)
    assert channel.flush() == 1  # a new subscriber gets a first update
    assert sink.sent[-1][1]["wallets"][0]["margin_level"] == "1.2500"
    for price in (99, 98, 97, 96):  # a busy market: four marks...
        channel.apply(ex.seq, ex.ts, mark(ex, price))
    assert channel.flush() == 1  # ...one message, at the last figures
    user, data = sink.sent[-1]
    assert user == 1 and data["wallets"][0]["margin_level"] == "1.2000"  # 4,800 / 4,000
    assert channel.flush() == 0  # nothing new
    channel.apply(ex.seq, ex.ts, mark(ex, 96))  # a mark that changes nothing
    assert channel.flush() == 0
    assert all(u == 1 for u, _ in sink.sent)


def test_channel_sends_notices_at_once_to_the_owner_only() -> None:
    ex = margin_market()
    long_position(ex, user=1)
    state = CoreMarginState(lambda: ex.core)
    sink = Sink(1, 2)
    channel = MarginChannel(sink, state, IntFormatter(), state.owner)
    channel.apply(ex.seq, ex.ts, mark(ex, 92))  # 4,600 / 4,000 = 1.15: margin call
    assert [(u, d["type"]) for u, d in sink.sent] == [(1, "margin_call")]
    notice = sink.sent[0][1]
    assert notice["margin_level"] == "1.1500" and notice["wallet"] == "isolated"
    # no bid in the book: the liquidation hands the wallet to the insurance fund
    channel.apply(ex.seq, ex.ts, mark(ex, 88))
    kinds = [d["type"] for u, d in sink.sent if u == 1]
    assert kinds[0] == "margin_call" and kinds[-1] == "liquidation_finished"
    assert "liquidation_started" in kinds
    finished = sink.sent[-1][1]
    assert finished["fee_asset"] == "USDT" and finished["taken_over"]
    assert all(u == 1 for u, _ in sink.sent)
    assert level_text(11_000) == "1.1000" and level_text(None) is None


class FakeBus:
    """Applies commands to the unit-test exchange, as the core runner would."""

    def __init__(self, ex: Any) -> None:
        self.ex = ex
        self.commands: list[AnyCommand] = []
        self.available = True

    async def submit(self, cmd: AnyCommand) -> Any:
        self.commands.append(cmd)
        events: list[Event] = self.ex.do(cmd)

        class Applied:
            seq = self.ex.seq
            ts = self.ex.ts
            command = cmd

        Applied.events = events  # type: ignore[attr-defined]
        return Applied


class Feed:
    name = "fake"

    def __init__(self, price: str | None, ts: int) -> None:
        self.value = None if price is None else Decimal(price)
        self.ts = ts

    async def price(self, symbol: str) -> FeedPrice | None:
        if self.value is None:
            raise RuntimeError("feed down")
        return FeedPrice(self.value, self.ts)


def market_info() -> MarketInfo:
    return MarketInfo(
        SYM, "BTC", "USDT", 8, 6, 10_000, 10_000, None, None, None, None, 500, False, None
    )


def test_feeder_sends_a_mark_only_when_it_moves_and_ticks_for_interest() -> None:
    ex = margin_market()
    state = CoreMarginState(lambda: ex.core)
    bus = FakeBus(ex)
    now = [ex.ts]
    feed = Feed("1.05", ex.ts)  # 105 ticks of 0.01 USDT
    broken = Feed(None, ex.ts)
    feeder = MarkFeeder(
        bus,
        lambda: [SYM],
        lambda s: market_info(),
        {SYM: [feed, broken]},
        now_ms=lambda: now[0],
        preview=state.mark_preview,
        current=state.mark_of,
        interest_due=state.interest_due,
    )
    assert asyncio.run(feeder.round()) == 1
    assert bus.commands == [Mark(symbol=SYM, feeds=((105, ex.ts),))]
    assert state.mark_of(SYM) == 105
    assert asyncio.run(feeder.round()) == 0 and len(bus.commands) == 1  # unchanged: none
    now[0] += 3_600_000  # an hour on: the feed is stale, nothing moves, interest is due
    asyncio.run(feeder.round())
    assert isinstance(bus.commands[-1], Tick) and feeder.ticks_sent == 1
    assert not any(isinstance(e, Rejected) for e in ex.do({"op": "tick"}))


def test_feed_prices_become_ticks_rounded_down() -> None:
    m = market_info()  # tick 0.01 USDT
    assert to_ticks(Decimal("65000.129"), m) == 6_500_012
    assert to_ticks(Decimal("0.009"), m) is None
    assert to_ticks(Decimal("-1"), m) is None
    assert to_ticks(Decimal("NaN"), m) is None


def test_http_feed_reads_decimals_exactly_and_survives_bad_answers() -> None:
    answers = {
        "/a": (200, b'{"data": {"price": 65000.123456789123456789}}'),
        "/b": (200, b'{"price": "64999.5"}'),
        "/c": (200, b"not json"),
        "/d": (503, b"{}"),
        "/e": (200, b'{"other": 1}'),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        status, body = answers[request.url.path]
        return httpx.Response(status, content=body)

    transport = httpx.MockTransport(handler)

    def ask(path: str, field: str = "price") -> FeedPrice | None:
        feed = HttpPriceFeed(f"http://feed{path}", lambda: 7, field=field, transport=transport)
        return asyncio.run(feed.price(SYM))

    assert ask("/a", "data.price") == FeedPrice(Decimal("65000.123456789123456789"), 7)
    assert ask("/b") == FeedPrice(Decimal("64999.5"), 7)
    assert ask("/c") is None and ask("/d") is None and ask("/e") is None
    static = StaticPriceFeed(Decimal("3"), lambda: 9)
    assert asyncio.run(static.price(SYM)) == FeedPrice(Decimal("3"), 9)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"colour": 1}, "margin.colour"),
        ({"mark_interval_ms": 5}, "margin.mark_interval_ms"),
        ({"feeds": {SYM: ["static:-1"]}}, "positive price"),
        ({"feeds": {SYM: ["ftp://x"]}}, "neither"),
        ({"feeds": {SYM: "static:1"}}, "a list"),
    ],
)
def test_margin_config_refusals_name_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(MarginFeedError, match=message):
        parse_margin_config(table)
    ok = parse_margin_config({"feeds": {SYM: ["static:65000", "https://x/{symbol}#p"]}})
    assert ok.mark_interval_ms == 2_000 and len(ok.feeds[SYM]) == 2


def test_demo_margin_setup_is_complete_and_added_once() -> None:
    import msgspec

    from tradewind.core.engine import Core
    from tradewind.core.invariants import check_invariants
    from tradewind.runtime.demo import missing_setup_for
    from tradewind.runtime.margin import missing_margin_setup

    core = Core()
    seq = 0

    def run(cmds: list[AnyCommand]) -> None:
        nonlocal seq
        for cmd in cmds:
            seq += 1
            events = core.apply(msgspec.structs.replace(cmd, seq=seq, ts=1_000))
            assert not any(isinstance(e, Rejected) for e in events), (cmd, events)

    run(missing_setup_for(core))
    setup = missing_margin_setup(core, treasury=7, now_ms=1_000)
    run(setup)
    assert check_invariants(core) == []
    assert missing_margin_setup(core, treasury=7, now_ms=2_000) == []  # a restart adds nothing
    m = core.margin
    assert sorted(m.symbols) == ["BTC-USDT", "ETH-USDT"]
    assert m.symbols["BTC-USDT"].initial == 11_112 and m.cross is not None
    assert m.marks == {"BTC-USDT": 6_500_000, "ETH-USDT": 320_000}
    assert m.assets["USDT"] == (11_416, 10**12)


def test_a_wallets_orders_and_fills_reach_its_owner_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.unit import helpers
    from tradewind.gateways.ws.private import PrivateMapper

    batches: list[tuple[int, int, list[Event]]] = []
    original = helpers.Exchange.do

    def recording(self: helpers.Exchange, cmd: Any, ts: int | None = None) -> list[Event]:
        events = original(self, cmd, ts)
        batches.append((self.seq, self.ts, events))
        return events

    monkeypatch.setattr(helpers.Exchange, "do", recording)
    ex = margin_market()
    long_position(ex, user=1)  # user 1's isolated wallet buys from user 2's resting sell
    mapper = PrivateMapper(IntFormatter(), balances=lambda u, a: (u, 0))
    out = [
        m for seq, ts, events in batches for m in mapper.map(seq, ts, events, {1, 2}.__contains__)
    ]
    mine = [m for m in out if m.user == 1]
    orders = [m.data for m in mine if m.channel == "orders"]
    assert [(o["id"], o["event"], o["wallet"]) for o in orders] == [
        (901, "accepted", "isolated"),
        (901, "trade", "isolated"),
    ]
    fills = [m.data for m in mine if m.channel == "fills"]
    assert [(f["order_id"], f["wallet"], f["role"]) for f in fills] == [(901, "isolated", "taker")]
    # user 1's spot balances only (a transfer in moved them); the wallet's are not sent
    assert all(
        row["available"] == 1 for m in mine if m.channel == "balances" for row in m.data["balances"]
    )
    assert all(m.user > 0 for m in out)
    assert [m.data.get("wallet") for m in out if m.user == 2 and m.channel == "fills"] == [None]
