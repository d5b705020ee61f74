"""Wiring of funding for the API processes: the network catalog from the config's
``[funding]`` table (or the demo's test networks) and the deposit-address service over
the SQL store. Same in embedded and distributed mode.

No private key is ever wired here: the catalog holds extended *public* keys only, and
:class:`~tradewind.services.funding.derivation.AddressDeriver` refuses a private one.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from tradewind.adapters.sql import Database
from tradewind.adapters.sql.deposit_addresses import SqlDepositAddressStore
from tradewind.adapters.sql.funding_switches import SqlFundingSwitchStore
from tradewind.runtime.config import Settings
from tradewind.services.audit import AuditLog
from tradewind.services.funding.defaults import demo_networks
from tradewind.services.funding.deposit_addresses import DepositAddressService
from tradewind.services.funding.networks import NetworkCatalog, parse_networks
from tradewind.services.funding.switches import FundingSwitches
from tradewind.services.ports import Clock

_SWITCHES: WeakKeyDictionary[Database, FundingSwitches] = WeakKeyDictionary()


def network_catalog(settings: Settings) -> NetworkCatalog | None:
    """The configured networks; the demo's test networks in demo mode; else none."""
    if settings.funding is not None:
        return parse_networks(settings.funding)
    return demo_networks() if settings.demo else None


def funding_switches(
    catalog: NetworkCatalog, db: Database, clock: Clock, audit: AuditLog | None = None
) -> FundingSwitches:
    """The process's one ``FundingSwitches`` over ``db`` (ADR 0032): the deposit
    addresses, the listings and the withdrawal workflow share it, so a switch made
    here is seen by all of them at once (other processes: within its cache's time)."""
    switches = _SWITCHES.get(db)
    if switches is None:
        switches = _SWITCHES[db] = FundingSwitches(catalog, SqlFundingSwitchStore(db), clock.now_ms)
    if audit is not None:
        switches.audit = audit
    return switches


def build_funding(settings: Settings, db: Database, clock: Clock) -> DepositAddressService | None:
    catalog = network_catalog(settings)
    if catalog is None:
        return None
    switches = funding_switches(catalog, db, clock)
    return DepositAddressService(
        catalog, SqlDepositAddressStore(db), clock.now_ms, switches=switches
    )
