"""Deposit history reads on SQLite: ``--rows`` chain deposits, a quarter as many bank
lines and card payments spread over ``--users`` users, then pages of 50 read through
the service (the three queries, the merge, confirmations from the stored tip): a user's
first page, a user's pages to the end by cursor, and the staff's first page filtered by
status. Nothing is written on the read path.

Writes bench/results/deposit_history.json with the machine (runtime.benchmark.machine_info).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tradewind.runtime.benchmark import machine_info

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
OUT = Path(__file__).resolve().parent / "results" / "deposit_history.json"


def _ms(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "p50_ms": round(statistics.median(s) * 1000, 2),
        "p90_ms": round(s[int(len(s) * 0.9) - 1] * 1000, 2),
    }


async def run(rows: int, users: int, reads: int) -> dict[str, Any]:
    from tradewind.adapters.sql import Database
    from tradewind.adapters.sql.chain_watch import ChainBlockRow, ChainDepositRow
    from tradewind.adapters.sql.deposit_history import SqlDepositHistoryStore
    from tradewind.adapters.sql.fiat import CardIntentRow, FiatLineRow
    from tradewind.adapters.sql.migrate import upgrade_async
    from tradewind.services.funding.defaults import demo_networks
    from tradewind.services.funding.deposit_history import DepositFilter, DepositHistory

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/tw.db"
        await upgrade_async(url)
        db = Database.from_url(url)
        async with db.write() as session:
            session.add(ChainBlockRow(network="ethereum", number=rows + 10, hash="0xtip"))
            for i in range(rows):
                session.add(
                    ChainDepositRow(
                        network="ethereum", txid=f"0x{i:064x}", idx=-1, user_id=1 + i % users,
                        asset="ETH", chain_amount=str(10**18), amount=10**8, block_number=i,
                        block_hash="0xb", status="credited" if i % 10 else "pending",
                        seen_at_ms=1_000_000 + i, updated_at_ms=1_000_000 + i,
                    )
                )  # fmt: skip
            for i in range(rows // 4):
                session.add(
                    FiatLineRow(
                        ref=f"camt:DE:{i}", account_iban="DE", entry_ref=f"E{i}", currency="EUR",
                        amount_text="1.00", amount=100, user_id=1 + i % users, status="credited",
                        reason=None, remittance="", line_no=i, imported_at_ms=1_000_000 + 4 * i,
                    )
                )  # fmt: skip
                session.add(
                    CardIntentRow(
                        id=f"pi_{i}", user_id=1 + i % users, currency="EUR", amount=100,
                        processor_amount=100, status="credited", created_at_ms=1_000_000 + 4 * i,
                        updated_at_ms=1_000_000 + 4 * i,
                    )
                )  # fmt: skip
        history = DepositHistory(SqlDepositHistoryStore(db), demo_networks(), {"EUR": 2})

        first: list[float] = []
        for n in range(reads):
            t0 = time.perf_counter()
            page = await history.page(DepositFilter(user_id=1 + n % users), limit=50, cursor=None)
            first.append(time.perf_counter() - t0)
            assert len(page.items) == 50

        walk: list[float] = []
        cursor = None
        count = 0
        while True:
            t0 = time.perf_counter()
            page = await history.page(DepositFilter(user_id=2), limit=50, cursor=cursor)
            walk.append(time.perf_counter() - t0)
            count += len(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break

        staff: list[float] = []
        for _ in range(reads):
            t0 = time.perf_counter()
            await history.page(
                DepositFilter(statuses=("pending",)), limit=50, cursor=None, staff=True
            )
            staff.append(time.perf_counter() - t0)
        await db.dispose()
    per_user = (rows + rows // 2) // users
    return {
        "chain_rows": rows,
        "bank_rows": rows // 4,
        "card_rows": rows // 4,
        "users": users,
        "deposits_per_user": per_user,
        "user_first_page": _ms(first),
        "user_walk_pages": len(walk),
        "user_walk_rows": count,
        "user_walk_page": _ms(walk),
        "staff_pending_first_page": _ms(staff),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--reads", type=int, default=50)
    args = parser.parse_args()
    result = asyncio.run(run(args.rows, args.users, args.reads))
    out = {
        "benchmark": "deposit_history",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "result": result,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
