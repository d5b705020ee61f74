"""Binary form of commands for the journal and the bus: msgpack of the tagged struct.

Invariant: ``decode_command(encode_command(c)) == c`` for every command.
"""

from __future__ import annotations

import msgspec

from tradewind.core.commands import AnyCommand

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[AnyCommand] = msgspec.msgpack.Decoder(AnyCommand)


def encode_command(cmd: AnyCommand) -> bytes:
    return _encoder.encode(cmd)


def decode_command(data: bytes | memoryview) -> AnyCommand:
    return _decoder.decode(data)
