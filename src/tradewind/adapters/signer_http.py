"""``SignerClient`` over HTTP: the withdrawal processor's side of ``tradewind signer``
(a FastAPI service on loopback, gateways/signer_api.py; ADR 0022).

Every request is a JSON body with a timestamp, signed with HMAC-SHA256 under the shared
secret (services/funding/signer.py). A 4xx answer is the signer's refusal
(``SignerRefused``: asking again gets the same); a connection failure, a timeout or a
5xx is ``SignerUnavailable`` (the processor asks again on its next step).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx

from tradewind.services.funding.signer import SIGNATURE_HEADER, signed_request
from tradewind.services.funding.withdrawal_ports import (
    SignedTx,
    SignerRefused,
    SignerUnavailable,
)


class HttpSignerClient:
    def __init__(
        self,
        url: str,
        secret: str,
        now_ms: Callable[[], int],
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(base_url=url, timeout=timeout_s, transport=transport)
        self._secret = secret
        self._now_ms = now_ms

    async def close(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, payload: Mapping[str, object]) -> dict[str, object]:
        body, signature = signed_request(self._secret, {**payload, "ts": self._now_ms()})
        try:
            r = await self._client.post(
                path,
                content=body,
                headers={SIGNATURE_HEADER: signature, "Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise SignerUnavailable(f"signer not reachable: {type(exc).__name__}") from exc
        if r.status_code >= 500:
            raise SignerUnavailable(f"signer failed: HTTP {r.status_code}")
        try:
            answer = r.json()
        except ValueError:
            raise SignerUnavailable("signer answered something that is not JSON") from None
        if r.status_code >= 400:
            raise SignerRefused(str(answer.get("code")), str(answer.get("message")))
        if not isinstance(answer, dict):
            raise SignerUnavailable("signer answered something that is not an object")
        return answer

    async def address(self, network: str) -> str:
        answer = await self._post("/v1/address", {"op": "address", "network": network})
        return str(answer["address"])

    async def sign(self, withdrawal_id: int, network: str, tx: Mapping[str, object]) -> SignedTx:
        answer = await self._post(
            "/v1/sign",
            {"op": "sign", "withdrawal_id": withdrawal_id, "network": network, "tx": dict(tx)},
        )
        return SignedTx(str(answer["raw"]), str(answer["txid"]))

    async def sweep(self, transfer_id: int, network: str, tx: Mapping[str, object]) -> SignedTx:
        """A custody transfer's fixed transaction (sweep, gas top-up, move to cold)."""
        answer = await self._post(
            "/v1/sweep",
            {"op": "sweep", "transfer_id": transfer_id, "network": network, "tx": dict(tx)},
        )
        return SignedTx(str(answer["raw"]), str(answer["txid"]))
