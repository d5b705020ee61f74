"""How integer amounts appear in WebSocket messages: the gateway's converter hook.

Invariant: market data and core events carry integers only (prices in ticks, quantities
in lots, amounts in minor units). The hub builds every message through a
:class:`Formatter`, once per published message, so the gateway decides the wire form
(``IntFormatter`` keeps the integers; a decimal formatter returns ``Decimal`` or ``str``,
which msgspec encodes as JSON strings). A formatter must accept negative values (a
ticker's ``change``) and must not raise for symbols or assets it does not know (keep the
integer then).
"""

from __future__ import annotations

from typing import Any, Protocol


class Formatter(Protocol):
    def price(self, symbol: str, ticks: int) -> Any:
        """A price of ``symbol`` given in ticks."""
        ...

    def qty(self, symbol: str, lots: int) -> Any:
        """A base quantity of ``symbol`` given in lots."""
        ...

    def quote(self, symbol: str, minor: int) -> Any:
        """An amount of ``symbol``'s quote asset given in minor units."""
        ...

    def amount(self, asset: str, minor: int) -> Any:
        """An amount of ``asset`` given in minor units (fees, balances)."""
        ...


class IntFormatter:
    """Keeps every integer as it is (tests, internal consumers)."""

    def price(self, symbol: str, ticks: int) -> Any:
        return ticks

    def qty(self, symbol: str, lots: int) -> Any:
        return lots

    def quote(self, symbol: str, minor: int) -> Any:
        return minor

    def amount(self, asset: str, minor: int) -> Any:
        return minor
