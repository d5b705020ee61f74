"""``tradewind bench engine``: the trading core alone, parsing excluded.

The stream (a command file, or the generated default of ``runtime.streamgen``) is
parsed first. Its leading setup commands (assets, symbols, fees, deposits) are applied
untimed; every command after them is timed. Two passes, each on a fresh ``Core``:

1. throughput: a bare ``for cmd in commands: apply(cmd)`` loop around one pair of
   ``perf_counter_ns`` reads, so no per-command timer skews it; run three times, the
   median counts (the machine may be shared);
2. latency: ``perf_counter_ns`` around every ``apply``; percentiles come from these
   samples, and the trade and rejection counts from the events (counted outside the
   timed window; the core is deterministic, so pass 1 produced the same events).

The garbage collector stays on (as in production); what exists before a pass (the
parsed commands) is frozen out of its scans with ``gc.freeze`` so that the input's size
does not tax the core.
"""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradewind.core.commandfile import CommandFileError, parse_command_lines
from tradewind.core.commands import AnyCommand
from tradewind.core.engine import Core
from tradewind.core.events import Event, Rejected, Trade
from tradewind.runtime.streamgen import generate_stream, setup_prefix_len

DEFAULT_COMMANDS = 1_000_000
DEFAULT_SYMBOLS = 1
DEFAULT_ACCOUNTS = 1000
DEFAULT_SEED = 1
DEFAULT_REPEAT = 3
"""Throughput passes per measurement; the median counts."""

Apply = Callable[[AnyCommand], list[Event]]
Runner = tuple[Apply, Callable[[], object]]
"""What a measurement drives: ``apply`` for each command, then ``finish`` once (timed,
so that, say, a journal's last group commit counts)."""


