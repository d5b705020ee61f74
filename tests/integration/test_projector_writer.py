"""The projectors on their own thread (embedded mode on SQLite) write exactly what the
async store writes: same rows, offsets and ledger sums, and read-your-writes waits end
once the writer thread has committed."""

from __future__ import annotations

import asyncio
import random
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
