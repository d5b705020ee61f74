"""The projectors on real databases (SQLite and PostgreSQL).

- The ledger check of issue 4: after a random trading session (deposits, limit GTC /
  IOC / FOK / GTD orders, post-only, icebergs, market orders by quantity and by quote
  amount, stops, cancels, cancel-all, amends, withdrawals held / released / settled,
  transfers, expenses (network fees the exchange paid), fee changes, expiries), the SQL
  ledger's sums of ``available`` and ``locked`` legs per (account, asset) equal the
  core's balances for every account and asset; every event's legs sum to zero per
  asset; ``-external`` is deposits less withdrawals and expenses; the open holds,
  orders, fills and trades agree with the core.
- Idempotency: feeding the same batches again (at once, in other chunks, one by one,
  through fresh projector instances) changes nothing.
- Crashes: a restart between batches, a transaction that dies before its commit, and a
  crash that leaves one projector behind the others all end in the same tables as an
  uninterrupted run; a hole in the seqs is an error that writes nothing.
- Catch-up from the journal (through a snapshot) and background feeding from the core
  runner reach the same state.

An asset with 18 decimals and deposits near the core's 63-bit bound (far beyond a
float's 53 bits) keeps the money exact (text amounts on SQLite are summed in Python,
not with SQL ``SUM``).
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from tradewind.adapters.sql import Database, upgrade_async
from tradewind.adapters.sql.fills import FillRow
from tradewind.adapters.sql.ledger import LedgerEntryRow
from tradewind.adapters.sql.orders import OrderRow
from tradewind.adapters.sql.projections import (
    LedgerHoldRow,
    ProjectorSymbolRow,
    SqlProjectionStore,
    sql_projectors,
)
from tradewind.adapters.sql.projector_offsets import (
    OffsetWentBackwards,
    ProjectorOffsetRow,
    advance_offset,
    shared_projection_transaction,
)
from tradewind.adapters.sql.trades import TradeRow
from tradewind.core.commands import AnyCommand
from tradewind.core.engine import Core
from tradewind.core.events import (
    Event,
    ExpensePaid,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderReleased,
    OrderTriggered,
    Trade,
    Transferred,
    WithdrawalHeld,
    WithdrawalReleased,
    WithdrawalSettled,
)
from tradewind.core.invariants import check_invariants
from tradewind.journal.recovery import JournaledCore
from tradewind.runtime.sequencer import CoreRunner
from tradewind.services.projectors import (
    Batch,
    LedgerProjector,
    OrdersProjector,
    ProjectorRunner,
    SeqGap,
    TradesProjector,
    journal_batches,
)
from tradewind.services.projectors.ports import OPEN_STATUSES

TS0 = 1_700_000_000_000
BTC, ETH, USDT = "BTC", "ETH", "USDT"
BTC_USDT, ETH_USDT = "BTC-USDT", "ETH-USDT"
USERS = (1, 2, 3, 4, 5)
WHALE = 5  # holds ETH near the core's 2**63 - 1 bound
MIDS = {BTC_USDT: 100, ETH_USDT: 50}


# -- a random session -----------------------------------------------------------------


def to_command(fields: dict[str, Any]) -> AnyCommand:
    command: AnyCommand = msgspec.convert(fields, AnyCommand)
    return command


def setup_commands(big: bool) -> list[dict[str, Any]]:
    """BTC (8 decimals) and ETH (18 decimals) against USDT (6). BTC-USDT: notional 1
    (a lot at p ticks costs p USDT minor units); ETH-USDT: a lot is 10**15 wei and costs
    10 * p. Fees 10/20 bps, tier 1 at 0/50 for user 4. Balances are modest, so some
    orders are refused for funds. ``big``: the whale holds ETH near the 2**63 - 1 bound
    every amount in the core keeps."""
    out: list[dict[str, Any]] = [
        {"op": "asset", "asset": BTC, "decimals": 8},
        {"op": "asset", "asset": ETH, "decimals": 18},
        {"op": "asset", "asset": USDT, "decimals": 6},
        {
            "op": "symbol",
            "symbol": BTC_USDT,
            "base": BTC,
            "quote": USDT,
            "tick_size": 10_000,
            "lot_size": 10_000,
        },
        {
            "op": "symbol",
            "symbol": ETH_USDT,
            "base": ETH,
            "quote": USDT,
            "tick_size": 10_000,
            "lot_size": 10**15,
        },
        {"op": "fees", "maker_bps": 10, "taker_bps": 20},
        {"op": "fees", "tier": 1, "maker_bps": 0, "taker_bps": 50},
        {"op": "tier", "user": 4, "tier": 1},
    ]
    for user in USERS:
        out.append({"op": "deposit", "user": user, "asset": USDT, "amount": 30_000})
        out.append({"op": "deposit", "user": user, "asset": BTC, "amount": 400_000})
        eth = 9 * 10**18 if user == WHALE and big else 4 * 10**16
        out.append({"op": "deposit", "user": user, "asset": ETH, "amount": eth})
    return out


def random_commands(seed: int, n: int, big: bool) -> list[AnyCommand]:
    """The setup and ``n`` random commands, stamped with seq (1, 2, ...) and ts."""
    rng = random.Random(seed)
    raw = setup_commands(big)
    eth_deposit = 10**14 if big else 10**12
    placed: list[tuple[int, int, str]] = []
    ts = TS0
    stamps = [ts] * len(raw)
    next_wid = 1
    for oid in range(1, n + 1):
        ts += rng.randint(0, 3)
        user = rng.choice(USERS)
        sym = rng.choice((BTC_USDT, ETH_USDT))
        side = rng.choice(("buy", "sell"))
        price = MIDS[sym] + rng.randint(-4, 4)
        qty = rng.randint(1, 6)
        stp = rng.choice(("cancel_taker", "cancel_maker", "cancel_both", "none"))
        base = {"op": "place", "id": oid, "user": user, "symbol": sym, "side": side, "stp": stp}
        r = rng.random()
        cmd: dict[str, Any]
        if r < 0.45:
            tif = rng.choice(("GTC", "GTC", "IOC", "FOK", "GTD"))
            cmd = {**base, "price": price, "qty": qty, "tif": tif}
            if tif == "GTD":
                cmd["expire_ts"] = ts + rng.randint(1, 40)
            if tif in ("GTC", "GTD") and rng.random() < 0.2:
                cmd["display_qty"] = rng.randint(1, 3)
            if tif in ("GTC", "GTD") and rng.random() < 0.15:
                cmd["post_only"] = True
            placed.append((oid, user, sym))
        elif r < 0.53:
            cmd = {**base, "type": "market"}
            if side == "buy" and rng.random() < 0.5:
                cmd["quote_qty"] = qty * MIDS[sym] * (10 if sym == ETH_USDT else 1) * 2
            else:
                cmd["qty"] = qty
        elif r < 0.60:
            typ = rng.choice(("stop_market", "stop_limit", "take_profit", "take_profit_limit"))
            cmd = {**base, "type": typ, "qty": qty, "tif": rng.choice(("GTC", "IOC"))}
            cmd["stop_price"] = MIDS[sym] + rng.randint(-3, 3)
            if typ.endswith("limit"):
                cmd["price"] = price + rng.randint(-2, 2)
            placed.append((oid, user, sym))
        elif r < 0.72 and placed:
            pid, owner, psym = placed[-1 - min(int(rng.expovariate(1 / 6)), len(placed) - 1)]
            cmd = {"op": "cancel", "id": pid, "user": owner, "symbol": psym}
        elif r < 0.84 and placed:
            pid, owner, psym = placed[-1 - min(int(rng.expovariate(1 / 6)), len(placed) - 1)]
            cmd = {"op": "amend", "id": pid, "user": owner, "symbol": psym, "qty": qty}
            if rng.random() < 0.6:
                cmd["price"] = MIDS[psym] + rng.randint(-4, 4)
        elif r < 0.87:
            cmd = {"op": "cancel_all", "user": user}
            if rng.random() < 0.5:
                cmd["symbol"] = sym
        elif r < 0.91:
            if rng.random() < 0.5:
                asset = rng.choice((BTC, ETH, USDT))
                amount = rng.randint(1, 5_000) * (10**13 if asset == ETH else 1)
                cmd = {
                    "op": "withdraw_hold",
                    "id": next_wid,
                    "user": user,
                    "asset": asset,
                    "amount": amount,
                }
                next_wid += 1
            else:
                op = rng.choice(("withdraw_release", "withdraw_settle"))
                cmd = {"op": op, "id": rng.randint(max(1, next_wid - 4), next_wid)}
        elif r < 0.915:  # the exchange pays a network fee; few refs, so some repeat
            asset = rng.choice((BTC, ETH, USDT))
            amount = rng.randint(1, 3_000) * (10**13 if asset == ETH else 1)
            cmd = {
                "op": "expense",
                "user": rng.choice((0, *USERS)),
                "asset": asset,
                "amount": amount,
                "ref": f"network-fee:custody:{rng.randrange(60)}",
            }
        elif r < 0.94:
            asset = rng.choice((BTC, ETH, USDT))
            amount = rng.randint(1, 3_000) * (10**13 if asset == ETH else 1)
            cmd = {
                "op": "transfer",
                "user": user,
                "to": rng.choice((*USERS, 9)),
                "asset": asset,
                "amount": amount,
            }
        elif r < 0.97:
            asset = rng.choice((BTC, USDT, ETH))
            amount = rng.randint(1, 20_000) * (eth_deposit if asset == ETH else 1)
            cmd = {
                "op": "deposit",
                "user": rng.choice((*USERS, 9)),
                "asset": asset,
                "amount": amount,
            }
        elif r < 0.985:
            bps = (0, 1, 10, 25, 100)
            cmd = {
                "op": "fees",
                "tier": rng.choice((0, 1)),
                "maker_bps": rng.choice(bps),
                "taker_bps": rng.choice(bps),
            }
        else:
            cmd = {"op": "tick"}
        raw.append(cmd)
        stamps.append(ts)
    return [
        to_command({**fields, "seq": seq, "ts": stamp})
        for seq, (fields, stamp) in enumerate(zip(raw, stamps, strict=True), start=1)
    ]


class Session:
    """A core that applied the commands, and the batches it produced."""

    def __init__(self, commands: Sequence[AnyCommand]) -> None:
        self.commands = list(commands)
        self.core = Core()
        self.batches = [Batch(c.seq, c.ts, self.core.apply(c)) for c in self.commands]
        assert check_invariants(self.core) == []

    def events(self) -> Iterator[Event]:
        for batch in self.batches:
            yield from batch.events

    def balances(self) -> dict[tuple[int, str], tuple[int, int]]:
        return {
            (user, asset): (b.available, b.locked)
            for user, account in self.core.accounts.items()
            for asset, b in account.items()
            if b.available or b.locked
        }

    def holds(self) -> dict[int, int]:
        core = self.core
        return {oid: o.locked for oid, o in core.orders.items()} | {
            sid: s.locked for sid, s in core.stops.items()
        }


_SESSIONS: dict[tuple[int, int, bool], Session] = {}


def session(seed: int, n: int, *, big: bool = False) -> Session:
    key = (seed, n, big)
    if key not in _SESSIONS:
        _SESSIONS[key] = Session(random_commands(seed, n, big))
    return _SESSIONS[key]


def chunks(batches: Sequence[Batch], rng: random.Random, most: int = 60) -> Iterator[list[Batch]]:
    i = 0
    while i < len(batches):
        size = rng.randint(1, most)
        yield list(batches[i : i + size])
        i += size


# -- databases ------------------------------------------------------------------------


async def open_database(url: str) -> Database:
    await upgrade_async(url)
    return Database.from_url(url)


@asynccontextmanager
async def sqlite_database(path: Path) -> AsyncIterator[Database]:
    database = await open_database(f"sqlite+aiosqlite:///{path}")
    try:
        yield database
    finally:
        await database.dispose()


def projectors(store: Any) -> ProjectorRunner:
    return ProjectorRunner([LedgerProjector(store), OrdersProjector(store), TradesProjector(store)])


def runner_for(db: Database) -> ProjectorRunner:
    return ProjectorRunner(sql_projectors(db))


async def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every projected row (surrogate ids left out), in a canonical order."""
    tables: dict[str, tuple[Any, Sequence[Any]]] = {
        "ledger_entries": (
            LedgerEntryRow,
            (LedgerEntryRow.seq, LedgerEntryRow.event_index, LedgerEntryRow.leg),
        ),
        "orders": (OrderRow, (OrderRow.id,)),
        "fills": (FillRow, (FillRow.seq, FillRow.event_index, FillRow.role)),
        "trades": (TradeRow, (TradeRow.seq, TradeRow.event_index)),
        "ledger_holds": (LedgerHoldRow, (LedgerHoldRow.order_id,)),
        "projector_symbols": (ProjectorSymbolRow, (ProjectorSymbolRow.symbol,)),
        "projector_offsets": (ProjectorOffsetRow, (ProjectorOffsetRow.name,)),
    }
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.read() as s:
        for name, (row_type, order) in tables.items():
            surrogate = name in ("ledger_entries", "fills", "trades")
            columns = [c for c in row_type.__table__.columns if not (surrogate and c.name == "id")]
            rows = await s.execute(sa.select(*columns).order_by(*order))
            out[name] = [tuple(r) for r in rows]
    return out


