"""Instructions per command of the core, the journal and recovery, by valgrind's callgrind.

Wall time on a shared 2-core machine swings by 2x; instruction counts do not. Each figure
is the difference between two whole-process counts divided by the number of commands:

- ``pure``: a fresh ``Core`` applies the first ``N`` commands of a fixed stream, minus a
  run that parses the same stream and loops without applying;
- ``journal``: ``JournaledCore.submit(cmd, validated=True)`` with a ``flush()`` every 256
  commands, minus a run that only opens the journaled core and parses the stream;
- ``recovery``: ``recover()`` of an ``N``-record journal written by ``bench/recovery.py``
  (group commits of 10,000, batch records), minus a run that only writes it;
  ``recovery_v1`` the same with one command record per command (journals before ADR
  0026); ``applyonly`` just ``Core.apply`` of that journal's commands (the floor).

The stream is ``generate_stream(200_000, n_symbols=1, n_accounts=1000, seed=1)`` as a
command file (written once to ``--stream``), of which the first ``N`` (40,000) lines are
parsed, so every command is a decoded (validated) struct as in ``make bench``.

Run: ``.venv/bin/python bench/callgrind_journal.py [--modes pure,journal,recovery]``
(about two minutes per mode pair on an idle machine); prints one JSON object and writes
``bench/results/callgrind_journal.json``. ``--child MODE`` is the measured process.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
DEFAULT_STREAM = Path(tempfile.gettempdir()) / "tw-callgrind-stream-1sym-seed1.jsonl"
N = 40_000
FSYNC_EVERY = 256


def write_stream(path: Path) -> None:
    from tradewind.runtime.streamgen import generate_stream, write_command_file

    if not path.exists():
        tmp = path.with_suffix(".tmp")
        write_command_file(tmp, generate_stream(200_000, n_symbols=1, n_accounts=1000, seed=1))
        os.replace(tmp, path)


def _parsed(path: Path, n: int) -> list[Any]:
    from tradewind.core.commandfile import parse_command_line

    out = []
    with path.open("rb") as f:
        for i, line in enumerate(f, 1):
            if i > n:
                break
            out.append(parse_command_line(line, i))
    return out


def child(mode: str, stream: Path, n: int) -> None:
    """The measured process: does ``mode``'s work once (``*0``: everything but the work)."""
    if mode in ("pure", "pure0"):
        from tradewind.core.engine import Core

        cmds = _parsed(stream, n)
        core = Core()
        apply = core.apply
        if mode == "pure":
            for cmd in cmds:
                apply(cmd)
        else:
            for _cmd in cmds:
                pass
    elif mode in ("journal", "journal0"):
        from tradewind.journal.recovery import JournaledCore

        cmds = _parsed(stream, n)
        with tempfile.TemporaryDirectory(prefix="tw-cg-") as tmp:
            jc = JournaledCore(Path(tmp), snapshot_every=10**15)
            if mode == "journal":
                submit, flush = jc.submit, jc.flush
                pending = 0
                for cmd in cmds:
                    submit(cmd, validated=True)
                    pending += 1
                    if pending >= FSYNC_EVERY:
                        flush()
                        pending = 0
            jc.close()
    elif mode in ("applyonly", "applyonly0"):
        sys.path.insert(0, str(BENCH_DIR))
        from recovery import generate  # type: ignore[import-not-found,unused-ignore]
        from tradewind.core.engine import Core

        rcmds = list(generate(n))
        core = Core()
        gc.disable()  # as recovery does
        if mode == "applyonly":
            for cmd in rcmds:
                core.apply(cmd)
    elif mode in ("recovery", "recovery0", "recovery_v1", "recovery_v10"):
        sys.path.insert(0, str(BENCH_DIR))
        from recovery import write_journal  # type: ignore[import-not-found,unused-ignore]
        from tradewind.journal.recovery import recover

        with tempfile.TemporaryDirectory(prefix="tw-cg-") as tmp:
            if mode.startswith("recovery_v1"):
                write_journal(Path(tmp), n, batch=False)
            else:
                write_journal(Path(tmp), n)
            gc.collect()
            if mode in ("recovery", "recovery_v1"):
                result = recover(Path(tmp))
                if result.replayed != n:
                    raise RuntimeError(f"replayed {result.replayed} of {n}")
    else:
        raise ValueError(mode)


_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def count(mode: str, stream: Path, n: int) -> int:
    """Instructions the whole child process executed, by callgrind."""
    with tempfile.TemporaryDirectory(prefix="tw-cg-out-") as out:
        proc = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}/cg.out",
                sys.executable,
                __file__,
                "--child",
                mode,
                "--stream",
                str(stream),
                "--n",
                str(n),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict layouts every run
        )
    m = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or m is None:
        raise RuntimeError(f"callgrind of {mode} failed: {proc.stderr[-2000:]}")
    return int(m.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--modes", default="pure,journal,recovery")
    ap.add_argument("--n", type=int, default=N)
    ap.add_argument("--stream", type=Path, default=DEFAULT_STREAM)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=RESULTS / "callgrind_journal.json")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.stream, args.n)
        return 0

    from tradewind.runtime.benchmark import machine_info

    write_stream(args.stream)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        "commands": args.n,
        "fsync_every": FSYNC_EVERY,
        "instructions_per_command": {},
    }
    for mode in args.modes.split(","):
        full, base = count(mode, args.stream, args.n), count(mode + "0", args.stream, args.n)
        per = round((full - base) / args.n)
        report["instructions_per_command"][mode] = per
        print(f"{mode}: {per:,} instructions per command ({full:,} - {base:,})", file=sys.stderr)
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report["instructions_per_command"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
