"""``tradewind replay FILE``: apply a command file to a fresh core and summarise it.

The tape digest is SHA-256 over ``maker_id,taker_id,price,qty\\n`` per trade in
execution order, so two engines (or two builds of this one) can be compared by one line.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import msgspec

from tradewind.core.commandfile import CommandFileError, parse_command_lines
from tradewind.core.commands import AnyCommand
from tradewind.core.engine import Core
from tradewind.core.events import Rejected, Trade


def replay_commands(commands: list[AnyCommand]) -> tuple[Core, dict[str, Any]]:
    core = Core()
    tape = hashlib.sha256()
    rejected = trades = traded_qty = 0
    for cmd in commands:
        for e in core.apply(cmd):
            if type(e) is Trade:
                trades += 1
                traded_qty += e.qty
                tape.update(f"{e.maker_id},{e.taker_id},{e.price},{e.qty}\n".encode())
            elif type(e) is Rejected:
                rejected += 1
    return core, {
        "commands": len(commands),
        "rejected": rejected,
        "trades": trades,
        "traded_qty": traded_qty,
        "tape_digest": tape.hexdigest(),
        "state_hash": core.state_hash(),
    }


def run_replay(path: Path, as_json: bool = False) -> int:
    try:
        with path.open("rb") as f:
            commands = parse_command_lines(f)
    except OSError as e:
        print(f"error: cannot read {path}: {e.strerror}", file=sys.stderr)
        return 2
    except CommandFileError as e:
        print(f"error: {path}: {e}", file=sys.stderr)
        return 2
    _, summary = replay_commands(commands)
    if as_json:
        print(msgspec.json.encode(summary).decode())
    else:
        for k, v in summary.items():
            print(f"{k:12} {v}")
    return 0
