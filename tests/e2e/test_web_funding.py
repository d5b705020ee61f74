"""Deposits in the browser: a user opens the deposit page, picks an asset and a
network, and sees their own address (the one the API gives them), its QR code, the
minimum deposit and the confirmations, and copies the address. A network closed for
deposits is said plainly and shows no address, so nobody sends funds there.

The demo's networks are all open, so the closed case rewrites the networks answer in
the browser (``page.route``): what is tested is the page's handling of the flag; the
server's own refusal (``409 deposits_disabled``) is tested in tests/integration."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import PASSWORD, new_page, register_in_browser
from tests.support.camt import Entry, camt053
from tests.support.server import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("funding") / "data") as srv:
        if httpx.get(f"{srv.url}/api/v1/funding/networks", timeout=10).status_code != 200:
            pytest.skip("this server offers no funding networks")
        yield srv


def new_user_page(browser: Any, server: Server, email: str) -> Any:
    page = new_page(browser)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    register_in_browser(page, server.url, email)
    return page


def api_address(server: Server, page: Any, asset: str, network: str) -> dict[str, Any]:
    """The address the API gives the page's user (their session token, from the page)."""
    token = page.evaluate("JSON.parse(localStorage.getItem('tradewind.session')).token")
    r = httpx.get(
        f"{server.url}/api/v1/deposits/address",
        params={"asset": asset, "network": network},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_deposit_page_shows_the_users_address_with_qr_and_rules(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = new_user_page(browser, server, "dora@example.com")
    page.get_by_role("link", name="Deposit").click()
    page.wait_for_url(re.compile(r"/account/deposit$"))

    page.get_by_label("Asset").select_option("USDT")
    page.get_by_label("Network").select_option("bsc")
    expected = api_address(server, page, "USDT", "bsc")
    expect(page.get_by_test_id("deposit-address")).to_have_text(expected["address"])
    expect(page.get_by_test_id("deposit-min")).to_have_text(f"{expected['min_deposit']} USDT")
    assert expected["min_deposit"] == "1.000000"
    expect(page.get_by_test_id("deposit-confirmations")).to_have_text("15 confirmations")
    qr = page.get_by_alt_text("QR code of the deposit address")
    expect(qr).to_be_visible()
    assert qr.get_attribute("src").startswith("data:image/svg+xml;base64,")
    # it draws (an SVG without its namespace would be a broken image)
    page.wait_for_function(
        "() => { const i = document.querySelector('img.qr'); return i && i.complete; }"
    )
    assert qr.evaluate("img => img.naturalWidth") > 0

    panel = page.get_by_test_id("deposit-address-panel")
    panel.get_by_role("button", name="Copy").click()
    expect(panel.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == expected["address"]

    # another asset and network: another address, its own rules; the same after a reload
    page.get_by_label("Asset").select_option("BTC")
    btc = api_address(server, page, "BTC", "bitcoin")
    expect(page.get_by_label("Network")).to_have_value("bitcoin")
    expect(page.get_by_test_id("deposit-address")).to_have_text(btc["address"])
    expect(page.get_by_test_id("deposit-confirmations")).to_have_text("2 confirmations")
    assert btc["address"] != expected["address"]
    page.reload()
    page.get_by_label("Asset").select_option("BTC")
    expect(page.get_by_test_id("deposit-address")).to_have_text(btc["address"])
    page.context.close()


def test_a_closed_network_says_so_and_shows_no_address(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    page = new_user_page(browser, server, "ewan@example.com")
    networks = httpx.get(f"{server.url}/api/v1/funding/networks", timeout=10).json()
    for n in networks:
        for a in n["assets"]:
            if (n["network"], a["asset"]) == ("ethereum", "USDT"):
                a["deposit_enabled"] = False
        if n["network"] == "bsc":
            n["deposit_addresses"] = False
    page.route(
        "**/api/v1/funding/networks",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(networks)
        ),
    )
    asked: list[str] = []
    page.on(
        "request",
        lambda r: asked.append(r.url) if "/deposits/address?asset=USDT" in r.url else None,
    )
    page.goto(f"{server.url}/account/deposit")
    page.get_by_label("Asset").select_option("USDT")
    closed = page.get_by_test_id("deposit-closed")
    expect(closed).to_contain_text("suspended")
    expect(closed).to_contain_text("Do not send USDT")
    expect(page.get_by_test_id("deposit-address")).to_have_count(0)
    page.get_by_label("Network").select_option("bsc")
    expect(closed).to_contain_text("not offered")
    expect(page.get_by_test_id("deposit-address")).to_have_count(0)
    assert asked == []  # no USDT address was even asked for: both its networks are closed
    # an open asset still works
    page.get_by_label("Asset").select_option("ETH")
    expect(page.get_by_test_id("deposit-closed")).to_have_count(0)
    expect(page.get_by_test_id("deposit-address")).to_have_text(
        api_address(server, page, "ETH", "ethereum")["address"]
    )
    page.context.close()


def test_bank_transfer_instructions_with_the_users_reference(browser: Any, server: Server) -> None:
    """The deposit page's bank-transfer section: the exchange's account and the user's
    own RF reference (the one the API gives the same session), copied compact, with the
    warning that it must be in the transfer's reference field."""
    from playwright.sync_api import expect

    page = new_user_page(browser, server, "fiona@example.com")
    token = page.evaluate("JSON.parse(localStorage.getItem('tradewind.session')).token")
    r = httpx.get(
        f"{server.url}/api/v1/fiat/deposit-instructions",
        params={"currency": "EUR"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    if r.status_code == 503:
        pytest.skip("this server has no fiat rails")
    assert r.status_code == 200, r.text
    expected = r.json()
    assert expected["reference"].startswith("RF")

    page.goto(f"{server.url}/account/deposit")
    section = page.get_by_test_id("fiat-deposit")
    expect(section.get_by_test_id("fiat-reference")).to_have_text(expected["reference_display"])
    expect(section.get_by_test_id("fiat-iban")).to_have_text("DE89 3704 0044 0532 0130 00")
    expect(section.get_by_test_id("fiat-bic")).to_have_text(expected["bic"])
    expect(section.get_by_test_id("fiat-beneficiary")).to_have_text(expected["beneficiary"])
    expect(section.get_by_test_id("fiat-warning")).to_contain_text("reference")
    expect(section.get_by_test_id("fiat-warning")).to_contain_text(expected["reference_display"])
    section.get_by_role("button", name="Copy the reference").click()
    expect(section.get_by_role("button", name="Copy the reference")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == expected["reference"]
    page.context.close()


def test_back_office_imports_a_statement_and_credits_a_review_line(
    browser: Any, server: Server
) -> None:
    """A compliance officer imports a camt.053 file on the Bank statements tab: the line
    with the user's reference is matched, the one without waits for review, and crediting
    it to the user (with a note) moves their EUR balance."""
    from playwright.sync_api import expect

    code = "from tradewind.runtime.cli import main; main()"
    args = ["admin", "create-user", "--email", "cora@example.com", "--role", "compliance"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args, "--password-stdin", "--data-dir", str(server.data_dir)],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    payer = new_user_page(browser, server, "gil@example.com")
    token = payer.evaluate("JSON.parse(localStorage.getItem('tradewind.session')).token")
    bearer = {"Authorization": f"Bearer {token}"}
    r = httpx.get(
        f"{server.url}/api/v1/fiat/deposit-instructions",
        params={"currency": "EUR"},
        headers=bearer,
        timeout=10,
    )
    if r.status_code == 503:
        pytest.skip("this server has no fiat rails")
    reference = r.json()["reference"]
    user_id = httpx.get(f"{server.url}/api/v1/account", headers=bearer, timeout=10).json()[
        "user_id"
    ]
    statement = camt053(
        [
            Entry("25.00", ustrd=[reference], ref="WEB-1"),
            Entry("6.00", ustrd=["for gil, forgot the reference"], ref="WEB-2"),
        ],
        message_id="WEB-MSG-1",
    )

    staff = new_page(browser, f"{server.url}/login")
    staff.get_by_label("Email").fill("cora@example.com")
    staff.get_by_label("Password").fill(PASSWORD)
    staff.get_by_role("button", name="Log in").click()
    expect(staff.get_by_test_id("user-email")).to_have_text("cora@example.com")
    staff.goto(f"{server.url}/admin")
    staff.get_by_role("tab", name="Bank statements").click()
    staff.get_by_label("camt.053 statement").set_input_files(
        files=[{"name": "statement.xml", "mimeType": "application/xml", "buffer": statement}]
    )
    staff.get_by_role("button", name="Import").click()
    expect(staff.get_by_test_id("fiat-report")).to_contain_text("1 matched, 1 for review")
    row = staff.get_by_test_id("fiat-line-row").filter(has_text="forgot the reference")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("6.00 EUR")
    row.get_by_role("button", name="Credit").click()  # no user id yet: stopped on the page
    expect(staff.get_by_test_id("fiat-admin-error")).to_contain_text("user id")
    row.get_by_label(re.compile(r"User id for line")).fill(str(user_id))
    row.get_by_label(re.compile(r"Note for line")).fill("gil called us")
    row.get_by_role("button", name="Credit").click()
    expect(staff.get_by_test_id("fiat-line-row")).to_have_count(0)  # the queue is empty
    staff.get_by_label("Show").select_option("credited")
    expect(staff.get_by_test_id("fiat-line-row").filter(has_text="gil called us")).to_have_count(1)
    balances = httpx.get(f"{server.url}/api/v1/balances", headers=bearer, timeout=10).json()
    eur = {b["asset"]: b["available"] for b in balances}.get("EUR", "0")
    assert Decimal(eur) >= Decimal("6")  # the matched 25.00 follows with the crediting pass
    for p in (payer, staff):
        p.context.close()
