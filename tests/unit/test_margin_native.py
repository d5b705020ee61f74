"""Margin on the compiled core (``make native``) against the pure-Python core: the same
margin streams (leveraged trades, marks, interest, liquidations) give the same events,
state hashes and snapshots. The margin modules themselves are never compiled (ADR 0020);
what is compared is the compiled engine calling into them. Skipped without the build.
"""

from __future__ import annotations

import random
from types import ModuleType
from typing import Any

import msgspec
import pytest

from tests.property.test_margin_stateful import BASES, SETUP, SYMBOLS, USERS
from tests.support.pure_core import load_pure_engine
from tradewind.core import commands as C
from tradewind.core import engine as loaded_engine
from tradewind.core.events import LiquidationStarted
from tradewind.core.margin import HOUR_MS
from tradewind.core.native import is_compiled

pytestmark = pytest.mark.skipif(
    not is_compiled(), reason="compiled core not built (run `make native`)"
)


def margin_stream(seed: int, n: int = 1500) -> list[C.Command]:
    rng = random.Random(seed)
    raw: list[dict[str, Any]] = [dict(d) for d in SETUP]
    for _ in range(n):
        r = rng.random()
        user = rng.choice(USERS)
        sym = rng.choice(SYMBOLS)
        w: dict[str, Any] = (
            {"wallet": "cross"} if rng.random() < 0.4 else {"wallet": "isolated", "symbol": sym}
        )
        if r < 0.3:
            buy = rng.random() < 0.5
            raw.append(
                {
                    "op": "place",
                    "id": rng.randint(1, 80),
                    "user": user,
                    "symbol": sym,
                    "side": "buy" if buy else "sell",
                    "price": 110 if buy else 90,
                    "qty": rng.randint(100, 12_000),
                    "tif": "IOC",
                    "auto_borrow": True,
                    **w,
                }
            )
        elif r < 0.45:
            raw.append(
                {
                    "op": "place",
                    "id": rng.randint(1, 80),
                    "user": user,
                    "symbol": sym,
                    "side": rng.choice(("buy", "sell")),
                    "price": rng.randint(80, 120),
                    "qty": rng.randint(1, 500),
                    **({} if rng.random() < 0.5 else w),
                }
            )
        elif r < 0.7:
            p = rng.randint(60, 150)
            raw.append({"op": "mark", "symbol": sym, "feeds": [[p, 0], [p, 0]]})
        elif r < 0.8:
            asset = "USDT" if rng.random() < 0.6 else BASES[sym]
            raw.append(
                {
                    "op": rng.choice(("borrow", "repay")),
                    "user": user,
                    "asset": asset,
                    "amount": rng.randint(1, 10**6),
                    **w,
                }
            )
        elif r < 0.85:
            raw.append({"op": "tick", "hours": rng.randint(1, 20)})
        else:
            raw.append({"op": "cancel_all", "user": user})
    cmds: list[C.Command] = []
    ts = 0
    for i, d in enumerate(raw, 1):
        ts += d.pop("hours", 0) * HOUR_MS + 1000
        if d["op"] == "mark":
            d["feeds"] = [[p, ts] for p, _ in d["feeds"]]
        cmd = msgspec.convert(d, C.AnyCommand)  # type: ignore[arg-type]
        cmds.append(msgspec.structs.replace(cmd, seq=i, ts=ts))
    return cmds


@pytest.fixture(scope="module")
def pure() -> ModuleType:
    return load_pure_engine()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compiled_matches_pure_on_margin_streams(pure: ModuleType, seed: int) -> None:
    native, python = loaded_engine.Core(), pure.Core()
    liquidations = 0
    for cmd in margin_stream(seed):
        a, b = native.apply(cmd), python.apply(cmd)
        assert a == b, cmd
        liquidations += sum(isinstance(e, LiquidationStarted) for e in a)
    assert native.state_hash() == python.state_hash()
    assert native.snapshot() == python.snapshot()
    assert pure.Core.restore(native.snapshot()).state_hash() == native.state_hash()
    assert liquidations > 0
