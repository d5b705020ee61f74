"""The web trading screen in a real browser against a real ``tradewind serve``.

Two people in two browser contexts (two separate sessions, as two browsers): A
registers, takes BTC from the demo faucet and offers it with a limit sell; B registers,
takes USDT, sees A's offer arrive in the book without reloading, clicks its price (which
fills the order form) and buys. Neither page is reloaded: both must show the trade, the
fills, and balances moved by exactly the price, quantity and maker/taker fees. Then A
places two orders and cancels them with "Cancel all"; a bad order is stopped by the form
before any request; and when the server dies and comes back, the page shows a reconnect
banner, then resyncs the book from the new server.

The market maker is off here, so every book level and trade is one the test made.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import TIMEOUT_MS, new_page, register_in_browser
from tests.support.server import Server, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server of its own (the reconnect test kills it)."""
    with running_server(tmp_path / "data") as srv:
        yield srv


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that only add their own users and orders."""
    with running_server(tmp_path_factory.mktemp("web") / "data") as srv:
        yield srv


def open_page(browser: Any, url: str, width: int = 1280, height: int = 900) -> Any:
    """:func:`new_page` that also collects the page's uncaught errors in ``page.errors``."""
    page = new_page(browser, width=width, height=height)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(url)
    return page


def register(page: Any, server: Server, email: str) -> None:
    register_in_browser(page, server.url, email)
    assert page.get_by_test_id("user-email").inner_text() == email
    assert re.search(r"/trade/BTC-USDT$", page.url)


def expect_text(locator: Any, text: str) -> None:
    from playwright.sync_api import expect

    expect(locator).to_have_text(text, timeout=TIMEOUT_MS)


def place(page: Any, side: str, price: str, qty: str) -> None:
    page.get_by_test_id(f"side-{side}").click()
    page.get_by_label("Order type").select_option("limit")
    page.get_by_test_id("order-price").fill(price)
    page.get_by_test_id("order-qty").fill(qty)
    page.get_by_test_id("submit-order").click()


def test_two_users_trade_and_both_screens_follow_without_reloading(
    shared: Server, browser: Any
) -> None:
    from playwright.sync_api import expect

    server = shared

    a = open_page(browser, server.url)
    b = open_page(browser, server.url)
    register(a, server, "alice@example.com")
    register(b, server, "bob@example.com")

    a.get_by_test_id("faucet-BTC").click()
    expect_text(a.get_by_test_id("available-BTC"), "1.00000000")
    b.get_by_test_id("faucet-USDT").click()
    expect_text(b.get_by_test_id("available-USDT"), "10,000.000000")

    # A's sell: the form shows what it costs before it is sent (fee at most the taker
    # rate of 20 bps, in the USDT received)
    a.get_by_test_id("side-sell").click()
    a.get_by_test_id("order-price").fill("65000")
    a.get_by_test_id("order-qty").fill("0.01")
    expect_text(a.get_by_test_id("order-fee"), "1.300000 USDT")
    expect_text(a.get_by_test_id("order-total-shown"), "0.0100 BTC")
    a.get_by_test_id("submit-order").click()
    expect(a.get_by_test_id("open-order")).to_have_count(1)
    expect_text(a.get_by_test_id("locked-BTC"), "0.01000000")

    # B sees it arrive in the book, live, and clicks its price into the form
    ask = b.get_by_test_id("ask-row").filter(has_text="65,000.00")
    expect(ask).to_have_count(1)
    ask.click()
    expect(b.get_by_test_id("order-price")).to_have_value("65000.00")
    b.get_by_test_id("side-buy").click()
    b.get_by_test_id("order-qty").fill("0.0100")
    expect_text(b.get_by_test_id("order-total-shown"), "650.000000 USDT")
    b.get_by_test_id("submit-order").click()

    # both screens follow: A was the maker (10 bps in USDT), B the taker (20 bps in BTC)
    expect_text(a.get_by_test_id("available-USDT"), "649.350000")
    expect_text(a.get_by_test_id("available-BTC"), "0.99000000")
    expect_text(a.get_by_test_id("locked-BTC"), "0.00000000")
    expect(a.get_by_test_id("open-order")).to_have_count(0)
    expect_text(b.get_by_test_id("available-BTC"), "0.00998000")
    expect_text(b.get_by_test_id("available-USDT"), "9,350.000000")
    for page in (a, b):
        expect(page.get_by_test_id("trade-row").first).to_contain_text("65,000.00")
        expect(page.get_by_test_id("last-price")).to_have_text("65,000.00")
        expect(page.get_by_test_id("ask-row")).to_have_count(0)
        # the chart took the trade's candle from the socket
        expect(page.get_by_test_id("chart")).not_to_have_attribute("data-candles", "0")
    a.get_by_test_id("tab-fills").click()
    expect(a.get_by_test_id("fill-row")).to_have_count(1)
    expect(a.get_by_test_id("fill-row")).to_contain_text("maker")
    b.get_by_test_id("tab-fills").click()
    expect(b.get_by_test_id("fill-row")).to_contain_text("taker")
    b.get_by_test_id("tab-history").click()
    expect(b.get_by_test_id("history-order").first).to_contain_text("filled")

    # cancel-all: two resting orders go, their BTC is unlocked, B's book empties
    place(a, "sell", "70000", "0.01")
    place(a, "sell", "71000.50", "0.02")
    a.get_by_test_id("tab-open").click()
    expect(a.get_by_test_id("open-order")).to_have_count(2)
    expect_text(a.get_by_test_id("locked-BTC"), "0.03000000")
    expect(b.get_by_test_id("ask-row")).to_have_count(2)
    a.get_by_test_id("cancel-all").click()
    expect(a.get_by_test_id("open-order")).to_have_count(0)
    expect_text(a.get_by_test_id("locked-BTC"), "0.00000000")
    expect_text(a.get_by_test_id("available-BTC"), "0.99000000")
    expect(b.get_by_test_id("ask-row")).to_have_count(0)
    assert a.errors == [] and b.errors == []


