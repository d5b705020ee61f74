"""Order book of one symbol: price levels in sorted arrays, FIFO queues within a level.

Invariants kept here:
- ``bid_keys`` holds every bid price with a live order, ascending, so the best bid is
  ``bid_keys[-1]``; ``ask_keys`` holds the negated ask prices, ascending, so the best
  ask is ``-ask_keys[-1]``. Both ends the matcher touches are list tails: O(1) pops.
- A level's deque keeps arrival order. Cancelling marks the order dead (``qty == 0``)
  and leaves it in the deque as a tombstone that the matcher skips; ``Level.n`` counts
  live orders, and a level with no live order is removed at once. Tombstones are
  compacted when they outnumber live orders, so memory stays proportional to the book.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque


class Balance:
    """One account's holding of one asset, in minor units. The core never replaces or
    drops a ``Balance`` once created, so orders may hold a reference to theirs."""

    __slots__ = ("available", "locked")

    def __init__(self, available: int = 0, locked: int = 0) -> None:
        self.available = available
        self.locked = locked


class Order:
    """A live limit order resting in (or about to enter) a book. Mutable on purpose:
    the matcher updates quantities in place; ``qty == 0`` marks it dead. ``bal`` is the
    balance its ``locked`` funds sit in (quote for a buy, base for a sell), kept so that
    fills and cancels reach it without two dict lookups."""

    __slots__ = (
        "bal",
        "buy",
        "client_id",
        "display",
        "expire_ts",
        "id",
        "locked",
        "post_only",
        "price",
        "qty",
        "stp",
        "symbol",
        "user",
        "visible",
    )

    def __init__(
        self,
        id: int,
        user: int,
        symbol: str,
        buy: bool,
        price: int,
        qty: int,
        locked: int,
        bal: Balance,
        display: int | None = None,
        expire_ts: int | None = None,
        stp: str = "cancel_taker",
        client_id: str | None = None,
        post_only: bool = False,
    ) -> None:
        self.id = id
        self.user = user
        self.symbol = symbol
        self.buy = buy
        self.price = price
        self.qty = qty
        self.locked = locked
        self.bal = bal
        self.display = display
        self.visible = qty if display is None else min(display, qty)
        self.expire_ts = expire_ts
        self.stp = stp
        self.client_id = client_id
        self.post_only = post_only


class Level:
    """Orders at one price in arrival order, with tombstones; ``n`` live orders."""

    __slots__ = ("n", "orders")

    def __init__(self) -> None:
        self.orders: deque[Order] = deque()
        self.n = 0


class Book:
    """Both sides of one symbol's book."""

    __slots__ = ("ask_keys", "asks", "bid_keys", "bids")

    def __init__(self) -> None:
        self.bids: dict[int, Level] = {}
        self.asks: dict[int, Level] = {}
        self.bid_keys: list[int] = []
        self.ask_keys: list[int] = []

    def best_bid(self) -> int | None:
        return self.bid_keys[-1] if self.bid_keys else None

    def best_ask(self) -> int | None:
        return -self.ask_keys[-1] if self.ask_keys else None

    def add(self, o: Order) -> None:
        """Append a live order at the back of its price level."""
        price = o.price
        if o.buy:
            lvl = self.bids.get(price)
            if lvl is None:
                lvl = self.bids[price] = Level()
                insort(self.bid_keys, price)
        else:
            lvl = self.asks.get(price)
            if lvl is None:
                lvl = self.asks[price] = Level()
                insort(self.ask_keys, -price)
        lvl.orders.append(o)
        lvl.n += 1

    def remove(self, o: Order) -> None:
        """Take a live order out: mark it dead and drop its level if it was the last."""
        o.qty = 0
        price = o.price
        levels = self.bids if o.buy else self.asks
        lvl = levels[price]
        lvl.n -= 1
        if lvl.n == 0:
            del levels[price]
            keys, key = (self.bid_keys, price) if o.buy else (self.ask_keys, -price)
            del keys[bisect_left(keys, key)]
        elif len(lvl.orders) > 2 * lvl.n + 16:
            lvl.orders = deque([x for x in lvl.orders if x.qty])

    def side_levels(self, buy: bool) -> list[tuple[int, list[Order]]]:
        """Levels of one side, best price first, live orders in queue order."""
        if buy:
            return [(p, [o for o in self.bids[p].orders if o.qty]) for p in reversed(self.bid_keys)]
        return [(-k, [o for o in self.asks[-k].orders if o.qty]) for k in reversed(self.ask_keys)]

    def depth(self, buy: bool, n: int) -> list[tuple[int, int]]:
        """Top ``n`` levels of one side as (price, visible qty)."""
        out = []
        keys = self.bid_keys if buy else self.ask_keys
        levels = self.bids if buy else self.asks
        for k in reversed(keys[-n:] if n else keys):
            p = k if buy else -k
            out.append((p, sum(o.visible for o in levels[p].orders if o.qty)))
        return out
