"""Coalesced writes: one write per loop step, in order, flushed before close, and a
real uvicorn server behind them answers HTTP and WebSocket as before."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tradewind.runtime.corked import CorkedHttpToolsProtocol, CorkedTransport


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


def test_writes_of_one_step_leave_as_one_in_order() -> None:
    async def go() -> None:
        fake = FakeTransport()
        corked = CorkedTransport(fake, asyncio.get_running_loop())  # type: ignore[arg-type]
        reused = bytearray(b"head|")
        corked.write(reused)
        reused[:] = b"XXXXX"  # the caller may reuse its buffer
        corked.write(b"body")
        corked.write(b"")
        assert fake.writes == [] and corked.get_write_buffer_size() == 9
        await asyncio.sleep(0)
        assert fake.writes == [b"head|body"]
        corked.write(b"next")
        await asyncio.sleep(0)
        assert fake.writes == [b"head|body", b"next"]
        assert corked.get_extra_info("peername") == ("127.0.0.1", 1)

    asyncio.run(go())


def test_close_flushes_first_and_abort_drops() -> None:
    async def go() -> None:
        fake = FakeTransport()
        corked = CorkedTransport(fake, asyncio.get_running_loop())  # type: ignore[arg-type]
        corked.write(b"last words")
        corked.close()
        assert fake.writes == [b"last words"] and fake.closed
        await asyncio.sleep(0)
        assert fake.writes == [b"last words"]

        other = FakeTransport()
        corked = CorkedTransport(other, asyncio.get_running_loop())  # type: ignore[arg-type]
        corked.write(b"never sent")
        corked.abort()
        await asyncio.sleep(0)
        assert other.writes == [] and other.aborted

    asyncio.run(go())


async def _hello(_: Any) -> PlainTextResponse:
    return PlainTextResponse("x" * 100_000)  # larger than one socket write


async def _echo(ws: WebSocket) -> None:
    await ws.accept()
    text = await ws.receive_text()
    for i in range(50):  # many frames in one step: coalesced, still separate frames
        await ws.send_text(f"{text}-{i}")
    await ws.close()


def test_uvicorn_serves_http_and_websocket_over_corked_writes() -> None:
    app = Starlette(routes=[Route("/", _hello), WebSocketRoute("/ws", _echo)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def go() -> None:
        config = uvicorn.Config(
            app, port=port, http=CorkedHttpToolsProtocol, log_config=None, lifespan="off"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            async with httpx.AsyncClient() as client:
                for _ in range(3):  # keep-alive: several responses on one connection
                    r = await client.get(f"http://127.0.0.1:{port}/")
                    assert r.status_code == 200 and r.text == "x" * 100_000
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.send("hi")
                got = [await ws.recv() for _ in range(50)]
                assert got == [f"hi-{i}" for i in range(50)]
        finally:
            server.should_exit = True
            await task

    asyncio.run(go())
