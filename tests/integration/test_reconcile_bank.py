"""``tradewind reconcile``'s bank check on a real exchange: a statement imported with
``tradewind fiat import-camt`` and credited by the running exchange reconciles clean
(its review line is the difference between the bank and the core); a later statement
10.00 EUR lower is exit 1 with both figures, and ``--alert`` stores that finding once
however often it runs; a statement whose balances do not add up is refused with nothing
stored. A fiat withdrawal settled before the statement shows it is in flight until the
statement's ``WD-<id>`` debit is imported. The store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.support.camt import Entry, Tx, camt053
from tests.support.mail import verify_email
from tradewind.adapters.sql import Database
from tradewind.adapters.sql.alerts import AlertRow
from tradewind.adapters.sql.fiat import BankBalanceRow, FiatLineRow, SqlFiatStore
from tradewind.runtime.admin_cli import create_user
from tradewind.runtime.bootstrap import build_embedded
from tradewind.runtime.cli import app
from tradewind.runtime.config import Settings, load_settings
from tradewind.runtime.fiat_cli import answer_fiat_withdrawals, import_camt, write_fiat_payouts
from tradewind.runtime.reconcile import run_reconcile
from tradewind.services.fiat.ports import (
    BalanceConflict,
    FiatLine,
    StatementBalance,
    StatementDebit,
)
from tradewind.services.kyc import sign_webhook

PASSWORD = "correct horse battery staple"
CONFIG = """
rate_limits = "off"
[fiat]
currencies = { EUR = 2 }
require_kyc = false
[fiat.bank]
iban = "DE89370400440532013000"
bic = "COBADEFFXXX"
beneficiary = "Tradewind Bank Check"
"""


def a_user_with_a_reference(settings: Settings) -> tuple[int, str]:
    with TestClient(build_embedded(settings).app) as client:
        email = f"bank-{time.monotonic_ns()}@example.com"
        r = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        user_id = int(r.json()["user_id"])
        token = client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        ).json()["token"]
        got = client.get(
            "/api/v1/fiat/deposit-instructions?currency=EUR",
            headers={"Authorization": f"Bearer {token}"},
        )
        return user_id, str(got.json()["reference"])


def credited_by_the_exchange(settings: Settings, user_id: int, amount: int) -> None:
    exchange = build_embedded(settings)
    with TestClient(exchange.app):
        for _ in range(500):  # the crediting pass runs at start
            core = exchange.jcore
            if core is not None and core.core.available(user_id, "EUR") == amount:
                break
            time.sleep(0.02)
        assert exchange.jcore is not None
        assert exchange.jcore.core.available(user_id, "EUR") == amount


def counts(settings: Settings) -> tuple[int, int, list[tuple[str, int, str]]]:
    async def read() -> tuple[int, int, list[tuple[str, int, str]]]:
        db = Database.from_url(settings.resolved_database_url)
        try:
            async with db.read() as s:
                balances = await s.scalar(sa.select(sa.func.count()).select_from(BankBalanceRow))
                lines = await s.scalar(sa.select(sa.func.count()).select_from(FiatLineRow))
                alerts = (
                    await s.execute(sa.select(AlertRow.kind, AlertRow.count, AlertRow.message))
                ).all()
            return int(balances or 0), int(lines or 0), [(k, c, m) for k, c, m in alerts]
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_bank_balances_reconcile_and_a_shortfall_is_alerted_once(tmp_path: Path) -> None:
    config = tmp_path / "tw.toml"
    config.write_text(CONFIG)
    data_dir = tmp_path / "data"
    settings = load_settings(config, environ={}, overrides={"data_dir": data_dir})
    user_id, ref = a_user_with_a_reference(settings)
    runner = CliRunner()
    common = ["--config", str(config), "--data-dir", str(data_dir)]

    def cli(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, [*args, *common])
        return result.exit_code, result.output

    first = tmp_path / "s1.xml"
    first.write_bytes(  # 42.00 for the user, 1.00 nobody's (review); closes at 43.00
        camt053(
            [Entry("42.00", ustrd=[ref], ref="B-1"), Entry("1.00", ustrd=["?"], ref="B-2")],
            statement_id="S-1",
        )
    )
    code, out = cli("fiat", "import-camt", str(first))
    assert code == 0, out
    stored = counts(settings)
    code, out = cli("fiat", "import-camt", str(first))  # again: nothing new
    assert code == 0 and "0 new, 2 imported before" in out and counts(settings) == stored
    other = tmp_path / "other.xml"  # the same statement id with other balances
    other.write_bytes(camt053([Entry("3.00", ustrd=["?"], ref="B-4")], statement_id="S-1"))
    code, out = cli("fiat", "import-camt", str(other))
    assert code == 2 and "statement S-1 of DE89370400440532013000 was imported before" in out
    assert counts(settings) == stored
    credited_by_the_exchange(settings, user_id, 4_200)

    code, out = cli("reconcile", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and "bank" in report["checks"], out
    assert report["bank"]["EUR"] == {
        "decimals": 2,
        "closing": 4_300,
        "statements": ["DE89370400440532013000 S-1 2026-11-26"],
        "owed": 4_200,
        "uncredited": 100,
        "card_credits": 0,
        "settled_not_on_statement": 0,
        "paid_not_settled": 0,
        "expected": 4_300,
    }
    assert report["findings"] == []

    wrong = tmp_path / "wrong.xml"  # 43.00 + 5.00 is not 20.00: refused, nothing stored
    wrong.write_bytes(
        camt053(
            [Entry("5.00", ustrd=[ref], ref="B-9")],
            statement_id="S-2",
            opening="43.00",
            closing="20.00",
            date="2026-11-27",
        )
    )
    before = counts(settings)
    code, out = cli("fiat", "import-camt", str(wrong))
    assert code == 2 and "invalid_statement" in out, out
    assert (
        "Stmt[1]/Bal: the opening balance 43.00 EUR and the booked entries (+5.00) make 48.00, "
        "not the closing balance 20.00" in out.replace("\n", "")
    ), out
    assert counts(settings) == before

    second = tmp_path / "s2.xml"  # the bank took 10.00 the exchange knows nothing of
    second.write_bytes(
        camt053(
            [Entry("10.00", indicator="DBIT", ref="B-3")],
            statement_id="S-2",
            opening="43.00",
            date="2026-11-27",
        )
    )
    code, out = cli("fiat", "import-camt", str(second))
    assert code == 0, out
    code, out = cli("reconcile")
    assert code == 1, out
    assert (
        "CRITICAL bank    EUR: bank SHORTFALL of 10.00 EUR: the bank should hold 43.00 EUR" in out
    )
    assert "the statements close at 33.00 (DE89370400440532013000 S-2 2026-11-27)" in out
    code, out = cli("reconcile", "--json")
    (finding,) = json.loads(out)["findings"]
    assert (finding["expected"], finding["actual"], finding["difference"]) == (4_300, 3_300, -1_000)

    for run, new in ((1, 1), (2, 0)):
        code, out = cli("reconcile", "--alert")
        assert code == 1 and f"1 critical finding(s), {new} new alert(s)" in out, (run, out)
    code, out = cli("reconcile", "--alert", "--json")
    assert code == 1 and json.loads(out)["alerts_new"] == 0, out
    (alert,) = counts(settings)[2]
    assert alert[:2] == ("reconcile.bank", 3) and "SHORTFALL of 10.00 EUR" in alert[2]

    code, out = cli("reconcile", "--no-bank")
    assert code == 0 and "bank" not in out.splitlines()[0], out


# -- a fiat withdrawal between the core and the bank ------------------------------------

KYC_SECRET = "provider-secret-0123456789"
PAYEE = "GB82WEST12345698765432"


class ShiftedClock:
    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


def bank_of(settings: Settings, seq: int) -> dict[str, Any]:
    """The bank check once the ledger the report is taken at has reached ``seq`` (the
    embedded projectors write on their own thread)."""
    for _ in range(250):
        code, text = asyncio.run(run_reconcile(settings, as_json=True))
        report = json.loads(text)
        if report.get("seq", -1) >= seq:
            break
        time.sleep(0.02)
    assert code == 0 and report["ok"] and report["seq"] >= seq, text
    return dict(report["bank"]["EUR"])


def test_a_fiat_withdrawal_settled_before_the_statement_shows_it_reconciles(
    tmp_path: Path,
) -> None:
    """Settled in the core (net 249.75 out of the books, the 0.50 fee to the fee account)
    before any statement shows the payment: the bank still holds it, and the check says
    so; the next statement's ``WD-<id>`` debit takes it out of flight."""
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": tmp_path / "data",
            "demo": True,
            "demo_bot": False,
            "rate_limits": "off",
            "kyc_webhook_secrets": f"sumsub={KYC_SECRET}",
            "funding": {"withdrawals": {"cooling_off_hours": 1}},
            "fiat": {
                "currencies": {"EUR": 2},
                "require_kyc": False,
                "bank": {
                    "iban": "DE89370400440532013000",
                    "bic": "COBADEFFXXX",
                    "beneficiary": "Tradewind",
                },
                "withdrawals": {"fee": "0.50"},
            },
        },
    )
    clock = ShiftedClock()
    exchange = build_embedded(settings, clock=clock)
    with TestClient(exchange.app) as client:
        portal: Any = client.portal
        assert portal.call(exchange.fiat.ensure_assets)
        assert exchange.fiat.payouts is not None
        email = f"wd-{time.monotonic_ns()}@example.com"
        r = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        uid = int(r.json()["user_id"])
        verify_email(client, email)
        token = client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        ).json()["token"]
        user = {"Authorization": f"Bearer {token}"}
        officer_email = f"officer-{time.monotonic_ns()}@example.com"
        client.post("/api/v1/auth/register", json={"email": officer_email, "password": PASSWORD})
        verify_email(client, officer_email)
        asyncio.run(create_user(settings, officer_email, None, "compliance"))
        officer = {
            "Authorization": "Bearer "
            + client.post(
                "/api/v1/auth/login", json={"email": officer_email, "password": PASSWORD}
            ).json()["token"]
        }
        secret = client.post("/api/v1/account/2fa/setup", headers=user).json()["secret"]
        totp = pyotp.TOTP(secret)

        def code() -> str:
            clock.offset_ms += 30_000
            return totp.at(clock.now_ms() / 1000)

        assert client.post(
            "/api/v1/account/2fa/enable", json={"code": code()}, headers=user
        ).is_success
        body = json.dumps(
            {
                "event_id": f"e{time.monotonic_ns()}",
                "user_id": uid,
                "result": "approved",
                "level": 2,
            }
        ).encode()
        assert client.post(
            "/api/v1/kyc/callbacks/sumsub",
            content=body,
            headers={
                "X-Signature": sign_webhook(KYC_SECRET.encode(), body),
                "Content-Type": "application/json",
            },
        ).is_success
        ref = client.get("/api/v1/fiat/deposit-instructions?currency=EUR", headers=user).json()[
            "reference"
        ]

        # 1,000.00 EUR arrives and is credited: the bank and the core agree
        first = tmp_path / "s1.xml"
        first.write_bytes(camt053([Entry("1000.00", ustrd=[ref], ref="W-1")], statement_id="S-1"))
        asyncio.run(import_camt(settings, first))
        portal.call(exchange.fiat.run_once)
        assert exchange.jcore is not None and exchange.jcore.core.available(uid, "EUR") == 100_000
        assert bank_of(settings, exchange.jcore.core.seq)["expected"] == 100_000

        # 250.25 withdrawn (0.50 fee): held, approved, in a payment file, paid, settled
        assert client.post(
            "/api/v1/withdrawals/addresses",
            json={"network": "sepa", "address": PAYEE, "label": "Jane Doe"},
            headers={**user, "TW-TOTP": code()},
        ).is_success
        clock.offset_ms += 3_600_000
        r = client.post(
            "/api/v1/withdrawals",
            json={"asset": "EUR", "network": "sepa", "address": PAYEE, "amount": "250.25"},
            headers={**user, "Idempotency-Key": "bank-wd-1", "TW-TOTP": code()},
        )
        assert r.is_success, r.text
        wid = int(r.json()["id"])
        assert client.post(f"/api/v1/admin/withdrawals/{wid}/approve", headers=officer).is_success
        asyncio.run(write_fiat_payouts(settings, tmp_path / "pay.xml"))
        # in a payment file, still held in the core: nothing in flight
        held = bank_of(settings, exchange.jcore.core.seq)
        assert (held["owed"], held["settled_not_on_statement"], held["closing"]) == (
            100_000,
            0,
            100_000,
        )
        asyncio.run(answer_fiat_withdrawals(settings, [wid], paid=True))
        portal.call(exchange.fiat.payouts.finish)
        assert exchange.jcore.core.withdrawn["EUR"] == 25_025
        settled = bank_of(settings, exchange.jcore.core.seq)
        assert (settled["owed"], settled["settled_not_on_statement"], settled["expected"]) == (
            75_025,  # 1,000.00 - 250.25 + the 0.50 fee kept
            24_975,
            100_000,
        )

        # the bank's next statement shows the 249.75 paid: out of flight, still balanced
        second = tmp_path / "s2.xml"
        second.write_bytes(
            camt053(
                [Entry("249.75", indicator="DBIT", ref="W-2", txs=[Tx(end_to_end_id=f"WD-{wid}")])],
                statement_id="S-2",
                opening="1000.00",
                date="2026-11-27",
            )
        )
        asyncio.run(import_camt(settings, second))
        after = bank_of(settings, exchange.jcore.core.seq)
        assert (after["closing"], after["settled_not_on_statement"], after["expected"]) == (
            75_025,
            0,
            75_025,
        )


