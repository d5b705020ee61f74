"""The deposit history's rules over an in-memory store: one status vocabulary over
the three sources, confirmations from the stored tip, pages across sources that share
a millisecond listing every deposit once, ids that cannot name another user's deposit,
and precise refusals of bad filters."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import pytest

from tradewind.services.funding.defaults import demo_networks
from tradewind.services.funding.deposit_history import (
    DepositFilter,
    DepositHistory,
    InvalidCursor,
    InvalidStatusFilter,
    Key,
    SourceDeposit,
    SourceQuery,
    UnknownDeposit,
    UnknownNetworkFilter,
    deposit_id,
    parse_deposit_id,
)


def _key_lt(a: Key, b: Key) -> bool:
    """Keys of one source (same shape), compared as the database compares them."""
    return a < b  # type: ignore[operator]


class MemoryStore:
    def __init__(self, rows: list[SourceDeposit], tips: Mapping[str, int]) -> None:
        self.rows = rows
        self._tips = dict(tips)

    def _select(self, kind: str, q: SourceQuery) -> Sequence[SourceDeposit]:
        out = []
        for d in self.rows:
            if d.kind != kind:
                continue
            if q.user_id is not None and d.user_id != q.user_id:
                continue
            if q.asset is not None and d.asset != q.asset:
                continue
            if q.network is not None and d.network != q.network:
                continue
            if q.statuses is not None and d.status not in q.statuses:
                continue
            b = q.before
            if b is not None:
                if b.key is None and not d.at_ms < b.at_ms:
                    continue
                if b.key is not None and not (
                    d.at_ms < b.at_ms or (d.at_ms == b.at_ms and _key_lt(d.key, b.key))
                ):
                    continue
            out.append(d)
        out.sort(key=lambda d: (d.at_ms, d.key), reverse=True)
        return out[: q.limit]

    async def chain_deposits(self, q: SourceQuery) -> Sequence[SourceDeposit]:
        return self._select("chain", q)

    async def bank_deposits(self, q: SourceQuery) -> Sequence[SourceDeposit]:
        return self._select("bank", q)

    async def card_deposits(self, q: SourceQuery) -> Sequence[SourceDeposit]:
        return self._select("card", q)

    def _one(self, kind: str, key: Key) -> SourceDeposit | None:
        return next((d for d in self.rows if d.kind == kind and d.key == key), None)

    async def chain_deposit(self, network: str, txid: str, index: int) -> SourceDeposit | None:
        return self._one("chain", (network, txid, index))

    async def bank_deposit(self, line_id: int) -> SourceDeposit | None:
        return self._one("bank", (line_id,))

    async def card_deposit(self, payment_id: str) -> SourceDeposit | None:
        return self._one("card", (payment_id,))

    async def tips(self) -> Mapping[str, int]:
        return self._tips


def chain(
    txid: str, user: int, at: int, status: str = "pending", block: int = 100
) -> SourceDeposit:
    return SourceDeposit(
        "chain", ("ethereum", txid, -1), user, "ETH", "ethereum", 50_000_000, None, status,
        None, at, at, txid=txid, block_number=block,
    )  # fmt: skip


def bank(line: int, user: int | None, at: int, status: str = "credited") -> SourceDeposit:
    return SourceDeposit(
        "bank", (line,), user, "EUR", "bank", 25_000, "250.00", status,
        "no_reference" if status == "review" else None, at, None, reference=f"E-{line}",
    )  # fmt: skip


def card(pid: str, user: int, at: int, status: str = "created") -> SourceDeposit:
    return SourceDeposit(
        "card", (pid,), user, "EUR", "card", 1_000, None, status, None, at, at, reference=pid
    )


def history(rows: list[SourceDeposit]) -> DepositHistory:
    return DepositHistory(MemoryStore(rows, {"ethereum": 104}), demo_networks(), {"EUR": 2})


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def test_statuses_confirmations_and_amounts() -> None:
    h = history(
        [
            chain("0xa", 1, 10),
            chain("0xb", 1, 11, "orphaned"),
            chain("0xc", 1, 12, "below_minimum"),
            bank(1, 1, 13, "review"),
            bank(2, 1, 14, "return_sent"),
            card("pi_1", 1, 15, "mismatch"),
        ]
    )
    page = run(h.page(DepositFilter(user_id=1), limit=10, cursor=None))
    got = {v.id: v for v in page.items}
    a = got["chain:ethereum:0xa:-1"]
    assert (a.status, a.confirmations, a.confirmations_required) == ("pending", 5, 12)
    assert (a.amount, a.decimals) == (50_000_000, 8)
    assert got["chain:ethereum:0xb:-1"].confirmations == 0
    assert got["chain:ethereum:0xb:-1"].status == "orphaned"
    assert got["chain:ethereum:0xc:-1"].status == "failed"
    assert got["bank:1"].status == "pending" and got["bank:1"].reason == "review"
    assert got["bank:2"].status == "returned" and got["bank:2"].decimals == 2
    assert got["card:pi_1"].status == "failed"
    assert page.items[0].id == "card:pi_1"  # newest first
    staff = run(h.page(DepositFilter(user_id=1), limit=10, cursor=None, staff=True))
    assert {v.id: v for v in staff.items}["bank:1"].reason == "no_reference"

    pending = run(h.page(DepositFilter(statuses=("pending",)), limit=10, cursor=None))
    assert {v.id for v in pending.items} == {"chain:ethereum:0xa:-1", "bank:1"}


def test_pages_across_sources_sharing_a_millisecond_list_each_deposit_once() -> None:
    rows = [chain(f"0x{i}", 7, 50) for i in range(4)]
    rows += [bank(i, 7, 50) for i in range(1, 4)] + [card(f"pi_{i}", 7, 50) for i in range(3)]
    rows += [chain("0xold", 7, 10), bank(9, 7, 60), card("pi_x", 8, 50)]
    h = history(rows)
    seen: list[str] = []
    cursor = None
    for _ in range(30):
        page = run(h.page(DepositFilter(user_id=7), limit=3, cursor=cursor))
        seen.extend(v.id for v in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    whole = run(h.page(DepositFilter(user_id=7), limit=100, cursor=None))
    assert seen == [v.id for v in whole.items]
    assert len(seen) == len(set(seen)) == 12
    assert "card:pi_x" not in seen  # someone else's


def test_ids_name_the_source_and_never_another_users_deposit() -> None:
    h = history([chain("0xa", 1, 10), bank(3, 2, 11), bank(4, None, 12, "review")])
    assert run(h.get("chain:ethereum:0xa:-1", user_id=1)).user_id == 1
    for text, user in [
        ("chain:ethereum:0xa:-1", 2),
        ("bank:3", 1),
        ("bank:4", 1),  # nobody's line: staff only
        ("bank:x", 1),
        ("card:", 1),
        ("chain:ethereum:0xa", 1),
        ("wire:1", 1),
    ]:
        with pytest.raises(UnknownDeposit):
            run(h.get(text, user_id=user))
    assert run(h.get("bank:4", user_id=None)).user_id is None
    key = ("bsc", "0xff", 3)
    assert parse_deposit_id(deposit_id("chain", key)) == ("chain", key)
    assert parse_deposit_id("chain:ethereum:0x<a>:-1") is None


@pytest.mark.parametrize(
    ("f", "cursor", "error"),
    [
        (DepositFilter(statuses=("lost",)), None, InvalidStatusFilter),
        (DepositFilter(statuses=()), None, InvalidStatusFilter),
        (DepositFilter(network="dogecoin"), None, UnknownNetworkFilter),
        (DepositFilter(), "x", InvalidCursor),
        (DepositFilter(), "12~wire:1", InvalidCursor),
        (DepositFilter(), "-1~bank:1", InvalidCursor),
    ],
)
def test_bad_filters_are_refused(f: DepositFilter, cursor: str | None, error: type) -> None:
    with pytest.raises(error):
        run(history([]).page(f, limit=10, cursor=cursor))
