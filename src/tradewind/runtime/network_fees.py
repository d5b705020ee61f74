"""Wiring of the network-fee booking (services/funding/network_fees.py, ADR 0034): the
payout loop's third job, after payouts and sweeps, so it runs wherever they do
(``tradewind withdrawals`` behind its Redis lease, or the embedded exchange's payout
task) and a deployment needs no new process.

The fee readers are the payout processor's own nodes (``[funding.withdrawals] rpc``):
every network a payout or a sweep can go through is one the processor has a node for.
"""

from __future__ import annotations

from collections.abc import Mapping

from tradewind.adapters.local import SystemClock
from tradewind.adapters.sql import Database
from tradewind.adapters.sql.alerts import SqlAlertStore
from tradewind.adapters.sql.audit import SqlAuditStore
from tradewind.adapters.sql.network_fees import SqlNetworkFeeStore
from tradewind.services.alerts import AlertService
from tradewind.services.audit import AuditLog
from tradewind.services.funding.network_fees import FeeReader, NetworkFeeBooker
from tradewind.services.funding.payouts import PayoutProcessor
from tradewind.services.trading import CommandBus


def build_fee_booker(
    db: Database, bus: CommandBus, processor: PayoutProcessor
) -> NetworkFeeBooker | None:
    """The booking over SQL, the core's bus and the processor's nodes (those that can
    tell a transaction's fee); ``None`` when no node can."""
    readers: Mapping[str, FeeReader] = {
        name: chain for name, chain in processor.chains.items() if isinstance(chain, FeeReader)
    }
    if not readers:
        return None
    clock = SystemClock()
    return NetworkFeeBooker(
        catalog=processor.service.catalog,
        store=SqlNetworkFeeStore(db),
        readers=readers,
        bus=bus,
        now_ms=processor.service.now_ms,
        alerts=AlertService(SqlAlertStore(db), AuditLog(SqlAuditStore(db), clock), clock),
    )