@dataclass(frozen=True, slots=True)
class EngineBench:
    """One measurement of the core on one stream. Times in nanoseconds."""

    commands: int
    setup_commands: int
    elapsed_ns: int
    """Median of the throughput passes."""
    runs_ns: list[int]
    """Every throughput pass, in order."""
    cpu_ns: int
    """Median CPU time of this thread over the throughput passes: unlike wall time, not
    stretched when other processes share the cores (but without time spent waiting,
    e.g. in fsync)."""
    trades: int
    rejected: int
    events: int
    latencies_ns: list[int]
    """Sorted per-command latencies of the instrumented pass."""

    @property
    def commands_per_sec(self) -> float:
        return self.commands * 1e9 / self.elapsed_ns if self.elapsed_ns else 0.0

    @property
    def commands_per_cpu_sec(self) -> float:
        return self.commands * 1e9 / self.cpu_ns if self.cpu_ns else 0.0

    @property
    def trades_per_sec(self) -> float:
        return self.trades * 1e9 / self.elapsed_ns if self.elapsed_ns else 0.0

    def percentile_us(self, q: float) -> float:
        """Nearest-rank percentile ``q`` (0-100) of the latencies, in microseconds."""
        lat = self.latencies_ns
        if not lat:
            return 0.0
        rank = max(1, -(-len(lat) * q // 100))  # ceil(n * q / 100), at least 1
        return lat[int(min(rank, len(lat))) - 1] / 1000

    def latency_us(self) -> dict[str, float]:
        lat = self.latencies_ns
        mean = sum(lat) / len(lat) / 1000 if lat else 0.0
        return {
            "p50": round(self.percentile_us(50), 3),
            "p90": round(self.percentile_us(90), 3),
            "p99": round(self.percentile_us(99), 3),
            "p99_9": round(self.percentile_us(99.9), 3),
            "max": round(lat[-1] / 1000 if lat else 0.0, 3),
            "mean": round(mean, 3),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "commands": self.commands,
            "setup_commands": self.setup_commands,
            "seconds": round(self.elapsed_ns / 1e9, 4),
            "runs_seconds": [round(r / 1e9, 4) for r in self.runs_ns],
            "commands_per_sec": round(self.commands_per_sec, 1),
            "best_commands_per_sec": round(self.commands * 1e9 / min(self.runs_ns), 1),
            "cpu_seconds": round(self.cpu_ns / 1e9, 4),
            "commands_per_cpu_sec": round(self.commands_per_cpu_sec, 1),
            "trades": self.trades,
            "trades_per_sec": round(self.trades_per_sec, 1),
            "rejected": self.rejected,
            "events": self.events,
            "latency_us": self.latency_us(),
        }


def _fresh_core() -> Runner:
    return Core().apply, _nothing


def _nothing() -> None:
    return None


def _throughput_pass(
    head: list[AnyCommand], timed: list[AnyCommand], make_runner: Callable[[], Runner]
) -> tuple[int, int]:
    """Wall and thread-CPU nanoseconds to apply ``timed`` on a fresh runner that has seen
    ``head``; no per-command instrumentation."""
    apply, finish = make_runner()
    for cmd in head:
        apply(cmd)
    gc.collect()
    gc.freeze()
    try:
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        for cmd in timed:
            apply(cmd)
        finish()
        t1 = time.perf_counter_ns()
        return t1 - t0, time.thread_time_ns() - c0
    finally:
        gc.unfreeze()


def measure_engine(
    commands: Sequence[AnyCommand],
    *,
    setup: int | None = None,
    make_runner: Callable[[], Runner] = _fresh_core,
    latency: bool = True,
    repeat: int = 1,
) -> EngineBench:
    """Measure ``commands`` on fresh cores made by ``make_runner`` (default: a plain
    ``Core``; the journal benchmark passes a journaled one).

    The first ``setup`` commands (default: the leading setup run) are applied untimed.
    The throughput pass runs ``repeat`` times (a fresh core each time) and the median
    counts: on a shared machine one pass can be slowed by a neighbour. With
    ``latency=False`` no latency pass runs: no percentiles, and trades, rejections and
    events stay 0.
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    n_setup = setup_prefix_len(commands) if setup is None else setup
    head, timed = list(commands[:n_setup]), list(commands[n_setup:])

    passes = [_throughput_pass(head, timed, make_runner) for _ in range(repeat)]
    runs = [wall for wall, _ in passes]
    cpus = sorted(cpu for _, cpu in passes)

    trades = rejected = events = 0
    lat: list[int] = []
    if latency:
        # Pass 2: per-command latency, and event counts outside the timed window.
        apply, finish = make_runner()
        for cmd in head:
            apply(cmd)
        lat = [0] * len(timed)
        clock = time.perf_counter_ns
        gc.collect()
        gc.freeze()
        try:
            for i, cmd in enumerate(timed):
                t = clock()
                ev = apply(cmd)
                lat[i] = clock() - t
                events += len(ev)
                for e in ev:
                    te = type(e)
                    if te is Trade:
                        trades += 1
                    elif te is Rejected:
                        rejected += 1
            finish()
        finally:
            gc.unfreeze()
        lat.sort()
    return EngineBench(
        commands=len(timed),
        setup_commands=n_setup,
        elapsed_ns=sorted(runs)[(len(runs) - 1) // 2],
        runs_ns=runs,
        cpu_ns=cpus[(len(cpus) - 1) // 2],
        trades=trades,
        rejected=rejected,
        events=events,
        latencies_ns=lat,
    )


def git_commit(cwd: Path | None = None) -> str | None:
    """``git rev-parse HEAD`` of the working tree (or of this package's checkout)."""
    for where in (cwd or Path.cwd(), Path(__file__).resolve().parent):
        try:
            out = subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=where,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    return None


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "commit": git_commit(),
        "uncommitted_core_changes": _core_dirty(),
        "core_build": core_build(),
        "load_average": _load_average(),
    }


def _load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages when the figures were taken: on a shared
    machine they say how much of a slow run was the neighbours'."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _core_dirty() -> bool | None:
    """Whether src/tradewind/core differs from the commit (so ``commit`` is not the
    whole story); None when git cannot tell."""
    here = Path(__file__).resolve().parent.parent / "core"
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", "."],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def core_build() -> str:
    """Which build of the core is loaded: ``pure`` (Python sources) or ``mypyc``."""
    try:
        from tradewind.core.native import build_name
    except ImportError:
        return "pure"
    return build_name()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def default_stream_size() -> int:
    """``TRADEWIND_BENCH_COMMANDS`` if set (to shrink the run), else 1,000,000."""
    raw = os.environ.get("TRADEWIND_BENCH_COMMANDS", "").replace("_", "").strip()
    if not raw:
        return DEFAULT_COMMANDS
    n = int(raw)
    if n < 1:
        raise ValueError("TRADEWIND_BENCH_COMMANDS must be at least 1")
    return n


def load_commands(input: Path | None) -> tuple[list[AnyCommand], dict[str, Any]]:
    """The commands to measure and a description of where they came from."""
    if input is not None:
        with input.open("rb") as f:
            cmds: list[AnyCommand] = list(parse_command_lines(f))
        return cmds, {"input": str(input)}
    n = default_stream_size()
    gen: list[AnyCommand] = list(
        generate_stream(
            n, n_symbols=DEFAULT_SYMBOLS, n_accounts=DEFAULT_ACCOUNTS, seed=DEFAULT_SEED
        )
    )
    return gen, {
        "input": "generated",
        "symbols": DEFAULT_SYMBOLS,
        "accounts": DEFAULT_ACCOUNTS,
        "seed": DEFAULT_SEED,
    }


def run_engine_bench(input: Path | None, as_json: bool) -> int:
    """Entry point of ``tradewind bench engine``; returns the exit status."""
    import msgspec

    try:
        cmds, source = load_commands(input)
    except CommandFileError as e:
        print(f"{input}: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result = measure_engine(cmds, repeat=DEFAULT_REPEAT)
    del cmds
    report: dict[str, Any] = {**result.as_dict(), **source, **machine_info()}
    if as_json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    else:
        _print_table(report)
    return 0


def _print_table(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    lat = r["latency_us"]
    table = Table(title="tradewind bench engine", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("input", str(r["input"]))
    table.add_row("commands (timed)", f"{r['commands']:,}")
    table.add_row("setup commands (untimed)", f"{r['setup_commands']:,}")
    table.add_row("commands/s", f"{r['commands_per_sec']:,.0f}")
    table.add_row("commands/s of CPU time", f"{r['commands_per_cpu_sec']:,.0f}")
    table.add_row("trades", f"{r['trades']:,}")
    table.add_row("trades/s", f"{r['trades_per_sec']:,.0f}")
    table.add_row("rejected", f"{r['rejected']:,}")
    for key, label in (("p50", "p50"), ("p99", "p99"), ("p99_9", "p99.9"), ("max", "max")):
        table.add_row(f"latency {label} (µs)", f"{lat[key]:,.2f}")
    table.add_row("python", str(r["python"]))
    table.add_row("cores", str(r["cores"]))
    table.add_row("core build", str(r["core_build"]))
    table.add_row("commit", str(r["commit"] or "unknown")[:12])
    Console().print(table)
