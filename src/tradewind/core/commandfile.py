"""The JSON-lines command file (DESIGN.md §2): one command per line, decoded straight
into the command structs.

Invariant: a file either parses whole or raises ``CommandFileError`` naming the first
bad line; nothing is applied from a file that does not parse. Blank lines and lines
starting with ``#`` are skipped. ``seq`` defaults to the command's ordinal.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from tradewind.core.commands import AnyCommand

MAX_LINE_BYTES = 64 * 1024

_decoder: msgspec.json.Decoder[AnyCommand] = msgspec.json.Decoder(AnyCommand)


class CommandFileError(ValueError):
    """A malformed line: ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def parse_command_line(text: str | bytes, line: int = 1) -> AnyCommand:
    if len(text) > MAX_LINE_BYTES:
        raise CommandFileError(line, f"line is longer than {MAX_LINE_BYTES} bytes")
    try:
        return _decoder.decode(text)
    except msgspec.ValidationError as e:
        raise CommandFileError(line, f"invalid command: {e}") from None
    except msgspec.DecodeError as e:
        raise CommandFileError(line, f"malformed JSON: {e}") from None


def parse_command_lines(lines: Iterable[str | bytes]) -> list[AnyCommand]:
    """Parse every line; stamp ``seq`` with the ordinal where the line gave none."""
    out: list[AnyCommand] = []
    last_seq = 0
    last_ts = 0
    for n, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text or text[:1] in ("#", b"#"):
            continue
        cmd = parse_command_line(text, n)
        seq = cmd.seq or last_seq + 1
        if seq <= last_seq:
            raise CommandFileError(n, f"seq {seq} does not follow {last_seq}")
        if cmd.ts and cmd.ts < last_ts:
            raise CommandFileError(n, f"ts {cmd.ts} is before the previous ts {last_ts}")
        ts = cmd.ts or last_ts
        if seq != cmd.seq or ts != cmd.ts:
            cmd = msgspec.structs.replace(cmd, seq=seq, ts=ts)
        out.append(cmd)
        last_seq, last_ts = seq, ts
    return out
