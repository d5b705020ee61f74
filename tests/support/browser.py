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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB_DIST = ROOT / "web" / "dist"
ARTIFACTS = ROOT / "tests" / "e2e" / "artifacts"
TIMEOUT_MS = 15_000
"""Default wait of every page action and ``expect`` in the browser tests."""
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


@contextmanager
def launched_browser() -> Iterator[Any]:
    """Headless Debian Chromium (skips, or fails in CI, without it: :func:`require_browser`);
    the ``browser`` fixture of tests/e2e/conftest.py."""
    executable = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(
    browser: Any,
    url: str | None = None,
    *,
    width: int = 1280,
    height: int = 900,
    **context_options: Any,
) -> Any:
    """A page in a context of its own (its own cookies and storage: another person), with
    :data:`TIMEOUT_MS` as its default wait; opens ``url`` when given."""
    context = browser.new_context(viewport={"width": width, "height": height}, **context_options)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    if url is not None:
        page.goto(url)
    return page


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
