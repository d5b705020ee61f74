"""Coalesced socket writes for uvicorn: what one connection writes during one step of
the event loop leaves in one ``send`` system call.

Why: uvicorn writes a response's head and its body with two ``transport.write`` calls,
and the WebSocket protocol writes each frame on its own; with uvloop each is a system
call at once. Under order load the two writes per response were about 14 % of the event
loop (py-spy, docs/performance.md), and a WebSocket subscriber that gets several frames
from one publish paid a system call per frame.

Invariants:
- bytes leave in the order they were written, and nothing written is lost unless the
  connection is aborted or already closing (as with the plain transport);
- a buffered write goes out at the latest in the next step of the loop, and at once
  before the transport is closed or its write side shut;
- everything else (flow control, peer addresses, pausing reads) is the wrapped
  transport's own; the WebSocket protocol an upgraded connection switches to gets the
  same wrapper, so its frames are coalesced too.

:class:`FastFrameWebSocketsProtocol` also frames outgoing text messages itself (a
server's frame is a two-to-ten-byte head and the payload, unmasked) instead of going
through the ``websockets`` state machine for each, which was the largest part of a
frame's cost; it does so only on an open connection without extensions
(permessage-deflate) and no fragmented message in progress, and leaves every other
message and case to uvicorn's protocol, so what goes on the wire is the same bytes.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import OPEN

_TEXT_FIN = 0x81


class CorkedTransport:
    """A transport proxy that gathers the writes of one loop step into one write."""

    __slots__ = ("_buffer", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._buffer:
            self._loop.call_soon(self._flush)
        # the caller may reuse a mutable buffer once write returns: keep a copy
        self._buffer.append(data if type(data) is bytes else bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        buffer = self._buffer
        if not buffer:
            return
        self._buffer = []
        if not self._transport.is_closing():
            self._transport.write(buffer[0] if len(buffer) == 1 else b"".join(buffer))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._buffer = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._buffer))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CorkedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CorkedTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        corked: Any = CorkedTransport(transport, self.loop)
        super().connection_made(corked)


def text_frame_head(length: int) -> bytes:
    """RFC 6455 head of an unmasked, final text frame carrying ``length`` bytes."""
    if length < 126:
        return bytes((_TEXT_FIN, length))
    if length < 1 << 16:
        return struct.pack("!BBH", _TEXT_FIN, 126, length)
    return struct.pack("!BBQ", _TEXT_FIN, 127, length)


class FastFrameWebSocketsProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets (sans-I/O) protocol that frames plain text messages itself."""

    async def send(self, message: Any) -> None:
        if (
            message["type"] == "websocket.send"
            and self.handshake_complete
            and not self.close_sent
            and not self.disconnected
            and self.initial_response is None
            and self.writable.is_set()
        ):
            text = message.get("text")
            conn = self.conn
            if (
                text is not None
                and message.get("bytes") is None
                and not conn.extensions
                and conn.state is OPEN
                and not conn.expect_continuation_frame
            ):
                payload = text.encode()
                self.transport.write(text_frame_head(len(payload)) + payload)
                return
        await super().send(message)
