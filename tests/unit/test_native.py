"""The optional compiled build (``build_native.py``, ``make native``) against the pure-Python
core: the same commands must give the same events, the same state and the same snapshots.

When the compiled build is present, ``tradewind.core.engine`` is the compiled module and
``tests.support.pure_core`` loads a private pure-Python copy of the same sources next to it,
so each stream runs through both in one process, command by command. Without the build the
comparison tests skip (the rest of the suite already tests the pure-Python core); the loader
itself is tested either way.

Two streams: the generated benchmark stream (limit, IOC and market orders, cancels), and a
seeded random stream of every command type (stops, take-profits, icebergs, post-only, FOK,
GTD with expiry, amends, cancel-all, self-trade prevention modes, withdrawals, transfers,
expenses, halts, fee tiers) with a share of invalid commands, so that rejections are
compared too.
"""

from __future__ import annotations

import random
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

import tradewind.core
from tests.support.pure_core import load_pure_engine
from tradewind.core import commands as C
from tradewind.core import engine as loaded_engine
from tradewind.core.invariants import check_invariants
from tradewind.core.native import NATIVE_MODULES, build_name, compiled_modules, is_compiled
from tradewind.runtime.streamgen import generate_stream

needs_native = pytest.mark.skipif(
    not is_compiled(),
    reason="compiled core not built (run `make native`); the pure-Python core is what the "
    "rest of the suite tests",
)


@pytest.fixture(scope="module")
def pure() -> ModuleType:
    return load_pure_engine()


# ------------------------------------------------------------------ the loader itself


def test_build_is_all_or_nothing() -> None:
    assert compiled_modules() in ([], list(NATIVE_MODULES))
    assert build_name() == ("mypyc" if is_compiled() else "pure")


def test_pure_loader_gives_private_source_modules(pure: ModuleType) -> None:
    import tradewind.core.engine as again

    assert pure.__file__ is not None and pure.__file__.endswith("engine.py")
    assert pure is not loaded_engine
    assert pure.Core is not loaded_engine.Core
    assert again is loaded_engine  # the process keeps the build it had imported
    assert is_compiled() == (not (loaded_engine.__file__ or "").endswith(".py"))


@needs_native
def test_compiled_build_is_not_stale() -> None:
    """An extension module shadows its ``.py`` file: after an edit of a compiled module
    the build must be redone, or the process runs the old code."""
    package = Path(tradewind.core.__path__[0])
    for m in NATIVE_MODULES:
        source = package / f"{m}.py"
        built = [package / f"{m}{suffix}" for suffix in EXTENSION_SUFFIXES]
        ext = next(p for p in built if p.exists())
        assert ext.stat().st_mtime >= source.stat().st_mtime, (
            f"{ext.name} is older than {source.name}: run `make native` again "
            "(or `make native-clean` for the pure-Python core)"
        )


# ------------------------------------------------------------------ streams


ASSETS = {"BTC": 8, "ETH": 8, "USDT": 6}
SYMBOLS = ("BTC-USDT", "ETH-USDT")
USERS = (1, 2, 3, 4, 5)


def _setup() -> list[C.Command]:
    cmds: list[C.Command] = [C.AddAsset(asset=a, decimals=d) for a, d in ASSETS.items()]
    cmds += [
        C.AddSymbol(
            symbol="BTC-USDT",
            base="BTC",
            quote="USDT",
            tick_size=10_000,
            lot_size=10_000,
            min_qty=1,
            max_qty=500,
            min_notional=1_000,
            price_band_bps=3_000,
        ),
        C.AddSymbol(symbol="ETH-USDT", base="ETH", quote="USDT", tick_size=1_000, lot_size=100_000),
        C.SetFees(maker_bps=10, taker_bps=20),
        C.SetFees(tier=1, maker_bps=0, taker_bps=5),
        C.SetTier(user=3, tier=1),
    ]
    for u in USERS:
        cmds += [C.Deposit(user=u, asset=a, amount=10**15) for a in ASSETS]
    return cmds


