"""Coalesced writes: one write per loop step, in order, flushed before close, and a
real uvicorn server behind them answers HTTP and WebSocket as before."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.frames import Frame, Opcode

from tradewind.runtime import corked
from tradewind.runtime.corked import (
    CorkedHttpToolsProtocol,
    CorkedTransport,
    FastFrameWebSocketsProtocol,
    text_frame_head,
)


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


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65_535, 65_536, 200_000])
def test_text_frame_head_is_what_websockets_would_send(length: int) -> None:
    payload = b"a" * length
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False)
    assert text_frame_head(length) + payload == expected


async def _hello(_: Any) -> PlainTextResponse:
    return PlainTextResponse("x" * 100_000)  # larger than one socket write


async def _echo(ws: WebSocket) -> None:
    await ws.accept()
    text = await ws.receive_text()
    for i in range(50):  # many frames in one step: coalesced, still separate frames
        await ws.send_text(f"{text}-{i}")
    await ws.send_text("é" * 70_000)  # 140,000 bytes of UTF-8: a 64-bit length
    await ws.close()


def test_uvicorn_serves_http_and_websocket_over_corked_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    framed: list[int] = []

    def counting_head(length: int) -> bytes:
        framed.append(length)
        return text_frame_head(length)

    monkeypatch.setattr(corked, "text_frame_head", counting_head)
    app = Starlette(routes=[Route("/", _hello), WebSocketRoute("/ws", _echo)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def go() -> None:
        config = uvicorn.Config(
            app,
            port=port,
            http=CorkedHttpToolsProtocol,
            ws=FastFrameWebSocketsProtocol,
            log_config=None,
            lifespan="off",
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
            # without compression the protocol frames itself; with it, websockets does
            for compression in (None, "deflate"):
                async with websockets.connect(
                    f"ws://127.0.0.1:{port}/ws", compression=compression
                ) as ws:
                    await ws.send("hi")
                    got = [await ws.recv() for _ in range(51)]
                    assert got[:50] == [f"hi-{i}" for i in range(50)]
                    assert got[50] == "é" * 70_000
                # only the uncompressed connection's 51 messages were framed here
                assert len(framed) == 51
        finally:
            server.should_exit = True
            await task

    asyncio.run(go())
