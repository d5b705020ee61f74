"""The back office in the browser: two admins (made with ``tradewind admin create-user``)
and a user. The first admin finds the user, requests a balance adjustment, and may not
approve their own request; the second approves it in their own browser and the user's
balance moves; the first freezes the user; the audit log shows the actions and its hash
chain checks out. A user without a staff role has no back office."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import CHROMIUM_ARGS, PASSWORD, require_browser
from tests.support.server import Server, free_port

TIMEOUT_MS = 15_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", free_port())
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def create_staff(server: Server, email: str, role: str) -> None:
    code = "from tradewind.runtime.cli import main; main()"
    args = ["admin", "create-user", "--email", email, "--role", role, "--password-stdin"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args, "--data-dir", str(server.data_dir)],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def log_in(browser: Any, server: Server, email: str) -> Any:
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{server.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("user-email")).to_have_text(email)
    return page


def token_of(server: Server, email: str) -> str:
    r = httpx.post(
        f"{server.url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def test_two_person_adjustment_freeze_and_audit(server: Server, browser: Any) -> None:
    from playwright.sync_api import expect

    r = httpx.get(f"{server.url}/api/v1/admin/me", timeout=10)
    if r.status_code == 404:
        pytest.skip("this server has no admin API")
    create_staff(server, "admin1@example.com", "admin")
    create_staff(server, "admin2@example.com", "admin")
    r = httpx.post(
        f"{server.url}/api/v1/auth/register",
        json={"email": "henry@example.com", "password": PASSWORD},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    user_id = r.json()["user_id"]

    a1 = log_in(browser, server, "admin1@example.com")
    a1.get_by_role("link", name="Admin").click()
    a1.get_by_label("Search by email").fill("henry")
    a1.get_by_role("button", name="Search").click()
    row = a1.get_by_test_id("admin-user-row").filter(has_text="henry@example.com")
    expect(row).to_have_count(1)
    row.get_by_role("button", name="Adjust balance").click()
    a1.get_by_label("Asset").select_option("USDT")
    a1.get_by_label("Amount (negative debits)").fill("250")
    a1.get_by_label("Reason (goes to the audit log)").fill("goodwill credit")
    a1.get_by_role("button", name="Request").click()
    expect(a1.get_by_test_id("notice")).to_contain_text("another staff member must approve")

    a1.get_by_role("tab", name="Approvals").click()
    pending = a1.get_by_test_id("approval-row")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("250")
    pending.get_by_role("button", name="Approve").click()
    expect(a1.get_by_test_id("admin-error")).not_to_be_empty()  # not by the requester
    expect(pending).to_have_count(1)

    a2 = log_in(browser, server, "admin2@example.com")
    a2.goto(f"{server.url}/admin")
    a2.get_by_role("tab", name="Approvals").click()
    a2.get_by_test_id("approval-row").get_by_role("button", name="Approve").click()
    expect(a2.get_by_test_id("approval-row")).to_have_count(0)  # no longer pending
    a2.get_by_label("Show").select_option("executed")
    expect(a2.get_by_test_id("approval-row")).to_contain_text("executed")

    bearer = {"Authorization": f"Bearer {token_of(server, 'henry@example.com')}"}
    balances = httpx.get(f"{server.url}/api/v1/balances", headers=bearer, timeout=10).json()
    assert {b["asset"]: b["available"] for b in balances}["USDT"] == "250.000000"

    # freeze, with its reason shown
    a1.get_by_role("tab", name="Users").click()
    row = a1.get_by_test_id("admin-user-row").filter(has_text="henry@example.com")
    row.get_by_role("button", name="Freeze").click()
    a1.get_by_label("Reason (goes to the audit log)").fill("suspicious logins")
    a1.get_by_role("button", name="Confirm").click()
    expect(row).to_contain_text("frozen: suspicious logins")

    # every step is in the audit log, whose hash chain holds
    a1.get_by_role("tab", name="Audit log").click()
    entries = a1.get_by_test_id("audit-row")
    expect(entries.filter(has_text="freeze")).not_to_have_count(0)
    expect(entries.filter(has_text="adjustment")).not_to_have_count(0)
    a1.get_by_role("button", name="Check the chain").click()
    expect(a1.get_by_test_id("audit-chain")).to_contain_text("intact")

    # a user without a staff role has no back office
    r = httpx.get(f"{server.url}/api/v1/admin/me", headers=bearer, timeout=10)
    assert r.status_code == 403
    assert user_id > 0


def test_kyc_review_queue_and_market_halt(server: Server, browser: Any) -> None:
    """A compliance officer approves a user's document from the KYC queue (the user's
    level rises); an admin halts a market from the Markets tab (orders there are then
    refused) and resumes it; a compliance officer may not halt."""
    from playwright.sync_api import expect

    if httpx.get(f"{server.url}/api/v1/admin/me", timeout=10).status_code == 404:
        pytest.skip("this server has no admin API")
    create_staff(server, "boss@example.com", "admin")
    create_staff(server, "checker@example.com", "compliance")
    create_staff(server, "iris@example.com", "user")  # a verified address, no staff role
    bearer = {"Authorization": f"Bearer {token_of(server, 'iris@example.com')}"}
    r = httpx.post(
        f"{server.url}/api/v1/kyc/documents?kind=passport",
        content=b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n",
        headers={**bearer, "Content-Type": "application/pdf"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    assert httpx.get(f"{server.url}/api/v1/kyc", headers=bearer, timeout=10).json()["level"] == 0

    checker = log_in(browser, server, "checker@example.com")
    checker.goto(f"{server.url}/admin")
    checker.get_by_role("tab", name="KYC review").click()
    row = checker.get_by_test_id("kyc-row").filter(has_text="passport")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("application/pdf")
    row.get_by_role("button", name="Reject").click()  # a rejection needs a note
    expect(checker.get_by_test_id("kyc-error")).to_contain_text("note")
    row.get_by_label(re.compile(r"Level for document")).select_option("1")
    row.get_by_label(re.compile(r"Note for document")).fill("matches the selfie")
    row.get_by_role("button", name="Approve").click()
    expect(checker.get_by_test_id("kyc-row")).to_have_count(0)  # no longer pending
    assert httpx.get(f"{server.url}/api/v1/kyc", headers=bearer, timeout=10).json()["level"] == 1

    # compliance cannot halt a market: the server refuses, the page says so
    checker.get_by_role("tab", name="Markets").click()
    market = checker.get_by_test_id("market-row").filter(has_text="ETH-USDT")
    market.get_by_label("Reason for ETH-USDT").fill("not my call")
    market.get_by_role("button", name="Halt").click()
    expect(checker.get_by_test_id("markets-error")).to_contain_text("role_required")

    boss = log_in(browser, server, "boss@example.com")
    boss.goto(f"{server.url}/admin")
    boss.get_by_role("tab", name="Markets").click()
    market = boss.get_by_test_id("market-row").filter(has_text="ETH-USDT")
    market.get_by_role("button", name="Halt").click()  # a reason is needed first
    expect(boss.get_by_test_id("markets-error")).to_contain_text("reason")
    market.get_by_label("Reason for ETH-USDT").fill("oracle outage")
    market.get_by_role("button", name="Halt").click()
    expect(market.get_by_test_id("market-status")).to_have_text("halted")
    assert httpx.get(f"{server.url}/api/v1/markets/ETH-USDT", timeout=10).json()["status"] == (
        "halted"
    )
    httpx.post(
        f"{server.url}/api/v1/demo/faucet",
        json={"asset": "USDT", "amount": "1000"},
        headers=bearer,
        timeout=10,
    ).raise_for_status()
    order = {"symbol": "ETH-USDT", "side": "buy", "price": "100", "quantity": "0.1"}
    r = httpx.post(f"{server.url}/api/v1/orders", json=order, headers=bearer, timeout=10)
    assert (r.status_code, r.json()["code"]) == (409, "symbol_halted")

    market.get_by_label("Reason for ETH-USDT").fill("oracle back")
    market.get_by_role("button", name="Resume").click()
    expect(market.get_by_test_id("market-status")).to_have_text("trading")
    r = httpx.post(f"{server.url}/api/v1/orders", json=order, headers=bearer, timeout=10)
    assert r.status_code == 201, r.text
