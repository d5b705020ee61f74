"""Debian's Chromium driven by Playwright, for the web UI's end-to-end tests and the UI
benchmark.

Never ``playwright install``: it downloads a browser build, which this project's
machines cannot fetch. ``make test`` installs the ``chromium`` Debian package instead;
without it (or without a UI build) the browser tests skip, or fail under
``TRADEWIND_REQUIRE_SERVICES=1`` as CI sets.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB_DIST = ROOT / "web" / "dist"
ARTIFACTS = ROOT / "tests" / "e2e" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return shutil.which("chromium")


def require_browser() -> str:
    """The Chromium binary, after checking the UI is built; skip (or fail in CI) if not."""
    strict = os.environ.get("TRADEWIND_REQUIRE_SERVICES", "") not in ("", "0")
    problem = None
    path = chromium_path()
    if path is None:
        problem = "chromium is not installed (make test installs Debian's chromium package)"
    elif not (WEB_DIST / "index.html").is_file():
        problem = "the web UI is not built (make ui)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is missing (pip install -e '.[test]')"
    if problem is not None:
        if strict:
            pytest.fail(problem)
        pytest.skip(problem)
    assert path is not None
    return path


PASSWORD = "correct horse battery staple"
_TOKEN = re.compile(r"once\):\n\n(\S+)\n")


def email_token(server_url: str, email: str) -> str | None:
    """The newest verification token mailed to ``email`` (demo mode keeps mail in the
    outbox at ``/dev/mail``); None when the server has no outbox (no verification)."""
    r = httpx.get(f"{server_url}/dev/mail/messages", params={"to": email}, timeout=10)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    data = r.json()
    items = data["items"] if isinstance(data, dict) else data
    for mail in items:
        if mail["kind"] == "verify_email":
            match = _TOKEN.search(mail["body"])
            if match:
                return match.group(1)
    return None


def register_in_browser(page: Any, server_url: str, email: str) -> None:
    """Register through the page's form and, when the server asks for it, confirm the
    email address with the mailed token on the page's verify-email form; ends on the
    trading screen, logged in."""
    from playwright.sync_api import expect

    page.goto(f"{server_url}/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_test_id("user-email")).to_have_text(email)
    page.wait_for_url(re.compile(r"/(trade/[A-Z]+-[A-Z]+|verify-email)$"))
    if page.url.endswith("/verify-email"):
        token = email_token(server_url, email)
        assert token is not None, "the server asks for verification but mailed no token"
        page.get_by_label("Token").fill(token)
        page.get_by_role("button", name="Confirm").click()
        page.wait_for_url(re.compile(r"/trade/[A-Z]+-[A-Z]+$"))
    expect(page.get_by_test_id("verify-banner")).to_have_count(0)
