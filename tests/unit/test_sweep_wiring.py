"""``runtime/sweeps.build_sweeper``: the sweeper joins the payout loop only when
``[funding.sweeps]`` and EVM payouts (signer URL and secret, a node) are configured."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tradewind.adapters.sql import Database
from tradewind.runtime.config import load_settings
from tradewind.runtime.sweeps import build_sweeper
from tradewind.services.funding.networks import parse_networks
from tradewind.services.funding.sweeps import Sweeper
from tradewind.services.funding.withdrawal_config import parse_withdrawal_policy


def funding(sweeps: bool, payouts: bool) -> dict[str, Any]:
    f: dict[str, Any] = {
        "networks": {
            "ethereum": {
                "chain_id": 1337,
                "assets": {
                    "ETH": {
                        "decimals": 8,
                        "chain_decimals": 18,
                        "confirmations": 2,
                        "min_deposit": "0.001",
                        "withdrawal_fee": "0.002",
                    }
                },
            }
        }
    }
    if sweeps:
        f["sweeps"] = {"ethereum": {"assets": {"ETH": {"min_sweep": "0.01"}}}}
    if payouts:
        f["withdrawals"] = {
            "signer_url": "http://127.0.0.1:8620",
            "signer_secret": "s" * 40,
            "rpc": {"ethereum": "http://127.0.0.1:8545"},
        }
    return f


def sweeper(tmp_path: Path, sweeps: bool, payouts: bool) -> Sweeper | None:
    f = funding(sweeps, payouts)
    settings = load_settings(None, environ={}, overrides={"data_dir": tmp_path, "funding": f})
    service: Any = SimpleNamespace(
        catalog=parse_networks(f),
        policy=parse_withdrawal_policy(f),
        store=None,
        now_ms=lambda: 0,
    )
    return build_sweeper(
        settings, Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/x.db"), service
    )


def test_the_sweeper_runs_only_with_sweeps_and_payouts_configured(tmp_path: Path) -> None:
    built = sweeper(tmp_path, sweeps=True, payouts=True)
    assert built is not None and set(built.chains) == {"ethereum"}
    assert built.alerts is not None  # a short hot wallet reaches the back office too
    assert sweeper(tmp_path, sweeps=True, payouts=False) is None
    assert sweeper(tmp_path, sweeps=False, payouts=True) is None