# -- the checks -----------------------------------------------------------------------


async def assert_projections_match_core(db: Database, s: Session) -> None:
    store = SqlProjectionStore(db)
    last = s.batches[-1].seq
    assert await store.offsets() == {"ledger": last, "orders": last, "trades": last}

    # THE ledger check: per (account, asset), the legs add up to the core's balances.
    sums = await store.balances()
    ledger = {k: (b.available, b.locked) for k, b in sums.items() if b.available or b.locked}
    core = s.balances()
    assert ledger == core
    for account in (0, WHALE, 9):
        own = await store.balances(account)
        assert {k: v for k, v in sums.items() if k[0] == account} == own
    # -external per asset is what came in less what went out, and everything sums to 0.
    external: defaultdict[str, int] = defaultdict(int)
    for (_, asset), b in sums.items():
        external[asset] -= b.external
    for asset in (BTC, ETH, USDT):
        assert external[asset] == (
            s.core.deposited.get(asset, 0)
            - s.core.withdrawn.get(asset, 0)
            - s.core.expensed.get(asset, 0)
        )
        assert (
            sum(b.available + b.locked + b.external for (_, a), b in sums.items() if a == asset)
            == 0
        )

    async with db.read() as session_:
        e = LedgerEntryRow
        legs = (await session_.execute(sa.select(e.seq, e.event_index, e.asset, e.amount))).all()
    per_event: defaultdict[tuple[int, int, str], int] = defaultdict(int)
    for seq, index, asset, amount in legs:
        assert amount != 0
        per_event[seq, index, asset] += amount
    assert set(per_event.values()) == {0}, "every event's legs sum to zero per asset"

    # Holds and orders agree with the core's open orders.
    holds = {h.order_id: h.amount for h in await store.holds()}
    assert holds == s.holds()
    async with db.read() as session_:
        orders = {o.id: o for o in await session_.scalars(sa.select(OrderRow))}
    for oid, open_order in s.core.orders.items():
        row = orders[oid]
        assert row.status in ("new", "partially_filled"), row.status
        assert row.locked == open_order.locked
        assert row.qty is not None and row.qty - row.filled_qty == open_order.qty
        assert row.price == open_order.price
    for sid, stop in s.core.stops.items():
        assert orders[sid].status == "untriggered"
        assert orders[sid].locked == stop.locked
    open_ids = set(s.core.orders) | set(s.core.stops)
    for oid, row in orders.items():
        if oid not in open_ids:
            assert row.status in ("filled", "cancelled"), (oid, row.status)
            assert row.locked == 0
        else:
            assert row.status in OPEN_STATUSES
    accepted = {e.id for e in s.events() if isinstance(e, OrderAccepted)}
    assert set(orders) == accepted

    # Fills and the tape agree with the Trade events.
    trades = [e for e in s.events() if isinstance(e, Trade)]
    tape = [*await store.list_trades(BTC_USDT, limit=10**6)]
    tape += await store.list_trades(ETH_USDT, limit=10**6)
    assert len(tape) == len(trades)
    async with db.read() as session_:
        n_fills = await session_.scalar(sa.select(sa.func.count()).select_from(FillRow))
        per_order = sa.select(FillRow.order_id, sa.func.sum(FillRow.qty)).group_by(FillRow.order_id)
        filled = {oid: int(total) for oid, total in await session_.execute(per_order)}
    assert n_fills == 2 * len(trades)
    assert filled == {oid: row.filled_qty for oid, row in orders.items() if row.filled_qty}


