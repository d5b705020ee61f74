"""The fast lane: signed order placements and cancels without FastAPI's per-request
machinery.

Why: under order load, FastAPI's routing, dependency solving and pydantic validation
were the largest cost of a request (docs/performance.md: about 0.5 ms of the 1.1 ms of
CPU an order took). This ASGI middleware sits inside every other middleware (body limit,
rate limits, security headers, ...) and in front of FastAPI's router; it answers the two
hot calls, ``POST /api/v1/orders`` and ``DELETE /api/v1/orders/{id}`` signed with an API
key, by calling the very functions the routes call: the ``authenticate`` dependency and
the ``trade`` permission check of :mod:`~tradewind.gateways.rest.auth`, then the route's
own endpoint function, with the app's own exception handlers for errors.

Invariants:
- the lane takes a request only if it can answer it exactly as the route would; anything
  else (a Bearer token, a query string, a body that does not decode strictly into
  :class:`OrderBody`, another content type, a non-canonical id) goes, untouched and
  before anything has happened, to the app, with the body it already read replayed;
  so every refusal of a malformed request is the framework's, byte for byte;
- :class:`OrderBody` accepts a subset of what ``schemas.OrderIn`` accepts (strict JSON
  types, no unknown fields, the same limits) and yields the same values, which a test
  checks field by field;
- once it has taken a request, the lane does what the route does in the same order:
  authenticate (signature, replay cache, rate-limit charge), check the ``trade``
  permission, run the endpoint; an error is answered by the handler the app registered
  for it, an unexpected one propagates to the server-error handler as on the slow path;
- if the dependencies it calls do not have the shape it expects, or the routers or
  routes carry dependencies of their own (``dependencies=[...]``, which the lane would
  skip), the lane switches itself off (everything goes to the app) rather than guess.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal

import msgspec
import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradewind.gateways.rest import auth
from tradewind.gateways.rest.params import refuse_unknown_query
from tradewind.gateways.rest.units import MAX_INT

log = structlog.get_logger(__name__)

ORDERS_PATH = "/api/v1/orders"
_ORDER_PREFIX = ORDERS_PATH + "/"
_MAX_ID_DIGITS = len(str(MAX_INT))

_Decimal = Annotated[str, msgspec.Meta(max_length=64)]


class OrderBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``schemas.OrderIn`` as a msgspec type (strict, closed, same limits and defaults)."""

    symbol: Annotated[str, msgspec.Meta(max_length=65)]
    side: Literal["buy", "sell"]
    type: Literal[
        "limit", "market", "stop_market", "stop_limit", "take_profit", "take_profit_limit"
    ] = "limit"
    price: _Decimal | None = None
    quantity: _Decimal | None = None
    quote_quantity: _Decimal | None = None
    time_in_force: Literal["GTC", "IOC", "FOK", "GTD"] = "GTC"
    expire_time: Annotated[int, msgspec.Meta(ge=0, le=2**53)] | None = None
    stop_price: _Decimal | None = None
    post_only: bool = False
    client_order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    display_quantity: _Decimal | None = None
    self_trade_prevention: Literal["cancel_taker", "cancel_maker", "cancel_both", "none"] = (
        "cancel_taker"
    )
    wallet: Literal["spot", "cross", "isolated"] = "spot"
    auto_borrow: bool = False
    auto_repay: bool = False


_decode_order = msgspec.json.Decoder(OrderBody).decode

Endpoint = Callable[..., Awaitable[Response]]


def _trade_check() -> Callable[[auth.Principal], Awaitable[auth.Principal]] | None:
    """The dependency behind :data:`auth.Trader`, if it has the expected shape."""
    for meta in getattr(auth.Trader, "__metadata__", ()):
        check = getattr(meta, "dependency", None)
        if check is not None and list(inspect.signature(check).parameters) == ["principal"]:
            return check  # type: ignore[no-any-return]
    return None


