"""Binary form of commands for the journal and the bus: msgpack of the tagged struct.

Invariant: ``decode_command(encode_command(c)) == c`` for every command.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from tradewind.core.commands import AnyCommand

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[AnyCommand] = msgspec.msgpack.Decoder(AnyCommand)


def encode_command(cmd: AnyCommand) -> bytes:
    return _encoder.encode(cmd)


encode_command_raw: Callable[[AnyCommand], bytes] = _encoder.encode
"""``encode_command`` as the encoder's own C method: no Python frame, for loops that run
once per command (the journaled core's submit)."""


def decode_command(data: bytes | memoryview) -> AnyCommand:
    return _decoder.decode(data)


decode_command_raw: Callable[[bytes | memoryview], AnyCommand] = _decoder.decode
"""``decode_command`` as the decoder's own C method, for recovery's loop."""
