"""Price feeds for the mark-price feeder (``services.margin_feed.PriceFeed``).

- :class:`StaticPriceFeed`: a fixed price, stamped now (demo, tests, or pinning an
  index by hand);
- :class:`HttpPriceFeed`: GETs a JSON document and reads one field as the price. The
  number is parsed from the JSON text as a ``Decimal`` (never through ``float``), and a
  field holding a string (``"65000.12"``, as most exchanges answer) is accepted too.
  The feed's own timestamp is not trusted: the price is stamped when it was received.

Invariant: a feed never raises for a bad answer; it returns ``None`` and logs, so one
broken source never stops the marks (the feeder also bounds each call's time).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import structlog

from tradewind.services.margin_feed import FeedPrice, PriceFeed

if TYPE_CHECKING:
    import httpx

log = structlog.get_logger(__name__)


class StaticPriceFeed:
    def __init__(self, price: Decimal, now_ms: Callable[[], int]) -> None:
        self._price = price
        self._now_ms = now_ms
        self.name = f"static:{price}"

    async def price(self, symbol: str) -> FeedPrice | None:
        return FeedPrice(self._price, self._now_ms())


class HttpPriceFeed:
    """``url`` may hold ``{symbol}``; ``field`` is a dotted path in the JSON answer."""

    def __init__(
        self,
        url: str,
        now_ms: Callable[[], int],
        *,
        field: str = "price",
        timeout_s: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        import httpx  # here: only a configured HTTP feed needs it (start-up time)

        self._url = url
        self._field = field.split(".")
        self._now_ms = now_ms
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self.name = url

    async def price(self, symbol: str) -> FeedPrice | None:
        import httpx

        url = self._url.replace("{symbol}", symbol)
        try:
            r = await self._client.get(url)
            r.raise_for_status()
            doc: object = json.loads(r.text, parse_float=Decimal, parse_int=Decimal)
            for key in self._field:
                if not isinstance(doc, Mapping):
                    raise ValueError(f"no field {'.'.join(self._field)!r}")
                doc = doc[key]
            value = doc if isinstance(doc, Decimal) else Decimal(str(doc))
        except (httpx.HTTPError, ValueError, KeyError, InvalidOperation) as e:
            log.warning("http price feed failed", url=url, error=repr(e))
            return None
        return FeedPrice(value, self._now_ms())

    async def close(self) -> None:
        await self._client.aclose()


def build_feeds(
    specs: Mapping[str, Sequence[str]], now_ms: Callable[[], int], timeout_s: float = 1.0
) -> dict[str, list[PriceFeed]]:
    """Feeds from the ``[margin] feeds`` strings (checked by ``parse_margin_config``)."""
    out: dict[str, list[PriceFeed]] = {}
    for symbol, items in specs.items():
        feeds: list[PriceFeed] = []
        for spec in items:
            if spec.startswith("static:"):
                feeds.append(StaticPriceFeed(Decimal(spec[7:]), now_ms))
            else:
                url, _, field = spec.partition("#")
                feeds.append(
                    HttpPriceFeed(url, now_ms, field=field or "price", timeout_s=timeout_s)
                )
        out[symbol] = feeds
    return out