def random_stream(n: int, seed: int) -> list[C.Command]:
    """``n`` random commands of every type after a set-up, stamped with seq and ts."""
    rng = random.Random(seed)
    cmds = _setup()
    next_id = 1
    ids: list[tuple[int, int, str]] = []  # (id, user, symbol) of places, open or not
    withdrawals: list[int] = []
    for _ in range(n):
        ts = _ts(len(cmds) + 1)
        recent = ids[-60:]
        user = rng.choice(USERS)
        sym = rng.choice(SYMBOLS)
        side: C.Side = rng.choice(("buy", "sell"))
        # Mostly passive prices, about one order in ten through the other side.
        off = rng.randint(-12, 100)
        price = 10_000 - off if side == "buy" else 10_000 + off
        qty = rng.randint(1, 40)
        r = rng.random()
        cmd: C.Command
        if r < 0.50:
            tif: C.TimeInForce = rng.choice(("GTC", "GTC", "GTC", "IOC", "FOK", "GTD"))
            display = rng.randint(1, qty) if rng.random() < 0.1 else None
            cmd = C.Place(
                id=next_id,
                user=user,
                symbol=sym,
                side=side,
                price=price,
                qty=qty,
                tif=tif,
                expire_ts=max(0, ts + rng.randint(-3, 300)) if tif == "GTD" else None,
                post_only=rng.random() < 0.05,
                display_qty=display,
                stp=rng.choice(("cancel_taker", "cancel_maker", "cancel_both", "none")),
                client_id=f"c{next_id}" if rng.random() < 0.1 else None,
            )
        elif r < 0.56:
            if rng.random() < 0.5:
                cmd = C.Place(id=next_id, user=user, symbol=sym, side=side, type="market", qty=qty)
            else:
                cmd = C.Place(
                    id=next_id,
                    user=user,
                    symbol=sym,
                    side="buy",
                    type="market",
                    quote_qty=rng.randint(1_000, 10**9),
                )
        elif r < 0.62:
            typ: C.OrderType = rng.choice(
                ("stop_market", "stop_limit", "take_profit", "take_profit_limit")
            )
            cmd = C.Place(
                id=next_id,
                user=user,
                symbol=sym,
                side=side,
                type=typ,
                qty=qty,
                stop_price=price + rng.randint(-60, 60),
                price=price if typ.endswith("limit") else None,
                tif=rng.choice(("GTC", "IOC")),
            )
        elif r < 0.76 and recent:
            oid, ou, osym = rng.choice(recent)
            if rng.random() < 0.9:
                user, sym = ou, osym
            cmd = C.Cancel(id=oid, user=user, symbol=sym)
        elif r < 0.85 and recent:
            oid, ou, osym = rng.choice(recent)
            cmd = C.Amend(
                id=oid,
                user=ou,
                symbol=osym,
                qty=rng.randint(1, 50),
                price=price if rng.random() < 0.5 else None,
            )
        elif r < 0.855:
            cmd = C.CancelAll(user=user, symbol=sym if rng.random() < 0.7 else None)
        elif r < 0.88:
            wid = 10_000 + len(withdrawals)
            withdrawals.append(wid)
            cmd = C.WithdrawHold(id=wid, user=user, asset=rng.choice(list(ASSETS)), amount=10**9)
        elif r < 0.90 and withdrawals:
            wid = rng.choice(withdrawals)
            settle = rng.random() < 0.5
            cmd = C.WithdrawSettle(id=wid) if settle else C.WithdrawRelease(id=wid)
        elif r < 0.915:
            cmd = C.Transfer(user=user, to=rng.choice(USERS), asset="USDT", amount=10**6)
        elif r < 0.92:  # few refs: some are paid already (duplicate_expense)
            ref = f"network-fee:custody:{rng.randrange(20)}"
            cmd = C.Expense(user=user, asset=rng.choice(list(ASSETS)), amount=10**6, ref=ref)
        elif r < 0.93:
            cmd = C.Halt(symbol=sym) if rng.random() < 0.1 else C.Resume(symbol=sym)
        elif r < 0.95:
            cmd = C.Tick()
        elif r < 0.97:
            cmd = C.SetTier(user=user, tier=rng.choice((0, 1, 2)))
        else:
            # Invalid on purpose: unknown symbol or asset, duplicate id, bad combinations.
            cmd = rng.choice(
                (
                    C.Place(id=next_id, user=user, symbol="XRP-USDT", side=side, price=1, qty=1),
                    C.Place(id=max(1, next_id - 1), user=user, symbol=sym, side=side, qty=qty),
                    C.Place(
                        id=next_id,
                        user=user,
                        symbol=sym,
                        side=side,
                        type="market",
                        qty=qty,
                        quote_qty=5,
                    ),
                    C.Deposit(user=user, asset="DOGE", amount=1),
                    C.Amend(id=999_999, user=user, symbol=sym, qty=1),
                )
            )
        if isinstance(cmd, C.Place) and cmd.id == next_id:
            if cmd.tif in ("GTC", "GTD"):  # what may rest, so what cancels and amends aim at
                ids.append((cmd.id, cmd.user, cmd.symbol))
            next_id += 1
        cmds.append(cmd)
    return _stamp(cmds)


