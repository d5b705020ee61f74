"""Mark prices: the index of a margin symbol and the limit on how far one update moves it.

Invariant: a mark depends only on the command (its feeds and ts), the book and the
previous mark, so replay gives the same marks. One trade cannot move a mark: trades do
not touch it, the book's mid is one input of a median with the external feeds, and a
single ``mark`` command moves it by at most ``max_move_bps`` of the previous mark.
"""

from __future__ import annotations

from tradewind.core.book import Book

BPS = 10_000


def index_inputs(
    book: Book, feeds: tuple[tuple[int, int], ...], ts: int, max_age_ms: int
) -> list[int]:
    """The prices the index takes: the book's mid ``(bid + ask) // 2`` when both sides
    have orders, and every feed price whose feed ts is at most ``max_age_ms`` before
    ``ts`` (a feed stamped after ``ts`` counts as fresh)."""
    out: list[int] = []
    bid, ask = book.best_bid(), book.best_ask()
    if bid is not None and ask is not None:
        out.append((bid + ask) // 2)
    for price, feed_ts in feeds:
        if ts - feed_ts <= max_age_ms:
            out.append(price)
    return out


def median(prices: list[int]) -> int:
    """The median; of an even count, the floor of the mean of the two middle prices."""
    s = sorted(prices)
    n = len(s)
    if n % 2:
        return s[n // 2]
    return (s[n // 2 - 1] + s[n // 2]) // 2


def clamp_move(previous: int | None, index: int, max_move_bps: int) -> int:
    """The new mark: ``index``, held within ``max_move_bps`` of ``previous`` (the band
    rounded towards ``previous``, so never wider than the limit); at least 1 tick."""
    if previous is None:
        return max(index, 1)
    step = previous * max_move_bps // BPS
    return max(min(index, previous + step), previous - step, 1)
