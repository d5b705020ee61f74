"""Binary form of commands for the journal and the bus: msgpack of the tagged struct.

Invariant: ``decode_command(encode_command(c)) == c`` for every command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

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


# ---------------------------------------------------------------------- journal replay
#
# A journal record passed every constraint of its command when it was written (the
# journal encodes only decoded or re-decoded commands) and its CRC proves it unchanged,
# so replay re-checking ``SymbolName``'s regular expression and the integer ranges on
# every record is pure cost (3,660 of 7,180 decoding instructions per record were the
# regex). msgspec has no switch to skip constraints, so replay decodes into *trusted
# twins*: one subclass per command type, same tag and fields, field types without their
# ``Meta`` constraints (types, literals and unknown fields are still checked). A twin is
# an instance of its command type; ``Core`` dispatches on the twins as on the originals.
# Twins are ``gc=False``: a command holds only scalars, strings and tuples of ints, so it
# can never be part of a reference cycle, and an untracked struct is freed without the
# collector's bookkeeping (213 of about 3,900 decode-and-free instructions per record;
# ADR 0040).


def _unconstrained(tp: Any) -> Any:
    """``tp`` without ``Annotated`` metadata, inside unions and tuples too."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _unconstrained(get_args(tp)[0])
    if origin is Union or origin is UnionType:
        return Union[tuple(_unconstrained(a) for a in get_args(tp))]  # noqa: UP007
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple[_unconstrained(args[0]), ...]  # type: ignore[misc]
        return tuple[tuple(_unconstrained(a) for a in args)]  # type: ignore[misc]
    return tp


def _twin(cls: type[msgspec.Struct]) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for f in msgspec.structs.fields(cls):
        tp = _unconstrained(f.type)
        fields.append((f.name, tp) if f.default is msgspec.NODEFAULT else (f.name, tp, f.default))
    return msgspec.defstruct(
        f"Trusted{cls.__name__}",
        fields,
        bases=(cls,),
        module=__name__,
        frozen=True,
        kw_only=True,
        tag=cls.__struct_config__.tag,
        gc=False,
    )


@dataclass(frozen=True, slots=True)
class Trusted:
    """The trusted twins and their decoders (built once, on first use: about 10 ms)."""

    types: Mapping[type, type]
    """Each command type's twin, for journal replay only (never for input)."""
    decode_batch: Callable[[bytes | memoryview], list[AnyCommand]]
    """A batch record's payload (a msgpack array of commands) as twins."""
    decode: Callable[[bytes | memoryview], AnyCommand]
    """One command record of a format-1 journal as a twin."""


@cache
def trusted() -> Trusted:
    """The twins of every command type and decoders into them: types and tags are
    checked, constraints are not. Only for journal records whose CRC verified."""
    types = {cls: _twin(cls) for cls in get_args(AnyCommand)}
    union: Any = Union[tuple(types.values())]  # noqa: UP007
    return Trusted(
        types,
        msgspec.msgpack.Decoder(list[union]).decode,
        msgspec.msgpack.Decoder(union).decode,
    )
