"""The back office's alerts and fees, the user's KYC page and the 2FA QR code, in the
browser against a real ``tradewind serve``.

- an alert raised by another process (as the chain watcher or a sweep would) shows in
  the back office with its severity and a badge on the nav; a support agent
  acknowledges it once; it leaves the open list and the badge;
- an admin changes the base tier's fees on the Markets tab (a bad rate is refused by
  the form); the trading screen's fee preview follows, the admin's and a newcomer's;
- a user uploads an identity document on the KYC page (a wrong file type is refused by
  the page, a file whose bytes are not a PDF by the server); a compliance officer sees
  it in the review queue and approves it; the user's page shows level 1 and the review;
- the 2FA set-up QR code really draws (the image decodes: naturalWidth > 0).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import run_coroutine
from tests.support.browser import PASSWORD, new_page, register_in_browser
from tests.support.server import Server, free_port

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", free_port())
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


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

    page = new_page(browser, f"{server.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("user-email")).to_have_text(email)
    return page


def raise_alert(server: Server, kind: str, message: str) -> int:
    """Raise an alert in the server's database, as another process of the exchange would."""
    from tradewind.adapters.local import SystemClock
    from tradewind.adapters.sql.alerts import SqlAlertStore
    from tradewind.adapters.sql.audit import SqlAuditStore
    from tradewind.adapters.sql.engine import Database
    from tradewind.runtime.config import load_settings
    from tradewind.services.alerts import AlertService
    from tradewind.services.audit import AuditLog

    settings = load_settings(None, environ={}, overrides={"data_dir": server.data_dir})

    async def go() -> int:
        db = Database.from_url(settings.resolved_database_url)
        try:
            clock = SystemClock()
            alerts = AlertService(SqlAlertStore(db), AuditLog(SqlAuditStore(db), clock), clock)
            alert = await alerts.raise_alert(
                kind, "critical", message, {"network": "eth", "balance": "0.4"}
            )
            return alert.id
        finally:
            await db.dispose()

    return run_coroutine(go())  # Playwright's loop runs in this thread


def test_alert_acknowledged_and_fees_follow_on_the_trading_screen(
    server: Server, browser: Any
) -> None:
    from playwright.sync_api import expect

    create_staff(server, "ops@example.com", "support")
    create_staff(server, "boss@example.com", "admin")
    raise_alert(server, "hot_wallet.low", "eth hot wallet below its floor")

    ops = log_in(browser, server, "ops@example.com")
    # the header's Admin link carries the count on every page
    expect(ops.get_by_test_id("admin-alerts-badge")).to_have_text("1")
    ops.get_by_role("link", name=re.compile("^Admin")).click()
    expect(ops.get_by_test_id("alerts-badge")).to_have_text("1")
    ops.get_by_role("tab", name="Alerts").click()
    row = ops.get_by_test_id("alert-row").filter(has_text="hot_wallet.low")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("critical")
    expect(row).to_contain_text("eth hot wallet below its floor")
    expect(row).to_contain_text("balance=0.4 network=eth")
    expect(row).to_contain_text(re.compile(r"just now|\d+ s"))
    # on a phone the alert is a card: Acknowledge is on screen, no sideways scroll
    ops.set_viewport_size({"width": 390, "height": 844})
    for _ in range(2):  # both themes
        box = row.get_by_role("button", name=re.compile("Acknowledge")).bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390
        assert ops.evaluate("document.documentElement.scrollWidth") <= 390
        ops.get_by_test_id("theme-toggle").click()
    ops.set_viewport_size({"width": 1280, "height": 900})
    row.get_by_role("button", name=re.compile("Acknowledge")).click()
    expect(ops.get_by_test_id("notice")).to_contain_text("acknowledged")
    expect(ops.get_by_test_id("alert-row")).to_have_count(0)  # the open list is empty
    expect(ops.get_by_test_id("alerts-badge")).to_have_count(0)
    expect(ops.get_by_test_id("admin-alerts-badge")).to_have_count(0)
    ops.get_by_label("Show").select_option("acknowledged")
    done = ops.get_by_test_id("alert-row").filter(has_text="hot_wallet.low")
    expect(done.get_by_test_id("alert-status")).to_contain_text("acknowledged by #")

    # fees: the trading screen's preview before, then after the admin's change
    boss = log_in(browser, server, "boss@example.com")

    def fee_preview(page: Any) -> Any:
        page.goto(f"{server.url}/trade/BTC-USDT")
        page.get_by_test_id("side-sell").click()
        page.get_by_test_id("order-price").fill("65000")
        page.get_by_test_id("order-qty").fill("0.01")
        return page.get_by_test_id("order-fee")

    expect(fee_preview(boss)).to_have_text("1.300000 USDT")  # the demo's 20 bps taker
    boss.get_by_role("link", name="Admin").click()
    boss.get_by_role("tab", name="Markets").click()
    base = boss.get_by_test_id("fee-tier-row").filter(has_text="(base)")
    expect(base.get_by_test_id("fee-taker")).to_contain_text("20 bps")
    base.get_by_role("button", name="Edit").click()
    boss.get_by_label("Taker (bps)").fill("10001")
    boss.get_by_role("button", name="Set rates").click()
    expect(boss.get_by_test_id("fees-error")).to_contain_text("taker rate")
    assert httpx.get(f"{server.url}/api/v1/fees", timeout=10).json()["taker_bps"] == 20
    boss.get_by_label("Taker (bps)").fill("50")
    boss.get_by_role("button", name="Set rates").click()
    expect(base.get_by_test_id("fee-taker")).to_contain_text("50 bps (0.50%)")
    assert httpx.get(f"{server.url}/api/v1/fees", timeout=10).json()["taker_bps"] == 50
    # the admin's own trading screen (no reload) and a newcomer's show the new rate
    boss.get_by_role("link", name="Tradewind").click()
    boss.get_by_test_id("side-sell").click()
    boss.get_by_test_id("order-price").fill("65000")
    boss.get_by_test_id("order-qty").fill("0.01")
    expect(boss.get_by_test_id("order-fee")).to_have_text("3.250000 USDT")
    visitor = new_page(browser)
    expect(fee_preview(visitor)).to_have_text("3.250000 USDT")

    # a user put on another tier previews their own rate (GET /api/v1/fees/mine)
    def bearer(email: str) -> dict[str, str]:
        r = httpx.post(
            f"{server.url}/api/v1/auth/login",
            json={"email": email, "password": PASSWORD},
            timeout=10,
        )
        return {"Authorization": f"Bearer {r.json()['token']}"}

    admin, mine = bearer("boss@example.com"), bearer("ops@example.com")
    ops_id = httpx.get(f"{server.url}/api/v1/account", headers=mine, timeout=10).json()["user_id"]
    for path, body in (
        ("/api/v1/admin/fees/tiers/2", {"maker_bps": 0, "taker_bps": 5}),
        (f"/api/v1/admin/users/{ops_id}/tier", {"tier": 2}),
    ):
        r = httpx.put(f"{server.url}{path}", json=body, headers=admin, timeout=10)
        assert r.status_code == 200, r.text
    expect(fee_preview(ops)).to_have_text("0.325000 USDT")
    expect(ops.get_by_text("Fee (max, tier 2)")).to_be_visible()
    expect(fee_preview(visitor)).to_have_text("3.250000 USDT")


