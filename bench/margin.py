"""Margin in the core: mark updates with 100,000 open margin wallets, and a cascade of
1,000 liquidations in one mark update.

Setup (not timed): 10 margin symbols ``A0-USDT`` .. ``A9-USDT`` (8 decimals, tick and lot
10,000), mark 1000 each, 10,000 isolated wallets per symbol. Each wallet takes in 10 lots
of its base (worth 10,000 USDT minor units), borrows ``lq`` USDT (4,800 .. 8,899 across
the wallets) and takes the USDT out again: a long worth 10,000 owing ``lq``, whose
liquidation price (level 1.05) is spread over 504 .. 934.

Timed:
- ``mark_no_liquidation``: ``Core.apply(mark)`` moving a symbol's mark between 1000 and
  999 (nothing due): the trigger index answers with bisections, no wallet is scanned;
- ``cascade``: one ``mark`` that puts the 1,000 highest liquidation prices of symbol A0
  under water, against a resting bid deep enough for all their sells: 1,000
  liquidations (cancel, IOC sell, repay, fee) in one command.

Run: ``.venv/bin/python bench/margin.py [--wallets-per-symbol N] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from tradewind.core import commands as C
from tradewind.core.engine import Core
from tradewind.core.events import LiquidationStarted
from tradewind.core.invariants import check_invariants
from tradewind.runtime.benchmark import machine_info

SYMBOLS = 10
EXCHANGE = 10**9
LOTS = 10
CASCADE = 1000


class Feeder:
    """Stamps commands with seq and one ts (no hour boundary: no interest in the run)."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.seq = 0

    def __call__(self, cmd: C.Command) -> list[Any]:
        self.seq += 1
        events = self.core.apply(msgspec.structs.replace(cmd, seq=self.seq, ts=1000))
        if events and type(events[-1]).__name__ == "Rejected":
            raise RuntimeError(f"{cmd!r} rejected: {events[-1]!r}")
        return events


def mark(sym: str, price: int) -> C.Mark:
    return C.Mark(symbol=sym, feeds=((price, 1000),))


def setup(per_symbol: int) -> tuple[Core, Feeder]:
    core = Core()
    do = Feeder(core)
    do(C.AddAsset(asset="USDT", decimals=6))
    do(C.Deposit(user=EXCHANGE, asset="USDT", amount=10**15))
    do(C.MarginAsset(asset="USDT", hourly_rate=1000, borrow_limit=10**9))
    do(C.PoolFund(user=EXCHANGE, asset="USDT", amount=10**14))
    do(C.InsuranceFund(user=EXCHANGE, asset="USDT", amount=10**9))
    for k in range(SYMBOLS):
        base, sym = f"A{k}", f"A{k}-USDT"
        do(C.AddAsset(asset=base, decimals=8))
        do(C.AddSymbol(symbol=sym, base=base, quote="USDT", tick_size=10_000, lot_size=10_000))
        do(
            C.MarginSymbol(
                symbol=sym,
                max_leverage=10,
                margin_call_level=11_000,
                liquidation_level=10_500,
                liquidation_fee_bps=50,
                liquidation_band_bps=500,
                mark_max_move_bps=5000,
            )
        )
        do(mark(sym, 1000))
        for j in range(per_symbol):
            user = k * per_symbol + j + 1
            lq = 4800 + j * 4100 // per_symbol
            do(C.Deposit(user=user, asset=base, amount=LOTS * 10_000))
            w: dict[str, Any] = {"wallet": "isolated", "symbol": sym}
            do(C.MarginTransfer(user=user, asset=base, amount=LOTS * 10_000, direction="in", **w))
            do(C.Borrow(user=user, asset="USDT", amount=lq, **w))
            do(C.MarginTransfer(user=user, asset="USDT", amount=lq, direction="out", **w))
    return core, do


def bench(per_symbol: int, updates: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    core, do = setup(per_symbol)
    setup_s = time.perf_counter() - t0
    wallets = len(core.margin.indebted)
    print(f"setup: {wallets:,} wallets with debts in {setup_s:.1f} s", file=sys.stderr)

    # 1. mark updates with nothing due
    times = []
    for i in range(updates):
        sym = f"A{i % SYMBOLS}-USDT"
        cmd = mark(sym, 999 if (i // SYMBOLS) % 2 == 0 else 1000)
        do.seq += 1
        cmd = msgspec.structs.replace(cmd, seq=do.seq, ts=1000)
        t = time.perf_counter_ns()
        events = core.apply(cmd)
        times.append(time.perf_counter_ns() - t)
        assert len(events) == 1, events
    times.sort()

    # 2. the cascade: bids for every sell, then the mark that makes 1,000 due
    sym = "A0-USDT"
    idx = core.margin.index[sym]
    n = min(CASCADE, len(idx.liq_long) // 2)
    cut = idx.liq_long[-n][0]  # the 1,000th highest liquidation price
    due = sum(1 for p, _ in idx.liq_long if p >= cut)
    do(C.Deposit(user=EXCHANGE, asset="A0", amount=1))
    do(C.Place(id=1, user=EXCHANGE, symbol=sym, side="buy", price=cut - 1, qty=LOTS * due))
    do(mark(sym, 1000))
    do.seq += 1
    cmd = msgspec.structs.replace(mark(sym, cut), seq=do.seq, ts=1000)
    t1 = time.perf_counter()
    events = core.apply(cmd)
    cascade_s = time.perf_counter() - t1
    liquidated = sum(isinstance(e, LiquidationStarted) for e in events)
    print(f"cascade: {liquidated} liquidations in {cascade_s:.3f} s", file=sys.stderr)
    bad = check_invariants(core)
    assert bad == [], bad[:5]

    def us(ns: float) -> float:
        return round(ns / 1000, 1)

    return {
        "what": "margin: mark updates with open margin wallets, and a liquidation cascade",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "machine_note": "shared 2-vCPU VM, other engineers' runs loading it (load_average)",
        "symbols": SYMBOLS,
        "wallets_with_debts": wallets,
        "setup_seconds": round(setup_s, 1),
        "mark_no_liquidation": {
            "updates": updates,
            "median_us": us(statistics.median(times)),
            "p99_us": us(times[int(len(times) * 0.99) - 1]),
            "max_us": us(times[-1]),
            "target_us": 1000,
        },
        "cascade": {
            "liquidations": liquidated,
            "events": len(events),
            "seconds": round(cascade_s, 4),
            "per_liquidation_us": us(cascade_s * 1e9 / max(liquidated, 1)),
            "target_seconds": 1.0,
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--wallets-per-symbol", type=int, default=10_000)
    p.add_argument("--updates", type=int, default=2000)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "margin.json"))
    a = p.parse_args()
    res = bench(a.wallets_per_symbol, a.updates)
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
