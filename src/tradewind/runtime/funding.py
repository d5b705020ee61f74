"""Wiring of funding for the API processes: the network catalog from the config's
``[funding]`` table (or the demo's test networks) and the deposit-address service over
the SQL store. Same in embedded and distributed mode.

No private key is ever wired here: the catalog holds extended *public* keys only, and
:class:`~tradewind.services.funding.derivation.AddressDeriver` refuses a private one.
"""

from __future__ import annotations

from tradewind.adapters.sql import Database
from tradewind.adapters.sql.deposit_addresses import SqlDepositAddressStore
from tradewind.runtime.config import Settings
from tradewind.services.funding.defaults import demo_networks
from tradewind.services.funding.deposit_addresses import DepositAddressService
from tradewind.services.funding.networks import NetworkCatalog, parse_networks
from tradewind.services.ports import Clock


def network_catalog(settings: Settings) -> NetworkCatalog | None:
    """The configured networks; the demo's test networks in demo mode; else none."""
    if settings.funding is not None:
        return parse_networks(settings.funding)
    return demo_networks() if settings.demo else None


def build_funding(settings: Settings, db: Database, clock: Clock) -> DepositAddressService | None:
    catalog = network_catalog(settings)
    if catalog is None:
        return None
    return DepositAddressService(catalog, SqlDepositAddressStore(db), clock.now_ms)
