"""The ``/ws`` endpoint: owns the sockets and drives the transport-free WebSocket hub.

Invariants:
- per connection, one reader (inbound frames to :meth:`Hub.handle`) and one writer
  (the client's queue to the socket, a batch per wake-up); publishing never waits for
  a socket, the hub drops a slow client instead (close code 4008);
- authentication is checked here, never in the hub: a session token, or an API key with
  the ``read`` permission signing ``timestamp + "GET/ws"`` (DESIGN §6); a failure is an
  ``error`` message and the connection stays public;
- a frame larger than ``max_frame_bytes`` closes the connection with 1008;
- amounts leave as decimal strings through :class:`DecimalFormatter` (the symbol's tick
  and lot, the asset's decimals), like the REST API.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from tradewind.gateways.rest.units import format_minor, format_price, format_qty
from tradewind.gateways.ws.hub import ClientOp, CloseCode, Hub, HubClient
from tradewind.services.accounts import AccountsService
from tradewind.services.catalog import MarketCatalog
from tradewind.services.errors import ServiceError


class DecimalFormatter:
    """The hub's :class:`~tradewind.gateways.ws.format.Formatter`: decimal strings."""

    def __init__(self, catalog: MarketCatalog) -> None:
        self._catalog = catalog

    def price(self, symbol: str, ticks: int) -> Any:
        m = self._catalog.market(symbol)
        return ticks if m is None else format_price(ticks, m)

    def qty(self, symbol: str, lots: int) -> Any:
        m = self._catalog.market(symbol)
        return lots if m is None else format_qty(lots, m)

    def quote(self, symbol: str, minor: int) -> Any:
        m = self._catalog.market(symbol)
        return minor if m is None else format_minor(minor, m.quote_decimals)

    def amount(self, asset: str, minor: int) -> Any:
        a = self._catalog.asset(asset)
        return minor if a is None else format_minor(minor, a.decimals)


async def _authenticate(
    accounts: AccountsService, op: ClientOp, now_ms: Callable[[], int], client_ip: str | None
) -> int:
    if op.token is not None:
        return (await accounts.authenticate(op.token)).user_id
    if op.key is None or op.signature is None or op.timestamp is None:
        raise _AuthRefused("bad_request", "auth needs a token, or key, timestamp and signature")
    timestamp = op.timestamp
    if isinstance(timestamp, str):
        if not timestamp.isdigit() or len(timestamp) > 16:
            raise _AuthRefused("invalid_timestamp", "timestamp must be milliseconds")
        timestamp = int(timestamp)
    principal = await accounts.verify_signature(
        op.key, timestamp, "GET", "/ws", b"", op.signature, now_ms(), client_ip=client_ip
    )
    principal.require("read")
    return principal.user_id


class _AuthRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def _writer(websocket: WebSocket, client: HubClient) -> None:
    while batch := await client.next_batch():
        for text in batch:
            await websocket.send_text(text)
    with contextlib.suppress(Exception):
        await websocket.close(
            code=client.close_code or CloseCode.NORMAL, reason=client.close_reason or ""
        )


def install_ws(
    app: FastAPI,
    hub: Hub,
    accounts: AccountsService,
    now_ms: Callable[[], int],
    *,
    max_frame_bytes: int = 4096,
    path: str = "/ws",
) -> None:
    """Add the WebSocket endpoint driving ``hub`` to ``app``."""

    @app.websocket(path)
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        client = hub.connect()
        writer = asyncio.create_task(_writer(websocket, client), name=f"ws-writer-{client.id}")
        ip = websocket.client.host if websocket.client else None
        try:
            while not client.closed:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text")
                if raw is None:
                    raw = message.get("bytes") or b""
                if len(raw) > max_frame_bytes:
                    hub.disconnect(client, CloseCode.POLICY_VIOLATION, "frame too large")
                    break
                op = hub.handle(client, raw)
                if op is None:
                    continue
                try:
                    user = await _authenticate(accounts, op, now_ms, ip)
                except ServiceError as e:
                    hub.send_error(client, e.code, e.message, op.id)
                except _AuthRefused as e:
                    hub.send_error(client, e.code, e.message, op.id)
                else:
                    hub.authenticate(client, user, op.id)
        except WebSocketDisconnect:
            pass
        finally:
            hub.disconnect(client)
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(writer, 1.0)
            if not writer.done():
                writer.cancel()
