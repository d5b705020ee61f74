"""The REST fast lane answers signed placements and cancels exactly as the routes do.

The same requests go to two fresh embedded exchanges set up alike, one with the fast
lane and one without; every answer must have the same status and body (ids and
timestamps aside), and the lane must have taken the signed order calls it can take.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient
from pydantic_core import PydanticUndefined

from tests.integration.test_rest_api import Api, make_exchange, order
from tradewind.gateways.rest import schemas as S
from tradewind.gateways.rest.fastlane import FastLane, OrderBody
from tradewind.runtime.bootstrap import EmbeddedExchange
from tradewind.services.accounts import sign_request

VOLATILE = ("created_at", "updated_at", "id")


def lane_of(exchange: EmbeddedExchange) -> FastLane:
    for m in exchange.app.user_middleware:
        lane = m.kwargs.get("lane")
        if isinstance(lane, FastLane):
            return lane
    raise AssertionError("no fast lane installed")


def test_order_body_is_the_order_schema_field_for_field() -> None:
    fields = msgspec.structs.fields(OrderBody)
    assert [f.name for f in fields] == list(S.OrderIn.model_fields)
    for f in fields:
        default = S.OrderIn.model_fields[f.name].default
        expected = msgspec.NODEFAULT if default is PydanticUndefined else default
        assert f.default == expected, f.name


def scenario(api: Api) -> list[tuple[str, int, Any]]:
    """Signed order calls good and bad; returns (label, status, body) per call."""
    alice = api.user(USDT="100000", BTC="10")
    bob = api.user(USDT="100000")
    reader = api.user(permissions=("read",), USDT="1000")
    out: list[tuple[str, int, Any]] = []

    def record(label: str, r: Any) -> Any:
        body = r.json() if r.content else None
        out.append((label, r.status_code, body))
        return body

    placed = record(
        "place", alice.signed("POST", "/api/v1/orders", order("BTC-USDT", "buy", "100", "0.5"))
    )
    ts = int(time.time() * 1000)
    content = msgspec.json.encode(order("BTC-USDT", "buy", "101", "0.5"))
    sig = sign_request(alice.secret, ts, "POST", "/api/v1/orders", content)
    headers = {
        "TW-KEY": alice.key_id,
        "TW-TIMESTAMP": str(ts),
        "TW-SIGNATURE": sig,
        "Content-Type": "application/json",
    }
    record("first", api.client.post("/api/v1/orders", content=content, headers=headers))
    record("replayed", api.client.post("/api/v1/orders", content=content, headers=headers))
    bad_sig = {**headers, "TW-SIGNATURE": "0" * 64, "TW-TIMESTAMP": str(ts + 1)}
    record("bad signature", api.client.post("/api/v1/orders", content=content, headers=bad_sig))
    for label, body in (
        ("unknown field", {**order("BTC-USDT", "buy", "100", "0.5"), "colour": "red"}),
        ("number price", {**order("BTC-USDT", "buy", "100", "0.5"), "price": 100}),
        ("off tick", order("BTC-USDT", "buy", "100.001", "0.5")),
        ("unknown symbol", order("DOGE-USDT", "buy", "1", "1")),
        ("too poor", order("BTC-USDT", "buy", "100000", "500")),
        ("ioc", {**order("BTC-USDT", "sell", "90", "0.1"), "time_in_force": "IOC"}),
        ("bad literal", {**order("BTC-USDT", "buy", "100", "0.5"), "side": "BUY"}),
    ):
        record(label, alice.signed("POST", "/api/v1/orders", body))
    record("not json", alice.signed("POST", "/api/v1/orders", raw=b"{nope"))
    record("read only", reader.signed("POST", "/api/v1/orders", order("BTC-USDT", "buy", "1", "1")))
    order_id = placed["id"]
    record("foreign cancel", bob.signed("DELETE", f"/api/v1/orders/{order_id}"))
    record("cancel", alice.signed("DELETE", f"/api/v1/orders/{order_id}"))
    record("cancel again", alice.signed("DELETE", f"/api/v1/orders/{order_id}"))
    record("cancel unknown", alice.signed("DELETE", "/api/v1/orders/987654321"))
    record("cancel padded", alice.signed("DELETE", f"/api/v1/orders/0{order_id}"))
    record("cancel huge", alice.signed("DELETE", "/api/v1/orders/99999999999999999999"))
    r = api.client.post(
        "/api/v1/orders", json=order("BTC-USDT", "buy", "100", "0.1"), headers=alice.bearer
    )
    record("bearer", r)
    return out


def _strip(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k not in VOLATILE}
    return body


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[[str, bool], tuple[list[Any], int]]]:
    def go(name: str, lane_on: bool) -> tuple[list[Any], int]:
        exchange = make_exchange(tmp_path / name)
        lane = lane_of(exchange)
        assert lane.enabled
        taken = 0
        trader = lane.trader

        async def counting(request: Any, key_id: str) -> Any:
            nonlocal taken
            taken += 1
            return await trader(request, key_id)

        lane.trader = counting  # type: ignore[method-assign]
        if not lane_on:
            lane.place = None
        with TestClient(exchange.app) as client:
            answers = scenario(Api(client, exchange))
        return answers, taken

    yield go


def test_the_lane_answers_as_the_routes_do(
    run: Callable[[str, bool], tuple[list[Any], int]],
) -> None:
    fast, taken = run("fast", True)
    slow, not_taken = run("slow", False)
    assert not_taken == 0
    # the signed calls that decode and carry canonical ids went through the lane
    assert taken == 13
    assert [(label, status) for label, status, _ in fast] == [
        (label, status) for label, status, _ in slow
    ]
    for (label, _, a), (_, _, b) in zip(fast, slow, strict=True):
        assert _strip(a) == _strip(b), label
    by_label = {label: (status, body) for label, status, body in fast}
    assert by_label["place"][0] == 201
    assert by_label["replayed"][1]["code"] == "replayed_signature"
    assert by_label["unknown field"][1]["code"] == "unknown_field"
    assert by_label["cancel"][1]["status"] == "cancelled"
    assert by_label["cancel again"][0] == 409


def test_the_lane_stays_out_of_routes_with_dependencies_of_their_own() -> None:
    from fastapi import APIRouter, Depends, FastAPI

    async def extra() -> None:
        return None

    async def place(body: Any, principal: Any) -> Any: ...
    async def cancel(order_id: int, principal: Any) -> Any: ...

    for how in ("router", "include"):
        app = FastAPI()
        router = APIRouter(dependencies=[Depends(extra)] if how == "router" else [])
        app.include_router(router, dependencies=[Depends(extra)] if how == "include" else None)
        lane = FastLane()
        lane.bind(place=place, cancel=cancel, routers=(router, app.router))
        assert not lane.enabled, how
    plain = FastAPI()
    router = APIRouter()
    plain.include_router(router)
    lane = FastLane()
    lane.bind(place=place, cancel=cancel, routers=(router, plain.router))
    assert lane.enabled
