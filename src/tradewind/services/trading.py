"""Trading: turns a client's intent into core commands and the core's answer into views.

Invariants:
- every change goes through the :class:`CommandBus` (the core runner in embedded mode,
  the bus in distributed mode) and is reported only after the bus answered, i.e. after
  the command is durable; nothing here touches balances or books itself;
- a command the core rejected raises :class:`CoreRejected` carrying the core's stable
  ``reason`` (and ``filter``), and changed nothing;
- when the core cannot be reached the caller gets :class:`CoreUnavailable` at once,
  and :class:`CoreTimeout` (outcome unknown) after the bus's deadline, never a hang;
- reads after a user's own command see it (read-your-writes): a read waits, briefly,
  until the history has applied the seq of that user's last acknowledged command (kept
  by a :class:`~tradewind.services.ports.WriteMarks`: in this process by default, shared
  by every API replica in distributed mode);
- with an :class:`~tradewind.services.open_orders.OpenOrderIndex` (embedded mode: fed
  by the core runner's publisher before the runner answers), cancels, amends and reads
  of one order are answered from it and never wait for the SQL history; an order the
  index does not know (closed long ago, someone else's, or none) goes the history's way;
  an index fed after the answers (an API replica's follower, ADR 0049) is read only
  once it has folded the seq the history would have been waited for (the user's last
  acknowledged command, or the command just answered), else the history answers; only
  a cancel's look-up of the order reads it as it is (what it needs never changes back);
- amounts are integers (ticks, lots, minor units); the gateways convert decimals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, Protocol, TypeVar

from tradewind.core.commands import (
    Amend,
    AnyCommand,
    Cancel,
    CancelAll,
    Deposit,
    OrderType,
    Place,
    Side,
    Stp,
    TimeInForce,
    Wallet,
)
from tradewind.core.events import Event, OrderCancelled, Rejected
from tradewind.services.errors import ServiceError
from tradewind.services.history import (
    OPEN_STATUSES,
    FillView,
    HistoryReader,
    OrderView,
    Page,
    order_from_events,
)
from tradewind.services.open_orders import FollowedOrderIndex, OpenOrderIndex
from tradewind.services.ports import WriteMarks


class AppliedCommand(Protocol):
    """What the bus answers: the stamped command and its events."""

    @property
    def seq(self) -> int: ...

    @property
    def ts(self) -> int: ...

    @property
    def command(self) -> AnyCommand: ...

    @property
    def events(self) -> list[Event]: ...


class OrderGuard(Protocol):
    """A check before an order command (place, amend) reaches the core: per-account
    order-rate limits, frozen accounts. Raises a ServiceError to refuse; cancels are
    never guarded (reducing risk is always allowed)."""

    async def check_order(self, user: int) -> None: ...


class CommandBus(Protocol):
    @property
    def available(self) -> bool:
        """False when a submit would fail at once (core stopped or failed)."""
        ...

    async def submit(self, cmd: AnyCommand) -> AppliedCommand:
        """Queue ``cmd``; return once it is durable and applied.

        Raises :class:`CoreUnavailable`, :class:`CoreTimeout` or :class:`InvalidCommand`."""
        ...


class CoreFailure(Exception):
    """The exchange, not the client, failed (5xx). Same shape as
    :class:`~tradewind.services.errors.ServiceError` (``code``, ``status_hint``,
    ``message``), kept apart because those are, by contract, what a client caused."""

    code: ClassVar[str] = "core_failure"
    status_hint: ClassVar[int] = 503
    default_message: ClassVar[str] = "the trading core failed"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class CoreUnavailable(CoreFailure):
    code = "core_unavailable"
    status_hint = 503
    default_message = "the trading core is not available; retry later"


class CoreTimeout(CoreFailure):
    code = "core_timeout"
    status_hint = 504
    default_message = (
        "the trading core did not answer in time; the command may still be applied, "
        "check your orders before retrying"
    )


class InvalidCommand(ServiceError):
    code = "invalid_order"
    status_hint = 400
    default_message = "the command is not valid"


class OrderNotFound(ServiceError):
    code = "unknown_order"
    status_hint = 404
    default_message = "no such order"


class OrderNotOpen(ServiceError):
    code = "order_not_open"
    status_hint = 409
    default_message = "the order is already filled or cancelled"


REJECTION_STATUS: dict[str, int] = {
    "unknown_order": 404,
    "unknown_symbol": 404,
    "duplicate_order_id": 409,
    "duplicate_client_id": 409,
    "not_amendable": 409,
    "symbol_halted": 409,
    "account_frozen": 403,  # the core's freeze (ADR 0031)
    # margin (docs/margin.md): a state to wait for, or a rule of the margin account
    "no_margin_wallet": 404,
    "margin_not_enabled": 409,
    "no_mark_price": 409,
    "no_index_price": 409,
    "pool_insufficient": 409,
    "borrow_limit_exceeded": 422,
    "below_initial_margin": 422,
    "repay_exceeds_debt": 422,
    "leverage_too_high": 422,
    "invalid_margin_terms": 422,
}
"""Suggested HTTP status of a core rejection reason; every other reason is 400 (the
request is well formed but the exchange's rules refuse it: ``insufficient_balance``,
``filter_violated``, ``post_only_would_take``, ``fok_not_fillable``, ``no_liquidity``,
``would_trigger_immediately``, ``invalid_order``, ``already_expired``, ...)."""


class CoreRejected(ServiceError):
    """The core refused the command; ``reason`` is its stable code (docs/core.md)."""

    code: ClassVar[str] = "rejected"
    default_message = "the core rejected the command"

    def __init__(
        self, reason: str = "rejected", message: str | None = None, filter: str | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.filter = filter

    @property
    def status(self) -> int:
        return REJECTION_STATUS.get(self.reason, 400)


def _rejection(events: Sequence[Event]) -> Rejected | None:
    for e in events:
        if type(e) is Rejected:
            return e
    return None


class LocalWriteMarks:
    """:class:`~tradewind.services.ports.WriteMarks` of one process."""

    def __init__(self) -> None:
        self._last: dict[int, int] = {}

    async def note(self, user: int, seq: int) -> None:
        if seq > self._last.get(user, 0):
            self._last[user] = seq

    async def last(self, user: int) -> int:
        return self._last.get(user, 0)


class TradingService:
    """Places, amends and cancels orders and credits demo funds, through the bus."""

    def __init__(
        self,
        bus: CommandBus,
        history: HistoryReader,
        *,
        read_wait_s: float = 2.0,
        index_wait_s: float = 0.5,
        marks: WriteMarks | None = None,
        open_orders: OpenOrderIndex | None = None,
        guards: Sequence[OrderGuard] = (),
        wallets: Callable[[int], Sequence[int]] | None = None,
    ) -> None:
        """``wallets(user)``: the account ids of the user's margin wallets (where known),
        so one order of a wallet is read, amended and cancelled through the user's own
        order routes (the core accepts the owner's cancel and amend). ``index_wait_s``:
        how long a read waits for a :class:`FollowedOrderIndex` (an API replica's)
        to catch up before asking the history."""
        self._wallets = wallets
        self._bus = bus
        self._guards = tuple(guards)
        self._history = history
        self._index = open_orders
        self._read_wait_s = read_wait_s
        self._index_wait_s = index_wait_s
        self._marks: WriteMarks = marks if marks is not None else LocalWriteMarks()

    @property
    def available(self) -> bool:
        return self._bus.available

    @property
    def history(self) -> HistoryReader:
        return self._history

    async def _submit(self, user: int, cmd: AnyCommand) -> AppliedCommand:
        if not self._bus.available:
            raise CoreUnavailable()
        applied = await self._bus.submit(cmd)
        await self._marks.note(user, applied.seq)
        rejected = _rejection(applied.events)
        if rejected is not None:
            raise CoreRejected(rejected.reason, rejected.message, rejected.filter)
        return applied

    @property
    def marks(self) -> WriteMarks:
        return self._marks

    async def caught_up(self, user: int) -> None:
        """Wait (at most ``read_wait_s``) until the history shows ``user``'s last
        acknowledged command."""
        seq = await self._marks.last(user)
        if seq:
            await self._history.wait_for(seq, self._read_wait_s)

    async def _caught_up(self, user: int) -> None:
        await self.caught_up(user)

    # -- commands ---------------------------------------------------------------------

    async def place(
        self,
        user: int,
        symbol: str,
        side: Side,
        type: OrderType = "limit",
        *,
        price: int | None = None,
        qty: int | None = None,
        quote_qty: int | None = None,
        tif: TimeInForce = "GTC",
        expire_ts: int | None = None,
        stop_price: int | None = None,
        post_only: bool = False,
        display_qty: int | None = None,
        stp: Stp = "cancel_taker",
        client_id: str | None = None,
        wallet: Wallet = "spot",
        auto_borrow: bool = False,
        auto_repay: bool = False,
    ) -> OrderView:
        """Place an order; returns it as the placing command left it. ``wallet``
        ``cross``/``isolated`` places from a margin wallet (docs/margin.md)."""
        for guard in self._guards:
            await guard.check_order(user)
        cmd = Place(
            id=0,
            user=user,
            symbol=symbol,
            side=side,
            type=type,
            price=price,
            qty=qty,
            quote_qty=quote_qty,
            tif=tif,
            expire_ts=expire_ts,
            post_only=post_only,
            stop_price=stop_price,
            display_qty=display_qty,
            stp=stp,
            client_id=client_id,
            wallet=wallet,
            auto_borrow=auto_borrow,
            auto_repay=auto_repay,
        )
        applied = await self._submit(user, cmd)
        command = applied.command
        order_id = command.id if isinstance(command, Place) else applied.seq
        view = order_from_events(order_id, applied.seq, applied.ts, applied.events)
        if view is None:  # cannot happen: an accepted place always has OrderAccepted
            raise InvalidCommand("the core accepted the order but reported no order")
        return view

    async def _submit_on_open(self, user: int, order_id: int, cmd: AnyCommand) -> AppliedCommand:
        """Submit a command about an order the history showed open. If the core no
        longer knows it, a fill or cancel got there first: 409, not 404."""
        try:
            return await self._submit(user, cmd)
        except CoreRejected as e:
            if e.reason == "unknown_order":
                raise OrderNotOpen(f"order {order_id} was filled or cancelled meanwhile") from e
            raise

    async def _open_order(self, user: int, order_id: int) -> OrderView:
        """The order as last seen (index first, then history); raises 404 if ``user``
        has no such order, 409 if it is closed."""
        order = await self.get_order(user, order_id)
        if order is None:
            raise OrderNotFound()
        if order.status not in OPEN_STATUSES:
            raise OrderNotOpen(f"order {order_id} is {order.status}")
        return order

    async def _after(self, user: int, order_id: int, seq: int, before: OrderView) -> OrderView:
        """The order's view once the command ``seq`` about it was applied."""
        after = await self._indexed(user, order_id, seq)
        if after is not None:
            return after
        await self._history.wait_for(seq, self._read_wait_s)
        for account in self._accounts(user):
            found = await self._history.get_order(account, order_id)
            if found is not None:
                return found
        return before

    def _held(self, user: int, order_id: int) -> OrderView | None:
        """The order's view in the index as it is (None: no index, or not there)."""
        index = self._index
        if index is None:
            return None
        for account in self._accounts(user):
            found = index.find(account, order_id)
            if found is not None:
                return found
        return None

    async def _indexed(self, user: int, order_id: int, seq: int = 0) -> OrderView | None:
        """The order from the index once it has folded ``seq`` (default: ``user``'s last
        acknowledged command), or None: no index, not known there, or not caught up
        within ``index_wait_s`` (then the history answers)."""
        index = self._index
        if index is None:
            return None
        if isinstance(index, FollowedOrderIndex):  # fed after the answers: may lag
            if not seq:
                seq = await self._marks.last(user)
            if seq and not await index.reached(seq, self._index_wait_s):
                return None
        return self._held(user, order_id)

    def _accounts(self, user: int) -> list[int]:
        """The user's account and, after it, their margin wallets' accounts."""
        return [user, *(self._wallets(user) if self._wallets is not None else ())]

    async def cancel(self, user: int, order_id: int) -> OrderView:
        # A cancel needs the order's owner and symbol, which never change, and whether it
        # is closed, which never changes back: whatever view the index holds will do,
        # without waiting for it to catch up (an order closed meanwhile is the core's to
        # refuse: 409 as well). Only an order it does not hold takes the reading way.
        order = self._held(user, order_id)
        if order is None:
            order = await self._open_order(user, order_id)
        elif order.status not in OPEN_STATUSES:
            raise OrderNotOpen(f"order {order_id} is {order.status}")
        applied = await self._submit_on_open(
            user, order_id, Cancel(id=order_id, user=user, symbol=order.symbol)
        )
        return await self._after(user, order_id, applied.seq, order)

    async def cancel_all(self, user: int, symbol: str | None = None) -> list[int]:
        """Cancel every open order (of one symbol if given); returns the cancelled ids."""
        applied = await self._submit(user, CancelAll(user=user, symbol=symbol))
        mine = set(self._accounts(user))  # the core cancels the user's wallets' orders too
        return [
            e.id
            for e in applied.events
            if type(e) is OrderCancelled and e.user in mine and e.reason == "user"
        ]

    async def amend(
        self, user: int, order_id: int, *, price: int | None = None, qty: int | None = None
    ) -> OrderView:
        """Change an open order's price and/or open quantity (``qty`` = new open
        quantity; omitted: the open quantity as last seen)."""
        for guard in self._guards:
            await guard.check_order(user)
        order = await self._open_order(user, order_id)
        new_qty = qty if qty is not None else order.open_qty
        if new_qty <= 0:
            raise CoreRejected("not_amendable", "the order has no open quantity to amend")
        cmd = Amend(id=order_id, user=user, symbol=order.symbol, qty=new_qty, price=price)
        applied = await self._submit_on_open(user, order_id, cmd)
        return await self._after(user, order_id, applied.seq, order)

    async def deposit(self, user: int, asset: str, amount: int) -> int:
        """Credit ``amount`` minor units (the demo faucet); returns the command's seq."""
        applied = await self._submit(user, Deposit(user=user, asset=asset, amount=amount))
        return applied.seq

    # -- reads ------------------------------------------------------------------------

    async def get_order(self, user: int, order_id: int) -> OrderView | None:
        """The user's order, or one of their margin wallets' (docs/margin.md)."""
        found = await self._indexed(user, order_id)
        if found is not None:
            return found
        await self._caught_up(user)
        for account in self._accounts(user):
            got = await self._history.get_order(account, order_id)
            if got is not None:
                return got
        return None

    async def list_orders(
        self,
        user: int,
        *,
        symbol: str | None = None,
        statuses: frozenset[str] | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Page[OrderView]:
        await self._caught_up(user)
        pages = [
            await self._history.list_orders(
                account, symbol=symbol, statuses=statuses, limit=limit, before=before
            )
            for account in self._accounts(user)
        ]
        return _merged(pages, limit)

    async def list_fills(
        self,
        user: int,
        *,
        symbol: str | None = None,
        order_id: int | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Page[FillView]:
        await self._caught_up(user)
        pages = [
            await self._history.list_fills(
                account, symbol=symbol, order_id=order_id, limit=limit, before=before
            )
            for account in self._accounts(user)
        ]
        return _merged(pages, limit)


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


P = TypeVar("P", bound=_HasId)


def _merged(pages: list[Page[P]], limit: int) -> Page[P]:
    """One page, newest first, of several accounts' pages (the user's and their margin
    wallets'): ids are global, so the ``limit`` highest of the pages' items are the
    page's, and its cursor is the last one's id when any account has more."""
    if len(pages) == 1:
        return pages[0]
    items = sorted((x for p in pages for x in p.items), key=lambda x: x.id, reverse=True)
    more = len(items) > limit or any(p.next_cursor is not None for p in pages)
    page = items[:limit]
    return Page(page, page[-1].id if more and page else None)