def assert_session_is_rich(s: Session) -> None:
    """The random session exercises every kind of balance change."""
    kinds: defaultdict[type, int] = defaultdict(int)
    for e in s.events():
        kinds[type(e)] += 1
    assert kinds[Trade] > 300
    assert kinds[OrderReleased] > 40
    assert kinds[OrderAmended] > 50
    assert kinds[OrderTriggered] > 5
    assert kinds[OrderCancelled] > 200
    for kind in (WithdrawalHeld, WithdrawalReleased, WithdrawalSettled, Transferred, ExpensePaid):
        assert kinds[kind] > 3, kind
    reasons = {e.reason for e in s.events() if isinstance(e, OrderCancelled)}
    assert {"user", "ioc", "market_remainder", "expired"} <= reasons
    assert any(isinstance(e, Trade) and e.maker_user == e.taker_user for e in s.events())


# -- tests ----------------------------------------------------------------------------

LEDGER_SEED, LEDGER_N = 20_261_129, 3_000


@pytest.mark.asyncio
async def test_sql_ledger_equals_core_balances_after_random_session(db: Database) -> None:
    s = session(LEDGER_SEED, LEDGER_N, big=True)
    assert_session_is_rich(s)
    runner = runner_for(db)
    rng = random.Random(1)
    for chunk in chunks(s.batches[:200], rng, most=1):  # one command per transaction
        await runner.apply_batches(chunk)
    for chunk in chunks(s.batches[200:], rng):
        await runner.apply_batches(chunk)
    await assert_projections_match_core(db, s)
    assert max(a for a, _ in s.balances().values()) > 2**62, "amounts near the 63-bit bound"