def test_user_uploads_a_kyc_document_that_compliance_approves(server: Server, browser: Any) -> None:
    from playwright.sync_api import expect

    create_staff(server, "checker@example.com", "compliance")
    user = new_page(browser)
    register_in_browser(user, server.url, "kate@example.com")
    user.get_by_role("link", name="Verification").click()
    expect(user.get_by_test_id("kyc-level")).to_have_text("0")
    expect(user.get_by_test_id("kyc-levels")).to_contain_text("50,000 USDT")

    # the page refuses a wrong type before sending; the server refuses bytes that are
    # not what the type says
    user.get_by_label("File (JPEG, PNG or PDF, up to 5 MB)").set_input_files(
        {"name": "scan.gif", "mimeType": "image/gif", "buffer": b"GIF89a..."}
    )
    expect(user.get_by_test_id("kyc-error")).to_contain_text("JPEG, PNG or PDF")
    user.get_by_label("File (JPEG, PNG or PDF, up to 5 MB)").set_input_files(
        {"name": "fake.pdf", "mimeType": "application/pdf", "buffer": b"not a pdf at all"}
    )
    user.get_by_role("button", name="Send").click()
    expect(user.get_by_test_id("kyc-error")).to_contain_text("content was checked")
    expect(user.get_by_test_id("kyc-document-row")).to_have_count(0)

    user.get_by_label("Kind of document").select_option("passport")
    user.get_by_label("File (JPEG, PNG or PDF, up to 5 MB)").set_input_files(
        {"name": "passport.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    user.get_by_role("button", name="Send").click()
    row = user.get_by_test_id("kyc-document-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Passport")
    expect(row.get_by_test_id("kyc-document-status")).to_have_text("Waiting for review")

    checker = log_in(browser, server, "checker@example.com")
    checker.goto(f"{server.url}/admin")
    checker.get_by_role("tab", name="KYC review").click()
    queued = checker.get_by_test_id("kyc-row").filter(has_text="passport")
    expect(queued).to_have_count(1)
    queued.get_by_label(re.compile(r"Level for document")).select_option("1")
    queued.get_by_label(re.compile(r"Note for document")).fill("clear scan")
    queued.get_by_role("button", name="Approve").click()
    expect(checker.get_by_test_id("kyc-row")).to_have_count(0)

    user.reload()
    expect(user.get_by_test_id("kyc-level")).to_have_text("1")
    expect(user.get_by_test_id("kyc-document-status")).to_have_text("Approved")
    # a phone, both themes: every column of the levels and documents is on screen
    user.set_viewport_size({"width": 390, "height": 844})
    for _ in range(2):
        for name in ("Bank transfers", "Review"):
            box = user.get_by_role("columnheader", name=name).bounding_box()
            assert box is not None and box["x"] + box["width"] <= 390, name
        assert user.evaluate("document.documentElement.scrollWidth") <= 390
        user.get_by_test_id("theme-toggle").click()


def test_two_factor_qr_code_draws(server: Server, browser: Any) -> None:
    from playwright.sync_api import expect

    user = new_page(browser)
    register_in_browser(user, server.url, "quinn@example.com")
    user.goto(f"{server.url}/account/security")
    user.get_by_role("button", name="Set up").click()
    qr = user.get_by_test_id("totp-qr")
    expect(qr).to_be_visible()
    # an SVG without its namespace loads as a broken image: naturalWidth stays 0
    user.wait_for_function(
        "el => el.complete && el.naturalWidth > 0", arg=qr.element_handle(), timeout=5000
    )
    assert qr.evaluate("el => el.naturalWidth") > 0
