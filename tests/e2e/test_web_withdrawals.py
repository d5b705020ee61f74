"""Withdrawals in the browser, on a server whose ``[funding]`` config gives a cooling-off
of a few seconds, needs no 2FA for withdrawals (one TOTP code serves one action, so a
browser test with 2FA would wait 30 s per step), approves USDT under 100 by itself and
wants two people above 1,000.

A verified user at KYC level 1 adds an address to their book and sees it cooling off,
then usable; the form refuses an amount under the minimum before any request, shows the
fee and the net amount, and a double click makes one withdrawal; the history shows it
with its timeline; cancelling it puts the balance back. A large withdrawal waits for
two different admins in the back office: the first may not approve it twice."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.browser import ARTIFACTS, PASSWORD, email_token, new_page
from tests.support.server import Server, running_server

ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # an EIP-55 test vector
XPUB = (
    "xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh5GFZ"
    "aM6si3yZdUsT8ddYM3PwnATt"
)
CONFIG = f"""
[funding.networks.ethereum]
chain_id = 1337
xpub = "{XPUB}"

[funding.networks.ethereum.assets.USDT]
decimals = 6
chain_decimals = 6
contract = "0xC5273AbFb36550090095B1EDec019216AD21BE6c"
confirmations = 12
min_deposit = "1"
withdrawal_fee = "5"
auto_approve_below = "100"
two_person_above = "1000"

[funding.networks.ethereum.assets.ETH]
decimals = 8
chain_decimals = 18
confirmations = 12
min_deposit = "0.001"
withdrawal_fee = "0.002"

[funding.withdrawals]
cooling_off_hours = 0.0008
require_2fa = false
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("withdrawals")
    config = root / "tradewind.toml"
    config.write_text(CONFIG)
    with running_server(root / "data", TRADEWIND_CONFIG=str(config)) as srv:
        r = httpx.get(f"{srv.url}/api/v1/withdrawals/addresses", timeout=10)
        if r.status_code == 404:
            pytest.skip("this server has no withdrawal API")
        yield srv


