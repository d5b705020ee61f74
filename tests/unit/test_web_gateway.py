"""The built web UI is served by the app without changing the API's answers, and the
fee rates the order form shows come from ``GET /api/v1/fees``."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tradewind.gateways.rest.errors import install_error_handlers
from tradewind.gateways.rest.fees import install_fee_routes
from tradewind.gateways.web import install_web


@pytest.fixture
def build(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>Tradewind</title>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    return tmp_path


def app_with(build: Path | None, *, demo: bool = True) -> tuple[TestClient, bool]:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/api/v1/markets")
    async def markets() -> list[str]:
        return ["BTC-USDT"]

    mounted = install_web(app, demo=demo, web_dir=build)
    return TestClient(app), mounted


def test_client_routes_answer_the_page_so_deep_links_and_reloads_work(build: Path) -> None:
    client, mounted = app_with(build)
    assert mounted
    for path in ("/", "/login", "/register", "/verify-email", "/trade/ETH-USDT", "/admin/x"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert "<title>Tradewind</title>" in r.text
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache"


def test_hashed_assets_are_cached_for_good(build: Path) -> None:
    client, _ = app_with(build)
    r = client.get("/assets/index-abc123.js")
    assert r.status_code == 200
    assert "immutable" in r.headers["cache-control"]
    assert client.get("/assets/missing.js").status_code == 404


def test_api_paths_keep_their_json_answers(build: Path) -> None:
    client, _ = app_with(build)
    assert client.get("/api/v1/markets").json() == ["BTC-USDT"]
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    r = client.post("/trade/BTC-USDT")
    assert r.status_code == 405


def test_config_tells_the_page_whether_this_is_the_demo(build: Path) -> None:
    assert app_with(build, demo=True)[0].get("/config.json").json() == {"demo": True}
    assert app_with(build, demo=False)[0].get("/config.json").json() == {"demo": False}


def test_without_a_build_nothing_is_mounted(tmp_path: Path) -> None:
    client, mounted = app_with(tmp_path / "no-build")
    assert not mounted
    assert client.get("/").status_code == 404
    assert client.get("/config.json").status_code == 404


def fees_app(rates: tuple[int, int] | None) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    install_fee_routes(app, None if rates is None else (lambda: rates))
    return TestClient(app)


def test_fees_are_the_base_tier_in_basis_points() -> None:
    r = fees_app((10, 20)).get("/api/v1/fees")
    assert r.status_code == 200
    assert r.json() == {"maker_bps": 10, "taker_bps": 20}


def test_fees_without_a_source_answer_503_not_a_guess() -> None:
    r = fees_app(None).get("/api/v1/fees")
    assert r.status_code == 503
    assert r.json()["code"] == "fees_unavailable"
