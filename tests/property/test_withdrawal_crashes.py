"""Whatever the processor is killed at, a withdrawal ends with one debit or one release,
and at most one signed transaction ever reaches the chain.

Hypothesis picks a withdrawal (small or needing approval, cancelled or not, a chain
that refuses the broadcast or not) and a list of kill points: the n-th call to the
core, the signer or the chain dies before or after that call did its work. After each
kill a new processor (and a new service over the same store and core) takes over, as a
restarted process would. The signer signs with fresh randomness each time (as ECDSA in
the token does), so a second signature would be a different transaction."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, cast

from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.unit.test_withdrawal_checks import (
    TO,
    USER,
    CoreBus,
    Desk,
    MemoryWithdrawals,
    base_tx,
)
from tradewind.core.commands import AnyCommand
from tradewind.services.admin import Actor
from tradewind.services.funding.payouts import PayoutProcessor
from tradewind.services.funding.withdrawal_ports import (
    SignedTx,
    SignerRefused,
    TxState,
)
from tradewind.services.funding.withdrawals import FEE_ACCOUNT, WithdrawalService


class Killed(BaseException):
    pass


class Fuse:
    """Counts calls across the run; the call numbered in ``kills`` dies (before or
    after doing its work)."""

    def __init__(self, kills: dict[int, bool]) -> None:
        self.kills = dict(kills)
        self.calls = 0

    def tick(self) -> bool | None:
        """``None``: go on; ``True``: die after the work; ``False``: die before it."""
        self.calls += 1
        return self.kills.pop(self.calls, None)


class FusedBus:
    def __init__(self, inner: CoreBus, fuse: Fuse) -> None:
        self.inner = inner
        self.fuse = fuse

    @property
    def available(self) -> bool:
        return True

    async def submit(self, cmd: AnyCommand) -> Any:
        after = self.fuse.tick()
        if after is False:
            raise Killed("before the core")
        applied = await self.inner.submit(cmd)
        if after:
            raise Killed("after the core")
        return applied


class Chain:
    """Remembers every raw transaction it was given; confirms what it took."""

    def __init__(self, fuse: Fuse, refuse: bool) -> None:
        self.fuse = fuse
        self.refuse = refuse
        self.taken: set[str] = set()

    async def build(
        self, sender: str, to: str, contract: str | None, value: int, nonce_floor: int
    ) -> Mapping[str, object]:
        return base_tx(**{"from": sender, "to": to, "value": value, "nonce": nonce_floor})

    async def broadcast(self, raw: str) -> str | None:
        after = self.fuse.tick()
        if after is False:
            raise Killed("before the broadcast")
        if self.refuse and raw not in self.taken:
            answer: str | None = "insufficient funds for gas * price + value"
        else:
            self.taken.add(raw)
            answer = None
        if after:
            raise Killed("after the broadcast")
        return answer

    async def state(self, txid: str) -> TxState:
        if any(txid == f"tx-{raw}" for raw in self.taken):
            return TxState("succeeded", 20, 7)
        return TxState("unknown")


class Signer:
    """Signs once per withdrawal (the store's compare-and-set), each signature new."""

    def __init__(self, store: MemoryWithdrawals, fuse: Fuse) -> None:
        self.store = store
        self.fuse = fuse
        self.signatures = 0

    async def address(self, network: str) -> str:
        return TO

    async def sign(self, withdrawal_id: int, network: str, tx: Mapping[str, object]) -> SignedTx:
        after = self.fuse.tick()
        if after is False:
            raise Killed("before the signer")
        self.signatures += 1
        raw = f"0xraw{withdrawal_id}-{self.signatures}"
        if not await self.store.transition(
            withdrawal_id,
            ("signing",),
            "signed",
            at_ms=0,
            fields={"raw_tx": raw, "txid": f"tx-{raw}"},
        ):
            raise SignerRefused("not_signable", "not waiting for a signature")
        if after:
            raise Killed("after the signer (its answer lost)")
        return SignedTx(raw, f"tx-{raw}")


def service_over(desk: Desk, bus: FusedBus) -> WithdrawalService:
    s = desk.service
    return WithdrawalService(
        catalog=s.catalog,
        store=desk.store,
        bus=cast(Any, bus),
        two_factor=desk.gate,
        kyc=cast(Any, s._kyc),
        admin=cast(Any, desk.admin),
        audit=cast(Any, s._audit),
        notifier=desk.inbox,
        screening=cast(Any, s._screening),
        policy=desk.policy,
        now_ms=desk.clock.now_ms,
    )


@settings(max_examples=150, deadline=None)
@given(
    amount=st.sampled_from(["0.5", "2"]),
    cancel=st.booleans(),
    refuse=st.booleans(),
    kills=st.dictionaries(st.integers(1, 12), st.booleans(), max_size=4),
)
def test_one_debit_or_one_release_and_at_most_one_transaction(
    amount: str, cancel: bool, refuse: bool, kills: dict[int, bool]
) -> None:
    desk = Desk()
    desk.whitelist()
    w = desk.ask(amount, key="crash-0001")
    before = desk.bus.balance()
    assert before[1] == w.amount
    if w.status == "pending_approval":
        desk.run(desk.service.approve(Actor(99, "compliance"), w.id))
    fuse = Fuse(kills)
    chain = Chain(fuse, refuse)
    signer = Signer(desk.store, fuse)

    async def drive() -> None:
        cancelled = False
        for _ in range(40):
            service = service_over(desk, FusedBus(desk.bus, fuse))
            processor = PayoutProcessor(service, {"ethereum": chain}, signer)
            try:
                if cancel and not cancelled:
                    cancelled = True
                    with contextlib.suppress(Exception):  # already being paid out
                        await service.cancel(USER, w.id)
                await processor.step()
            except Killed:
                continue  # the process died; a new one takes over
            status = (await desk.store.get(w.id)).status  # type: ignore[union-attr]
            if status in ("confirmed", "failed", "cancelled"):
                return
        raise AssertionError("the withdrawal never finished")

    asyncio.run(drive())
    final = desk.run(desk.service.get_any(w.id))
    event(f"ended {final.status}")
    event(f"kills fired: {len(kills) - len(fuse.kills)}")
    core = desk.bus.exchange.core
    available, locked = desk.bus.balance()
    assert locked == 0
    assert len(chain.taken) <= 1  # never two different transactions on chain
    if final.status == "confirmed":
        assert chain.taken == {final.raw_tx}
        assert available == before[0]  # the locked amount left, once
        assert core.withdrawn.get("ETH", 0) == w.amount
        assert desk.bus.balance(FEE_ACCOUNT) == (w.fee, 0)
    else:
        assert final.status in ("failed", "cancelled")
        assert chain.taken == set()
        assert available == before[0] + before[1]  # released, once
        assert core.withdrawn.get("ETH", 0) == 0
    releases = [c for c in desk.bus.commands if type(c).__name__ == "WithdrawRelease"]
    settles = [c for c in desk.bus.commands if type(c).__name__ == "WithdrawSettle"]
    assert (final.status == "confirmed") == (len(settles) >= 1 and not releases)
