"""Bank deposits by reference on SQLite and PostgreSQL with a journaled core: a
statement credits each matched line once (re-imports and overlapping statements add
nothing), everything doubtful waits in the review queue until a person assigns or
returns it, a bad file changes nothing, and a crash between the core's credit and the
SQL record ends with one credit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa

from tests.support.camt import Entry, camt053
from tradewind.adapters.banks.camt053 import Camt053Reader
from tradewind.adapters.local import SystemClock
from tradewind.adapters.sql import Database, SqlUserRepository
from tradewind.adapters.sql.admin import SqlAdminStore
from tradewind.adapters.sql.audit import SqlAuditStore
from tradewind.adapters.sql.fiat import FiatLineRow, SqlFiatStore
from tradewind.core.commands import AddAsset, AnyCommand
from tradewind.journal.recovery import JournaledCore
from tradewind.runtime.sequencer import Applied, CoreRunner
from tradewind.services.admin import CLI_ACTOR, Actor, RoleRequired, UserNotFound
from tradewind.services.audit import AuditLog
from tradewind.services.fiat.bank_deposits import (
    BankDeposits,
    LineNotCreditable,
    LineNotInReview,
    UnknownAccount,
)
from tradewind.services.fiat.config import demo_fiat
from tradewind.services.fiat.ports import StatementError

pytestmark = pytest.mark.asyncio
COMPLIANCE = Actor(None, "compliance", "127.0.0.1")
SUPPORT = Actor(None, "support", "127.0.0.1")


class Killed(Exception):
    """The process died between the core's answer and the SQL record."""


class RunnerBus:
    def __init__(self, runner: CoreRunner) -> None:
        self.runner = runner
        self.crash_after_apply = False

    @property
    def available(self) -> bool:
        return self.runner.running

    async def submit(self, cmd: AnyCommand) -> Applied:
        applied = await self.runner.submit(cmd)
        if self.crash_after_apply:
            raise Killed("killed after the core applied the credit")
        return applied


@dataclass
class Rails:
    db: Database
    runner: CoreRunner
    bus: RunnerBus
    service: BankDeposits
    audit: AuditLog

    def balance(self, user: int) -> int:
        return self.runner.jcore.core.available(user, "EUR")

    async def user(self, n: int) -> int:
        u = await SqlUserRepository(self.db).add(
            email=f"f{n}-{time.monotonic_ns()}@example.com", password_hash="x", created_at_ms=1
        )
        assert u is not None
        return u.id

    def build(self, bus: RunnerBus | None) -> BankDeposits:
        admin = SqlAdminStore(self.db)

        async def user_exists(user_id: int) -> bool:
            return await admin.get_user(user_id) is not None

        return BankDeposits(
            config=demo_fiat(),
            store=SqlFiatStore(self.db),
            reader=Camt053Reader(),
            bus=bus,
            audit=self.audit,
            clock=SystemClock(),
            decimals_of=self.runner.jcore.core.assets.get,
            user_exists=user_exists,
        )

    async def lines(self) -> dict[str, FiatLineRow]:
        async with self.db.read() as session:
            rows = (await session.scalars(sa.select(FiatLineRow))).all()
            return {r.entry_ref: r for r in rows}


@pytest_asyncio.fixture
async def rails(db: Database, tmp_path: Path) -> AsyncIterator[Rails]:
    runner = CoreRunner(JournaledCore(tmp_path / "core"), clock_ms=lambda: 1_000)
    runner.start()
    await runner.submit(AddAsset(asset="EUR", decimals=2))
    bus = RunnerBus(runner)
    r = Rails(db, runner, bus, None, AuditLog(SqlAuditStore(db), SystemClock()))  # type: ignore[arg-type]
    r.service = r.build(bus)
    try:
        yield r
    finally:
        await runner.stop()


async def test_each_user_has_one_stable_reference(rails: Rails) -> None:
    alice, bob = await rails.user(1), await rails.user(2)
    first = await rails.service.instructions(alice, "EUR")
    assert first.iban == "DE89370400440532013000" and first.reference.startswith("RF")
    racing = await asyncio.gather(*(rails.service.reference_for(bob) for _ in range(8)))
    assert len(set(racing)) == 1 and racing[0] != first.reference
    assert (await rails.service.instructions(alice, "EUR")).reference == first.reference


