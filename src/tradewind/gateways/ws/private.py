"""Private WebSocket messages: the core's events of one command, turned into the order
updates, fills and balance notifications of the users they concern.

Invariants:
- a message is only ever addressed to a user the event names as the owner (``user``,
  ``maker_user``/``taker_user``, ``to`` of a transfer); nothing of one user reaches
  another, and the fee account (user 0) is never addressed; an order or fill of a
  margin wallet (an account < 0) goes to the wallet's owner with ``"wallet"`` set
  (``cross``/``isolated``), and a wallet's balances are not sent on ``balances`` (that
  channel is the spot account's; the ``margin`` channel carries wallets);
- per user and command, messages keep the order of the events, and the one ``balances``
  notification (the assets whose balance moved) comes after that command's orders and
  fills;
- amounts are built through the gateway's :class:`~tradewind.gateways.ws.format.Formatter`;
- the mapper follows every open order (side, type, filled quantity) whether or not its
  owner is connected, so a status is right when they connect later; an order it never
  saw accepted (a restart) is still reported, with the fields the event itself carries.

Statuses: ``new``, ``untriggered``, ``partially_filled``, ``filled``, ``cancelled``,
``expired``. A market order is complete when its command's events end (docs/core.md):
one bought by quote amount that spends its budget exactly ends with an ``event``
``"done"`` update (status ``filled``), every other order ends on the event that closes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from tradewind.core.events import (
    Deposited,
    Event,
    ExpensePaid,
    MarginWalletOpened,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderReleased,
    OrderTriggered,
    SymbolAdded,
    Trade,
    Transferred,
    WithdrawalHeld,
    WithdrawalReleased,
    WithdrawalSettled,
)
from tradewind.gateways.ws.format import Formatter, IntFormatter

BalanceLookup = Callable[[int, str], tuple[int, int] | None]
"""``(user, asset) -> (available, locked)`` in minor units, or ``None`` if unknown."""

AssetsOf = Callable[[str], tuple[str, str] | None]
"""``symbol -> (base, quote)``, or ``None`` if unknown."""


class PrivateMessage(NamedTuple):
    channel: str  # orders | fills | balances
    user: int
    data: dict[str, Any]


class _Tracked:
    __slots__ = (
        "buy",
        "client_id",
        "filled",
        "price",
        "qty",
        "quote_qty",
        "status",
        "stop_price",
        "symbol",
        "tif",
        "type",
        "user",
    )

    def __init__(self, e: OrderAccepted) -> None:
        self.user = e.user
        self.symbol = e.symbol
        self.buy = e.side == "buy"
        self.type = e.type
        self.tif = e.tif
        self.price = e.price
        self.stop_price = e.stop_price
        self.qty = e.qty
        self.quote_qty = e.quote_qty
        self.client_id = e.client_id
        self.filled = 0
        self.status = e.status


class PrivateMapper:
    """Stateful translation of core events into per-user messages."""

    def __init__(
        self,
        formatter: Formatter | None = None,
        balances: BalanceLookup | None = None,
        assets_of: AssetsOf | None = None,
    ) -> None:
        self.fmt: Formatter = formatter or IntFormatter()
        self.balances = balances
        self.assets_of = assets_of
        self._assets: dict[str, tuple[str, str]] = {}
        self._orders: dict[int, _Tracked] = {}
        # margin wallets (accounts < 0, docs/margin.md): wallet -> (owner, kind), learnt
        # from MarginWalletOpened; their order and fill messages go to the owner
        self._wallets: dict[int, tuple[int, str]] = {}

    def add_symbol(self, symbol: str, base: str, quote: str) -> None:
        self._assets[symbol] = (base, quote)

    def _pair(self, symbol: str) -> tuple[str, str] | None:
        pair = self._assets.get(symbol)
        if pair is None and self.assets_of is not None:
            pair = self.assets_of(symbol)
            if pair is not None:
                self._assets[symbol] = pair
        return pair

    @property
    def open_orders(self) -> int:
        return len(self._orders)

    def map(
        self, seq: int, ts: int, events: Sequence[Event], wants: Callable[[int], bool]
    ) -> list[PrivateMessage]:
        """The messages of one command's events for the users ``wants`` accepts (state
        is kept for everyone)."""
        out: list[PrivateMessage] = []
        touched: dict[int, dict[str, None]] = {}  # user -> assets, in first-touch order
        owner_wants = wants
        wallets = self._wallets

        def wants_account(account: int) -> bool:  # a wallet's messages are its owner's
            if account < 0:
                w = wallets.get(account)
                return w is not None and owner_wants(w[0])
            return owner_wants(account)

        wants = wants_account

        closing: list[int] = []
        quote_markets: list[int] = []
        orders = self._orders

        def touch(user: int, *assets: str) -> None:
            if user > 0 and wants(user):  # not the fee account, not a margin wallet
                d = touched.setdefault(user, {})
                for a in assets:
                    d[a] = None

        def side_asset(user: int, symbol: str, t: _Tracked | None, buy: bool | None) -> None:
            pair = self._pair(symbol)
            if pair is None:
                return
            if t is not None:
                buy = t.buy
            if buy is None:
                touch(user, *pair)
            else:
                touch(user, pair[1] if buy else pair[0])

        t: _Tracked | None
        for idx, e in enumerate(events):
            if isinstance(e, Trade):
                self._fill(out, seq, idx, ts, e, True, wants, closing, quote_markets)
                self._fill(out, seq, idx, ts, e, False, wants, closing, quote_markets)
                pair = self._pair(e.symbol)
                if pair is not None:
                    touch(e.maker_user, *pair)
                    touch(e.taker_user, *pair)
            elif isinstance(e, OrderAccepted):
                new = orders[e.id] = _Tracked(e)
                if e.type == "market" and e.quote_qty is not None:
                    quote_markets.append(e.id)
                if wants(e.user):
                    out.append(
                        self._order_msg(seq, ts, e.id, e.user, e.symbol, new, "accepted", new.qty)
                    )
                side_asset(e.user, e.symbol, new, None)
            elif isinstance(e, OrderCancelled):
                t = orders.get(e.id)
                if t is not None:
                    if e.reason == "expired":
                        t.status = "expired"
                    elif e.reason == "market_remainder" and e.left == 0 and t.filled:
                        t.status = "filled"
                    else:
                        t.status = "cancelled"
                    closing.append(e.id)
                if wants(e.user):
                    status = "expired" if e.reason == "expired" else "cancelled"
                    msg = self._order_msg(
                        seq, ts, e.id, e.user, e.symbol, t, "cancelled", e.left, status
                    )
                    msg.data["reason"] = e.reason
                    out.append(msg)
                side_asset(e.user, e.symbol, t, None)
            elif isinstance(e, OrderReleased):
                t = orders.get(e.id)
                if wants(e.user):
                    msg = self._order_msg(seq, ts, e.id, e.user, e.symbol, t, "released", _left(t))
                    msg.data["released"] = self.fmt.quote(e.symbol, e.amount)
                    out.append(msg)
                side_asset(e.user, e.symbol, t, True)
            elif isinstance(e, OrderAmended):
                t = orders.get(e.id)
                if t is not None:
                    t.price = e.price
                    t.qty = t.filled + e.qty
                if wants(e.user):
                    msg = self._order_msg(seq, ts, e.id, e.user, e.symbol, t, "amended", e.qty)
                    msg.data["kept_priority"] = e.kept_priority
                    if t is None:
                        msg.data["price"] = self.fmt.price(e.symbol, e.price)
                    out.append(msg)
                side_asset(e.user, e.symbol, t, None)
            elif isinstance(e, OrderTriggered):
                t = orders.get(e.id)
                if t is not None:
                    t.status = "new"
                if wants(e.user):
                    msg = self._order_msg(
                        seq, ts, e.id, e.user, e.symbol, t, "triggered", _left(t), "new"
                    )
                    msg.data["last_price"] = self.fmt.price(e.symbol, e.last_price)
                    out.append(msg)
            elif isinstance(
                e,
                Deposited | ExpensePaid | WithdrawalHeld | WithdrawalReleased | WithdrawalSettled,
            ):
                touch(e.user, e.asset)
            elif isinstance(e, Transferred):
                touch(e.user, e.asset)
                touch(e.to, e.asset)
            elif isinstance(e, SymbolAdded):
                self._assets[e.symbol] = (e.base, e.quote)
            elif isinstance(e, MarginWalletOpened):
                wallets[e.wallet] = (e.user, e.kind)
        for oid in quote_markets:
            t = orders.get(oid)
            if t is not None and oid not in closing:
                # Spent its budget exactly: no cancel closes it, the command's end does.
                t.status = "filled"
                closing.append(oid)
                if wants(t.user):
                    out.append(self._order_msg(seq, ts, oid, t.user, t.symbol, t, "done", 0))
        for oid in closing:
            orders.pop(oid, None)
        for i, m in enumerate(out):
            if m.user < 0:  # a margin wallet's order or fill: to its owner, marked
                owner, kind = wallets[m.user]
                m.data["wallet"] = kind
                out[i] = m._replace(user=owner)
        for user, assets in touched.items():
            rows: list[dict[str, Any]] = []
            for a in assets:
                row: dict[str, Any] = {"asset": a}
                if self.balances is not None:
                    b = self.balances(user, a)
                    if b is not None:
                        row["available"] = self.fmt.amount(a, b[0])
                        row["locked"] = self.fmt.amount(a, b[1])
                rows.append(row)
            out.append(PrivateMessage("balances", user, {"seq": seq, "ts": ts, "balances": rows}))
        return out

    def _fill(
        self,
        out: list[PrivateMessage],
        seq: int,
        idx: int,
        ts: int,
        e: Trade,
        maker: bool,
        wants: Callable[[int], bool],
        closing: list[int],
        quote_markets: list[int],
    ) -> None:
        if maker:
            oid, user, left, fee = e.maker_id, e.maker_user, e.maker_left, e.maker_fee
            buy = e.taker_side != "buy"
        else:
            oid, user, left, fee = e.taker_id, e.taker_user, e.taker_left, e.taker_fee
            buy = e.taker_side == "buy"
        t = self._orders.get(oid)
        by_quote = oid in quote_markets
        if t is not None:
            t.filled += e.qty
            if left or by_quote:
                t.status = "partially_filled"
            else:
                t.status = "filled"
                closing.append(oid)
        if not user or not wants(user):
            return
        fmt, sym = self.fmt, e.symbol
        status = "partially_filled" if left else "filled"
        msg = self._order_msg(
            seq, ts, oid, user, sym, t, "trade", None if by_quote else left, status
        )
        msg.data["last_price"] = fmt.price(sym, e.price)
        msg.data["last_qty"] = fmt.qty(sym, e.qty)
        if t is None:
            msg.data["side"] = "buy" if buy else "sell"
        out.append(msg)
        pair = self._pair(sym)
        fee_asset = None if pair is None else (pair[0] if buy else pair[1])
        out.append(
            PrivateMessage(
                "fills",
                user,
                {
                    "order_id": oid,
                    "client_id": None if t is None else t.client_id,
                    "symbol": sym,
                    "side": "buy" if buy else "sell",
                    "role": "maker" if maker else "taker",
                    "price": fmt.price(sym, e.price),
                    "qty": fmt.qty(sym, e.qty),
                    "quote": fmt.quote(sym, e.quote),
                    "fee": fee if fee_asset is None else fmt.amount(fee_asset, fee),
                    "fee_asset": fee_asset,
                    "seq": seq,
                    "idx": idx,
                    "ts": ts,
                },
            )
        )

    def _order_msg(
        self,
        seq: int,
        ts: int,
        oid: int,
        user: int,
        sym: str,
        t: _Tracked | None,
        event: str,
        left: int | None,
        status: str | None = None,
    ) -> PrivateMessage:
        """An ``orders`` message; ``status`` is used only for an order never seen
        accepted (then most fields are ``None``)."""
        fmt = self.fmt
        if t is None:
            data: dict[str, Any] = {
                "event": event,
                "id": oid,
                "client_id": None,
                "symbol": sym,
                "side": None,
                "type": None,
                "tif": None,
                "status": status,
                "price": None,
                "stop_price": None,
                "qty": None,
                "quote_qty": None,
                "filled": None,
                "left": None if left is None else fmt.qty(sym, left),
                "seq": seq,
                "ts": ts,
            }
            return PrivateMessage("orders", user, data)
        data = {
            "event": event,
            "id": oid,
            "client_id": t.client_id,
            "symbol": sym,
            "side": "buy" if t.buy else "sell",
            "type": t.type,
            "tif": t.tif,
            "status": t.status,
            "price": None if t.price is None else fmt.price(sym, t.price),
            "stop_price": None if t.stop_price is None else fmt.price(sym, t.stop_price),
            "qty": None if t.qty is None else fmt.qty(sym, t.qty),
            "quote_qty": None if t.quote_qty is None else fmt.quote(sym, t.quote_qty),
            "filled": fmt.qty(sym, t.filled),
            "left": None if left is None else fmt.qty(sym, left),
            "seq": seq,
            "ts": ts,
        }
        return PrivateMessage("orders", user, data)


def _left(t: _Tracked | None) -> int | None:
    return None if t is None or t.qty is None else t.qty - t.filled
