"""WebSocket fan-out: the transport-independent :class:`Hub` (subscriptions, bounded
per-client queues, slow-consumer and heartbeat policy), the private-event mapper and the
amount formatter hook. The FastAPI endpoint that owns the sockets lives with the REST
gateway and drives a :class:`Hub`; see docs/marketdata.md for the wire protocol."""

from tradewind.gateways.ws.format import Formatter, IntFormatter
from tradewind.gateways.ws.hub import (
    PRIVATE_CHANNELS,
    PUBLIC_CHANNELS,
    ClientOp,
    CloseCode,
    HeartbeatPolicy,
    Hub,
    HubClient,
)
from tradewind.gateways.ws.private import BalanceLookup, PrivateMapper, PrivateMessage

__all__ = [
    "PRIVATE_CHANNELS",
    "PUBLIC_CHANNELS",
    "BalanceLookup",
    "ClientOp",
    "CloseCode",
    "Formatter",
    "HeartbeatPolicy",
    "Hub",
    "HubClient",
    "IntFormatter",
    "PrivateMapper",
    "PrivateMessage",
]
