"""Debian's Chromium driven by Playwright, for the web UI's end-to-end tests and the UI
benchmark.

Never ``playwright install``: it downloads a browser build, which this project's
machines cannot fetch. ``make test`` installs the ``chromium`` Debian package instead;
without it (or without a UI build) the browser tests skip, or fail under
``TRADEWIND_REQUIRE_SERVICES=1`` as CI sets.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