def test_the_form_stops_an_order_the_filters_refuse_before_sending_it(
    shared: Server, browser: Any
) -> None:
    from playwright.sync_api import expect

    server = shared

    page = open_page(browser, server.url)
    register(page, server, "carol@example.com")
    page.get_by_test_id("faucet-USDT").click()
    expect_text(page.get_by_test_id("available-USDT"), "10,000.000000")
    sent: list[str] = []
    page.on(
        "request",
        lambda r: sent.append(r.url) if r.method == "POST" and "/orders" in r.url else None,
    )

    page.get_by_test_id("order-price").fill("65000.005")  # off the 0.01 tick
    page.get_by_test_id("order-qty").fill("0.00005")  # off the 0.0001 lot
    page.get_by_test_id("submit-order").click()
    expect(page.locator("#err-price")).to_have_text("price must be a multiple of 0.01")
    expect(page.locator("#err-qty")).to_have_text("quantity must be a multiple of 0.0001")
    expect(page.get_by_test_id("order-price")).to_have_attribute("aria-invalid", "true")

    page.get_by_test_id("order-price").fill("100")
    page.get_by_test_id("order-qty").fill("0.0001")  # 0.01 USDT: below the 1 USDT minimum
    expect(page.locator("#err-qty")).to_contain_text("at least 1.000000 USDT")
    page.get_by_test_id("order-qty").fill("1")  # 100 USDT... of a 65,000 order? no: at 100
    page.get_by_test_id("order-price").fill("20000")  # 20,000 USDT > 10,000 available
    expect(page.locator("#err-qty")).to_have_text("not enough USDT")
    page.get_by_test_id("submit-order").click()
    assert sent == []

    # the % slider sizes the order from the balance, on the lot grid
    page.get_by_test_id("order-price").fill("20000")
    page.get_by_label(re.compile("of available USDT")).fill("50")
    expect(page.get_by_test_id("order-qty")).to_have_value("0.2500")
    page.get_by_test_id("submit-order").click()
    expect(page.get_by_test_id("open-order")).to_have_count(1)
    assert len(sent) == 1


def test_a_dropped_connection_shows_a_banner_then_resyncs_the_book(
    server: Server, browser: Any
) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, server.url)
    register(page, server, "dave@example.com")
    page.get_by_test_id("faucet-BTC").click()
    expect_text(page.get_by_test_id("available-BTC"), "1.00000000")
    place(page, "sell", "66000", "0.5")
    expect(page.get_by_test_id("ask-row")).to_have_count(1)
    banner = page.get_by_test_id("reconnect-banner")
    expect(banner).to_have_count(0)

    server.kill()
    expect(banner).to_be_visible()
    server.start()
    expect(banner).to_have_count(0, timeout=30_000)
    # the book was rebuilt from the restarted server (same journal: the order is there)
    expect(page.get_by_test_id("order-book")).to_have_attribute("data-live", "true")
    expect(page.get_by_test_id("ask-row")).to_have_count(1)
    expect(page.get_by_test_id("ask-row")).to_contain_text("66,000.00")
    # and the session still works: a new order appears in the open orders
    place(page, "sell", "67000", "0.1")
    expect(page.get_by_test_id("open-order")).to_have_count(2)
