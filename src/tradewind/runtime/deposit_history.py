"""Wiring of the deposit history (services/funding/deposit_history.py) for the API
processes, embedded and distributed alike: the SQL store over the watcher's and the
fiat rails' tables, the network catalog and the fiat currencies' decimals, and its
routes. Read-only, so every API replica serves it; nothing to start or stop.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from tradewind.adapters.sql import Database
from tradewind.adapters.sql.deposit_history import SqlDepositHistoryStore
from tradewind.gateways.rest.deposits import install_deposit_history
from tradewind.runtime.config import Settings
from tradewind.runtime.fiat import fiat_config
from tradewind.runtime.funding import network_catalog
from tradewind.services.admin import AdminService
from tradewind.services.funding.deposit_history import DepositHistory


def build_deposit_history(settings: Settings, db: Database) -> DepositHistory:
    fiat = fiat_config(settings)
    return DepositHistory(
        SqlDepositHistoryStore(db),
        network_catalog(settings),
        {} if fiat is None else dict(fiat.currencies),
    )


def deposit_history_routes(
    settings: Settings, db: Database, admin: AdminService
) -> Callable[[FastAPI], None]:
    """An ``extra_routes`` installer of the user's and the staff's deposit lists."""
    history = build_deposit_history(settings, db)

    def install(app: FastAPI) -> None:
        install_deposit_history(app, history, admin)

    return install
