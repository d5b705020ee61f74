"""Demo mode: the demo markets, their one-time set-up, and the market maker's accounts.

Invariants:
- the set-up is core commands through the runner (journaled), submitted only for what
  the recovered core lacks, so a restart on the same data directory adds nothing and the
  state comes back from the journal;
- every demo symbol keeps the core's units rule: ``tick_size * lot_size`` is a multiple
  of ``10**base_decimals`` (checked at import time);
- the bot accounts are ordinary users (found by email on restart, so their ids, which
  are also their core accounts, never change).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from tradewind.core.commands import AddAsset, AddSymbol, AnyCommand, SetFees
from tradewind.core.engine import Core
from tradewind.services.errors import EmailTaken

if TYPE_CHECKING:
    from tradewind.runtime.bootstrap import EmbeddedExchange

DEMO_ASSETS: dict[str, int] = {"BTC": 8, "ETH": 8, "USDT": 6}
DEMO_SYMBOLS: tuple[AddSymbol, ...] = (
    # price step 0.01 USDT, quantity step 0.0001 BTC, at least 1 USDT per order
    AddSymbol(
        symbol="BTC-USDT",
        base="BTC",
        quote="USDT",
        tick_size=10_000,
        lot_size=10_000,
        min_notional=1_000_000,
    ),
    # price step 0.01 USDT, quantity step 0.001 ETH, at least 1 USDT per order
    AddSymbol(
        symbol="ETH-USDT",
        base="ETH",
        quote="USDT",
        tick_size=10_000,
        lot_size=100_000,
        min_notional=1_000_000,
    ),
    # price step 0.00001 BTC, quantity step 0.001 ETH, at least 0.0001 BTC per order
    AddSymbol(
        symbol="ETH-BTC",
        base="ETH",
        quote="BTC",
        tick_size=1_000,
        lot_size=100_000,
        min_notional=10_000,
    ),
)
DEMO_FEES = SetFees(maker_bps=10, taker_bps=20)
REFERENCE_PRICES: dict[str, int] = {
    "BTC-USDT": 6_500_000,  # 65,000.00 USDT in ticks of 0.01
    "ETH-USDT": 320_000,  # 3,200.00 USDT
    "ETH-BTC": 4_900,  # 0.04900 BTC in ticks of 0.00001
}
BOT_FUNDING: dict[str, int] = {
    "BTC": 500 * 10**8,
    "ETH": 10_000 * 10**8,
    "USDT": 50_000_000 * 10**6,
}
MAKER_EMAIL = "market-maker@demo.tradewind.invalid"
TAKER_EMAIL = "market-taker@demo.tradewind.invalid"

for _s in DEMO_SYMBOLS:
    assert (_s.tick_size * _s.lot_size) % 10 ** DEMO_ASSETS[_s.base] == 0, _s.symbol


def missing_setup(exchange: EmbeddedExchange) -> list[AnyCommand]:
    """The set-up commands the recovered core does not have yet."""
    return missing_setup_for(exchange.jcore.core if exchange.jcore is not None else None)


def missing_setup_for(core: Core | None) -> list[AnyCommand]:
    """The demo set-up commands ``core`` (``None``: an empty one) does not have yet."""
    assets = core.assets if core is not None else {}
    markets = core.markets if core is not None else {}
    commands: list[AnyCommand] = [
        AddAsset(asset=name, decimals=decimals)
        for name, decimals in DEMO_ASSETS.items()
        if name not in assets
    ]
    commands += [s for s in DEMO_SYMBOLS if s.symbol not in markets]
    fees = core.fee_tiers.get(0) if core is not None else None
    if fees != (DEMO_FEES.maker_bps, DEMO_FEES.taker_bps):
        commands.append(DEMO_FEES)
    return commands


async def seed_demo(exchange: EmbeddedExchange) -> int:
    """Submit what is missing of the demo set-up; returns how many commands it took."""
    commands = missing_setup(exchange)
    for cmd in commands:
        await exchange.bus.submit(cmd)
    return len(commands)


async def _user_id(exchange: EmbeddedExchange, email: str) -> int:
    try:
        return await exchange.accounts.register(email, secrets.token_urlsafe(24))
    except EmailTaken:
        from tradewind.adapters.sql import SqlUserRepository

        user = await SqlUserRepository(exchange.db).get_by_email(email)
        assert user is not None
        return user.id


async def bot_users(exchange: EmbeddedExchange) -> tuple[int, int]:
    """The maker's and the taker's user ids (registered on first use)."""
    return await _user_id(exchange, MAKER_EMAIL), await _user_id(exchange, TAKER_EMAIL)
