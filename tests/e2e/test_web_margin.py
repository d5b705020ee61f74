"""Margin in the browser: a user with faucet funds opens the margin page, transfers USDT
into the isolated BTC-USDT wallet, is stopped by the form before borrowing over the
10x bound (the server's own max-borrowable), borrows within it and sees the level
gauge, the debt and the liquidation price; repays part and finds both in the history;
places a margin order from the trading screen's wallet switch, and cancels it on the
margin page.

The demo's margin terms (runtime/margin.py): BTC-USDT isolated at 10x, initial level
1.1112, first mark 65,000."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.browser import new_page, register_in_browser
from tests.support.server import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("margin") / "data") as srv:
        if httpx.get(f"{srv.url}/api/v1/margin/config", timeout=10).status_code != 200:
            pytest.skip("this server offers no margin")
        yield srv


def token_of(page: Any) -> str:
    token: str = page.evaluate("JSON.parse(localStorage.getItem('tradewind.session')).token")
    return token


def faucet(server: Server, page: Any, asset: str, amount: str) -> None:
    r = httpx.post(
        f"{server.url}/api/v1/demo/faucet",
        json={"asset": asset, "amount": amount},
        headers={"Authorization": f"Bearer {token_of(page)}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def test_margin_page_transfer_borrow_repay_and_a_margin_order(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    page = new_page(browser)
    register_in_browser(page, server.url, "mara@example.com")
    faucet(server, page, "USDT", "5000")
    page.get_by_role("link", name="Margin").click()
    page.wait_for_url(re.compile(r"/account/margin$"))
    # the wallet tabs by keyboard (ARIA tab pattern): Home, then the right arrow
    tabs = page.get_by_role("tablist", name="Margin wallet").get_by_role("tab")
    expect(tabs.first).to_be_visible()
    page.get_by_role("tab", selected=True).first.focus()
    page.keyboard.press("Home")
    expect(tabs.first).to_be_focused()
    expect(tabs.first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowRight")
    isolated = page.get_by_role("tab", name="Isolated BTC-USDT (10x)")
    expect(isolated).to_be_focused()
    expect(isolated).to_have_attribute("aria-selected", "true")
    expect(page.get_by_test_id("margin-empty")).to_be_visible()

    page.get_by_label("Action").select_option("in")
    page.get_by_label("Asset", exact=True).select_option("USDT")
    page.get_by_label("Amount").fill("1000")
    page.get_by_test_id("margin-submit").click()
    expect(page.get_by_test_id("margin-done")).to_have_text("Transferred in 1000 USDT.")
    expect(page.get_by_test_id("margin-balances")).to_contain_text("1000.000000")

    page.get_by_label("Action").select_option("borrow")
    most = page.get_by_test_id("margin-max")
    expect(most).to_have_text("8992.805755 USDT")  # floor(1000 / 0.1112)
    page.get_by_label("Amount").fill("8992.805756")
    expect(page.get_by_test_id("margin-error")).to_have_text(
        "At most 8992.805755 can be borrowed now."
    )
    expect(page.get_by_test_id("margin-submit")).to_be_disabled()
    page.get_by_label("Amount").fill("8000")
    page.get_by_test_id("margin-submit").click()
    expect(page.get_by_test_id("margin-done")).to_have_text("Borrowed 8000 USDT.")
    expect(page.get_by_test_id("margin-level")).to_have_text("1.1250")
    gauge = page.get_by_test_id("margin-gauge")
    expect(gauge).to_have_attribute("aria-valuetext", "1.1250")
    # no BTC yet: the level does not depend on the mark, so there is no liquidation price
    expect(page.get_by_test_id("liquidation-price")).to_have_text("—")

    page.get_by_label("Action").select_option("repay")
    page.get_by_label("Amount").fill("3000")
    page.get_by_test_id("margin-submit").click()
    expect(page.get_by_test_id("margin-done")).to_have_text("Repaid 3000 USDT.")
    history = page.get_by_test_id("margin-history")
    expect(history).to_contain_text("Repaid 3000.000000 USDT")
    expect(history).to_contain_text("Borrowed 8000.000000 USDT")

    # the trading screen's wallet switch: a margin limit buy from the isolated wallet
    page.get_by_role("link", name="Tradewind").click()
    page.wait_for_url(re.compile(r"/(trade/BTC-USDT)?$"))
    wallet = page.get_by_test_id("order-wallet")
    expect(wallet).to_be_visible()
    wallet.select_option("isolated")
    expect(page.get_by_test_id("available")).to_have_text("6,000.000000 USDT")
    page.get_by_test_id("order-price").fill("50000")
    page.get_by_test_id("order-qty").fill("0.01")
    page.get_by_test_id("submit-order").click()
    expect(page.get_by_test_id("notice")).to_contain_text("new")
    r = httpx.get(
        f"{server.url}/api/v1/margin/orders",
        params={"wallet": "isolated", "symbol": "BTC-USDT", "open": "true"},
        headers={"Authorization": f"Bearer {token_of(page)}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert [(o["side"], o["price"], o["quantity"]) for o in r.json()["items"]] == [
        ("buy", "50000.00", "0.0100")
    ]
    # the trading screen's open orders say which wallet; the switch is remembered for
    # this symbol after a reload
    own = page.get_by_test_id("open-order").filter(has_text="50,000.00")
    expect(own.get_by_test_id("order-wallet-label")).to_have_text("Isolated")
    page.reload()
    expect(page.get_by_test_id("order-wallet")).to_have_value("isolated")
    expect(page.get_by_test_id("available")).to_have_text("5,500.000000 USDT")

    # ...listed on the margin page with its wallet, and cancelled there
    page.get_by_role("link", name="Margin").click()
    page.get_by_role("tab", name="Isolated BTC-USDT (10x)").click()
    orders = page.get_by_test_id("margin-orders")
    expect(orders).to_contain_text("50000.00")
    page.get_by_test_id("margin-cancel").click()
    expect(page.get_by_test_id("margin-orders")).to_have_count(0)
