"""Projectors: read models built from the core's events (DESIGN §3).

Each projector consumes batches ``(seq, ts, events)`` exactly once, keyed by ``seq``,
and stores the last applied seq in the same transaction as its rows, so a restart
resumes exactly (rule and caching in :mod:`.base`). What they store:

- :class:`LedgerProjector`: the double-entry ledger (legs summing to zero per asset
  per event; per account and asset, available and locked legs sum to the core's
  balances) and the open orders' holds;
- :class:`OrdersProjector`: each order's latest state and each user's fills;
- :class:`TradesProjector`: the public trade tape.

:class:`ProjectorRunner` feeds several of them (live, or replaying the journal). They
depend only on the ports of :mod:`.ports`; the SQL adapter is
:mod:`tradewind.adapters.sql.projections`.
"""

from tradewind.services.projectors.base import ProjectionError, Projector, SeqGap
from tradewind.services.projectors.ledger import LedgerProjector
from tradewind.services.projectors.orders import OrdersProjector
from tradewind.services.projectors.ports import Batch
from tradewind.services.projectors.runner import ProjectorRunner, journal_batches
from tradewind.services.projectors.trades import TradesProjector

__all__ = [
    "Batch",
    "LedgerProjector",
    "OrdersProjector",
    "ProjectionError",
    "Projector",
    "ProjectorRunner",
    "SeqGap",
    "TradesProjector",
    "journal_batches",
]
