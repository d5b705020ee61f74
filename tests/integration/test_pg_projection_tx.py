"""The projectors' writes on PostgreSQL run as SQL text on the transaction's own asyncpg
connection (ADR 0046): amounts stay exact, a refused row or a failure rolls back the
whole transaction, even when a raw write is its first statement. (That they write the
very rows of the SQLAlchemy path: tests/integration/test_projectors.py, on both
backends.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.integration.test_projector_writer import _entry, _order
from tests.integration.test_projectors import dump
from tradewind.adapters.sql.engine import Database
from tradewind.adapters.sql.projections import PgProjectionTx, SqlProjectionStore
from tradewind.services.projectors.ports import OrderHold


@pytest_asyncio.fixture
async def pg(pg_migrated_url: str) -> AsyncIterator[Database]:
    database = Database.from_url(pg_migrated_url)
    try:
        yield database
    finally:
        await database.dispose()


class Boom(Exception):
    pass


@pytest.mark.asyncio
async def test_big_amounts_stay_exact_and_39_digits_are_refused(pg: Database) -> None:
    store = SqlProjectionStore(pg)
    big = 10**37 + 1  # a float would round it; 2**63 would overflow a bigint
    async with store.transaction("ledger") as tx:
        assert isinstance(tx, PgProjectionTx)
        await tx.add_entries([_entry(1, big), _entry(1, -big, leg=1)])
        await tx.put_orders([_order(5, big)])
        await tx.put_holds([OrderHold(5, 7, "USDT", big)])
        await tx.advance(1, 1_001)
    async with store.transaction("orders") as tx:
        assert (await tx.get_orders([5, 6])) == {5: _order(5, big)}
    with pytest.raises(ValueError, match="more than 38 digits"):
        async with store.transaction("ledger") as tx:
            await tx.add_entries([_entry(2, 5)])
            await tx.add_entries([_entry(3, 10**38)])
    assert await store.offset("ledger") == 1
    rows = await dump(pg)
    assert [r[7] for r in rows["ledger_entries"]] == [big, -big]
    assert rows["ledger_holds"] == [(5, 7, "USDT", big)]
    assert rows["projector_offsets"] == [("ledger", 1, 1_001)]


@pytest.mark.asyncio
async def test_a_raw_first_statement_is_inside_the_transaction(pg: Database) -> None:
    store = SqlProjectionStore(pg)
    with pytest.raises(Boom):
        async with store.transaction("orders") as tx:
            await tx.put_orders([_order(5, 10)])  # before any statement of the session
            raise Boom
    async with store.transaction("ledger") as tx:
        await tx.put_holds([OrderHold(5, 7, "USDT", 10), OrderHold(6, 7, "USDT", 20)])
    with pytest.raises(Boom):
        async with store.transaction("ledger") as tx:
            await tx.drop_holds([5, 6])
            raise Boom
    rows = await dump(pg)
    assert rows["orders"] == []
    assert [r[0] for r in rows["ledger_holds"]] == [5, 6]
    async with store.transaction("ledger") as tx:
        await tx.drop_holds([6])
    assert [r[0] for r in (await dump(pg))["ledger_holds"]] == [5]


@pytest.mark.asyncio
async def test_the_api_reads_an_order_as_the_orm_path_does(pg: Database) -> None:
    store = SqlProjectionStore(pg)
    big = 10**37 + 3
    async with store.transaction("orders") as tx:
        await tx.put_orders([_order(5, big), _order(6, 0)])
    orm = SqlProjectionStore(pg, raw_postgres=False)
    for order_id in (5, 6, 7):
        assert await store.get_order(order_id) == await orm.get_order(order_id)
    assert await store.get_order(5) == _order(5, big)
    assert await store.get_order(7) is None
