"""The projectors on their own thread (embedded mode on SQLite) write exactly what the
async store writes: same rows, offsets and ledger sums, and read-your-writes waits end
once the writer thread has committed."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

import pytest

from tests.integration.test_projectors import (
    LEDGER_N,
    LEDGER_SEED,
    assert_projections_match_core,
    chunks,
    dump,
    projectors,
    reference_dump,
    session,
    sqlite_database,
)
from tradewind.adapters.sql.projection_writer import ThreadProjectionStore
from tradewind.adapters.sql.projector_offsets import OffsetWentBackwards
from tradewind.services.projectors.ports import LedgerEntry, OrderHold, OrderState
from tradewind.services.projectors.writer_thread import WriterThread


@pytest.mark.asyncio
async def test_writer_thread_projects_the_same_ledger_orders_and_trades(tmp_path: Path) -> None:
    s = session(LEDGER_SEED, LEDGER_N, big=True)
    expected = await reference_dump(tmp_path, s)
    path = tmp_path / "threaded.db"
    async with sqlite_database(path) as db:
        writer = WriterThread()
        store = ThreadProjectionStore(f"sqlite+aiosqlite:///{path}")
        try:
            runner = projectors(store)
            runner.writer = writer
            for chunk in chunks(s.batches, random.Random(2)):
                await runner.apply_batches(chunk)
            assert await runner.offsets() == dict.fromkeys(
                ("ledger", "orders", "trades"), s.batches[-1].seq
            )
        finally:
            await writer.run(_dispose(store))
            writer.close()
        assert await dump(db) == expected
        await assert_projections_match_core(db, s)


@pytest.mark.asyncio
async def test_background_feeding_wakes_a_read_your_writes_waiter(tmp_path: Path) -> None:
    s = session(11, 300)
    path = tmp_path / "threaded.db"
    async with sqlite_database(path) as db:
        writer = WriterThread()
        store = ThreadProjectionStore(f"sqlite+aiosqlite:///{path}")
        runner = projectors(store)
        runner.writer = writer
        runner.linger_s = 5.0  # only a waiter can cut the gathering short
        await runner.offsets()
        runner.start()
        try:
            for batch in s.batches:
                runner.publish(batch.seq, batch.ts, list(batch.events))
            await asyncio.wait_for(runner.wait_for(s.batches[-1].seq), 4.0)
            await assert_projections_match_core(db, s)
        finally:
            await runner.stop()
            await writer.run(_dispose(store))
            writer.close()


async def _dispose(store: ThreadProjectionStore) -> None:
    store.dispose()


def _entry(seq: int, amount: int, leg: int = 0) -> LedgerEntry:
    return LedgerEntry(seq, 0, leg, 1_000 + seq, 7, "available", "ETH", amount, "deposit", None)


def _order(oid: int, locked: int) -> OrderState:
    return OrderState(
        oid, 7, "ETH-USDT", "buy", "limit", "GTC", 100, 5, None, None, None, "c-1", "new",
        0, 0, 0, locked, None, 1, 1_000, 1, 1_000,
    )  # fmt: skip


@pytest.mark.asyncio
async def test_writer_store_keeps_big_amounts_exact_and_refuses_too_many_digits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.db"
    async with sqlite_database(path) as db:
        store = ThreadProjectionStore(f"sqlite+aiosqlite:///{path}")
        try:
            big = 10**30 + 1  # a float would round it; 2**63 would overflow an integer
            async with store.transaction("ledger") as tx:
                await tx.add_entries([_entry(1, big), _entry(1, -big, leg=1)])
                await tx.put_orders([_order(5, big)])
                await tx.advance(1, 1_001)
            async with store.transaction("orders") as tx:
                assert (await tx.get_orders([5, 6]))[5].locked == big
            with pytest.raises(ValueError, match="more than 38 digits"):
                async with store.transaction("ledger") as tx:
                    await tx.add_entries([_entry(2, 10**38)])
            assert await store.offset("ledger") == 1
        finally:
            store.dispose()
        rows = await dump(db)
        assert [r[7] for r in rows["ledger_entries"]] == [big, -big]
        assert rows["projector_offsets"] == [("ledger", 1, 1_001)]


@pytest.mark.asyncio
async def test_writer_store_rolls_back_a_failed_transaction_and_offsets_only_move_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.db"
    async with sqlite_database(path) as db:
        store = ThreadProjectionStore(f"sqlite+aiosqlite:///{path}")
        try:
            async with store.transaction("ledger") as tx:
                assert await tx.offset() == 0
                await tx.add_entries([_entry(3, 10), _entry(3, -10, leg=1)])
                await tx.advance(3, 1_003)
            with pytest.raises(OffsetWentBackwards):
                async with store.transaction("ledger") as tx:
                    await tx.add_entries([_entry(2, 5)])
                    await tx.put_holds([OrderHold(9, 7, "ETH", 5)])
                    await tx.advance(2, 1_002)
            async with store.transaction("ledger") as tx:
                assert await tx.offset() == 3
                assert await tx.holds() == []
        finally:
            store.dispose()
        rows = await dump(db)
        assert [r[0] for r in rows["ledger_entries"]] == [3, 3]
        assert rows["ledger_holds"] == []


@pytest.mark.asyncio
async def test_writer_store_connection_belongs_to_the_thread_that_opened_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.db"
    async with sqlite_database(path):
        store = ThreadProjectionStore(f"sqlite+aiosqlite:///{path}")
        try:
            assert await store.offset("trades") == 0
            with pytest.raises(sqlite3.ProgrammingError, match="thread"):
                await asyncio.to_thread(asyncio.run, store.offset("trades"))
        finally:
            store.dispose()


def test_writer_store_needs_a_sqlite_file() -> None:
    with pytest.raises(ValueError, match="not a SQLite database file"):
        ThreadProjectionStore("postgresql+asyncpg://localhost/x")
