"""Account security in the browser: a user confirms their email, sets an anti-phishing
code, turns on two-factor authentication by scanning (here: reading) the secret and
entering a code, gets ten recovery codes once, then logs in again in two steps (password,
then the code from the app). On a second device they log in with a recovery code; the
first device lists both sessions and signs the second one out, which then finds itself
logged out. A password change signs out the other sessions; an email change completes
with the token mailed to the new address.

Skipped on a server without the account API (``GET /api/v1/account``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.browser import PASSWORD, new_page, register_in_browser
from tests.support.server import Server, running_server

EMAIL = "frank@example.com"


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("account") / "data") as srv:
        yield srv


@pytest.fixture
def server(plain_server: Server) -> Server:
    """The same server, for the tests that need the account API (skipped without it)."""
    if httpx.get(f"{plain_server.url}/api/v1/account", timeout=10).status_code == 404:
        pytest.skip("this server has no account API")
    return plain_server


def log_in(page: Any, url: str, code: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{url}/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # the server asks for the second factor: the same form's second step
    page.get_by_label("Authentication code").fill(code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_test_id("user-email")).to_have_text(EMAIL)


def test_two_factor_setup_login_with_a_code_and_session_revoke(
    server: Server, browser: Any
) -> None:
    import pyotp
    from playwright.sync_api import expect

    a = new_page(browser, server.url)
    register_in_browser(a, server.url, EMAIL)
    a.get_by_role("link", name="Security").click()
    expect(a.get_by_test_id("tfa-status")).to_contain_text("Off")

    a.get_by_label("Code (4-20").fill("tw-frank")
    a.get_by_role("button", name="Save").click()
    expect(a.get_by_test_id("notice")).to_have_text("Anti-phishing code saved")

    a.get_by_role("button", name="Set up").click()
    expect(a.get_by_role("img", name="QR code of the 2FA secret")).to_be_visible()
    secret = a.get_by_test_id("totp-secret").inner_text()
    totp = pyotp.TOTP(secret)
    a.get_by_label("Code from your app").fill(totp.now())
    a.get_by_role("button", name="Turn on").click()
    codes = a.get_by_test_id("recovery-codes").locator("li")
    expect(codes).to_have_count(10)
    recovery = codes.first.inner_text()
    expect(a.get_by_test_id("tfa-status")).to_contain_text("On. 10 recovery codes left")

    # log out and back in: password, then a code (the next step: this one is used)
    a.get_by_role("button", name="Log out").click()
    expect(a.get_by_role("banner").get_by_role("link", name="Log in")).to_be_visible()
    log_in(a, server.url, totp.at(time.time() + 30))

    # a second device logs in with a recovery code
    b = new_page(browser, server.url)
    log_in(b, server.url, recovery)

    a.goto(f"{server.url}/account/security")
    rows = a.get_by_test_id("session-row")
    expect(rows).to_have_count(2)
    expect(a.get_by_test_id("tfa-status")).to_contain_text("9 recovery codes left")
    other = rows.filter(has_not_text="this device")
    other.get_by_role("button", name="Sign out").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("this device")
    # the security activity lists the sign-ins and the 2FA change, newest first
    activity = a.get_by_test_id("activity-row")
    expect(activity.filter(has_text="Signed in").first).to_be_visible()
    expect(activity.filter(has_text="Two factor authentication enabled")).to_have_count(1)
    expect(activity.filter(has_text="Recovery code used")).to_have_count(1)

    # the signed-out device finds itself logged out
    b.reload()
    expect(b.get_by_role("banner").get_by_role("link", name="Log in")).to_be_visible()
    expect(b.get_by_test_id("user-email")).to_have_count(0)


def signed_get(url: str, key_id: str, secret: str, path: str) -> httpx.Response:
    from tradewind.services.accounts import sign_request

    ts = int(time.time() * 1000)
    headers = {
        "TW-KEY": key_id,
        "TW-TIMESTAMP": str(ts),
        "TW-SIGNATURE": sign_request(secret, ts, "GET", path, b""),
    }
    return httpx.get(f"{url}{path}", headers=headers, timeout=10)


def test_an_api_key_made_on_the_page_signs_requests_until_revoked(
    plain_server: Server, browser: Any
) -> None:
    from playwright.sync_api import expect

    url = plain_server.url
    page = new_page(browser, url)
    register_in_browser(page, url, "grace@example.com")
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Label").fill("my bot")
    page.get_by_label("trade").check()
    page.get_by_label("IP allowlist").fill("127.0.0.1")
    page.get_by_role("button", name="Create key").click()
    key_id = page.get_by_test_id("new-key-id").inner_text()
    secret = page.get_by_test_id("new-key-secret").inner_text()
    row = page.get_by_test_id("api-key-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("read, trade")
    expect(row).to_contain_text("127.0.0.1")

    # the secret is shown once: gone from the page once dismissed or reloaded
    page.reload()
    expect(page.get_by_test_id("new-api-key")).to_have_count(0)
    assert secret not in page.content()

    assert signed_get(url, key_id, secret, "/api/v1/balances").status_code == 200
    page.get_by_role("button", name="Revoke key my bot").click()
    expect(page.get_by_test_id("api-key-row")).to_have_count(0)
    r = signed_get(url, key_id, secret, "/api/v1/balances")
    assert r.status_code == 401, r.text

    # the account pages fit a phone: no sideways scrolling
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/account/api-keys", "/account/security", "/account/deposit", "/trade/BTC-USDT"):
        page.goto(f"{url}{path}")
        expect(page.get_by_test_id("user-email")).to_be_attached()
        page.wait_for_timeout(300)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, path


def test_password_and_email_change_from_the_security_page(server: Server, browser: Any) -> None:
    """A new password signs out the user's other devices and is the only one that logs
    in; a new email address takes over once the token mailed to it is entered."""
    import re

    from playwright.sync_api import expect

    from tests.support.browser import email_token

    url = server.url
    a = new_page(browser, url)
    register_in_browser(a, url, "hana@example.com")
    other = httpx.post(
        f"{url}/api/v1/auth/login",
        json={"email": "hana@example.com", "password": PASSWORD},
        timeout=10,
    )
    assert other.status_code == 200, other.text
    other_bearer = {"Authorization": f"Bearer {other.json()['token']}"}

    a.get_by_role("link", name="Security").click()
    form = a.get_by_test_id("password-form")
    form.get_by_label("Current password").fill(PASSWORD)
    form.get_by_label("New password", exact=True).fill("a much better passphrase")
    form.get_by_label("New password again").fill("a different passphrase")
    form.get_by_role("button", name="Change password").click()
    expect(a.get_by_test_id("password-error")).to_have_text("the two new passwords differ")
    form.get_by_label("New password again").fill("a much better passphrase")
    form.get_by_role("button", name="Change password").click()
    expect(a.get_by_test_id("notice")).to_have_text("Password changed; 1 other session signed out")
    r = httpx.get(f"{url}/api/v1/account", headers=other_bearer, timeout=10)
    assert r.status_code == 401
    for password, status in ((PASSWORD, 401), ("a much better passphrase", 200)):
        r = httpx.post(
            f"{url}/api/v1/auth/login",
            json={"email": "hana@example.com", "password": password},
            timeout=10,
        )
        assert r.status_code == status, r.text

    form = a.get_by_test_id("email-form")
    form.get_by_label("New email address").fill("hana.new@example.com")
    form.get_by_label("Password", exact=True).fill("wrong password")
    form.get_by_role("button", name="Send a token").click()
    expect(a.get_by_test_id("email-error")).not_to_be_empty()
    form.get_by_label("Password", exact=True).fill("a much better passphrase")
    form.get_by_role("button", name="Send a token").click()
    a.wait_for_url(re.compile(r"/verify-email$"))
    token = email_token(url, "hana.new@example.com")
    assert token is not None
    a.get_by_label("Token").fill(token)
    a.get_by_role("button", name="Confirm").click()
    expect(a.get_by_test_id("notice")).to_have_text("Email address confirmed: you can trade")
    a.goto(f"{url}/account/security")
    expect(a.get_by_test_id("email-form").locator("..")).to_contain_text(
        "Now: hana.new@example.com"
    )
    r = httpx.post(
        f"{url}/api/v1/auth/login",
        json={"email": "hana.new@example.com", "password": "a much better passphrase"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
