"""camt.053 import throughput: a statement of ``--entries`` booked credits (each with a
user's RF reference, a few without) parsed, matched and stored on SQLite, then credited
through a journaled core runner, one Deposit(ref) per line. Also the parse alone.

Writes bench/results/fiat_import.json with the machine (runtime.benchmark.machine_info).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tradewind.runtime.benchmark import machine_info

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
OUT = Path(__file__).resolve().parent / "results" / "fiat_import.json"


async def run(entries: int, users: int) -> dict[str, Any]:
    from tests.support.camt import Entry, camt053
    from tradewind.adapters.banks.camt053 import Camt053Reader
    from tradewind.adapters.local import SystemClock
    from tradewind.adapters.sql import Database, SqlUserRepository
    from tradewind.adapters.sql.audit import SqlAuditStore
    from tradewind.adapters.sql.fiat import SqlFiatStore
    from tradewind.adapters.sql.migrate import upgrade_async
    from tradewind.core.commands import AddAsset
    from tradewind.journal.recovery import JournaledCore
    from tradewind.runtime.sequencer import CoreRunner
    from tradewind.services.admin import CLI_ACTOR
    from tradewind.services.audit import AuditLog
    from tradewind.services.fiat.bank_deposits import BankDeposits
    from tradewind.services.fiat.config import demo_fiat

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/tw.db"
        await upgrade_async(url)
        db = Database.from_url(url)
        runner = CoreRunner(JournaledCore(Path(tmp) / "core"), clock_ms=lambda: 1)
        runner.start()
        await runner.submit(AddAsset(asset="EUR", decimals=2))

        async def exists(_: int) -> bool:
            return True

        service = BankDeposits(
            config=demo_fiat(),
            store=SqlFiatStore(db),
            reader=Camt053Reader(),
            bus=None,
            audit=AuditLog(SqlAuditStore(db), SystemClock()),
            clock=SystemClock(),
            decimals_of=runner.jcore.core.assets.get,
            user_exists=exists,
        )
        repo = SqlUserRepository(db)
        refs = []
        for n in range(users):
            user = await repo.add(email=f"b{n}@example.com", password_hash="x", created_at_ms=1)
            assert user is not None
            refs.append(await service.reference_for(user.id))
        items = [
            Entry(
                f"{10 + i % 90}.{i % 100:02d}",
                ustrd=[] if i % 20 == 0 else [refs[i % users]],
                ref=f"E-{i}",
            )
            for i in range(entries)
        ]
        data = camt053(items)
        t0 = time.perf_counter()
        Camt053Reader().read(data)
        parse_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = await service.import_statement(data, CLI_ACTOR)
        import_s = time.perf_counter() - t0

        class Bus:
            available = True

            async def submit(self, cmd: Any) -> Any:
                return await runner.submit(cmd)

        crediting = BankDeposits(
            config=demo_fiat(),
            store=SqlFiatStore(db),
            reader=Camt053Reader(),
            bus=Bus(),
            audit=AuditLog(SqlAuditStore(db), SystemClock()),
            clock=SystemClock(),
            decimals_of=runner.jcore.core.assets.get,
            user_exists=exists,
        )
        t0 = time.perf_counter()
        credited = 0
        while True:
            n = await crediting.credit_pending(limit=500)
            credited += n
            if n == 0:
                break
        credit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = await service.import_statement(data, CLI_ACTOR)
        reimport_s = time.perf_counter() - t0
        await runner.stop()
        await db.dispose()
    return {
        "entries": entries,
        "bytes": len(data),
        "matched": report.matched,
        "review": report.review,
        "credited": credited,
        "reimport_new": again.new,
        "parse_s": round(parse_s, 3),
        "parse_entries_per_s": round(entries / parse_s),
        "import_s": round(import_s, 3),
        "import_lines_per_s": round(entries / import_s),
        "credit_s": round(credit_s, 3),
        "credits_per_s": round(credited / credit_s),
        "reimport_s": round(reimport_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args()
    result = asyncio.run(run(args.entries, args.users))
    out = {
        "benchmark": "fiat_import",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "result": result,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
