"""Start-up time of ``tradewind serve`` (embedded, demo mode, no market maker): from
process spawn to the first 200 from ``/readyz``, N times on a fresh data dir (migrations
applied, demo seeded) and N times on the data dir those runs left (journal recovered,
read models rebuilt). Each process is stopped with SIGTERM once ready.

Wall seconds depend on the neighbours of a shared machine; CPU seconds (user + system
of the server process when /readyz first answers, read from /proc) much less so: judge
a change by those.

Writes bench/results/startup.json with the machine.

    .venv/bin/python bench/startup.py [--runs 5] [--timeout 120]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tradewind.runtime.benchmark import machine_info

OUT = Path(__file__).resolve().parent / "results" / "startup.json"
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (/proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_once(data_dir: Path, timeout: float) -> dict[str, float]:
    """Spawn ``tradewind serve``, wait for /readyz, stop it; its wall and CPU seconds."""
    port = _free_port()
    env = {
        **os.environ,
        "TRADEWIND_DATA_DIR": str(data_dir),
        "TRADEWIND_HOST": "127.0.0.1",
        "TRADEWIND_PORT": str(port),
        "TRADEWIND_DEMO": "1",
        "TRADEWIND_DEMO_BOT": "0",
    }
    url = f"http://127.0.0.1:{port}/readyz"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from tradewind.runtime.cli import main; main()", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"serve exited {proc.returncode}: {err[-2000:]}")
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"not ready within {timeout} s")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        cpu = _cpu_seconds(proc.pid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}


def summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    wall = [r["wall_s"] for r in runs]
    cpu = [r["cpu_s"] for r in runs]
    return {
        "runs": runs,
        "wall_s_median": round(statistics.median(wall), 3),
        "wall_s_min": round(min(wall), 3),
        "cpu_s_median": round(statistics.median(cpu), 3),
        "cpu_s_min": round(min(cpu), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="startup-bench-"))
    try:
        fresh = []
        for i in range(args.runs):
            fresh.append(start_once(root / f"fresh-{i}", args.timeout))
        existing = [start_once(root / "fresh-0", args.timeout) for _ in range(args.runs)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report = {
        "what": "tradewind serve (embedded, demo mode, no market maker): spawn to the first "
        "200 from /readyz; cpu_s = user + system seconds of the server process at that "
        "moment",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "machine_note": "shared 2-vCPU VM, other engineers' runs loading it (load_average)",
        "fresh_data_dir": summary(fresh),
        "existing_data_dir": summary(existing),
    }
    if not args.no_write:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