@pytest.mark.asyncio
async def test_feeding_the_same_batches_again_changes_nothing(db: Database) -> None:
    s = session(7, 800)
    runner = runner_for(db)
    for chunk in chunks(s.batches, random.Random(2)):
        await runner.apply_batches(chunk)
    before = await dump(db)
    assert len(before["ledger_entries"]) > 1000

    await runner.apply_batches(s.batches)  # all at once
    for chunk in chunks(s.batches, random.Random(3), most=200):  # other chunks
        await runner.apply_batches(chunk)
    for batch in s.batches[-50:]:  # one by one, through the per-command API
        await runner.apply_batch(batch.seq, batch.ts, batch.events)
    fresh = runner_for(db)  # new instances, no cache
    await fresh.apply_batches(s.batches[100:300])
    assert await fresh.catch_up(s.batches) == s.batches[-1].seq
    assert await dump(db) == before
    await assert_projections_match_core(db, s)


@pytest.mark.asyncio
async def test_a_hole_in_the_seqs_is_an_error_that_writes_nothing(db: Database) -> None:
    s = session(7, 800)
    runner = runner_for(db)
    await runner.apply_batches(s.batches[:100])
    before = await dump(db)
    with pytest.raises(SeqGap) as gap:
        await runner.apply_batches(s.batches[101:150])
    assert (gap.value.offset, gap.value.seq) == (100, 102)
    with pytest.raises(SeqGap):  # a hole inside the run, not at its start
        await runner.apply_batches([*s.batches[100:120], *s.batches[121:130]])
    assert await dump(db) == before
    assert await runner.offsets() == {"ledger": 100, "orders": 100, "trades": 100}


