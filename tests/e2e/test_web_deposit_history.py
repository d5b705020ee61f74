"""The deposit history in the browser: a user's deposit page lists their ETH deposit as
"Seen, 2/12 confirmations" and, without a reload, "Credited" once the watcher's record
says so (the page polls while a deposit is pending); staff see it on the back office's
Deposits tab with an orphaned deposit highlighted.

`tradewind serve` runs no chain watcher, so the test writes the watcher's rows
(``chain_blocks``, ``chain_deposits``) into the server's database as the watcher would:
what is tested is the API over those rows and the pages; the watcher itself is tested in
tests/integration (test_rest_deposit_history.py with a real chain)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import PASSWORD, new_page, register_in_browser
from tests.support.server import Server, running_server

TXID = "0x" + "ab" * 32
ORPHAN = "0x" + "cd" * 32


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("deposits") / "data") as srv:
        if httpx.get(f"{srv.url}/api/v1/funding/networks", timeout=10).status_code != 200:
            pytest.skip("this server offers no funding networks")
        yield srv


def database(server: Server) -> sqlite3.Connection:
    return sqlite3.connect(Path(server.data_dir) / "tradewind.db", timeout=10)


def watcher_saw(server: Server, user: int, txid: str, block: int, tip: int, status: str) -> None:
    now = int(time.time() * 1000)
    with database(server) as db:
        db.execute(
            "INSERT OR IGNORE INTO chain_blocks (network, number, hash) VALUES (?, ?, ?)",
            ("ethereum", tip, f"0xtip{tip}"),
        )
        db.execute(
            "INSERT INTO chain_deposits (network, txid, idx, user_id, asset, chain_amount,"
            " amount, block_number, block_hash, status, seen_at_ms, updated_at_ms)"
            " VALUES (?, ?, -1, ?, 'ETH', ?, ?, ?, ?, ?, ?, ?)",
            ("ethereum", txid, user, str(25 * 10**16), 25_000_000, block, "0xb", status, now, now),
        )


def make_staff(server: Server, email: str) -> None:
    code = "from tradewind.runtime.cli import main; main()"
    args = ["admin", "create-user", "--email", email, "--role", "support"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args, "--password-stdin", "--data-dir", str(server.data_dir)],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_deposit_page_follows_a_deposit_from_seen_to_credited(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    page = new_page(browser)
    register_in_browser(page, server.url, "hana@example.com")
    token = page.evaluate("JSON.parse(localStorage.getItem('tradewind.session')).token")
    bearer = {"Authorization": f"Bearer {token}"}
    user = httpx.get(f"{server.url}/api/v1/account", headers=bearer, timeout=10).json()["user_id"]

    page.goto(f"{server.url}/account/deposit")
    history = page.get_by_test_id("deposit-history")
    expect(history).to_contain_text("No deposit yet")

    watcher_saw(server, user, TXID, block=100, tip=101, status="pending")
    page.get_by_role("button", name="Refresh").click()
    row = history.get_by_test_id("deposit-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("0.25000000")
    expect(row).to_contain_text("ethereum")
    expect(row.get_by_test_id("deposit-status")).to_have_text(
        re.compile(r"Seen, 2/12 confirmations")
    )
    expect(row.get_by_role("progressbar")).to_be_visible()

    # the watcher credits it: the page, polling while it is pending, shows it unreloaded
    with database(server) as db:
        db.execute(
            "UPDATE chain_deposits SET status = 'credited', credited_seq = 1 WHERE txid = ?",
            (TXID,),
        )
    expect(row.get_by_test_id("deposit-status")).to_have_text("Credited", timeout=15_000)
    expect(row).to_have_attribute("data-status", "credited")
    page.context.close()


def test_back_office_lists_deposits_and_highlights_an_orphaned_one(
    browser: Any, server: Server
) -> None:
    from playwright.sync_api import expect

    payer = new_page(browser)
    register_in_browser(payer, server.url, "ivo@example.com")
    token = payer.evaluate("JSON.parse(localStorage.getItem('tradewind.session')).token")
    bearer = {"Authorization": f"Bearer {token}"}
    user = httpx.get(f"{server.url}/api/v1/account", headers=bearer, timeout=10).json()["user_id"]
    watcher_saw(server, user, ORPHAN, block=90, tip=101, status="orphaned")

    make_staff(server, "sam@example.com")
    staff = new_page(browser, f"{server.url}/login")
    staff.get_by_label("Email").fill("sam@example.com")
    staff.get_by_label("Password").fill(PASSWORD)
    staff.get_by_role("button", name="Log in").click()
    expect(staff.get_by_test_id("user-email")).to_have_text("sam@example.com")
    staff.goto(f"{server.url}/admin")
    staff.get_by_role("tab", name="Deposits").click()
    staff.get_by_label("User").fill(str(user))
    staff.get_by_role("button", name="Show").click()
    row = staff.get_by_test_id("admin-deposit-row")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-status", "orphaned")
    expect(row).to_contain_text("reorg")
    expect(row).to_contain_text(ORPHAN)
    assert "attention" in (row.get_attribute("class") or "")
    for p in (payer, staff):
        p.context.close()
