"""The margin projector on SQLite and PostgreSQL: one history row per margin event,
idempotent by seq, resuming after its offset, holes refused; the notices it records
are mailed exactly once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit import helpers
from tests.unit.helpers import SYM
from tests.unit.margin_setup import long_position, margin_market, mark
from tradewind.adapters.sql import Database
from tradewind.adapters.sql.margin import SqlMarginStore
from tradewind.core.events import Event
from tradewind.services.mail import Mail
from tradewind.services.margin import HISTORY_KINDS
from tradewind.services.projectors.base import SeqGap
from tradewind.services.projectors.margin import MarginProjector, record_of
from tradewind.services.projectors.ports import Batch

pytestmark = pytest.mark.asyncio


def margin_session(monkeypatch: pytest.MonkeyPatch) -> list[Batch]:
    """Every command's events of: the standard margin market, user 1's long (borrow,
    order), an hour of interest, a margin call at 92, and the liquidation at 88 (no bid:
    the insurance fund takes the wallet over)."""
    batches: list[Batch] = []
    original = helpers.Exchange.do

    def recording(self: helpers.Exchange, cmd: Any, ts: int | None = None) -> list[Event]:
        events = original(self, cmd, ts)
        batches.append(Batch(self.seq, self.ts, events))
        return events

    monkeypatch.setattr(helpers.Exchange, "do", recording)
    ex = margin_market()
    long_position(ex)
    ex.ok({"op": "tick"}, ts=ex.ts + 3_600_000)
    mark(ex, 92)
    mark(ex, 88)
    return batches


def margin_events(batches: list[Batch]) -> list[str]:
    return [
        r.kind
        for b in batches
        for i, e in enumerate(b.events)
        if (r := record_of(b.seq, i, b.ts, e)) is not None
    ]


async def test_history_rows_once_per_event_resuming_after_the_offset(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = margin_session(monkeypatch)
    store = SqlMarginStore(db)
    projector = MarginProjector(store)
    half = len(batches) // 2
    assert await projector.apply(batches[:half]) == batches[half - 1].seq
    with pytest.raises(SeqGap):
        await projector.apply(batches[half + 1 :])  # a hole: nothing written
    assert await projector.offset() == batches[half - 1].seq
    assert await projector.apply(batches) == batches[-1].seq  # re-fed head skipped
    assert await projector.apply(batches) == batches[-1].seq  # all again: no-op

    expected = margin_events(batches)
    got: list[str] = []
    for kinds in HISTORY_KINDS.values():
        page = await store.list_records(1, kinds, limit=1000)
        got += [r.kind for r in page.items]
    assert sorted(got) == sorted(expected)
    assert expected.count("interest") == 1 and expected.count("margin_call") == 1
    assert "liquidation_finished" in expected

    ((wid, kind, symbol),) = await store.wallets_of(1)
    assert (kind, symbol) == ("isolated", SYM) and wid < 0
    assert await store.wallets_of(2) == []

    loans = await store.list_records(1, HISTORY_KINDS["loans"], limit=1)
    assert loans.next_cursor is not None
    rest = await store.list_records(1, HISTORY_KINDS["loans"], before=loans.next_cursor)
    assert [r.kind for r in loans.items + rest.items] == ["repay", "borrow"]
    repaid = loans.items[0]
    assert repaid.data["reason"] == "insurance" and repaid.symbol == SYM
    interest = (await store.list_records(1, HISTORY_KINDS["interest"], asset="USDT")).items
    assert interest[0].amount == 1 and interest[0].data["hours"] == 1  # ceil(0.004)

    notices = await store.pending_notices()
    assert [n.kind for n in notices] == ["margin_call", "liquidation_finished"]
    mail = Mail(to="u@example.com", subject="s", body="b", kind="margin_notice", user_id=None)
    assert await store.mail_notice(notices[0].id, mail, 1) is True
    assert await store.mail_notice(notices[0].id, mail, 2) is False  # once only
    assert await store.mail_notice(notices[1].id, None, 3) is True
    assert await store.pending_notices() == []


async def test_lazy_offset_skips_transactions_without_margin_events_and_loses_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded exchange's margin projector (``lazy_offset``): commands without a
    margin event move the offset in memory (stored every ``N`` commands or with the next
    margin event); a restart resumes from the stored offset and writes each row once."""
    session = margin_session(monkeypatch)
    # spot-only commands (no margin event) before, between and after the margin steps
    last = session[-1]
    quiet = [Batch(last.seq + i, last.ts, []) for i in range(1, 26)]
    batches = session + quiet
    store = SqlMarginStore(db)
    writes = 0
    real = store.transaction

    def counting(name: str) -> Any:
        nonlocal writes
        writes += 1
        return real(name)

    monkeypatch.setattr(store, "transaction", counting)
    projector = MarginProjector(store, lazy_offset=10)
    assert await projector.offset() == 0
    for b in batches:
        assert await projector.apply([b]) == b.seq
    assert await projector.offset() == batches[-1].seq  # in memory
    margin_batches = sum(1 for b in session if margin_events([b]) or _opens_wallet(b))
    assert writes < margin_batches + len(batches) // 10 + 2 < len(batches)
    stored = await store.offset("margin")
    assert batches[-1].seq - 10 < stored <= batches[-1].seq

    # a restart: a new projector resumes at the stored offset and re-feeding writes nothing
    again = MarginProjector(store, lazy_offset=10)
    assert await again.offset() == stored
    assert await again.apply(batches) == batches[-1].seq
    got: list[str] = []
    for kinds in HISTORY_KINDS.values():
        page = await store.list_records(1, kinds, limit=1000)
        got += [r.kind for r in page.items]
    assert sorted(got) == sorted(margin_events(batches))
    with pytest.raises(SeqGap):
        await again.apply([Batch(batches[-1].seq + 2, last.ts, [])])


def _opens_wallet(b: Batch) -> bool:
    return any(type(e).__name__ == "MarginWalletOpened" for e in b.events)
