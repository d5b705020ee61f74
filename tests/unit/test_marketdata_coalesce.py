"""Coalescing a group commit's market-data updates: one book diff spanning the ids, one
trades message, the newest candle and ticker per key, in the place of the first."""

from __future__ import annotations

from tradewind.services.marketdata import (
    BookDiff,
    Candle,
    PublicTrade,
    SymbolInfo,
    Ticker,
    Trades,
)
from tradewind.services.marketdata.coalesce import coalesce

B, E = "BTC-USDT", "ETH-USDT"


def _trade(seq: int, idx: int = 1) -> PublicTrade:
    return PublicTrade(seq, idx, seq, 100, 1, 100, "buy")


def _candle(sym: str, open_ts: int, close: int) -> Candle:
    return Candle(sym, "1m", open_ts, 100, 100, 100, close, 1, 100, 1)


def _ticker(sym: str, ts: int) -> Ticker:
    return Ticker(sym, ts, 100, 100, 100, 100, 0, 1, 100, 1)


def test_a_group_becomes_one_update_per_key_in_first_place() -> None:
    info = SymbolInfo("SOL-USDT", "SOL", "USDT", 1, 1, 8, 6)
    updates = [
        Trades(B, [_trade(10)]),
        BookDiff(B, 1, 2, 10, 10, [(100, 5), (99, 1)], [(101, 3)]),
        _candle(B, 0, 100),
        _ticker(B, 10),
        BookDiff(E, 1, 1, 11, 11, [], [(50, 1)]),
        info,
        BookDiff(B, 3, 3, 12, 12, [(100, 0)], []),
        Trades(B, [_trade(13, 1), _trade(13, 2)]),
        BookDiff(B, 4, 5, 13, 13, [(98, 2)], [(101, 0), (102, 7)]),
        _candle(B, 0, 101),
        _candle(B, 60_000, 102),  # the next minute: a candle of its own
        _ticker(B, 13),
    ]
    assert coalesce(updates) == [
        Trades(B, [_trade(10), _trade(13, 1), _trade(13, 2)]),
        # levels at their quantity after the last diff; seq and ts of the last
        BookDiff(B, 1, 5, 13, 13, [(100, 0), (99, 1), (98, 2)], [(101, 0), (102, 7)]),
        _candle(B, 0, 101),
        _ticker(B, 13),
        BookDiff(E, 1, 1, 11, 11, [], [(50, 1)]),
        info,
        _candle(B, 60_000, 102),
    ]


def test_single_updates_pass_unchanged_and_a_gap_is_kept() -> None:
    one = BookDiff(B, 1, 3, 1, 1, [(100, 1)], [])
    assert coalesce([one])[0] is one
    gapped = [one, BookDiff(B, 6, 6, 2, 2, [(100, 2)], []), BookDiff(B, 7, 7, 3, 3, [], [(1, 1)])]
    assert [(d.first_id, d.last_id) for d in coalesce(gapped)] == [(1, 3), (6, 7)]  # type: ignore[union-attr]
    assert coalesce([]) == []
