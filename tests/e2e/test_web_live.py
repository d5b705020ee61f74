"""The trading screen against the demo with its market maker running: the book, trades
and chart move by themselves, at desktop and phone widths, in both themes, without the
layout shifting. Saves the screenshots (tests/e2e/artifacts/, git-ignored) that
docs/web.md shows one of."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import ARTIFACTS, new_page, register_in_browser
from tests.support.server import Server, running_server

# Layout shifts observed since load (the Layout Instability API), excluding shifts right
# after user input, as the browser reports them.
WATCH_SHIFTS = """
window.__shifts = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shifts.push(e.value);
}).observe({ type: "layout-shift", buffered: false });
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("live") / "data"
    with running_server(data, TRADEWIND_DEMO_BOT="1", TRADEWIND_BOT_SEED="7") as srv:
        yield srv


def book_version(page: Any) -> int:
    return int(page.get_by_test_id("order-book").get_attribute("data-version") or "0")


def test_book_trades_and_chart_update_live_without_layout_shift(
    server: Server, browser: Any
) -> None:
    from playwright.sync_api import expect

    page = new_page(browser, server.url, color_scheme="light")
    register_in_browser(page, server.url, "erin@example.com")
    page.get_by_test_id("faucet-USDT").click()
    expect(page.get_by_test_id("available-USDT")).to_have_text("10,000.000000")
    expect(page.get_by_test_id("order-book")).to_have_attribute("data-live", "true")
    # a resting bid well under the market, so the screenshot shows an open order
    page.get_by_test_id("bid-row").last.click()
    page.get_by_test_id("order-qty").fill("0.0500")
    page.get_by_test_id("submit-order").click()
    expect(page.get_by_test_id("open-order")).to_have_count(1)
    expect(page.get_by_test_id("bid-row").first).to_be_visible()
    expect(page.get_by_test_id("ask-row").first).to_be_visible()
    page.evaluate(WATCH_SHIFTS)
    box = page.get_by_test_id("order-book").bounding_box()
    first = book_version(page)
    # the market maker requotes every 0.5 s: the book redraws on its own
    # (functions, not expression strings: the page's CSP forbids eval, which Playwright
    # would need to poll an expression)
    page.wait_for_function(
        "(n) => Number(document.querySelector('[data-testid=order-book]').dataset.version) > n",
        arg=first + 3,
    )
    # and it trades now and then: the tape and the chart follow
    expect(page.get_by_test_id("trade-row").first).to_be_visible()
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=chart]').dataset.updates) > 0",
        timeout=30_000,
    )
    assert page.get_by_test_id("order-book").bounding_box() == box
    shifts = page.evaluate("window.__shifts")
    assert sum(shifts) < 0.001, f"layout shifted while the book updated: {shifts}"
    # every price in the book has the symbol's 2 decimals, quantities the lot's 4
    for text in page.get_by_test_id("bid-row").first.locator(".num").all_inner_texts()[:2]:
        assert len(text.rsplit(".", 1)[1]) in (2, 4), text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "trade-1280.png"))


def test_market_selector_shows_24h_change_and_volume_and_switches_market(
    server: Server, browser: Any
) -> None:
    from playwright.sync_api import expect

    page = new_page(browser, server.url, color_scheme="light")
    page.get_by_test_id("market-select").click()
    row = page.get_by_role("row").filter(has=page.get_by_test_id("market-ETH-USDT"))
    expect(row).to_contain_text("%")
    expect(row).to_contain_text("USDT")
    page.get_by_test_id("market-ETH-USDT").click()
    expect(page).to_have_url(f"{server.url}/trade/ETH-USDT")
    expect(page.get_by_role("heading", name="ETH-USDT chart")).to_be_visible()
    expect(page.get_by_test_id("order-book")).to_have_attribute("data-live", "true")
    expect(page.get_by_test_id("bid-row").first).to_be_visible()
    # grouping by 10 ticks: prices on the 0.1 grid, shown with one decimal
    page.get_by_test_id("book-grouping").select_option(index=1)
    expect(page.get_by_test_id("bid-row").first.locator(".num").first).to_have_text(
        re.compile(r"^[0-9,]+\.[0-9]$")
    )
    # a reload of the deep link comes back to the same market
    page.reload()
    expect(page.get_by_test_id("market-select")).to_contain_text("ETH-USDT")


def test_phone_width_and_dark_theme(server: Server, browser: Any) -> None:
    from playwright.sync_api import expect

    page = new_page(
        browser, f"{server.url}/trade/BTC-USDT", width=390, height=844, color_scheme="dark"
    )
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.get_by_test_id("order-book")).to_have_attribute("data-live", "true")
    expect(page.get_by_test_id("bid-row").first).to_be_visible()
    # nothing wider than the phone: no sideways scrolling of the page
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # the form is usable by keyboard: labelled fields in order
    page.get_by_label("Price (USDT)").focus()
    page.keyboard.type("65000")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Amount (BTC)")).to_be_focused()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "trade-390-dark.png"), full_page=True)
    page.get_by_test_id("theme-toggle").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    page.screenshot(path=str(ARTIFACTS / "trade-390.png"), full_page=True)
