"""The SQL deposit-history store on SQLite and PostgreSQL: rows of the three tables
(many sharing a millisecond, card ids of mixed case) paged by cursor list each of a
user's deposits once and no one else's; confirmations come from the stored tip; the
watcher's store stamps when a deposit was seen and when it was credited."""

from __future__ import annotations

import pytest

from tradewind.adapters.sql import Database
from tradewind.adapters.sql.chain_watch import ChainDepositRow, SqlWatcherStore
from tradewind.adapters.sql.deposit_history import SqlDepositHistoryStore
from tradewind.adapters.sql.fiat import CardIntentRow, FiatLineRow
from tradewind.services.funding.chain_ports import ChainDeposit, WatchedBlock
from tradewind.services.funding.defaults import demo_networks
from tradewind.services.funding.deposit_history import DepositFilter, DepositHistory

async_test = pytest.mark.asyncio


def _line(i: int, user: int | None, at: int, status: str = "credited") -> FiatLineRow:
    return FiatLineRow(
        ref=f"camt:DE89:{i}", account_iban="DE89", entry_ref=f"E-{i}", currency="EUR",
        amount_text="1.00", amount=100, user_id=user, status=status, reason=None,
        remittance="", line_no=i, imported_at_ms=at,
    )  # fmt: skip


def _card(pid: str, user: int, at: int) -> CardIntentRow:
    return CardIntentRow(
        id=pid, user_id=user, currency="EUR", amount=500, processor_amount=500,
        status="created", created_at_ms=at, updated_at_ms=at,
    )  # fmt: skip


@async_test
async def test_pages_of_the_three_tables_list_each_deposit_once(db: Database) -> None:
    ticks = iter(range(1_000, 10_000))
    watch = SqlWatcherStore(db, clock_ms=lambda: 5_000)  # every deposit seen at 5_000
    deposits = [
        ChainDeposit("ethereum", f"0x{i:02x}", -1, 7, "ETH", 10**18, 10**8, 40, "0xb40", "pending")
        for i in range(5)
    ] + [ChainDeposit("ethereum", "0xff", -1, 8, "ETH", 10**18, 10**8, 40, "0xb40", "pending")]
    await watch.record_block("ethereum", WatchedBlock(40, "0xb40"), deposits, keep=100)
    await watch.record_block("ethereum", WatchedBlock(41, "0xb41"), [], keep=100)
    async with db.write() as session:
        session.add_all(
            [_line(i, 7, 5_000) for i in range(1, 4)] + [_line(9, None, 5_000, "review")]
        )
        session.add_all([_card(p, 7, 5_000) for p in ("pi_a", "pi_B", "pi_c", "Pi_d")])
        session.add(_card("pi_other", 8, 5_000))
    h = DepositHistory(SqlDepositHistoryStore(db), demo_networks(), {"EUR": 2})

    seen: list[str] = []
    cursor = None
    for _ in range(40):
        page = await h.page(DepositFilter(user_id=7), limit=2, cursor=cursor)
        seen.extend(v.id for v in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    whole = await h.page(DepositFilter(user_id=7), limit=100, cursor=None)
    assert seen == [v.id for v in whole.items]
    assert len(seen) == len(set(seen)) == 12
    assert not any(s in seen for s in ("chain:ethereum:0xff:-1", "card:pi_other", "bank:4"))

    one = await h.get("chain:ethereum:0x01:-1", user_id=7)
    assert (one.confirmations, one.confirmations_required) == (2, 12)
    assert (one.created_at_ms, one.updated_at_ms) == (5_000, 5_000)

    staff = await h.page(DepositFilter(network="bank"), limit=100, cursor=None, staff=True)
    assert {v.user_id for v in staff.items} == {7, None}

    later = SqlWatcherStore(db, clock_ms=lambda: next(ticks))
    await later.finish("ethereum", "0x01", -1, "credited", seq=3)
    async with db.read() as session:
        row = await session.get(ChainDepositRow, ("ethereum", "0x01", -1))
        assert row is not None and (row.seen_at_ms, row.updated_at_ms) == (5_000, 1_000)
    credited = await h.page(
        DepositFilter(user_id=7, statuses=("credited",), network="ethereum"), limit=10, cursor=None
    )
    assert [v.id for v in credited.items] == ["chain:ethereum:0x01:-1"]