def first_admin(server: Server, email: str) -> dict[str, str]:
    """The first admin, made as an operator does (``tradewind admin create-user``)."""
    code = "from tradewind.runtime.cli import main; main()"
    args = ["admin", "create-user", "--email", email, "--role", "admin", "--password-stdin"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args, "--data-dir", str(server.data_dir)],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    r = httpx.post(
        f"{server.url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def make_user(server: Server, email: str, admin: dict[str, str] | None = None) -> dict[str, str]:
    """A verified account and its Bearer header: registered, its email confirmed with the
    mailed token; an admin when ``admin`` (another admin's header) is given, else a user.
    (One ``tradewind admin create-user`` process per account would cost seconds each.)"""
    r = httpx.post(
        f"{server.url}/api/v1/auth/register",
        json={"email": email, "password": PASSWORD},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    user_id = r.json()["user_id"]
    r = httpx.post(
        f"{server.url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert r.status_code == 200, r.text
    bearer = {"Authorization": f"Bearer {r.json()['token']}"}
    token = email_token(server.url, email)
    if token is not None:
        r = httpx.post(
            f"{server.url}/api/v1/auth/verify-email",
            json={"token": token},
            headers=bearer,
            timeout=10,
        )
        assert r.status_code == 200, r.text
    if admin is not None:
        r = httpx.put(
            f"{server.url}/api/v1/admin/users/{user_id}/role",
            json={"role": "admin"},
            headers=admin,
            timeout=10,
        )
        assert r.status_code == 200, r.text
    return bearer


def log_in(browser: Any, server: Server, email: str) -> Any:
    from playwright.sync_api import expect

    page = new_page(browser, f"{server.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("user-email")).to_have_text(email)
    return page


def usdt_available(server: Server, bearer: dict[str, str]) -> str:
    rows = httpx.get(f"{server.url}/api/v1/balances", headers=bearer, timeout=10).json()
    return str({b["asset"]: b["available"] for b in rows}.get("USDT", "0"))


def test_address_book_withdraw_cancel_and_two_person_approval(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    admin = first_admin(server, "wd-admin1@example.com")
    make_user(server, "wd-admin2@example.com", admin)
    user = make_user(server, "wanda@example.com")
    # KYC level 1 (withdrawals need it) and demo funds
    r = httpx.post(
        f"{server.url}/api/v1/kyc/documents?kind=passport",
        content=b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n",
        headers={**user, "Content-Type": "application/pdf"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    r = httpx.post(
        f"{server.url}/api/v1/admin/kyc/documents/{r.json()['id']}/approve",
        json={"level": 1, "note": "ok"},
        headers=admin,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    httpx.post(
        f"{server.url}/api/v1/demo/faucet",
        json={"asset": "USDT", "amount": "5000"},
        headers=user,
        timeout=10,
    ).raise_for_status()

    page = log_in(browser, server, "wanda@example.com")
    page.get_by_role("link", name="Withdraw").click()
    page.wait_for_url(re.compile(r"/account/withdraw$"))
    expect(page.get_by_test_id("withdraw-no-address")).to_be_visible()

    # the address book: a new address cools off, then becomes usable
    page.get_by_label("Network", exact=True).last.select_option("ethereum")
    page.get_by_label("Address", exact=True).fill(ADDRESS.lower())
    page.get_by_label("Label").fill("cold wallet")
    page.get_by_role("button", name="Add address").click()
    row = page.get_by_test_id("address-row").filter(has_text="cold wallet")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(ADDRESS)  # stored in its checksummed form
    expect(row.get_by_test_id("address-status")).to_contain_text("cooling off: usable in")
    expect(row.get_by_test_id("address-status")).to_have_text("usable")

    # the form checks before any request; fee and net as the server will take them
    posted: list[str] = []
    page.on(
        "request",
        lambda req: (
            posted.append(req.url)
            if req.method == "POST" and req.url.endswith("/api/v1/withdrawals")
            else None
        ),
    )
    page.get_by_label("Asset").select_option("USDT")
    expect(page.get_by_test_id("withdraw-min")).to_have_text("5.000001 USDT")
    expect(page.get_by_test_id("withdraw-fee")).to_have_text("5.000000 USDT")
    amount = page.get_by_label(re.compile(r"^Amount"))
    amount.fill("4")
    page.get_by_role("button", name="Withdraw", exact=True).click()
    expect(page.get_by_test_id("withdraw-error")).to_contain_text("minimum withdrawal")
    amount.fill("10.1234567")
    expect(page.get_by_test_id("withdraw-error")).to_contain_text("at most 6 decimals")
    amount.fill("50")
    expect(page.get_by_test_id("withdraw-net")).to_have_text("45.000000 USDT")
    assert posted == []

    # a double click: one withdrawal (the button waits, and the key is the same)
    page.get_by_role("button", name="Withdraw", exact=True).dblclick()
    rows = page.get_by_test_id("withdrawal-row")
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_test_id("withdrawal-status")).to_have_text(
        "Approved: waiting to be sent"  # under 100 USDT: approved by itself
    )
    mine = httpx.get(f"{server.url}/api/v1/withdrawals", headers=user, timeout=10).json()
    assert len(mine["items"]) == 1
    assert (mine["items"][0]["amount"], mine["items"][0]["net_amount"]) == (
        "50.000000",
        "45.000000",
    )
    assert usdt_available(server, user) == "4950.000000"
    expect(page.get_by_test_id("withdraw-available")).to_contain_text("4,950.000000 USDT")

    # its timeline, then cancel: the funds come back
    rows.first.get_by_role("button", name="Timeline").click()
    timeline = page.get_by_test_id("timeline")
    expect(timeline).to_contain_text("Approved: waiting to be sent")
    rows.first.get_by_role("button", name="Cancel").click()
    expect(rows.first.get_by_test_id("withdrawal-status")).to_have_text("Cancelled: funds returned")
    expect(timeline).to_contain_text("cancelled by the user")
    expect(rows.first.get_by_role("button", name="Cancel")).to_have_count(0)
    assert usdt_available(server, user) == "5000.000000"
    expect(page.get_by_test_id("withdraw-available")).to_contain_text("5,000.000000 USDT")

    # a large one waits for two different people
    amount.fill("1500")
    page.get_by_role("button", name="Withdraw", exact=True).click()
    expect(rows).to_have_count(2)
    expect(rows.first.get_by_test_id("withdrawal-status")).to_have_text("Waiting for review")

    a1 = log_in(browser, server, "wd-admin1@example.com")
    a1.goto(f"{server.url}/admin")
    a1.get_by_role("tab", name="Withdrawals").click()
    review = a1.get_by_test_id("withdrawal-review-row")
    expect(review).to_have_count(1)
    expect(review).to_contain_text("1,500.000000 USDT")
    expect(review.get_by_test_id("withdrawal-approvals")).to_have_text("2 different people")
    review.get_by_role("button", name="Approve").click()
    expect(a1.get_by_test_id("notice")).to_contain_text("a second person must approve")
    expect(review.get_by_test_id("withdrawal-approvals")).to_contain_text("you approved")
    a1.reload()  # the queue's approved_by says it after a reload too
    a1.get_by_role("tab", name="Withdrawals").click()
    expect(review.get_by_test_id("withdrawal-approvals")).to_contain_text("you approved")
    review.get_by_role("button", name="Approve").click()  # the same person again
    refused = a1.get_by_test_id("withdrawals-error")
    expect(refused).to_contain_text("approved this withdrawal already")
    expect(review).to_have_count(1)

    a2 = log_in(browser, server, "wd-admin2@example.com")
    a2.goto(f"{server.url}/admin")
    # by keyboard: the tabs follow the ARIA pattern (End, then the left arrow)
    a2.get_by_role("tab", name="Users").focus()
    a2.keyboard.press("End")
    tabs = a2.get_by_role("tab")
    expect(tabs.last).to_have_attribute("aria-selected", "true")
    wanted = a2.get_by_role("tab", name="Withdrawals")
    for _ in range(tabs.count()):  # the tabs after Withdrawals grow (alerts, ...)
        if wanted.get_attribute("aria-selected") == "true":
            break
        a2.keyboard.press("ArrowLeft")
    expect(wanted).to_be_focused()
    a2.get_by_test_id("withdrawal-review-row").get_by_role("button", name="Approve").click()
    expect(a2.get_by_test_id("withdrawal-review-row")).to_have_count(0)  # no longer pending
    a2.get_by_label("Show").select_option("approved")
    expect(a2.get_by_test_id("withdrawal-review-row")).to_contain_text("1,500.000000 USDT")

    # the user sees it approved
    page.reload()
    expect(rows.first.get_by_test_id("withdrawal-status")).to_have_text(
        "Approved: waiting to be sent"
    )

    # a phone: no sideways scrolling, in both themes
    page.set_viewport_size({"width": 390, "height": 844})
    for _ in range(2):
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.get_by_test_id("theme-toggle").click()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "withdraw-390.png"), full_page=True)
    for p in (page, a1, a2):
        p.context.close()


def test_the_form_follows_the_withdrawal_rules_and_takes_bank_accounts(
    browser: Any, server: Server
) -> None:
    """The page reads ``GET /api/v1/withdrawals/rules``: a network without payouts and a
    switched-off one say why; with fiat withdrawals (``sepa``, added to the answer in the
    browser: this server has no ``[fiat]``) the address book asks for an IBAN and the
    holder's name and refuses a mistyped IBAN before any request; an exchange that
    requires 2FA says so to a user without it."""
    from playwright.sync_api import expect

    make_user(server, "rules@example.com")
    rules = httpx.get(f"{server.url}/api/v1/withdrawals/rules", timeout=10).json()
    assert rules["require_2fa"] is False
    usdt = next(a for n in rules["networks"] for a in n["assets"] if a["asset"] == "USDT")
    assert usdt["minimum"] == "5.000001"

    def rule(asset: str, decimals: int, fee: str, enabled: bool) -> dict[str, Any]:
        minimum = "10.00" if asset == "EUR" else "0.00010001"
        return {
            "asset": asset,
            "decimals": decimals,
            "withdrawal_enabled": enabled,
            "fee": fee,
            "minimum": minimum,
            "auto_approve_below": "0",
            "two_person_above": None,
        }

    def rewritten(require_2fa: bool) -> dict[str, Any]:
        answer = json.loads(json.dumps(rules))
        answer["require_2fa"] = require_2fa
        for n in answer["networks"]:
            for a in n["assets"]:
                if a["asset"] == "ETH":
                    a["withdrawal_enabled"] = False  # an operator switched it off
        answer["networks"] = [n for n in answer["networks"] if n["network"] == "ethereum"] + [
            {"network": "bitcoin", "payouts": False, "assets": [rule("BTC", 8, "0.0001", False)]},
            {"network": "sepa", "payouts": True, "assets": [rule("EUR", 2, "1.00", True)]},
        ]
        return answer

    page = log_in(browser, server, "rules@example.com")
    answer = rewritten(False)

    def fulfil(route: Any) -> None:
        route.fulfill(json=answer)

    page.route("**/api/v1/withdrawals/rules", fulfil)
    page.goto(f"{server.url}/account/withdraw")
    page.get_by_label("Asset").select_option("BTC")
    expect(page.get_by_test_id("withdraw-closed")).to_contain_text("does not send BTC on bitcoin")
    page.get_by_label("Asset").select_option("ETH")
    expect(page.get_by_test_id("withdraw-closed")).to_contain_text("suspended")
    expect(page.get_by_label("Network", exact=True).first).to_contain_text("(closed)")
    page.get_by_label("Asset").select_option("EUR")
    expect(page.get_by_test_id("withdraw-closed")).to_have_count(0)
    expect(page.get_by_test_id("withdraw-min")).to_have_text("10.00 EUR")
    expect(page.get_by_test_id("withdraw-no-address")).to_contain_text("No bank account")

    posted: list[str] = []
    page.on(
        "request",
        lambda req: posted.append(req.url) if req.method == "POST" else None,
    )
    page.get_by_label("Network", exact=True).last.select_option("sepa")
    page.get_by_label("IBAN", exact=True).fill("DE89 3704 0044 0532 0130 01")
    page.get_by_label("Account holder's name").fill("Rula Rules")
    page.get_by_role("button", name="Add address").click()
    expect(page.get_by_test_id("address-error")).to_contain_text("typo")
    page.get_by_label("IBAN", exact=True).fill("DE89 3704 0044 0532 0130 00")
    page.get_by_label("Account holder's name").fill("R")
    page.get_by_role("button", name="Add address").click()
    expect(page.get_by_test_id("address-error")).to_contain_text("holder's name")
    assert posted == []
    # the keyboard reaches the book's fields in order, each with its label
    page.get_by_label("Network", exact=True).last.focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("IBAN", exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Account holder's name")).to_be_focused()

    # an exchange that requires 2FA: said before anything is typed
    answer.update(rewritten(True))
    page.reload()
    expect(page.get_by_test_id("withdraw-needs-2fa")).to_contain_text("two-factor")
    page.set_viewport_size({"width": 390, "height": 844})
    for _ in range(2):
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.get_by_test_id("theme-toggle").click()
    page.context.close()
