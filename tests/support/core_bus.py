"""A command applied to a real core as the core runner would stamp it, for tests whose
bus answers at once (no journal, no process): ``seq`` is the core's next, ``ts`` equals
``seq``, and a ``place`` with id 0 takes its seq as id."""

from __future__ import annotations

import msgspec

from tradewind.core.commands import AnyCommand, Place
from tradewind.core.engine import Core
from tradewind.runtime.sequencer import Applied


def apply_stamped(core: Core, cmd: AnyCommand) -> Applied:
    seq = core.seq + 1
    if isinstance(cmd, Place) and cmd.id == 0:
        cmd = msgspec.structs.replace(cmd, id=seq)
    cmd = msgspec.structs.replace(cmd, seq=seq, ts=seq)
    return Applied(seq, seq, cmd, core.apply(cmd))