# -- the store on both backends ---------------------------------------------------------


@pytest.mark.asyncio
async def test_the_store_keeps_balances_and_debits_once_and_finds_the_newest(db: Database) -> None:
    """SQLite and PostgreSQL: a statement stored twice adds nothing; the same id with
    other balances is refused with nothing stored; the newest statement is the one
    closing last; the lines the core may not have credited are every one not
    ``credited`` and those credited after the seq."""
    store = SqlFiatStore(db)
    iban = "DE89370400440532013000"

    def stmt(sid: str, opening: str, closing: str, date: str) -> StatementBalance:
        return StatementBalance(iban, sid, "EUR", opening, date, closing, date, f"{date}T06:00")

    s1 = stmt("S-1", "0.00", "43.00", "2026-11-26")
    paid = StatementDebit("WD-7", "10.00", "EUR", "D-1", account_iban=iban, statement_id="S-2")
    line = FiatLine(
        ref=f"camt:{iban}:L-1",
        account_iban=iban,
        entry_ref="L-1",
        currency="EUR",
        amount_text="43.00",
        amount=4_300,
        user_id=1,
        status="matched",
        reason=None,
        remittance="",
        debtor_name=None,
        debtor_iban=None,
        booking_date=None,
        line_no=1,
        imported_at_ms=1,
    )
    assert await store.add_statement([line], [s1], [], at_ms=100) == 1
    assert await store.add_statement([line], [s1], [], at_ms=200) == 0
    with pytest.raises(BalanceConflict, match="S-1 of DE89370400440532013000 was imported before"):
        await store.add_statement([], [stmt("S-1", "0.00", "44.00", "2026-11-26")], [paid], 300)
    assert await store.debits([iban]) == []  # the refused import stored nothing
    s2 = stmt("S-2", "43.00", "33.00", "2026-11-27")
    await store.add_statement([], [s2], [paid], at_ms=400)
    await store.add_statement([], [s2], [paid], at_ms=500)
    assert [s.balance for s in await store.newest_balances([iban])] == [s2]
    assert await store.first_imports([iban]) == {(iban, "EUR"): 100}
    assert [b.balance for b in await store.balances_of(iban, "EUR")] == [s1, s2]
    assert await store.debits([iban]) == [paid]
    assert [x.ref for x in await store.lines_not_settled([iban], seq=5)] == [line.ref]
    assert await store.settle_line(line.ref, "credited", seq=9)  # credited at seq 9
    assert [x.ref for x in await store.lines_not_settled([iban], seq=8)] == [line.ref]
    assert await store.lines_not_settled([iban], seq=9) == []
