"""Anchor: the ``matching-engine`` package from PyPI on the same stream as our core.

``matching-engine`` (pure Python, sortedcontainers price levels and an intrusive linked
list per level) is the best installable pure-Python matching engine we know. It needs
Python >= 3.12, so it lives in its own virtual environment, which this script runs in:

    python3.12 -m venv bench/.anchor-venv
    bench/.anchor-venv/bin/pip install "matching-engine[gateway]"
    bench/.anchor-venv/bin/python bench/anchor.py          # writes bench/results/anchor.json

The stream is ``tradewind.runtime.streamgen.generate_stream`` (imported from ``src/``: it
needs only msgspec, which the anchor installs too), translated command by command:
limit GTC and IOC places become ``NewOrder`` limits, market places ``NewOrder`` market
IOC (price 0), cancels ``CancelOrder``; each symbol gets its own ``MatchingEngine`` with
its own gap-free ``seq``. Setup commands (assets, symbols, fees, deposits) have no
counterpart there and are left out. The anchor does less than our core per command: no
balances, locks, fees or symbol filters.

Both are measured the same way (``tradewind.runtime.benchmark.measure_engine``'s
method): un-instrumented passes for throughput (``--repeat`` of each, alternating, the
median counts), then ``perf_counter_ns`` around each call for latency percentiles.
Unless ``--no-tradewind``, our ``Core`` is measured here too, on the same stream and
under the same interpreter, for a like-for-like ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from matching_engine import __version__ as anchor_version  # noqa: E402
from matching_engine.domain import (  # noqa: E402
    CancelOrder,
    NewOrder,
    OrderType,
    SequencedCommand,
    Side,
    TimeInForce,
)
from matching_engine.engine import MatchingEngine  # noqa: E402
from matching_engine.events import OrderRejected, Trade  # noqa: E402

from tradewind.core.commands import AnyCommand, Cancel, Place  # noqa: E402
from tradewind.runtime.benchmark import core_build  # noqa: E402
from tradewind.runtime.streamgen import generate_stream  # noqa: E402

RESULTS = REPO / "bench" / "results"
SEED = 1
ACCOUNTS = 1000

Call = tuple[Callable[[SequencedCommand], list[Any]], SequencedCommand]


def translate(commands: Sequence[AnyCommand]) -> list[Call]:
    """The trading commands as calls on fresh ``MatchingEngine``s, one per symbol."""
    engines: dict[str, MatchingEngine] = {}
    seqs: dict[str, int] = {}
    out: list[Call] = []
    for c in commands:
        if isinstance(c, Place):
            side = Side.BUY if c.side == "buy" else Side.SELL
            assert c.qty is not None
            if c.type == "market":
                cmd: NewOrder | CancelOrder = NewOrder(
                    c.id, c.user, side, 0, c.qty, OrderType.MARKET, TimeInForce.IOC
                )
            elif c.type == "limit" and c.tif in ("GTC", "IOC") and c.price is not None:
                tif = TimeInForce.GTC if c.tif == "GTC" else TimeInForce.IOC
                cmd = NewOrder(c.id, c.user, side, c.price, c.qty, OrderType.LIMIT, tif)
            else:
                raise ValueError(f"no counterpart for {c!r}")
        elif isinstance(c, Cancel):
            cmd = CancelOrder(c.id, c.user)
        else:
            continue
        sym = c.symbol
        eng = engines.get(sym)
        if eng is None:
            eng = engines[sym] = MatchingEngine()
        seq = seqs[sym] = seqs.get(sym, 0) + 1
        out.append((eng.process, SequencedCommand(seq, c.ts * 1_000_000, cmd)))
    return out


def _anchor_pass(commands: Sequence[AnyCommand]) -> tuple[int, int]:
    """Wall and thread-CPU nanoseconds for fresh engines to process the translated
    stream, un-instrumented."""
    calls = translate(commands)
    gc.collect()
    gc.freeze()
    try:
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        for process, sc in calls:
            process(sc)
        t1 = time.perf_counter_ns()
        return t1 - t0, time.thread_time_ns() - c0
    finally:
        gc.unfreeze()


def _anchor_latency(commands: Sequence[AnyCommand]) -> dict[str, Any]:
    """Per-call latency percentiles (µs) and event counts of one instrumented pass."""
    calls = translate(commands)
    lat = [0] * len(calls)
    trades = rejected = events = 0
    clock = time.perf_counter_ns
    gc.collect()
    gc.freeze()
    try:
        for i, (process, sc) in enumerate(calls):
            t = clock()
            ev = process(sc)
            lat[i] = clock() - t
            events += len(ev)
            for e in ev:
                te = type(e)
                if te is Trade:
                    trades += 1
                elif te is OrderRejected:
                    rejected += 1
    finally:
        gc.unfreeze()
    lat.sort()
    n = len(lat)

    def pct(q: float) -> float:
        rank = max(1, -(-n * q // 100))
        return round(lat[int(min(rank, n)) - 1] / 1000, 3) if n else 0.0

    return {
        "commands": n,
        "trades": trades,
        "rejected": rejected,
        "events": events,
        "latency_us": {
            "p50": pct(50),
            "p90": pct(90),
            "p99": pct(99),
            "p99_9": pct(99.9),
            "max": round(lat[-1] / 1000, 3) if n else 0.0,
            "mean": round(sum(lat) / n / 1000, 3) if n else 0.0,
        },
    }


def _median(xs: list[float]) -> float:
    return sorted(xs)[(len(xs) - 1) // 2]


def compare(commands: Sequence[AnyCommand], repeat: int, tradewind: bool) -> dict[str, Any]:
    """Throughput passes of the anchor and (unless not ``tradewind``) of our core, in
    turn (A B A B ...) so that a drift of the machine's speed hits both; then one
    latency pass of each. Medians count; the ratio is the median of the pairs' ratios."""
    from tradewind.runtime.benchmark import measure_engine

    runs_a: list[int] = []
    cpu_a: list[int] = []
    runs_t: list[int] = []
    cpu_t: list[int] = []
    for _ in range(repeat):
        wall, cpu = _anchor_pass(commands)
        runs_a.append(wall)
        cpu_a.append(cpu)
        if tradewind:
            tw_pass = measure_engine(commands, latency=False)
            runs_t.append(tw_pass.elapsed_ns)
            cpu_t.append(tw_pass.cpu_ns)
    a = _anchor_latency(commands)
    secs = _median([r / 1e9 for r in runs_a])
    cpu_secs = _median([r / 1e9 for r in cpu_a])
    a |= {
        "seconds": round(secs, 4),
        "runs_seconds": [round(r / 1e9, 4) for r in runs_a],
        "commands_per_sec": round(a["commands"] / secs, 1),
        "cpu_seconds": round(cpu_secs, 4),
        "commands_per_cpu_sec": round(a["commands"] / cpu_secs, 1),
        "trades_per_sec": round(a["trades"] / secs, 1),
    }
    out: dict[str, Any] = {"anchor": a}
    if tradewind:
        tw = measure_engine(commands, repeat=1)
        runs_t.extend(tw.runs_ns)
        cpu_t.append(tw.cpu_ns)
        t = tw.as_dict()
        secs_t = _median([r / 1e9 for r in runs_t])
        cpu_secs_t = _median([r / 1e9 for r in cpu_t])
        t |= {
            "seconds": round(secs_t, 4),
            "runs_seconds": [round(r / 1e9, 4) for r in runs_t],
            "commands_per_sec": round(tw.commands / secs_t, 1),
            "cpu_seconds": round(cpu_secs_t, 4),
            "commands_per_cpu_sec": round(tw.commands / cpu_secs_t, 1),
            "trades_per_sec": round(tw.trades / secs_t, 1),
        }
        out["tradewind"] = t
        out["tradewind_vs_anchor"] = round(
            _median([ra / rt for ra, rt in zip(runs_a, runs_t, strict=False)]), 3
        )
        out["tradewind_vs_anchor_cpu"] = round(
            _median([ra / rt for ra, rt in zip(cpu_a, cpu_t, strict=False)]), 3
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="matching-engine on Tradewind's stream")
    ap.add_argument(
        "--commands",
        type=int,
        default=int(os.environ.get("TRADEWIND_BENCH_COMMANDS", "1000000")),
        help="trading commands per run (default 1,000,000)",
    )
    ap.add_argument("--symbols", type=int, action="append", help="1 or 10 (default: both)")
    ap.add_argument("--repeat", type=int, default=3, help="throughput passes of each")
    ap.add_argument("--no-tradewind", action="store_true", help="measure the anchor only")
    ap.add_argument("--no-write", action="store_true", help="print only; no anchor.json")
    args = ap.parse_args(argv)

    runs: dict[str, Any] = {}
    for n_symbols in args.symbols or (1, 10):
        cmds = generate_stream(args.commands, n_symbols=n_symbols, n_accounts=ACCOUNTS, seed=SEED)
        run = compare(cmds, args.repeat, not args.no_tradewind)
        runs[f"symbols_{n_symbols}"] = run
        del cmds
        print(
            f"{n_symbols} symbol(s): anchor {run['anchor']['commands_per_sec']:,.0f} cmd/s"
            + (
                f", tradewind {run['tradewind']['commands_per_sec']:,.0f} cmd/s"
                if "tradewind" in run
                else ""
            ),
            file=sys.stderr,
        )
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "anchor": f"matching-engine {anchor_version}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "tradewind_core_build": core_build(),
        "stream": {"commands": args.commands, "accounts": ACCOUNTS, "seed": SEED},
        "note": (
            "Same generated stream for both; the anchor gets only the trading commands "
            "(no balances, fees or filters in it). Throughput from an un-instrumented "
            "pass, latency (µs) from a second, per-call timed pass."
        ),
        "runs": runs,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "anchor.json").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
