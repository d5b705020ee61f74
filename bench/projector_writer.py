"""The projectors' SQL cost per command: the async store on the event loop against the
writer thread's synchronous store (embedded mode, SQLite).

A generated stream (``generate_stream``) is applied to a core; its batches are fed to a
``ProjectorRunner`` in chunks of ``--chunk`` commands (what the background runner
gathers at a few hundred commands/s), once through ``SqlProjectionStore`` (aiosqlite,
greenlets) and once through ``ThreadProjectionStore`` on a ``WriterThread``, alternating,
each on a fresh SQLite file; ``thread-full`` is the writer thread with
``synchronous=FULL``, ``thread`` with the default ``NORMAL``. With ``--pg URL`` also the
distributed projector's way on PostgreSQL (a fresh database each run, the projectors of
a chunk in one shared transaction): ``pg-sqlalchemy`` with every write through
SQLAlchemy, ``pg-raw`` with the row writes as SQL text on asyncpg (ADR 0046); their
figures leave out the PostgreSQL server's own CPU. Reported per command: CPU
of the calling (event-loop) thread, CPU of the whole process, and wall time. The
event-loop figure is what the HTTP server loses to the projectors. Writes
``bench/results/projector_writer.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from tradewind.adapters.sql import upgrade_async
from tradewind.adapters.sql.engine import Database
from tradewind.adapters.sql.projection_writer import ThreadProjectionStore
from tradewind.adapters.sql.projections import SqlProjectionStore
from tradewind.adapters.sql.projector_offsets import shared_projection_transaction
from tradewind.core.engine import Core
from tradewind.runtime.benchmark import machine_info
from tradewind.runtime.streamgen import generate_stream
from tradewind.services.projectors import (
    Batch,
    LedgerProjector,
    OrdersProjector,
    ProjectorRunner,
    TradesProjector,
)
from tradewind.services.projectors.writer_thread import WriterThread

RESULTS = Path(__file__).parent / "results"


def batches(n: int) -> list[Batch]:
    core = Core()
    out = []
    for cmd in generate_stream(n, n_accounts=200, seed=3):
        out.append(Batch(cmd.seq, cmd.ts, core.apply(cmd)))
    return out


async def one(
    kind: str, data: list[Batch], chunk: int, root: Path, pg: str | None = None
) -> dict[str, float]:
    if kind.startswith("pg"):
        assert pg is not None
        async with pg_database(pg) as url:
            return await _one(kind, data, chunk, url)
    return await _one(kind, data, chunk, f"sqlite+aiosqlite:///{root / f'{kind}.db'}")


@asynccontextmanager
async def pg_database(admin_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one run, dropped afterwards."""
    name = f"tradewind_bench_pw_{os.getpid()}_{time.monotonic_ns()}"
    admin = make_url(admin_url).set(drivername="postgresql")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f"CREATE DATABASE {name}")
        try:
            yield admin.set(drivername="postgresql+asyncpg", database=name).render_as_string(
                hide_password=False
            )
        finally:
            await conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await conn.close()


async def _one(kind: str, data: list[Batch], chunk: int, url: str) -> dict[str, float]:
    await upgrade_async(url)
    db = Database.from_url(url)
    writer: WriterThread | None = None
    store: Any
    transaction = None
    if kind.startswith("pg"):
        store = SqlProjectionStore(db, raw_postgres=kind == "pg-raw")
        transaction = partial(shared_projection_transaction, db, ("ledger", "orders", "trades"))
    elif kind.startswith("thread"):
        sync = "FULL" if kind == "thread-full" else "NORMAL"
        writer, store = WriterThread(), ThreadProjectionStore(url, synchronous=sync)
    else:
        store = SqlProjectionStore(db)
    runner = ProjectorRunner(
        [LedgerProjector(store), OrdersProjector(store), TradesProjector(store)],
        writer=writer,
        transaction=transaction,
    )
    await runner.offsets()
    t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
    for i in range(0, len(data), chunk):
        await runner.apply_batches(data[i : i + chunk])
    wall, loop_cpu, cpu = (
        time.perf_counter() - t0,
        time.thread_time() - c0,
        time.process_time() - p0,
    )
    if writer is not None:
        writer.close()
    await db.dispose()
    n = len(data)
    return {
        "loop_cpu_us_per_command": round(loop_cpu / n * 1e6, 1),
        "process_cpu_us_per_command": round(cpu / n * 1e6, 1),
        "wall_us_per_command": round(wall / n * 1e6, 1),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    data = batches(args.commands)
    kinds = ["async", "thread-full", "thread"] + (["pg-sqlalchemy", "pg-raw"] if args.pg else [])
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for kind in runs:
                root = Path(tmp) / f"{i}"
                root.mkdir(exist_ok=True)
                runs[kind].append(await one(kind, data, args.chunk, root, args.pg))
    return runs


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--commands", type=int, default=5000)
    ap.add_argument("--chunk", type=int, default=25)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg", metavar="URL", help="also on PostgreSQL (admin URL; fresh db each run)")
    ap.add_argument("--out", type=Path, default=RESULTS / "projector_writer.json")
    args = ap.parse_args()
    runs = asyncio.run(main_async(args))
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        "settings": {
            "commands": args.commands,
            "chunk": args.chunk,
            "runs": args.runs,
            "postgresql": bool(args.pg),
        },
        "runs": runs,
        "median": {
            kind: {k: sorted(r[k] for r in rs)[len(rs) // 2] for k in rs[0]}
            for kind, rs in runs.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["median"], indent=2), report["machine"].get("load_average"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
