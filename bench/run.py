"""``make bench``: the trading core's recorded figures, written to bench/results/engine.json.

Measures, on generated streams (``tradewind.runtime.streamgen``, 1,000 funded accounts):

- the core alone on one symbol and on ten (commands/s, trades/s, per-command latency
  percentiles), as ``tradewind bench engine`` does;
- the same with the journal on: ``JournaledCore`` (append + CRC per command) with a
  group commit (write + fsync) every ``--fsync-every`` commands, overlapped with the
  next group's apply as the core runner does it, snapshots off;
- recovery time of a 1,000,000-command journal (``bench/recovery.py``);
- bytes of memory per resting order with 1,000,000 resting orders, by two methods, each
  in a fresh child process: ``tracemalloc`` (bytes the core's live objects hold, as
  Python counts them) and RSS (what the process grew by, allocator overhead included);
- the anchor (the ``matching-engine`` package, ``bench/anchor.py``) and our core on the
  same streams under the anchor's Python 3.12, when ``bench/.anchor-venv`` exists (a
  full-size run also rewrites bench/results/anchor.json).

Throughput is the median of ``--repeat`` passes (3), with the journal off and on (a
single journal pass swung by 10-15 % between runs of one hour on a calm host). A full
run takes about six minutes of CPU on an idle 2-core machine; ``--quick`` shrinks every
size tenfold.
Run: ``.venv/bin/python bench/run.py [--quick] [--out FILE]``. With ``--api`` the REST and
WebSocket benchmark (``bench/api.py``, about six more minutes; needs aiohttp) follows and
writes bench/results/api.json; ``--api-only`` runs that alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from tradewind.core.commandfile import parse_command_line
from tradewind.core.commands import AnyCommand
from tradewind.core.engine import Core
from tradewind.core.events import Event, Rejected, Trade
from tradewind.runtime.benchmark import Runner, machine_info, measure_engine
from tradewind.runtime.streamgen import (
    StreamStats,
    generate_resting,
    generate_stream,
    setup_prefix_len,
    write_command_file,
)

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
ANCHOR_PYTHON = BENCH_DIR / ".anchor-venv" / "bin" / "python"
SEED = 1
ACCOUNTS = 1000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _stream(n: int, n_symbols: int) -> tuple[list[AnyCommand], dict[str, Any]]:
    st = StreamStats()
    t = time.perf_counter()
    cmds: list[AnyCommand] = list(
        generate_stream(n, n_symbols=n_symbols, n_accounts=ACCOUNTS, seed=SEED, stats=st)
    )
    log(
        f"generated {len(cmds):,} commands on {n_symbols} symbol(s) in "
        f"{time.perf_counter() - t:.1f} s"
    )
    return cmds, {
        "symbols": n_symbols,
        "accounts": ACCOUNTS,
        "seed": SEED,
        "setup": st.setup,
        "places": st.places,
        "crossing_places": st.crossing_places,
        "cancels": st.cancels,
        "stale_cancels": st.stale_cancels,
        "ioc": st.ioc,
        "markets": st.markets,
        "open_orders_at_end": st.open_orders,
        "levels_at_end": {k: list(v) for k, v in st.levels.items()},
    }


def journaled_runner(root: Path, fsync_every: int, *, overlap: bool = True) -> Callable[[], Runner]:
    """Fresh ``JournaledCore`` per pass in a new directory under ``root``: ``apply``
    submits (the parser already validated the commands) and group-commits every
    ``fsync_every`` commands the way the core runner does (``runtime/sequencer.py``): the
    group is written, then fsynced by the journal's helper process (ADR 0048) while the
    next group is applied, and the next group's commit waits for that fsync first
    (``overlap=False``: write and fsync inline, the apply waiting). ``finish`` commits the
    rest and closes. Snapshots are off so that only the journal is measured."""
    from tradewind.journal.recovery import JournaledCore

    runs = itertools.count()

    def make() -> Runner:
        jc = JournaledCore(root / f"run-{next(runs)}", snapshot_every=10**15)
        submit, flush = jc.submit, jc.flush
        start, done, wait = jc.start_commit, jc.commit_done, jc.wait_commit
        pending = 0

        def apply(cmd: AnyCommand) -> list[Event]:
            nonlocal pending
            ev = submit(cmd, validated=True)  # parsed from the command file
            pending += 1
            if pending >= fsync_every:
                pending = 0
                if not overlap:
                    flush()
                else:
                    if not done():
                        wait()  # the previous group is durable
                    start()
            return ev

        return apply, jc.close

    return make


def _fs_type(path: Path) -> str:
    """File system type of ``path`` (from /proc/mounts), for the record."""
    try:
        best, kind = "", "unknown"
        real = str(path.resolve())
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and real.startswith(parts[1]) and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
        return kind
    except OSError:
        return "unknown"


def bench_engine(
    n: int,
    n_symbols: int,
    journal: Path | None,
    fsync_every: int,
    repeat: int,
    journal_repeat: int = 1,
) -> dict[str, Any]:
    cmds, gen = _stream(n, n_symbols)
    out: dict[str, Any] = {"stream": gen}
    t = time.perf_counter()
    res = measure_engine(cmds, repeat=repeat)
    out["journal_off"] = res.as_dict()
    log(
        f"  journal off: {res.commands_per_sec:,.0f} commands/s "
        f"({res.commands_per_cpu_sec:,.0f} per CPU second), "
        f"p99 {res.percentile_us(99):.1f} µs ({time.perf_counter() - t:.1f} s)"
    )
    if journal is not None:
        for mode, overlap in (("journal_on", True), ("journal_on_sync", False)):
            t = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="tw-bench-journal-", dir=journal) as tmp:
                runner = journaled_runner(Path(tmp), fsync_every, overlap=overlap)
                res = measure_engine(cmds, make_runner=runner, repeat=journal_repeat)
            out[mode] = {
                **res.as_dict(),
                "fsync_every": fsync_every,
                "overlapped": overlap,
                "snapshots": False,
            }
            log(
                f"  {mode}: {res.commands_per_sec:,.0f} commands/s, "
                f"p99 {res.percentile_us(99):.1f} µs ({time.perf_counter() - t:.1f} s)"
            )
    return out


def bench_recovery(n: int) -> dict[str, Any]:
    sys.path.insert(0, str(BENCH_DIR))
    try:
        from recovery import measure_recovery  # type: ignore[import-not-found,unused-ignore]
    except ImportError as e:
        return {"skipped": f"bench/recovery.py not available: {e}"}
    t = time.perf_counter()
    res: dict[str, Any] = measure_recovery(n)
    log(f"  recovery of {n:,} records: {res['seconds']} s ({time.perf_counter() - t:.1f} s)")
    return res


# ---------------------------------------------------------------- memory per resting order


def memory_child(path: Path, n_setup: int, method: str) -> dict[str, Any]:
    """Run in a fresh process: stream the command file ``path`` (setup, then non-crossing
    places) line by line into a fresh core and report the growth per resting order, from
    the end of the setup to the end, by ``method`` (tracemalloc or rss). Streaming keeps
    the process from holding (or having freed) the whole input, which would distort RSS.
    """
    if method not in ("tracemalloc", "rss"):
        raise ValueError(method)
    if method == "tracemalloc":
        tracemalloc.start()

    def used() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] if method == "tracemalloc" else _rss()

    core = Core()
    apply = core.apply
    trades = rejected = 0
    before = used() if n_setup == 0 else 0
    with path.open("rb") as f:
        for i, line in enumerate(f, 1):
            for e in apply(parse_command_line(line, i)):
                te = type(e)
                trades += te is Trade
                rejected += te is Rejected
            if i == n_setup:
                before = used()
    after = used()
    resting = len(core.orders)
    return {
        "method": method,
        "resting": resting,
        "trades": trades,
        "rejected": rejected,
        "bytes": after - before,
        "bytes_per_order": round((after - before) / resting, 1) if resting else None,
    }


def _rss() -> int:
    with open("/proc/self/statm", encoding="utf-8") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_memory(n_orders: int) -> dict[str, Any]:
    out: dict[str, Any] = {"orders": n_orders, "symbols": 1, "accounts": ACCOUNTS}
    with tempfile.TemporaryDirectory(prefix="tw-bench-memory-") as tmp:
        path = Path(tmp) / "resting.jsonl"
        cmds = generate_resting(n_orders, n_accounts=ACCOUNTS, seed=SEED)
        n_setup = setup_prefix_len(cmds)
        write_command_file(path, cmds)
        del cmds
        for method in ("tracemalloc", "rss"):
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, __file__, "--memory-child", str(path), str(n_setup), method],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                out[method] = {"error": proc.stderr.strip()[-2000:]}
                log(f"  memory ({method}) failed: {proc.stderr.strip()[-300:]}")
                continue
            res = json.loads(proc.stdout)
            out[method] = res
            log(
                f"  memory ({method}): {res['bytes_per_order']} bytes per resting order "
                f"({time.perf_counter() - t:.1f} s)"
            )
    return out


# ---------------------------------------------------------------- anchor


def bench_anchor(n: int, repeat: int, write: bool) -> dict[str, Any]:
    """``bench/anchor.py`` under the anchor's own interpreter: the anchor and our core on
    the same streams (1 and 10 symbols), alternating passes. With ``write`` it also
    records bench/results/anchor.json."""
    if not ANCHOR_PYTHON.exists():
        return {"skipped": "bench/.anchor-venv missing (see bench/anchor.py to create it)"}
    proc = subprocess.run(
        [
            str(ANCHOR_PYTHON),
            str(BENCH_DIR / "anchor.py"),
            "--commands",
            str(n),
            "--repeat",
            str(repeat),
            *([] if write else ["--no-write"]),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        log(f"  anchor failed: {proc.stderr.strip()[-300:]}")
        return {"error": proc.stderr.strip()[-2000:]}
    res: dict[str, Any] = json.loads(proc.stdout)
    for key, run in res["runs"].items():
        log(
            f"  {key}: anchor {run['anchor']['commands_per_sec']:,.0f} cmd/s, tradewind "
            f"{run['tradewind']['commands_per_sec']:,.0f} cmd/s ({res['python']})"
        )
    return res


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="tenfold smaller sizes")
    ap.add_argument("--commands", type=int, help="trading commands per engine run")
    ap.add_argument("--repeat", type=int, default=3, help="throughput passes (median counts)")
    ap.add_argument("--fsync-every", type=int, default=256, help="commands per group commit")
    ap.add_argument("--no-journal", action="store_true")
    ap.add_argument("--no-anchor", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS / "engine.json")
    ap.add_argument(
        "--api",
        action="store_true",
        help="then run bench/api.py too (REST and WebSocket under load: bench/results/api.json)",
    )
    ap.add_argument("--api-only", action="store_true", help="run bench/api.py only")
    ap.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    # The journal's info lines (a helper started per pass) would interleave the report.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    if args.memory_child:
        path, n_setup, method = args.memory_child
        print(json.dumps(memory_child(Path(path), int(n_setup), method)))
        return 0

    if args.api_only:
        return run_api(args.quick)

    scale = 10 if args.quick else 1
    n = args.commands or 1_000_000 // scale
    n_recovery = 1_000_000 // scale
    n_resting = 1_000_000 // scale
    started = time.perf_counter()
    journal_root: Path | None = None
    if not args.no_journal:
        try:
            import tradewind.journal.recovery  # noqa: F401
        except ImportError as e:
            log(f"journal not available, journal-on runs skipped: {e}")
        else:
            journal_root = Path(tempfile.gettempdir())

    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "quick": args.quick,
        "notes": [
            "Throughput from un-instrumented passes (median of --repeat, journal off and "
            "on); latency percentiles (µs) from a further pass timing each apply with "
            "perf_counter_ns. Setup commands (assets, symbols, fees, deposits) are "
            "applied untimed.",
            "commands_per_sec is wall time; commands_per_cpu_sec uses the thread's CPU "
            "time, which other processes on a shared machine do not stretch (it leaves "
            "out waiting, e.g. in fsync).",
            "journal_on: JournaledCore.submit per command, a group commit (write + fsync) "
            "every fsync_every commands: written by the applying thread, fsynced by the "
            "journal's helper process while the next group is applied (as the core runner "
            "does, ADR 0048), snapshots off; its latency includes the waits for the "
            "previous group's fsync; cpu figures are the applying thread's. "
            "journal_on_sync: the same with write + fsync inline (the apply waits).",
            "memory: tracemalloc counts bytes of live Python objects the core holds; rss "
            "is the process growth (allocator overhead included). Both divide by the "
            "number of resting orders.",
        ],
    }
    if journal_root is not None:
        report["journal_fs"] = _fs_type(journal_root)
    engine: dict[str, Any] = {}
    for n_symbols in (1, 10):
        log(f"engine, {n_symbols} symbol(s), {n:,} commands")
        engine[f"symbols_{n_symbols}"] = bench_engine(
            n, n_symbols, journal_root, args.fsync_every, args.repeat, args.repeat
        )
    report["engine"] = engine

    log(f"recovery, {n_recovery:,} records")
    report["recovery"] = bench_recovery(n_recovery)

    log(f"memory, {n_resting:,} resting orders")
    report["memory"] = bench_memory(n_resting)

    if not args.no_anchor:
        log("anchor (matching-engine), same streams")
        full_size = not args.quick and args.commands is None
        report["anchor"] = bench_anchor(n, args.repeat, write=full_size)

    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {args.out} ({report['wall_seconds']} s)")
    _summary(report)
    return run_api(args.quick) if args.api else 0


def run_api(quick: bool) -> int:
    """``bench/api.py`` (it needs aiohttp: ``pip install aiohttp py-spy``)."""
    try:
        import api
    except ImportError as e:
        log(f"API benchmark skipped: {e} (pip install aiohttp)")
        return 1
    return int(api.main(["--quick"] if quick else []))


def _summary(r: dict[str, Any]) -> None:
    rows = []
    for key, e in r["engine"].items():
        for mode in ("journal_off", "journal_on", "journal_on_sync"):
            if mode in e:
                m = e[mode]
                lat = m["latency_us"]
                rows.append(
                    f"{key:<11} {mode:<12} {m['commands_per_sec']:>9,.0f} cmd/s "
                    f"({m['commands_per_cpu_sec']:>9,.0f}/CPU s) "
                    f"{m['trades_per_sec']:>10,.0f} trades/s  p50 {lat['p50']:.1f} "
                    f"p99 {lat['p99']:.1f} p99.9 {lat['p99_9']:.1f} µs"
                )
    rec = r.get("recovery", {})
    if "seconds" in rec:
        rows.append(f"recovery    {rec['records']:,} records in {rec['seconds']} s")
    mem = r.get("memory", {})
    for method in ("tracemalloc", "rss"):
        if "bytes_per_order" in mem.get(method, {}):
            rows.append(f"memory      {mem[method]['bytes_per_order']} bytes/order ({method})")
    anchor = r.get("anchor", {})
    for key, run in anchor.get("runs", {}).items():
        rows.append(
            f"anchor      {key:<11} {run['anchor']['commands_per_sec']:>12,.0f} cmd/s; tradewind "
            f"{run['tradewind']['commands_per_sec']:,.0f} cmd/s on {anchor['python']} "
            f"(ratio {run['tradewind_vs_anchor']}, by CPU time "
            f"{run.get('tradewind_vs_anchor_cpu')})"
        )
    print("\n".join(rows))


if __name__ == "__main__":
    raise SystemExit(main())
