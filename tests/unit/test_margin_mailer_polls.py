"""The margin mailer where this process stores every notice (embedded): it reads the
store on its first pass, then only after the projector stored new notices or when a
pass left a full page behind; without the counter it reads every poll."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.fakes import FakeClock
from tradewind.services.margin_notices import NOTICE_PAGE, MarginMailer


class Store:
    def __init__(self) -> None:
        self.reads = 0
        self.pending = 0

    async def pending_notices(self, limit: int = 100) -> list[Any]:
        self.reads += 1
        return [Record()] * min(limit, self.pending)

    async def mail_notice(self, record_id: int, mail: Any, at_ms: int) -> bool:
        self.pending = max(0, self.pending - 1)
        return False

    async def user_of(self, record_id: int) -> int | None:
        return None


class Record:
    id = 1


async def _ticks(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0.002)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _mailer(store: Store, notices: Any = None) -> MarginMailer:
    return MarginMailer(
        store,  # type: ignore[arg-type]
        identity=None,  # type: ignore[arg-type]
        clock=FakeClock(),
        amount=lambda a, m: str(m),
        poll_s=0.001,
        notices=notices,
    )


@pytest.mark.asyncio
async def test_polls_the_store_only_after_new_notices() -> None:
    store = Store()
    written = [0]
    task = asyncio.create_task(_mailer(store, lambda: written[0]).run())
    await _ticks(20)
    assert store.reads == 1  # the first pass only
    written[0] += 1  # the projector stored a notice
    await _ticks(20)
    assert store.reads == 2
    await _stop(task)

    ungated = asyncio.create_task(_mailer(store).run())
    await _ticks(20)
    await _stop(ungated)
    assert store.reads > 6


@pytest.mark.asyncio
async def test_a_full_page_is_followed_by_another_pass() -> None:
    store = Store()
    store.pending = NOTICE_PAGE + 1
    task = asyncio.create_task(_mailer(store, lambda: 0).run())
    await _ticks(30)
    await _stop(task)
    assert store.reads == 2 and store.pending == 0