class FastLane:
    """The endpoints the lane may call; :func:`bind` them once the routes exist."""

    def __init__(self) -> None:
        self.place: Endpoint | None = None
        self.cancel: Endpoint | None = None
        self._routers: Sequence[Any] = ()
        self._routers_ok: bool | None = None
        self._check = _trade_check()
        expected = ["request", "credentials", "key_id"]
        self._auth_ok = list(inspect.signature(auth.authenticate).parameters) == expected
        if self._check is None or not self._auth_ok:
            log.warning("fast lane off: the auth dependencies changed shape")

    def bind(self, *, place: Endpoint, cancel: Endpoint, routers: Sequence[Any] = ()) -> None:
        """``place(body=..., principal=...)`` and ``cancel(order_id=..., principal=...)``:
        the route functions themselves; ``routers``: the router that holds their routes
        and those it is included in (checked, at the first request, for dependencies of
        their own)."""
        self._routers = tuple(routers)
        if list(inspect.signature(place).parameters) != ["body", "principal"] or list(
            inspect.signature(cancel).parameters
        ) != ["order_id", "principal"]:
            log.warning("fast lane off: the order routes changed shape")
            return
        self.place, self.cancel = place, cancel

    @property
    def enabled(self) -> bool:
        return (
            self.place is not None
            and self.cancel is not None
            and self._check is not None
            and self._auth_ok
            and (self._routers_ok if self._routers_ok is not None else self._check_routers())
        )

    def _check_routers(self) -> bool:
        """No dependency declared on the routers or on the two routes (the lane would
        not run it); checked once the app is built, i.e. at the first request."""
        endpoints = (self.place, self.cancel)
        ok = True
        for router in self._routers:
            if _own(getattr(router, "dependencies", None)):
                ok = False
            for route in getattr(router, "routes", ()):
                if getattr(route, "endpoint", None) in endpoints and route.dependencies:
                    ok = False
                # FastAPI >= 0.165 keeps an included router whole, with the
                # include_router(..., dependencies=[...]) in its context
                context = getattr(route, "include_context", None)
                included = getattr(route, "original_router", None)
                if included in self._routers and _own(getattr(context, "dependencies", None)):
                    ok = False
        if not ok:
            log.warning("fast lane off: the order routes have dependencies of their own")
        self._routers_ok = ok
        return ok

    async def trader(self, request: Request, key_id: str) -> auth.Principal:
        """What ``principal: Trader`` resolves to for a request signed with ``key_id``
        (``credentials`` is unused when ``TW-KEY`` is sent)."""
        assert self._check is not None
        principal = await auth.authenticate(request, None, key_id)
        return await self._check(principal)


def _own(dependencies: Sequence[Any] | None) -> bool:
    """Whether ``dependencies`` hold one the lane would have to run. The query guard
    (:func:`~tradewind.gateways.rest.params.refuse_unknown_query`) is not: the lane takes
    only requests without a query string, for which the guard does nothing."""
    guard = refuse_unknown_query
    return any(getattr(d, "dependency", None) is not guard for d in dependencies or ())


class _Replay:
    """A ``receive`` that first hands out the body already read, then the real one."""

    __slots__ = ("_body", "_receive")

    def __init__(self, receive: Receive) -> None:
        self._body: bytes | None = None
        self._receive = receive

    def replay(self, body: bytes) -> None:
        """Hand out ``body`` first (what was read already)."""
        self._body = body

    async def __call__(self) -> Message:
        body = self._body
        if body is not None:
            self._body = None
            return {"type": "http.request", "body": body, "more_body": False}
        return await self._receive()


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class _Disconnected(Exception):
    """The client went away while the body was read."""


def _handler(app: Any, exc: Exception) -> Callable[..., Any] | None:
    """The handler Starlette's ExceptionMiddleware would pick (the catch-all
    ``Exception`` handler stays with the server-error middleware, as there)."""
    handlers: dict[Any, Callable[..., Any]] = getattr(app, "exception_handlers", {})
    if isinstance(exc, HTTPException) and exc.status_code in handlers:
        return handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None


class OrderFastLane:
    """ASGI middleware: see the module's docstring."""

    def __init__(self, app: ASGIApp, lane: FastLane) -> None:
        self.app = app
        self.lane = lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.lane
        if scope["type"] != "http" or scope.get("query_string") or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        path: str = scope["path"]
        order_id = 0
        if method == "POST" and path == ORDERS_PATH:
            pass
        elif method == "DELETE" and path.startswith(_ORDER_PREFIX):
            text = path[len(_ORDER_PREFIX) :]
            if not (text.isascii() and text.isdigit() and text[0] != "0"):
                await self.app(scope, receive, send)
                return
            if len(text) > _MAX_ID_DIGITS or int(text) > MAX_INT:
                await self.app(scope, receive, send)
                return
            order_id = int(text)
        else:
            await self.app(scope, receive, send)
            return
        if not lane.enabled:
            await self.app(scope, receive, send)
            return
        replay = _Replay(receive)
        request = Request(scope, replay)  # one object: its parsed headers are kept
        headers = request.headers
        key_id = headers.get("tw-key")
        content_type = headers.get("content-type")
        if not key_id or (order_id == 0 and content_type != "application/json"):
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except _Disconnected:
            return
        replay.replay(body)
        order: OrderBody | None = None
        if order_id == 0:
            try:
                order = _decode_order(body)
            except (msgspec.ValidationError, msgspec.DecodeError):
                await self.app(scope, replay, send)
                return
        elif body:
            await self.app(scope, replay, send)
            return
        try:
            principal = await lane.trader(request, key_id)
            if order is not None:
                assert lane.place is not None
                response = await lane.place(body=order, principal=principal)
            else:
                assert lane.cancel is not None
                response = await lane.cancel(order_id=order_id, principal=principal)
        except Exception as exc:
            handler = _handler(scope.get("app"), exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, replay, send)
