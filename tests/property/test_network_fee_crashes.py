"""Whatever the network-fee booking is killed at, each transaction's fee ends booked in
the core exactly once (ADR 0034).

Hypothesis picks some finished transactions (payouts and custody transfers on Ethereum
and Bitcoin, fees in wei or satoshi, a few that the chain never mined), whether the fee
account can pay at once or is funded later, and a list of kill points: the n-th call to
the chain (the fee read), the store (record, booked) or the core dies before or after
that call did its work. After each kill a new booker over the same store and core takes
over, as a restarted process would. In the end every mined transaction has one
``booked`` row and one ``ExpensePaid`` in the core, of its fee rounded up; every
unmined one a ``none`` row and nothing in the core; the core's invariants hold."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_network_fees import CoreBus, MemoryFees, Reader, catalog
from tradewind.core.commands import AnyCommand, Deposit
from tradewind.core.events import ExpensePaid
from tradewind.core.invariants import check_invariants
from tradewind.services.funding.network_fees import (
    FeeSource,
    NetworkFee,
    NetworkFeeBooker,
    fee_ref,
)
from tradewind.services.funding.withdrawals import FEE_ACCOUNT


class Killed(BaseException):
    pass


class Fuse:
    def __init__(self, kills: dict[int, bool]) -> None:
        self.kills = dict(kills)
        self.calls = 0

    def tick(self) -> bool | None:
        """``None``: go on; ``True``: die after the work; ``False``: die before it."""
        self.calls += 1
        return self.kills.pop(self.calls, None)


async def fused(fuse: Fuse, work: Any) -> Any:
    after = fuse.tick()
    if after is False:
        work.close()
        raise Killed("before")
    result = await work
    if after:
        raise Killed("after")
    return result


class RecordingBus(CoreBus):
    """Every event the core gave, to count the expenses it applied."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Any] = []

    async def submit(self, cmd: AnyCommand) -> Any:
        applied = await super().submit(cmd)
        self.events.extend(applied.events)
        return applied


class FusedBus:
    def __init__(self, inner: CoreBus, fuse: Fuse) -> None:
        self.inner, self.fuse = inner, fuse

    @property
    def available(self) -> bool:
        return True

    async def submit(self, cmd: AnyCommand) -> Any:
        return await fused(self.fuse, self.inner.submit(cmd))


class FusedStore:
    def __init__(self, inner: MemoryFees, fuse: Fuse) -> None:
        self.inner, self.fuse = inner, fuse

    async def unrecorded(self, networks: Any, limit: int) -> Any:
        return await self.inner.unrecorded(networks, limit)

    async def pending(self, limit: int) -> Any:
        return await self.inner.pending(limit)

    async def record(self, fee: NetworkFee) -> bool:
        return bool(await fused(self.fuse, self.inner.record(fee)))

    async def booked(self, source: str, source_id: int, seq: int | None, at_ms: int) -> bool:
        return bool(await fused(self.fuse, self.inner.booked(source, source_id, seq, at_ms)))

    async def note(self, source: str, source_id: int, reason: str, at_ms: int) -> None:
        await self.inner.note(source, source_id, reason, at_ms)

    async def get(self, source: str, source_id: int) -> NetworkFee | None:
        return await self.inner.get(source, source_id)


class FusedReader:
    def __init__(self, inner: Reader, fuse: Fuse) -> None:
        self.inner, self.fuse = inner, fuse

    async def fee_paid(self, txid: str) -> int | None:
        return await fused(self.fuse, self.inner.fee_paid(txid))


transactions = st.lists(
    st.tuples(
        st.sampled_from(("withdrawal", "custody")),
        st.sampled_from(("ethereum", "bitcoin")),
        st.one_of(st.none(), st.integers(min_value=1, max_value=10**15)),  # None: unmined
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(
    txs=transactions,
    funded_late=st.booleans(),
    kills=st.dictionaries(st.integers(min_value=1, max_value=40), st.booleans(), max_size=4),
)
def test_killed_anywhere_each_fee_is_booked_once(
    txs: list[tuple[str, str, int | None]], funded_late: bool, kills: dict[int, bool]
) -> None:
    asyncio.run(_run(txs, funded_late, kills))


async def _run(
    txs: list[tuple[str, str, int | None]], funded_late: bool, kills: dict[int, bool]
) -> None:
    store, bus, fuse = MemoryFees(), RecordingBus(), Fuse(kills)
    eth, btc = Reader({}), Reader({})
    for n, (source, network, fee) in enumerate(txs, 1):
        status = "confirmed" if fee is not None else "failed"
        store.sources.append(FeeSource(source, n, network, f"tx{n}", status))  # type: ignore[arg-type]
        (eth if network == "ethereum" else btc).fees[f"tx{n}"] = fee
    if not funded_late:
        bus.exchange.ok(Deposit(user=FEE_ACCOUNT, asset="ETH", amount=10**9))
        bus.exchange.ok(Deposit(user=FEE_ACCOUNT, asset="BTC", amount=10**16))

    for attempt in range(30):
        booker = NetworkFeeBooker(
            catalog=catalog(),
            store=FusedStore(store, fuse),  # type: ignore[arg-type]
            readers={"ethereum": FusedReader(eth, fuse), "bitcoin": FusedReader(btc, fuse)},
            bus=FusedBus(bus, fuse),
            now_ms=lambda: 1_000,
        )
        try:
            await booker.step()
        except Killed:
            continue
        if (
            attempt >= 2
            and funded_late
            and "ETH" not in bus.exchange.core.accounts.get(FEE_ACCOUNT, {})
        ):
            bus.exchange.ok(Deposit(user=FEE_ACCOUNT, asset="ETH", amount=10**9))
            bus.exchange.ok(Deposit(user=FEE_ACCOUNT, asset="BTC", amount=10**16))
        if len(store.rows) == len(txs) and not await store.pending(100):
            break

    core = bus.exchange.core
    expenses = [e for e in bus.events if isinstance(e, ExpensePaid)]
    want: dict[str, tuple[str, int]] = {}
    for n, (source, network, fee) in enumerate(txs, 1):
        row = store.rows[(source, n)]
        if fee is None:
            assert (row.status, row.amount) == ("none", 0)
            continue
        amount = -(-fee // 10**10) if network == "ethereum" else fee
        assert (row.status, row.fee_chain, row.amount) == ("booked", fee, amount)
        want[fee_ref(source, n)] = ("ETH" if network == "ethereum" else "BTC", amount)
    assert {e.ref: (e.asset, e.amount) for e in expenses} == want
    assert len(expenses) == len(want)  # once each, however often it was retried
    assert core.expense_refs == set(want)
    assert check_invariants(core) == []
