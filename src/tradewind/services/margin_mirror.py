"""Margin figures where the core is not in the process (distributed API replicas, ADR 0033).

The core process publishes the *inputs* of the figures (not the figures: a mark moves
every indebted wallet's level, and recomputing them all per mark would cost the core
O(wallets)); a replica rebuilds a scratch :class:`~tradewind.core.engine.Core` holding
just those inputs and reads it through :class:`~.margin_state.CoreMarginState`, i.e. the
core's own ``wallet_view``/``max_borrowable``/``values``/``trigger``. So a replica shows
exactly what the embedded service shows for the same state.

Inputs (msgpack):
- *globals*: the valuation asset, borrowable assets' terms, margin symbols' and cross
  terms, marks, the margin symbols' market parameters (base, quote, base decimals, tick,
  lot) and the lending pool's cash per asset; while a fee tier has a leverage cap, the
  caps and the fee tiers of the wallets that have one (``tier`` events republish them);
- one *row* per wallet: ``[wallet, user, kind, symbol, called, loans, balances]``.

Invariants:
- :class:`MarginPublisher` publishes, after group commits, the globals when they changed
  and every wallet whose row changed (wallets are found from the events: margin events'
  ``wallet``, order and trade events whose account is a wallet), coalesced per wallet,
  labelled with the seq of the last batch whose events it has taken in: every change up
  to that seq is in what it wrote (a row may be newer, never older). Its first round
  after :meth:`MarginPublisher.start_at` rewrites everything (a restarted core or a
  standby replaces what a previous core wrote, even state of a group that never became
  durable);
- :class:`MirroredMarginState` answers only from a snapshot read in one Redis
  transaction (globals and the user's rows together), after waiting (briefly) until
  the published seq reaches the user's last acknowledged command (read-your-writes);
- embedded mode does not use this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import structlog

from tradewind.core import margin_ops as M
from tradewind.core.engine import Core
from tradewind.core.events import (
    Event,
    MarginAssetSet,
    MarginCrossSet,
    MarginSymbolSet,
    MarginTierSet,
    MarkPrice,
    PoolFunded,
    TierSet,
    Trade,
)
from tradewind.core.margin import FIRST_WALLET, POOL_ACCOUNT
from tradewind.core.symbols import Market
from tradewind.services.margin import (
    MarginConfig,
    MarginUnavailable,
    WalletState,
)
from tradewind.services.margin_state import CoreMarginState

log = structlog.get_logger(__name__)

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode

_GLOBAL_EVENTS: frozenset[type] = frozenset(
    {MarkPrice, MarginAssetSet, MarginSymbolSet, MarginCrossSet, MarginTierSet, TierSet, PoolFunded}
)


# -- inputs from a core ------------------------------------------------------------------


def globals_of(core: Core) -> dict[str, Any]:
    """What every wallet's figures share: terms, marks, markets, pool cash."""
    m = core.margin
    markets = []
    for sym in sorted(m.symbols):
        mk = core.markets[sym]
        markets.append([sym, mk.base, mk.quote, mk.base_decimals, mk.tick_size, mk.lot_size])
    pool = core.accounts.get(POOL_ACCOUNT, {})
    glob: dict[str, Any] = {
        "on": m.on,
        "valuation": m.valuation,
        "assets": sorted([a, r, lim] for a, (r, lim) in m.assets.items()),
        "symbols": sorted([s, *t.row()] for s, t in m.symbols.items()),
        "cross": None if m.cross is None else m.cross.row(),
        "marks": sorted([s, p] for s, p in m.marks.items()),
        "markets": markets,
        "pool": sorted([a, b.available] for a, b in pool.items()),
    }
    if m.tier_caps:  # only then: the fee tiers of wallets (few: most users are tier 0)
        glob["tier_caps"] = sorted([t, lev] for t, lev in m.tier_caps.items())
        glob["wallet_tiers"] = sorted([a, t] for a, t in core.user_tiers.items() if a < 0)
    return glob


def wallet_row(core: Core, wid: int) -> list[Any]:
    """One wallet's inputs: ``[wallet, user, kind, symbol, called, loans, balances]``."""
    w = core.margin.wallets[wid]
    acct = core.accounts.get(wid, {})
    return [
        wid,
        w.user,
        w.kind,
        w.symbol,
        w.called,
        sorted([a, x.principal, x.interest] for a, x in w.loans.items()),
        sorted([a, b.available, b.locked] for a, b in acct.items() if b.available or b.locked),
    ]