class Crash(Exception):
    """A simulated crash: the process dies where this is raised."""


class CrashingStore:
    """A store whose next transactions of the named projectors die just before their
    commit, after every row was written: the database must roll all of them back."""

    def __init__(self, store: SqlProjectionStore, crash: set[str]) -> None:
        self._store = store
        self.crash = crash

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @asynccontextmanager
    async def transaction(self, name: str) -> AsyncIterator[Any]:
        async with self._store.transaction(name) as tx:
            yield tx
            if name in self.crash:
                raise Crash(name)


async def reference_dump(tmp_path: Path, s: Session) -> dict[str, list[tuple[Any, ...]]]:
    """The tables after an uninterrupted run (on a scratch SQLite file)."""
    async with sqlite_database(tmp_path / "reference.db") as ref:
        await runner_for(ref).apply_batches(s.batches)
        return await dump(ref)


@pytest.mark.asyncio
async def test_restart_between_batches_resumes_exactly(database_url: str, tmp_path: Path) -> None:
    s = session(11, 1_000)
    expected = await reference_dump(tmp_path, s)
    batches = s.batches
    cut = 437
    db = await open_database(database_url)
    try:
        await runner_for(db).apply_batches(batches[:cut])
    finally:
        await db.dispose()  # the process dies between two batches
    db = await open_database(database_url)
    try:
        runner = runner_for(db)
        assert await runner.offsets() == dict.fromkeys(("ledger", "orders", "trades"), cut)
        # The bus redelivers from an earlier point; the projectors skip what they have.
        for chunk in chunks(batches[cut - 50 :], random.Random(4)):
            await runner.apply_batches(chunk)
        assert await dump(db) == expected
        await assert_projections_match_core(db, s)
    finally:
        await db.dispose()


