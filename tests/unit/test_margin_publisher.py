"""The core process's margin publisher (ADR 0033) against a recording sink: it writes only
what changed (a spot trade writes no row, a mark only the globals, a borrow one wallet's
row), says when marks moved, labels each write with the last batch's seq, and starts
with a rewrite of everything."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import pytest

from tests.unit.helpers import SYM
from tests.unit.margin_setup import borrow, long_position, margin_market, mark, wallet_id
from tradewind.services.margin_mirror import MarginPublisher


class Sink:
    def __init__(self) -> None:
        self.writes: list[tuple[int, bool, dict[int, list[int]], bool]] = []
        self.rewrites: list[tuple[int, dict[int, list[int]]]] = []

    async def write(
        self, seq: int, glob: bytes | None, rows: dict[int, dict[int, bytes]], marks_moved: bool
    ) -> None:
        self.writes.append(
            (seq, glob is not None, {u: sorted(r) for u, r in rows.items()}, marks_moved)
        )

    async def rewrite(self, seq: int, glob: bytes, rows: dict[int, dict[int, bytes]]) -> None:
        self.rewrites.append((seq, {u: sorted(r) for u, r in rows.items()}))


@pytest.mark.asyncio
async def test_only_what_changed_is_written() -> None:
    ex = margin_market()
    wid = long_position(ex)
    sink = Sink()
    pub = MarginPublisher(lambda: ex.core, sink, seq_interval_s=0.0)
    pub.start_at(ex.seq)
    task = asyncio.create_task(pub.run())

    async def step(cmd: Any) -> Any:
        events = ex.ok(cmd) if isinstance(cmd, dict) else cmd()
        pub.publish(ex.seq, ex.ts, events)
        await pub.idle()
        return sink.writes[-1] if sink.writes else None

    try:
        await pub.idle()
        assert sink.rewrites == [(ex.seq, {1: [wid]})]

        # a spot trade between users 2 and 3: the seq moves, nothing else
        ex.ok({"op": "place", "id": 80, "user": 2, "symbol": SYM, "side": "sell",
               "price": 120, "qty": 1})  # fmt: skip
        last = await step({"op": "place", "id": 81, "user": 3, "symbol": SYM, "side": "buy",
                           "price": 120, "qty": 1})  # fmt: skip
        assert last == (ex.seq, False, {}, False)

        # a mark: the globals (marks moved), no wallet row
        last = await step(lambda: mark(ex, 97))
        assert last == (ex.seq, True, {}, True)

        # a borrow of user 3's new cross wallet: its row and the globals (pool cash)
        opened = await step({"op": "margin_transfer", "user": 3, "asset": "USDT",
                             "amount": 1000, "direction": "in", "wallet": "cross"})  # fmt: skip
        cross = wallet_id(ex, 3, "")
        assert opened[2] == {3: [cross]}
        last = await step(borrow(3, "USDT", 100, "cross"))
        assert last == (ex.seq, True, {3: [cross]}, False)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_rows_are_plain_data() -> None:
    """What the publisher writes decodes to the wallet's inputs (ids, flags, integers)."""
    from tradewind.services.margin_mirror import wallet_row

    ex = margin_market()
    wid = long_position(ex)
    row = msgspec.msgpack.decode(msgspec.msgpack.encode(wallet_row(ex.core, wid)))
    assert row == [wid, 1, "isolated", SYM, False, [["USDT", 4000, 0]], [["BTC", 500_000, 0]]]