def _ts(seq: int) -> int:
    return 1_000 + seq // 3


def _stamp(cmds: list[C.Command]) -> list[C.Command]:
    return [msgspec.structs.replace(c, seq=i, ts=_ts(i)) for i, c in enumerate(cmds, start=1)]


def _same_run(engine_a: Any, engine_b: Any, cmds: list[C.Command], every: int) -> int:
    """Run both cores side by side, comparing events after every command and the state
    every ``every`` commands; returns the number of events compared."""
    a, b = engine_a.Core(), engine_b.Core()
    n_events = 0
    for i, cmd in enumerate(cmds, start=1):
        ea, eb = a.apply(cmd), b.apply(cmd)
        assert ea == eb, f"command {i} ({cmd!r}): events differ"
        n_events += len(ea)
        if i % every == 0 or i == len(cmds):
            assert a.state_hash() == b.state_hash(), f"state differs after command {i}"
            assert a.snapshot() == b.snapshot(), f"snapshot differs after command {i}"
            assert (a.seq, a.ts) == (b.seq, b.ts)
    assert check_invariants(a) == []
    return n_events


# ------------------------------------------------------------------ compiled vs pure


@needs_native
def test_compiled_matches_pure_on_the_generated_stream(pure: ModuleType) -> None:
    cmds: list[C.Command] = list(generate_stream(20_000, n_symbols=2, n_accounts=50, seed=7))
    n_events = _same_run(loaded_engine, pure, cmds, every=2_500)
    assert n_events > len(cmds)


@needs_native
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compiled_matches_pure_on_every_command_type(pure: ModuleType, seed: int) -> None:
    cmds = random_stream(4_000, seed)
    n_events = _same_run(loaded_engine, pure, cmds, every=500)
    assert n_events > 0


@needs_native
def test_snapshots_cross_between_builds(pure: ModuleType) -> None:
    """A snapshot of either build restores in the other, and both then go on alike."""
    cmds = random_stream(3_000, seed=11)
    head, tail = cmds[:2_000], cmds[2_000:]
    compiled_core, pure_core = loaded_engine.Core(), pure.Core()
    for cmd in head:
        compiled_core.apply(cmd)
        pure_core.apply(cmd)
    from_pure = loaded_engine.Core.restore(pure_core.snapshot())
    from_compiled = pure.Core.restore(compiled_core.snapshot())
    assert from_pure.state_hash() == from_compiled.state_hash() == pure_core.state_hash()
    for cmd in tail:
        assert from_pure.apply(cmd) == from_compiled.apply(cmd)
    assert from_pure.snapshot() == from_compiled.snapshot()


def test_random_stream_exercises_every_command_type() -> None:
    """The stream above must keep covering what it claims (also without the build)."""
    cmds = random_stream(4_000, seed=1)
    ops = {c.__struct_config__.tag for c in cmds}
    assert ops == {
        "asset",
        "symbol",
        "fees",
        "tier",
        "deposit",
        "expense",
        "withdraw_hold",
        "withdraw_release",
        "withdraw_settle",
        "transfer",
        "place",
        "amend",
        "cancel",
        "cancel_all",
        "halt",
        "resume",
        "tick",
    }
    core = loaded_engine.Core()
    kinds = {e.__struct_config__.tag for cmd in cmds for e in core.apply(cmd)}
    assert {"trade", "rejected", "order_triggered", "order_amended", "order_cancelled"} <= kinds
