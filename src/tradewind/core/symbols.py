"""Markets: a symbol's units, filters and trading state, and its stop-trigger lists.

Invariant: ``tick_size * lot_size`` is a multiple of ``10**base_decimals``, so the quote
amount of any fill, ``price * qty * notional``, is an exact integer of quote minor units.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Final

from tradewind.core.book import Book

BPS: Final = 10_000


class Stop:
    """An untriggered stop or take-profit order; its funds are already locked."""

    __slots__ = (
        "arrival",
        "buy",
        "client_id",
        "id",
        "limit",
        "locked",
        "market",
        "qty",
        "stop_price",
        "stp",
        "symbol",
        "tif",
        "type",
        "up",
        "user",
    )

    def __init__(
        self,
        id: int,
        user: int,
        symbol: str,
        buy: bool,
        type: str,
        stop_price: int,
        limit: int,
        qty: int,
        locked: int,
        tif: str,
        stp: str,
        client_id: str | None,
        arrival: int,
    ) -> None:
        self.id = id
        self.user = user
        self.symbol = symbol
        self.buy = buy
        self.type = type
        self.market = type in ("stop_market", "take_profit")
        # A buy stop and a sell take-profit fire when the price rises to the trigger.
        self.up = buy == (type in ("stop_market", "stop_limit"))
        self.stop_price = stop_price
        self.limit = limit  # limit price, or the price cap/floor a market stop locked for
        self.qty = qty
        self.locked = locked
        self.tif = tif
        self.stp = stp
        self.client_id = client_id
        self.arrival = arrival


class Market:
    """One symbol: configuration, state, book and trigger lists."""

    __slots__ = (
        "base",
        "base_decimals",
        "book",
        "filtered",
        "halted",
        "last_price",
        "lot_size",
        "market_band_bps",
        "max_qty",
        "min_notional",
        "min_qty",
        "name",
        "notional",
        "price_band_bps",
        "quote",
        "stops_down",
        "stops_up",
        "tick_size",
    )

    def __init__(
        self,
        name: str,
        base: str,
        quote: str,
        base_decimals: int,
        tick_size: int,
        lot_size: int,
        min_qty: int | None = None,
        max_qty: int | None = None,
        min_notional: int | None = None,
        price_band_bps: int | None = None,
        market_band_bps: int = 500,
    ) -> None:
        self.name = name
        self.base = base
        self.quote = quote
        self.base_decimals = base_decimals
        self.tick_size = tick_size
        self.lot_size = lot_size
        # Annotated: ``10**n`` is typed Any, which would make all money arithmetic generic.
        self.notional: int = tick_size * lot_size // 10**base_decimals
        self.min_qty = min_qty
        self.max_qty = max_qty
        self.min_notional = min_notional
        self.price_band_bps = price_band_bps
        self.market_band_bps = market_band_bps
        self.filtered = not (min_qty is None and max_qty is None and min_notional is None) or (
            price_band_bps is not None
        )
        self.halted = False
        self.last_price: int | None = None
        self.book = Book()
        # (stop_price, arrival, id), ascending. Up-list fires from the front when the
        # last price rises to a trigger; down-list fires from the back when it falls.
        self.stops_up: list[tuple[int, int, int]] = []
        self.stops_down: list[tuple[int, int, int]] = []

    def add_stop(self, s: Stop) -> None:
        insort(self.stops_up if s.up else self.stops_down, (s.stop_price, s.arrival, s.id))

    def remove_stop(self, s: Stop) -> None:
        lst = self.stops_up if s.up else self.stops_down
        key = (s.stop_price, s.arrival, s.id)
        del lst[bisect_left(lst, key)]

    def pop_triggered(self, last: int) -> list[int]:
        """Ids of the stops the last price ``last`` fires, removed, in arrival order."""
        fired: list[tuple[int, int]] = []
        up = self.stops_up
        if up and up[0][0] <= last:
            i = bisect_left(up, (last + 1,))
            fired.extend((a, i_) for _, a, i_ in up[:i])
            del up[:i]
        down = self.stops_down
        if down and down[-1][0] >= last:
            i = bisect_left(down, (last,))
            fired.extend((a, i_) for _, a, i_ in down[i:])
            del down[i:]
        fired.sort()
        return [i_ for _, i_ in fired]

    def filter_violation(
        self, price: int | None, qty: int | None, band: bool = True
    ) -> tuple[str, str] | None:
        """The first symbol filter a price/quantity breaks, as (filter, message);
        ``band=False`` skips the price band."""
        if qty is not None:
            if self.min_qty is not None and qty < self.min_qty:
                return "min_qty", f"quantity {qty} lots is below the minimum {self.min_qty}"
            if self.max_qty is not None and qty > self.max_qty:
                return "max_qty", f"quantity {qty} lots is above the maximum {self.max_qty}"
        if price is not None:
            bps, last = self.price_band_bps or 0, self.last_price
            if band and self.price_band_bps is not None and last is not None:
                scaled = price * BPS
                if scaled < last * (BPS - bps) or scaled > last * (BPS + bps):
                    return (
                        "price_band",
                        f"price {price} is more than {bps} bps from the last price {last}",
                    )
            if qty is not None and self.min_notional is not None:
                notional = price * qty * self.notional
                if notional < self.min_notional:
                    return (
                        "min_notional",
                        f"notional {notional} is below the minimum {self.min_notional}",
                    )
        return None
