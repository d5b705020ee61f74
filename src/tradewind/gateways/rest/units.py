"""Decimal strings at the API edge <-> the core's integers (minor units, ticks, lots).

Invariants:
- conversion is exact integer arithmetic on the digits of the string: no ``float``, and
  no rounding ever: a value that is not a whole number of minor units is refused
  (``too_many_decimals``), a price off the tick or a quantity off the lot is refused
  (``filter_violated`` with ``filter`` ``tick_size`` / ``lot_size``);
- only plain decimals are accepted (``"12"``, ``"0.5"``; no sign, exponent, spaces or
  thousands separators), at most :data:`MAX_DIGITS` characters, and every integer handed
  to the core is positive and below 2**63 (the journal's msgpack integers are 64-bit);
- formatting gives a canonical string: prices with the decimals of the tick, quantities
  with the decimals of the lot, asset amounts with the asset's decimals.
"""

from __future__ import annotations

import re
from typing import Final

from tradewind.gateways.rest.errors import ApiError
from tradewind.services.catalog import MarketInfo

MAX_DIGITS: Final = 64
MAX_INT: Final = 2**63 - 1
_DECIMAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


def _trailing_zeros(n: int) -> int:
    count = 0
    while n and n % 10 == 0:
        n //= 10
        count += 1
    return count


def to_minor(text: str, decimals: int, field: str) -> int:
    """``text`` (a positive plain decimal) in units of ``10**-decimals``."""
    match = _DECIMAL.fullmatch(text) if len(text) <= MAX_DIGITS else None
    if match is None and text.startswith("-") and _DECIMAL.fullmatch(text[1:]):
        raise ApiError(400, "invalid_amount", f"{field} must be greater than zero")
    if match is None:
        raise ApiError(
            400, "invalid_decimal", f'{field} must be a plain decimal string such as "1.25"'
        )
    whole, frac = match.group(1), (match.group(2) or "").rstrip("0")
    if len(frac) > decimals:
        raise ApiError(
            400,
            "too_many_decimals",
            f"{field} has {len(frac)} decimals; at most {decimals} are allowed here",
        )
    value = int(whole + frac.ljust(decimals, "0"))
    if value <= 0:
        raise ApiError(400, "invalid_amount", f"{field} must be greater than zero")
    if value > MAX_INT:
        raise ApiError(400, "invalid_amount", f"{field} is too large")
    return value


def to_ticks(text: str, market: MarketInfo, field: str = "price") -> int:
    minor = to_minor(text, market.quote_decimals, field)
    if minor % market.tick_size:
        step = format_price(1, market)
        raise ApiError(
            400,
            "filter_violated",
            f"{field} {text} is not a multiple of the tick size {step}",
            filter="tick_size",
        )
    return minor // market.tick_size


def to_lots(text: str, market: MarketInfo, field: str = "quantity") -> int:
    minor = to_minor(text, market.base_decimals, field)
    if minor % market.lot_size:
        step = format_qty(1, market)
        raise ApiError(
            400,
            "filter_violated",
            f"{field} {text} is not a multiple of the lot size {step}",
            filter="lot_size",
        )
    return minor // market.lot_size


def format_minor(value: int, decimals: int, shown: int | None = None) -> str:
    """``value * 10**-decimals`` as a string with ``shown`` decimals (default: all)."""
    if shown is None:
        shown = decimals
    if shown < decimals:
        value //= 10 ** (decimals - shown)
    if shown <= 0:
        return str(value)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**shown)
    return f"{sign}{whole}.{frac:0{shown}d}"


def price_decimals(market: MarketInfo) -> int:
    return max(market.quote_decimals - _trailing_zeros(market.tick_size), 0)


def qty_decimals(market: MarketInfo) -> int:
    return max(market.base_decimals - _trailing_zeros(market.lot_size), 0)


def format_price(ticks: int, market: MarketInfo) -> str:
    return format_minor(ticks * market.tick_size, market.quote_decimals, price_decimals(market))


def format_qty(lots: int, market: MarketInfo) -> str:
    return format_minor(lots * market.lot_size, market.base_decimals, qty_decimals(market))