@pytest.mark.asyncio
async def test_crash_before_commit_and_one_projector_behind(db: Database, tmp_path: Path) -> None:
    s = session(11, 1_000)
    expected = await reference_dump(tmp_path, s)
    batches = s.batches
    store = SqlProjectionStore(db)
    crashing = CrashingStore(store, {"ledger", "orders", "trades"})
    runner = projectors(crashing)
    crashing.crash = set()
    await runner.apply_batches(batches[:300])
    before = await dump(db)

    # Every projector dies before committing: nothing of the batch is left anywhere.
    crashing.crash = {"ledger", "orders", "trades"}
    with pytest.raises(Crash):
        await runner.apply_batches(batches[300:500])
    assert await dump(db) == before

    # Only the ledger dies: the others commit, the ledger stays at 300.
    crashing.crash = {"ledger"}
    with pytest.raises(Crash):
        await runner.apply_batches(batches[300:500])
    crashing.crash = set()
    assert await runner.offsets() == {"ledger": 300, "orders": 500, "trades": 500}
    # The next live batches find the ledger behind: a gap, and nothing written for it...
    with pytest.raises(SeqGap):
        await runner.apply_batches(batches[500:510])
    assert await runner.offsets() == {"ledger": 300, "orders": 510, "trades": 510}
    # ...until it catches up from the journal (here: the batches), after which all agree.
    assert await runner.catch_up(batches) == batches[-1].seq
    assert await dump(db) == expected
    await assert_projections_match_core(db, s)