def scratch_core(glob: dict[str, Any], rows: Iterable[list[Any]]) -> Core:
    """A core holding only ``glob`` and the wallets ``rows``: enough for the core's own
    margin views (``margin_ops.restore`` rebuilds the trigger entries)."""
    core = Core()
    for sym, base, quote, decimals, tick, lot in glob["markets"]:
        core.assets[base] = decimals
        core.markets[sym] = Market(sym, base, quote, decimals, tick, lot)
    for asset, amount in glob["pool"]:
        core._bal(POOL_ACCOUNT, asset).available = amount
    if not glob["on"]:
        return core
    for wid, tier in glob.get("wallet_tiers", ()):
        core.user_tiers[wid] = tier
    wallets = []
    for wid, user, kind, symbol, called, loans, balances in rows:
        for asset, available, locked in balances:
            b = core._bal(wid, asset)
            b.available, b.locked = available, locked
        wallets.append([wid, user, kind, symbol, called, loans])
    M.restore(
        core,
        {
            "valuation": glob["valuation"],
            "assets": glob["assets"],
            "symbols": glob["symbols"],
            "cross": glob["cross"],
            "marks": glob["marks"],
            "wallets": wallets,
            "next_wallet": FIRST_WALLET,
            "next_order": 1,
            "funded": [],
            "interest": [],
            "losses": [],
            "hour": 0,
            "tier_caps": glob.get("tier_caps", []),
        },
    )
    return core


def _touched(events: Sequence[Event], wallets: set[int]) -> bool:
    """Adds the wallets ``events`` may have changed; True when the globals may have."""
    glob = False
    for e in events:
        t = type(e)
        if t is Trade:
            if e.maker_user <= FIRST_WALLET:  # type: ignore[attr-defined]
                wallets.add(e.maker_user)  # type: ignore[attr-defined]
            if e.taker_user <= FIRST_WALLET:  # type: ignore[attr-defined]
                wallets.add(e.taker_user)  # type: ignore[attr-defined]
            continue
        if t in _GLOBAL_EVENTS:
            glob = True
        w = getattr(e, "wallet", None)
        if type(w) is int and w <= FIRST_WALLET:
            wallets.add(w)
            glob = True  # borrows, repays and liquidations move pool cash
        u = getattr(e, "user", None)
        if type(u) is int and u <= FIRST_WALLET:
            wallets.add(u)
    return glob


# -- the core side -------------------------------------------------------------------------


class MarginSink(Protocol):
    """Where the inputs go (Redis in distributed mode)."""

    async def write(
        self,
        seq: int,
        glob: bytes | None,
        rows: dict[int, dict[int, bytes]],
        marks_moved: bool,
    ) -> None:
        """One atomic update: the seq, the globals (when given), each user's changed
        rows (user -> wallet -> row), and a change notice naming those users."""
        ...

    async def rewrite(self, seq: int, glob: bytes, rows: dict[int, dict[int, bytes]]) -> None:
        """Replace everything: the globals, and exactly these users' rows."""
        ...