async def test_a_statement_credits_matched_lines_once_and_queues_the_rest(rails: Rails) -> None:
    alice, bob = await rails.user(1), await rails.user(2)
    ra = await rails.service.reference_for(alice)
    rb = await rails.service.reference_for(bob)
    typo = ra[:-1] + str((int(ra[-1]) + 1) % 10)
    entries = [
        Entry("100.50", ustrd=[f"deposit {ra[:4]} {ra[4:]}".lower()], ref="E-1"),
        Entry("7", strd_ref=rb, ref="E-2"),
        Entry("5.00", ustrd=[f"ref {typo}"], ref="E-3"),
        Entry("6.00", ustrd=["for my account"], ref="E-4"),
        Entry("8.00", ustrd=[ra], currency="USD", ref="E-5"),
        Entry("1.005", ustrd=[ra], ref="E-6"),
        Entry("9.00", ustrd=[ra, rb], ref="E-7"),
        Entry("3.00", ustrd=["RF18539007547034"], ref="E-8"),  # valid, nobody's
        Entry("50.00", indicator="DBIT", ref="E-9"),
    ]
    data = camt053(entries)
    report = await rails.service.import_statement(data, COMPLIANCE)
    assert (report.lines, report.new, report.matched, report.review) == (8, 8, 2, 6)
    assert (report.credited, report.skipped) == (2, 1)
    assert rails.balance(alice) == 10_050 and rails.balance(bob) == 700
    lines = await rails.lines()
    assert {k: (v.status, v.reason) for k, v in lines.items()} == {
        "E-1": ("credited", None),
        "E-2": ("credited", None),
        "E-3": ("review", "reference_check_failed"),
        "E-4": ("review", "no_reference"),
        "E-5": ("review", "wrong_currency"),
        "E-6": ("review", "too_many_decimals"),
        "E-7": ("review", "ambiguous_reference"),
        "E-8": ("review", "unknown_reference"),
    }
    assert lines["E-1"].credited_seq is not None and lines["E-1"].amount == 10_050
    assert lines["E-5"].user_id == alice  # shown to the reviewer, not credited

    again = await rails.service.import_statement(data, COMPLIANCE)
    assert (again.new, again.already_imported, again.credited) == (0, 8, 0)
    overlapping = camt053(
        [entries[0], Entry("1.00", ustrd=[rb], ref="E-10")], message_id="M2", statement_id="S-2"
    )
    more = await rails.service.import_statement(overlapping, COMPLIANCE)
    assert (more.new, more.already_imported, more.credited) == (1, 1, 1)
    assert rails.balance(alice) == 10_050 and rails.balance(bob) == 800
    entries_ = [e.action async for e in rails.audit.entries()]
    assert entries_.count("fiat.statement_imported") == 3


async def test_review_lines_are_assigned_or_returned_once_by_compliance(rails: Rails) -> None:
    alice, carol = await rails.user(1), await rails.user(3)
    ra = await rails.service.reference_for(alice)
    data = camt053(
        [
            Entry("6.00", ustrd=["from carol, forgot the reference"], ref="R-1"),
            Entry("5.00", ustrd=["typo"], ref="R-2"),
            Entry("8.00", ustrd=[ra], currency="USD", ref="R-3"),
        ]
    )
    await rails.service.import_statement(data, COMPLIANCE)
    queue = await rails.service.list_lines(SUPPORT, status="review", limit=10)
    ids = {line.entry_ref: line.id for line in queue}
    assert set(ids) == {"R-1", "R-2", "R-3"}

    with pytest.raises(RoleRequired):
        await rails.service.assign(SUPPORT, ids["R-1"], carol, "support cannot credit")
    with pytest.raises(UserNotFound):
        await rails.service.assign(COMPLIANCE, ids["R-1"], 10**9, "no such user")
    with pytest.raises(LineNotCreditable):
        await rails.service.assign(COMPLIANCE, ids["R-3"], alice, "USD is not fiat here")
    line = await rails.service.assign(COMPLIANCE, ids["R-1"], carol, "carol called us")
    assert line.status == "credited" and line.user_id == carol and line.note == "carol called us"
    assert rails.balance(carol) == 600
    with pytest.raises(LineNotInReview):
        await rails.service.assign(COMPLIANCE, ids["R-1"], carol, "twice")
    returned = await rails.service.return_line(COMPLIANCE, ids["R-2"], "payer unknown")
    assert returned.status == "returned"
    with pytest.raises(LineNotInReview):
        await rails.service.assign(COMPLIANCE, ids["R-2"], carol, "too late")
    assert rails.balance(carol) == 600 and rails.balance(alice) == 0
    actions = [e.action async for e in rails.audit.entries()]
    assert "fiat.line_assigned" in actions and "fiat.line_returned" in actions
    assert "admin.denied" in actions


async def test_a_bad_file_changes_nothing(rails: Rails) -> None:
    alice = await rails.user(1)
    ra = await rails.service.reference_for(alice)
    good = Entry("10.00", ustrd=[ra], ref="G-1")
    bad = camt053([good, Entry("12,50", ustrd=[ra], ref="G-2")])
    with pytest.raises(StatementError, match=r"Ntry\[2\]/Amt"):
        await rails.service.import_statement(bad, COMPLIANCE)
    other = camt053([good], iban="GB29NWBK60161331926819")
    with pytest.raises(UnknownAccount, match="GB29NWBK60161331926819"):
        await rails.service.import_statement(other, COMPLIANCE)
    assert await rails.lines() == {} and rails.balance(alice) == 0
    actions = [e.action async for e in rails.audit.entries()]
    assert actions.count("fiat.statement_refused") == 2


async def test_a_crash_after_the_core_credit_ends_with_one_credit(rails: Rails) -> None:
    alice = await rails.user(1)
    ra = await rails.service.reference_for(alice)
    data = camt053([Entry("25.00", ustrd=[ra], ref="C-1")])
    # the command line stores the lines; it has no core
    stored = await rails.build(None).import_statement(data, CLI_ACTOR)
    assert (stored.matched, stored.credited) == (1, 0) and rails.balance(alice) == 0
    rails.bus.crash_after_apply = True
    with pytest.raises(Killed):
        await rails.service.credit_pending()
    assert rails.balance(alice) == 2_500  # the core applied it...
    assert (await rails.lines())["C-1"].status == "matched"  # ...the record did not follow
    rails.bus.crash_after_apply = False
    assert await rails.service.credit_pending() == 0  # the core says: credited before
    line = (await rails.lines())["C-1"]
    assert (line.status, line.reason) == ("credited", "credited_before")
    assert rails.balance(alice) == 2_500
