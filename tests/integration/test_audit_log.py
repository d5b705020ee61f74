"""The audit log on SQLite and PostgreSQL, attacked as an insider with database access
would: edit an entry, delete one, rewrite the tail; each time ``verify`` names the first
bad entry. Also: concurrent appenders (two API replicas) never fork the chain, and the
table refuses UPDATE outright."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from tests.fakes import FakeClock
from tradewind.adapters.sql.audit import SqlAuditStore
from tradewind.adapters.sql.engine import Database
from tradewind.adapters.sql.migrate import upgrade_async
from tradewind.runtime.admin_cli import verify_audit
from tradewind.runtime.config import load_settings
from tradewind.services.audit import GENESIS, AuditLog


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    # a fresh database each: the tamper tests drop the append-only trigger
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


async def open_log(url: str) -> tuple[Database, AuditLog]:
    await upgrade_async(url)
    db = Database.from_url(url)
    return db, AuditLog(SqlAuditStore(db), FakeClock())


async def fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        await log.record(
            "admin.freeze", actor_id=1, actor_role="admin", subject_id=100 + i, details={"i": i}
        )


async def execute(db: Database, sql: str) -> None:
    async with db.write() as session:
        await session.execute(sa.text(sql))


async def drop_trigger(db: Database) -> None:
    await execute(
        db, "DROP TRIGGER audit_log_no_update" + (" ON audit_log" if db_is_pg(db) else "")
    )


def db_is_pg(db: Database) -> bool:
    return db.engine.dialect.name == "postgresql"


@pytest.mark.asyncio
async def test_an_intact_chain_verifies_and_links(url: str) -> None:
    db, log = await open_log(url)
    try:
        assert (await log.verify()).ok
        await fill(log, 5)
        entries = [e async for e in log.entries(chunk=2)]
        assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
        assert entries[0].prev_hash == GENESIS
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
        result = await log.verify()
        assert result.ok and result.entries == 5 and result.head_hash == entries[-1].hash
        assert (await log.verify(expect_head=f"5:{entries[-1].hash}")).ok
        assert (await log.verify(expect_head=entries[2].hash)).ok  # an older anchor
    finally:
        await db.dispose()


@pytest.mark.asyncio
async def test_update_is_refused_by_the_database(url: str) -> None:
    db, log = await open_log(url)
    try:
        await fill(log, 2)
        with pytest.raises(DBAPIError, match="append-only"):
            await execute(db, "UPDATE audit_log SET details = '{}' WHERE seq = 1")
    finally:
        await db.dispose()


@pytest.mark.asyncio
async def test_an_edited_entry_is_named(url: str) -> None:
    db, log = await open_log(url)
    try:
        await fill(log, 6)
        await drop_trigger(db)
        await execute(db, "UPDATE audit_log SET details = '{}' WHERE seq = 3")
        result = await log.verify()
        assert not result.ok
        assert result.first_bad_seq == 3
        assert result.reason is not None and "altered" in result.reason
        assert result.head_seq == 2  # the last good entry
    finally:
        await db.dispose()


@pytest.mark.asyncio
async def test_a_deleted_entry_is_named(url: str) -> None:
    db, log = await open_log(url)
    try:
        await fill(log, 6)
        await execute(db, "DELETE FROM audit_log WHERE seq = 4")
        result = await log.verify()
        assert not result.ok and result.first_bad_seq == 5
        assert result.reason is not None and "removed" in result.reason
    finally:
        await db.dispose()


@pytest.mark.asyncio
async def test_a_rewritten_tail_is_caught_by_the_recorded_head(url: str) -> None:
    """An attacker who deletes the last entries and appends forged ones with correct
    hashes passes the chain check; the head kept elsewhere exposes it."""
    db, log = await open_log(url)
    try:
        await fill(log, 4)
        recorded = await log.verify()
        anchor = f"{recorded.head_seq}:{recorded.head_hash}"
        await execute(db, "DELETE FROM audit_log WHERE seq >= 3")
        await log.record("admin.user_viewed", actor_id=1, actor_role="admin", subject_id=7)
        await log.record("admin.user_viewed", actor_id=1, actor_role="admin", subject_id=7)
        assert (await log.verify()).ok  # the chain itself is consistent again
        result = await log.verify(expect_head=anchor)
        assert not result.ok and result.first_bad_seq == 4
        assert result.reason is not None and "not in the chain" in result.reason
    finally:
        await db.dispose()


@pytest.mark.asyncio
async def test_concurrent_appenders_never_fork_the_chain(url: str) -> None:
    await upgrade_async(url)
    dbs = [Database.from_url(url), Database.from_url(url)]
    logs = [AuditLog(SqlAuditStore(db), FakeClock()) for db in dbs]
    try:
        await asyncio.gather(*(logs[i % 2].record("api_key.create", actor_id=i) for i in range(40)))
        result = await logs[0].verify()
        assert result.ok and result.entries == 40
        actors = sorted([e.actor_id async for e in logs[1].entries()])  # type: ignore[type-var]
        assert actors == list(range(40))
    finally:
        for db in dbs:
            await db.dispose()


def test_the_command_line_names_the_first_bad_entry(tmp_path: Path) -> None:
    """``tradewind audit verify``: exit 0 with the head to keep; after tampering, exit 1
    naming the entry; with a recorded head, a rewritten tail is caught too."""
    settings = load_settings(None, environ={}, overrides={"data_dir": tmp_path})
    url = settings.resolved_database_url

    async def scenario() -> list[tuple[int, str]]:
        out = []
        db, log = await open_log(url)
        try:
            await fill(log, 3)
            out.append(await verify_audit(settings, None, as_json=False))
            head = (await log.verify()).head_hash
            await drop_trigger(db)
            await execute(db, "UPDATE audit_log SET ip = '10.6.6.6' WHERE seq = 2")
            out.append(await verify_audit(settings, None, as_json=False))
            out.append(await verify_audit(settings, f"3:{head}", as_json=True))
        finally:
            await db.dispose()
        return out

    ok, tampered, anchored = asyncio.run(scenario())
    assert ok[0] == 0 and ok[1].startswith("audit log OK: 3 entries; head 3:")
    assert tampered[0] == 1
    assert "first bad entry is seq 2" in tampered[1] and "altered" in tampered[1]
    assert anchored[0] == 1 and json.loads(anchored[1])["first_bad_seq"] == 2