class MarginPublisher:
    """A fan-out consumer of the core process: publishes the margin inputs that changed
    (see the module's invariants). ``run`` is its task."""

    def __init__(
        self,
        core: Callable[[], Core | None],
        sink: MarginSink,
        *,
        durable_seq: Callable[[], int] | None = None,
        seq_interval_s: float = 0.02,
        durable_wait_s: float = 0.02,
    ) -> None:
        self._core = core
        self._sink = sink
        self._durable = durable_seq
        self._seq_interval_s = seq_interval_s
        self._durable_wait_s = durable_wait_s
        self._pending: list[tuple[int, list[Event]]] = []
        self._wake = asyncio.Event()
        self._seq = 0
        self._written_seq = -1
        self._full = True
        self._glob: bytes | None = None
        self._rows: dict[int, bytes] = {}
        # wallets last published with a margin call: a mark may clear it without an
        # event naming the wallet (the core's ``_uncall``), so they are re-checked
        self._called: set[int] = set()
        self.rounds = 0

    def start_at(self, seq: int) -> None:
        """The core's state is at ``seq`` (after recovery): the first round rewrites it."""
        self._seq = seq
        self._full = True
        self._wake.set()

    def publish(self, seq: int, ts: int, events: list[Event]) -> None:
        """The fan-out consumer: cheap (the scan is done by :meth:`run`)."""
        self._pending.append((seq, events))
        self._wake.set()

    async def run(self) -> None:
        last_write = 0.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                pending, self._pending = self._pending, []
                wallets: set[int] = set()
                glob = False
                for seq, events in pending:
                    if seq > self._seq:
                        self._seq = seq
                    if _touched(events, wallets):
                        glob = True
                if self._full:
                    await self._rewrite()
                    self._full = False
                    last_write = time.monotonic()
                elif wallets or glob:
                    await self._write(wallets, glob)
                    last_write = time.monotonic()
                elif self._seq > self._written_seq:
                    # nothing of margin changed: only the seq advances, at a modest rate
                    wait = self._seq_interval_s - (time.monotonic() - last_write)
                    if wait > 0:
                        await asyncio.sleep(wait)
                    await self._sink.write(self._seq, None, {}, False)
                    self._written_seq = self._seq
                    last_write = time.monotonic()
                self.rounds += 1
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("margin figures not published; retrying", error=repr(e))
                self._full = True  # whatever was lost is rewritten
                await asyncio.sleep(0.5)
                self._wake.set()

    async def _durable_point(self, core: Core) -> None:
        """Prefer a state whose every command is durable (the runner applies the next
        group while the previous one's fsync runs); wait at most ``durable_wait_s``."""
        if self._durable is None:
            return
        deadline = time.monotonic() + self._durable_wait_s
        while core.seq > self._durable() and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    async def _rewrite(self) -> None:
        core = self._core()
        if core is None:
            raise MarginUnavailable("the trading core is starting")
        await self._durable_point(core)
        glob = _encode(globals_of(core))
        rows: dict[int, dict[int, bytes]] = {}
        sent: dict[int, bytes] = {}
        for n, wid in enumerate(list(core.margin.wallets)):
            if n % 1000 == 999:
                # the loop serves commands meanwhile: a row computed before a change is
                # written again by the round after (its events are pending)
                await asyncio.sleep(0)
            w = core.margin.wallets[wid]
            row = _encode(wallet_row(core, wid))
            rows.setdefault(w.user, {})[wid] = row
            sent[wid] = row
            if w.called:
                self._called.add(wid)
        seq = self._seq
        await self._sink.rewrite(seq, glob, rows)
        self._glob, self._rows, self._written_seq = glob, sent, seq
        log.info("margin figures published", seq=seq, wallets=len(sent))

    async def _write(self, wallets: set[int], glob_changed: bool) -> None:
        core = self._core()
        if core is None:
            raise MarginUnavailable("the trading core is starting")
        await self._durable_point(core)
        seq = self._seq
        glob: bytes | None = None
        marks = False
        if glob_changed and core.margin.on:
            new = _encode(globals_of(core))
            if new != self._glob:
                old = None if self._glob is None else _decode(self._glob)
                marks = old is None or old.get("marks") != _decode(new)["marks"]
                glob = new
        rows: dict[int, dict[int, bytes]] = {}
        wallet_map = core.margin.wallets
        if glob_changed:
            wallets = wallets | self._called
        for wid in sorted(wallets):
            w = wallet_map.get(wid)
            if w is None:
                continue
            row = _encode(wallet_row(core, wid))
            if self._rows.get(wid) != row:
                rows.setdefault(w.user, {})[wid] = row
            if w.called:
                self._called.add(wid)
            else:
                self._called.discard(wid)
        await self._sink.write(seq, glob, rows, marks)
        if glob is not None:
            self._glob = glob
        for user_rows in rows.values():
            self._rows.update(user_rows)
        self._written_seq = seq

    async def idle(self, timeout_s: float = 5.0) -> None:
        """Until everything handed in so far was written (tests, a clean stop)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            busy = self._pending or self._wake.is_set() or self._full
            if not busy and self._written_seq >= self._seq:
                return
            await asyncio.sleep(0.005)
        raise TimeoutError("margin publisher still busy")


# -- the replica side ------------------------------------------------------------------------


class MarginSource(Protocol):
    async def read(self, user: int | None) -> tuple[int, bytes | None, dict[int, bytes]]:
        """``(seq, globals, rows of user)`` read together (one transaction)."""
        ...


@dataclass
class _Snapshot:
    seq: int
    glob: dict[str, Any]
    rows: list[list[Any]]
    _core: Core | None = field(default=None, repr=False)

    def core(self) -> Core:
        if self._core is None:
            self._core = scratch_core(self.glob, self.rows)
        return self._core

    def reader(self) -> CoreMarginState:
        core = self.core()
        return CoreMarginState(lambda: core)


class MirroredMarginState:
    """:class:`~tradewind.services.margin.MarginStateReader` of a process without the
    core: figures from the published inputs (see the module). Reads are synchronous over
    the snapshot the last :meth:`prepare` loaded for that user (every route prepares
    first); ``max_users`` snapshots are kept."""

    def __init__(
        self,
        source: MarginSource,
        *,
        wait_s: float = 2.0,
        poll_s: float = 0.005,
        max_users: int = 10_000,
    ) -> None:
        self._source = source
        self._wait_s = wait_s
        self._poll_s = poll_s
        self._max_users = max_users
        self._global: _Snapshot | None = None
        self._users: OrderedDict[int, _Snapshot] = OrderedDict()
        self._owners: dict[int, int] = {}

    @property
    def available(self) -> bool:
        return True

    async def prepare(self, user: int | None, write_mark: Callable[[], Awaitable[int]]) -> None:
        """Load ``user``'s snapshot (the globals alone for ``None``), once the published
        seq reached their last acknowledged command (at most ``wait_s``)."""
        want = await write_mark()
        deadline = time.monotonic() + self._wait_s
        while True:
            seq, glob, rows = await self._source.read(user)
            if (glob is not None or want == 0) and seq >= want:
                break
            if time.monotonic() >= deadline:
                break  # stale rather than nothing (the seq check is read-your-writes)
            await asyncio.sleep(self._poll_s)
        if glob is None:
            raise MarginUnavailable("no margin figures published yet")
        snap = _Snapshot(seq, _decode(glob), [_decode(r) for _, r in sorted(rows.items())])
        if self._global is None or seq >= self._global.seq:
            self._global = _Snapshot(seq, snap.glob, [])
        if user is not None:
            self._users[user] = snap
            self._users.move_to_end(user)
            for row in snap.rows:
                self._owners[int(row[0])] = user
            while len(self._users) > self._max_users:
                self._users.popitem(last=False)

    async def prepare_many(self, users: Iterable[int]) -> None:
        async def zero() -> int:
            return 0

        for user in users:
            with contextlib.suppress(MarginUnavailable):
                await self.prepare(user, zero)

    def _snap(self, user: int) -> _Snapshot:
        snap = self._users.get(user)
        if snap is None:
            raise MarginUnavailable("margin figures not loaded")
        return snap

    def config(self) -> MarginConfig:
        if self._global is None:
            raise MarginUnavailable("no margin figures published yet")
        return self._global.reader().config()

    def wallets(self, user: int) -> list[WalletState]:
        return self._snap(user).reader().wallets(user)

    def wallet_ids(self, user: int) -> list[int]:
        snap = self._users.get(user)
        return [] if snap is None else [int(r[0]) for r in snap.rows]

    def owner(self, wallet: int) -> int | None:
        return self._owners.get(wallet)

    def max_borrowable(self, user: int, kind: str, symbol: str | None, asset: str) -> int:
        return self._snap(user).reader().max_borrowable(user, kind, symbol, asset)

    def max_transferable(self, user: int, kind: str, symbol: str | None, asset: str) -> int:
        return self._snap(user).reader().max_transferable(user, kind, symbol, asset)


def decode_notice(data: bytes) -> tuple[int, bool, list[int]]:
    """A change notice: ``(seq, marks moved, users whose rows changed)``."""
    seq, marks, users = _decode(data)
    return int(seq), bool(marks), [int(u) for u in users]


def encode_notice(seq: int, marks: bool, users: Iterable[int]) -> bytes:
    return _encode([seq, marks, sorted(users)])