@pytest.mark.asyncio
async def test_one_shared_transaction_per_chunk_and_one_by_one_after_a_failure(
    db: Database, tmp_path: Path
) -> None:
    """With ``transaction=db.one_transaction`` (the projector process), the projectors
    of a chunk commit together, once; when one fails, nothing of the shared attempt is
    left and the chunk is applied one transaction per projector, as without it."""
    s = session(11, 1_000)
    expected = await reference_dump(tmp_path, s)
    batches = s.batches
    crashing = CrashingStore(SqlProjectionStore(db), set())
    runner = ProjectorRunner(
        [LedgerProjector(crashing), OrdersProjector(crashing), TradesProjector(crashing)],
        transaction=lambda: shared_projection_transaction(db, NAMES),
    )
    commits = 0
    offset_statements: list[str] = []

    def count(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if "projector_offsets" in sql:
            offset_statements.append("write" if "INSERT" in sql else sql.split()[0].upper())

    sa.event.listen(db.engine.sync_engine, "commit", count)
    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", statement)
    try:
        await runner.apply_batches(batches[:300])
        assert commits == 1
        # the three offsets: read with one SELECT, stored with one upsert (ADR 0044)
        assert offset_statements == ["SELECT", "write"]
    finally:
        sa.event.remove(db.engine.sync_engine, "commit", count)
        sa.event.remove(db.engine.sync_engine, "before_cursor_execute", statement)
    before = await dump(db)

    # the ledger dies before its commit: the shared attempt leaves nothing, then the
    # others commit on their own and the ledger stays behind
    crashing.crash = {"ledger"}
    with pytest.raises(Crash):
        await runner.apply_batches(batches[300:500])
    assert runner.shared_failures == 1
    crashing.crash = set()
    assert await runner.offsets() == {"ledger": 300, "orders": 500, "trades": 500}
    assert len((await dump(db))["ledger_entries"]) == len(before["ledger_entries"])
    with pytest.raises(SeqGap):
        await runner.apply_batches(batches[500:510])
    assert await runner.offsets() == {"ledger": 300, "orders": 510, "trades": 510}
    assert await runner.catch_up(batches) == batches[-1].seq
    assert await dump(db) == expected
    await assert_projections_match_core(db, s)


NAMES = ("ledger", "orders", "trades")


@pytest.mark.asyncio
async def test_shared_offsets_refuse_to_go_backwards_and_roll_everything_back(
    db: Database, tmp_path: Path
) -> None:
    """In the shared transaction an offset still only moves forward: moving one back
    (in memory, or against a row changed behind the shared read) raises
    ``OffsetWentBackwards`` and nothing of the transaction is committed."""
    s = session(12, 300)
    runner = ProjectorRunner(
        sql_projectors(db), transaction=lambda: shared_projection_transaction(db, NAMES)
    )
    await runner.apply_batches(s.batches[:100])
    before = await dump(db)

    async def project_then(tamper: str) -> None:
        async with shared_projection_transaction(db, NAMES), db.write() as session:
            for p in runner.projectors:
                await p.apply(s.batches[100:200])
            if tamper == "memory":
                await advance_offset(session, "orders", 150, TS0)
            else:  # another writer's row, ahead of what the shared read saw
                await session.execute(
                    sa.update(ProjectorOffsetRow)
                    .where(ProjectorOffsetRow.name == "trades")
                    .values(last_seq=10_000)
                )

    for tamper in ("memory", "row"):
        with pytest.raises(OffsetWentBackwards):
            await project_then(tamper)
        assert await dump(db) == before
        assert await SqlProjectionStore(db).offsets() == dict.fromkeys(NAMES, 100)
    # a fresh runner (no caches) goes on where the committed offsets are
    fresh = ProjectorRunner(
        sql_projectors(db), transaction=lambda: shared_projection_transaction(db, NAMES)
    )
    await fresh.apply_batches(s.batches[100:])
    assert fresh.shared_failures == 0
    assert await dump(db) == await reference_dump(tmp_path, s)


@pytest.mark.asyncio
async def test_two_processes_sharing_offsets_apply_each_chunk_once(
    database_url: str, tmp_path: Path
) -> None:
    """Two projector processes (two engines) feeding the same chunks at once: the shared
    read of the offsets serialises them (``FOR UPDATE`` on PostgreSQL, ``BEGIN
    IMMEDIATE`` on SQLite), so every event is applied once and no transaction fails."""
    s = session(13, 600)
    first, second = await open_database(database_url), await open_database(database_url)
    try:
        runners = [
            ProjectorRunner(
                sql_projectors(d), transaction=partial(shared_projection_transaction, d, NAMES)
            )
            for d in (first, second)
        ]
        await runners[0].apply_batches(s.batches[:20])  # the offset rows exist
        for start in range(20, len(s.batches), 100):
            chunk = s.batches[start : start + 100]
            await asyncio.gather(*(r.apply_batches(chunk) for r in runners))
        assert [r.shared_failures for r in runners] == [0, 0]
        assert await dump(first) == await reference_dump(tmp_path, s)
        await assert_projections_match_core(first, s)
    finally:
        await first.dispose()
        await second.dispose()


def write_journal(data_dir: Path, commands: Sequence[AnyCommand], snapshot_every: int) -> Core:
    jcore = JournaledCore(data_dir, snapshot_every=snapshot_every)
    try:
        for i, cmd in enumerate(commands):
            jcore.submit(cmd)
            if i % 37 == 0:
                jcore.flush()
        jcore.flush()
        return jcore.core
    finally:
        jcore.close()


def test_journal_replay_regenerates_the_published_events(tmp_path: Path) -> None:
    s = session(11, 1_000)
    write_journal(tmp_path, s.commands, snapshot_every=300)
    assert len(list(tmp_path.glob("snapshot-*.tws"))) == 3
    assert list(journal_batches(tmp_path)) == s.batches
    # Replays start from the newest snapshot at or before the first seq wanted.
    assert list(journal_batches(tmp_path, after=950, until=1_000)) == s.batches[950:1_000]
    assert list(journal_batches(tmp_path, after=700)) == s.batches[700:]
    assert list(journal_batches(tmp_path, after=120)) == s.batches[120:]


@pytest.mark.asyncio
async def test_catch_up_from_the_journal(db: Database, tmp_path: Path) -> None:
    s = session(11, 1_000)
    data_dir = tmp_path / "data"
    write_journal(data_dir, s.commands, snapshot_every=250)
    runner = runner_for(db)
    await runner.apply_batches(s.batches[:640])  # behind; replay starts at a snapshot
    assert await runner.catch_up(data_dir, until_seq=800) == 800
    assert await runner.catch_up(data_dir) == s.batches[-1].seq
    assert await runner.catch_up(data_dir) == s.batches[-1].seq  # nothing more to do
    await assert_projections_match_core(db, s)


@pytest.mark.asyncio
async def test_background_feeding_from_the_core_runner(db: Database, tmp_path: Path) -> None:
    """The runtime wiring: catch up, then the core runner publishes into the projector
    runner; a projector behind the live stream (events published while nobody
    listened) is caught up from the journal on its own."""
    s = session(13, 600)
    data_dir = tmp_path / "data"
    head = len(s.commands) // 3
    write_journal(data_dir, s.commands[:head], snapshot_every=10**6)  # nobody listened

    jcore = JournaledCore(data_dir)
    runner = ProjectorRunner(runner_for(db).projectors, journal_dir=data_dir, max_chunk=64)
    runner.start()
    stamps = iter([c.ts for c in s.commands[head:]])  # the session's ts, in order
    core_runner = CoreRunner(jcore, clock_ms=lambda: next(stamps), publish=runner.publish)
    core_runner.start()
    try:
        tail = [msgspec.structs.replace(c, seq=0) for c in s.commands[head:]]
        for i in range(0, len(tail), 25):
            # Submitted together: they share group commits; ts are the session's.
            group = [core_runner.submit(c) for c in tail[i : i + 25]]
            applied = await asyncio.gather(*group)
            assert [a.seq for a in applied] == [c.seq for c in s.commands[head + i : head + i + 25]]
        await asyncio.wait_for(runner.wait_for(s.batches[-1].seq), 30)
        assert runner.failed is None
    finally:
        await core_runner.stop()
        await runner.stop()
    assert jcore.core.state_hash() == s.core.state_hash()
    await assert_projections_match_core(db, s)
