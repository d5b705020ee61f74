"""Funding routes: the networks each asset can be deposited on and a user's deposit
address with its QR code (docs/funding.md).

Invariants:
- ``GET /api/v1/deposits/address`` needs the ``read`` permission (a session or an API
  key): an address only receives funds, so showing it is not a withdrawal right;
- refusals are the funding service's precise codes (``unknown_network``,
  ``unknown_asset``, ``deposits_disabled``), and a refused request stores nothing;
- amounts leave as decimal strings in the asset's units; the QR code is an SVG of the
  bare address (what every wallet scans), never a payment URI with an amount;
- without a funding service (no networks configured) both routes answer ``503
  funding_unavailable``.

(No ``from __future__ import annotations``: FastAPI reads the signatures at runtime.)
"""

from typing import Annotated, Any

from fastapi import FastAPI, Query
from starlette.responses import Response

from tradewind.gateways.rest.auth import Reader
from tradewind.gateways.rest.errors import JSON, ApiError
from tradewind.gateways.rest.units import format_minor
from tradewind.services.funding.deposit_addresses import DepositAddressService
from tradewind.services.funding.networks import AssetOnNetwork, Network

AssetParam = Annotated[
    str, Query(min_length=1, max_length=16, pattern=r"^[A-Z0-9]+$", description="e.g. USDT")
]
NetworkParam = Annotated[
    str, Query(min_length=1, max_length=16, pattern=r"^[a-z0-9-]+$", description="e.g. ethereum")
]


def qr_svg(text: str) -> str:
    """An inline SVG QR code of ``text`` (error correction M, like the 2FA QR code)."""
    import segno  # here: imported only when a QR code is drawn (start-up time)

    return str(segno.make(text, error="m").svg_inline(scale=4))


def asset_rules_out(a: AssetOnNetwork) -> dict[str, Any]:
    return {
        "asset": a.asset,
        "network": a.network,
        "contract": a.contract,
        "confirmations": a.confirmations,
        "min_deposit": format_minor(a.min_deposit, a.decimals),
        "withdrawal_fee": format_minor(a.withdrawal_fee, a.decimals),
        "deposit_enabled": a.deposit_enabled,
        "withdrawal_enabled": a.withdrawal_enabled,
    }


def network_out(n: Network) -> dict[str, Any]:
    return {
        "network": n.name,
        "kind": n.kind,
        "chain": n.chain if n.kind == "utxo" else None,
        "chain_id": n.chain_id,
        "deposit_addresses": n.xpub is not None,
        "assets": [asset_rules_out(a) for a in n.assets],
    }


def install_funding_routes(app: FastAPI, funding: DepositAddressService | None) -> None:
    def service() -> DepositAddressService:
        if funding is None:
            raise ApiError(503, "funding_unavailable", "no funding networks are configured")
        return funding

    async def networks() -> Response:
        catalog = await service().live_catalog()  # runtime switches applied (ADR 0032)
        return JSON([network_out(n) for n in catalog.networks])

    async def deposit_address(
        principal: Reader, asset: AssetParam, network: NetworkParam
    ) -> Response:
        d = await service().address_for(principal.user_id, asset, network)
        out = asset_rules_out(d.asset)
        out.update(address=d.address, qr_svg=qr_svg(d.address), created_at=d.created_at_ms)
        return JSON(out)

    app.add_api_route(
        "/api/v1/funding/networks",
        networks,
        methods=["GET"],
        tags=["funding"],
        summary="Networks, their assets and the rules of each (confirmations, minimum, fee)",
    )
    app.add_api_route(
        "/api/v1/deposits/address",
        deposit_address,
        methods=["GET"],
        tags=["funding"],
        summary="The caller's deposit address for an asset on a network, with a QR code (SVG)",
    )
