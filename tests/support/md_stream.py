"""Random command streams that exercise everything the public book shows: limit orders
(GTC, GTD, IOC, FOK, post-only), icebergs, market orders by quantity and by quote amount,
stops and take-profits of both kinds, amends (keeping and losing priority, crossing),
cancels, cancel-all, self-trade prevention in every mode, GTD expiry, halts.

Prices stay in a narrow band so that orders cross often; ``ts`` advances by random steps
(now and then by hours) so candles and the 24 h ticker window roll.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import msgspec

from tradewind.core import commands as C
from tradewind.core.engine import Core
from tradewind.core.events import Event

SYMBOLS = ("BTC-USDT", "ETH-USDT")
USERS = (1, 2, 3, 4)
TS0 = 1_700_000_000_000


def setup_commands() -> list[dict[str, Any]]:
    cmds: list[dict[str, Any]] = [
        {"op": "asset", "asset": "BTC", "decimals": 8},
        {"op": "asset", "asset": "ETH", "decimals": 8},
        {"op": "asset", "asset": "USDT", "decimals": 6},
        {
            "op": "symbol",
            "symbol": "BTC-USDT",
            "base": "BTC",
            "quote": "USDT",
            "tick_size": 10_000,
            "lot_size": 10_000,
        },
        {
            "op": "symbol",
            "symbol": "ETH-USDT",
            "base": "ETH",
            "quote": "USDT",
            "tick_size": 10_000,
            "lot_size": 100_000,
        },
        {"op": "fees", "maker_bps": 10, "taker_bps": 20},
    ]
    for u in USERS:
        for asset in ("BTC", "ETH", "USDT"):
            cmds.append({"op": "deposit", "user": u, "asset": asset, "amount": 10**15})
    return cmds


def random_commands(rng: random.Random, n: int, core: Core) -> Iterator[dict[str, Any]]:
    """``n`` trading commands (as command-file dicts, with ``ts``), drawn lazily: amends
    and cancels mostly aim at orders that ``core`` holds open when the command is drawn,
    so consume the iterator one command at a time, applying each before the next."""
    ts = TS0
    next_id = 1
    mid = {"BTC-USDT": 100, "ETH-USDT": 50}
    halted: set[str] = set()
    for _ in range(n):
        r = rng.random()
        if r < 0.01:
            ts += rng.randint(3_600_000, 30 * 3_600_000)
        elif r < 0.6:
            ts += rng.choice((0, 0, 0, 1, 5, 100, 1_000, 20_000, 45_000))
        sym = rng.choice(SYMBOLS)
        if rng.random() < 0.05:
            mid[sym] = max(12, mid[sym] + rng.randint(-3, 3))
        m = mid[sym]
        user = rng.choice(USERS)
        side = rng.choice(("buy", "sell"))
        buy = side == "buy"
        k = rng.random()
        open_ids = sorted(core.orders) + sorted(core.stops)
        cmd: dict[str, Any]
        if sym in halted and rng.random() < 0.3:
            halted.discard(sym)
            cmd = {"op": "resume", "symbol": sym}
        elif k < 0.5:
            if rng.random() < 0.25:  # aggressive: through the touch
                price = m + rng.randint(0, 6) if buy else m - rng.randint(0, 6)
            else:  # passive: on our side of the mid
                price = m - rng.randint(1, 10) if buy else m + rng.randint(1, 10)
            qty = rng.randint(1, 12)
            cmd = {
                "op": "place",
                "id": next_id,
                "user": user,
                "symbol": sym,
                "side": side,
                "type": "limit",
                "price": max(1, price),
                "qty": qty,
            }
            t = rng.random()
            if t < 0.25 and qty > 1:
                cmd["display_qty"] = rng.randint(1, qty - 1)
            elif t < 0.33:
                cmd["tif"] = rng.choice(("IOC", "FOK"))
            elif t < 0.4:
                cmd["post_only"] = True
            if rng.random() < 0.1 and cmd.get("tif") is None:
                cmd["tif"] = "GTD"
                cmd["expire_ts"] = ts + rng.randint(1, 120_000)
            if rng.random() < 0.25:
                cmd["stp"] = rng.choice(("cancel_taker", "cancel_maker", "cancel_both", "none"))
            next_id += 1
        elif k < 0.57:
            cmd = {
                "op": "place",
                "id": next_id,
                "user": user,
                "symbol": sym,
                "side": side,
                "type": "market",
            }
            if buy and rng.random() < 0.4:
                cmd["quote_qty"] = rng.randint(50, 2_000) * (10 if sym == "ETH-USDT" else 1)
            else:
                cmd["qty"] = rng.randint(1, 15)
            if rng.random() < 0.3:
                cmd["stp"] = rng.choice(("cancel_taker", "cancel_maker", "cancel_both", "none"))
            next_id += 1
        elif k < 0.65:
            typ = rng.choice(("stop_market", "stop_limit", "take_profit", "take_profit_limit"))
            up = buy == typ.startswith("stop")
            last = core.markets[sym].last_price or m
            stop = max(1, last + (rng.randint(1, 5) if up else -rng.randint(1, 5)))
            cmd = {
                "op": "place",
                "id": next_id,
                "user": user,
                "symbol": sym,
                "side": side,
                "type": typ,
                "stop_price": stop,
                "qty": rng.randint(1, 8),
            }
            if typ.endswith("limit"):
                cmd["price"] = max(1, stop + rng.randint(-3, 3))
                if rng.random() < 0.3:
                    cmd["tif"] = "IOC"
            next_id += 1
        elif k < 0.8 and open_ids:
            oid = rng.choice(open_ids) if rng.random() < 0.95 else next_id + 5
            o = core.orders.get(oid) or core.stops.get(oid)
            u, s = (o.user, o.symbol) if o is not None else (user, sym)
            cmd = {"op": "amend", "id": oid, "user": u, "symbol": s}
            old_qty = getattr(o, "qty", 5)
            c = rng.random()
            if c < 0.4:  # decrease or keep: keeps priority
                cmd["qty"] = rng.randint(1, old_qty)
            else:
                cmd["qty"] = rng.randint(1, 14)
                if c < 0.8:
                    cmd["price"] = max(1, mid[s] + rng.randint(-8, 8))
        elif k < 0.95 and open_ids:
            oid = rng.choice(open_ids) if rng.random() < 0.95 else next_id + 5
            o = core.orders.get(oid) or core.stops.get(oid)
            u, s = (o.user, o.symbol) if o is not None else (user, sym)
            cmd = {"op": "cancel", "id": oid, "user": u, "symbol": s}
        elif k < 0.96:
            cmd = {"op": "cancel_all", "user": user}
            if rng.random() < 0.5:
                cmd["symbol"] = sym
        elif k < 0.99:
            cmd = {"op": "tick"}
        else:
            halted.add(sym)
            cmd = {"op": "halt", "symbol": sym}
        cmd["ts"] = ts
        yield cmd


class Driver:
    """A core stamped like the sequencer does: ``seq`` increasing, ``ts`` from the row."""

    def __init__(self) -> None:
        self.core = Core()
        self.seq = 0

    def apply(self, cmd: dict[str, Any]) -> tuple[int, int, list[Event]]:
        self.seq += 1
        ts = max(int(cmd.get("ts", 0)), self.core.ts)
        c = msgspec.convert({**cmd, "seq": self.seq, "ts": ts}, C.AnyCommand)
        return self.seq, ts, self.core.apply(c)
