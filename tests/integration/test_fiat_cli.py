"""``tradewind fiat import-camt`` stores a statement while the exchange is down; the
exchange credits its matched lines when it runs (once, also if the file is imported
again); ``tradewind fiat pain001`` writes a checked payment file or refuses with exit 2
and writes nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.support.camt import Entry, Tx, camt053
from tradewind.adapters.banks.pain001 import read_pain001
from tradewind.runtime.bootstrap import build_embedded
from tradewind.runtime.cli import app
from tradewind.runtime.config import Settings, load_settings

PASSWORD = "correct horse battery staple"
CONFIG = """
rate_limits = "off"
[fiat]
currencies = { EUR = 2 }
require_kyc = false
[fiat.bank]
iban = "DE89370400440532013000"
bic = "COBADEFFXXX"
beneficiary = "Tradewind CLI"
"""


def test_a_statement_imported_offline_is_credited_once_by_the_exchange(tmp_path: Path) -> None:
    config = tmp_path / "tw.toml"
    config.write_text(CONFIG)
    data_dir = tmp_path / "data"
    settings = load_settings(config, environ={}, overrides={"data_dir": data_dir})
    with TestClient(build_embedded(settings).app) as client:
        email = f"cli-{time.monotonic_ns()}@example.com"
        r = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        user_id = int(r.json()["user_id"])
        token = client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        ).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        ref = client.get("/api/v1/fiat/deposit-instructions?currency=EUR", headers=bearer).json()[
            "reference"
        ]

    statement = tmp_path / "statement.xml"
    statement.write_bytes(
        camt053([Entry("42.00", ustrd=[ref], ref="CLI-1"), Entry("1.00", ustrd=["?"], ref="CLI-2")])
    )
    runner = CliRunner()
    args = ["fiat", "import-camt", str(statement), "--config", str(config)]
    args += ["--data-dir", str(data_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 credit line(s), 2 new" in result.output and "1 matched, 1 for review" in result.output
    again = runner.invoke(app, args)
    assert "0 new, 2 imported before" in again.output

    bad = tmp_path / "bad.xml"
    bad.write_bytes(camt053([Entry("1,00", ustrd=[ref], ref="CLI-3")]))
    refused = runner.invoke(
        app, ["fiat", "import-camt", str(bad), "--config", str(config), "--data-dir", str(data_dir)]
    )
    assert refused.exit_code == 2 and "Ntry[1]/Amt" in refused.output

    exchange = build_embedded(settings)
    with TestClient(exchange.app):
        for _ in range(500):  # the crediting pass runs at start
            core = exchange.jcore
            if core is not None and core.core.available(user_id, "EUR") > 0:
                break
            time.sleep(0.02)
        assert exchange.jcore is not None
        assert exchange.jcore.core.available(user_id, "EUR") == 4_200
    with TestClient(build_embedded(settings).app):  # and a restart credits nothing again
        time.sleep(0.2)
    exchange = build_embedded(settings)
    with TestClient(exchange.app):
        assert exchange.jcore is not None
        assert exchange.jcore.core.available(user_id, "EUR") == 4_200


def test_pain001_writes_a_checked_file_or_nothing(tmp_path: Path) -> None:
    config = tmp_path / "tw.toml"
    config.write_text(CONFIG)
    good = tmp_path / "payouts.json"
    good.write_text(
        '[{"id": "W-1", "name": "Alice", "iban": "GB29 NWBK 6016 1331 9268 19",'
        ' "amount": "99.99", "currency": "EUR"}]'
    )
    out = tmp_path / "pay.xml"
    runner = CliRunner()
    common = ["--config", str(config), "--data-dir", str(tmp_path / "d")]
    result = runner.invoke(
        app,
        [
            "fiat",
            "pain001",
            "--input",
            str(good),
            "--output",
            str(out),
            "--execution-date",
            "2026-12-01",
            *common,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1 payout(s), 99.99 EUR" in result.output
    parsed = read_pain001(out.read_bytes())
    assert parsed.execution_date == "2026-12-01" and parsed.debtor.beneficiary == "Tradewind CLI"
    assert parsed.payouts[0].iban == "GB29NWBK60161331926819"

    typo = tmp_path / "typo.json"
    typo.write_text(good.read_text().replace("9268 19", "9268 18"))
    other = tmp_path / "other.xml"
    refused = runner.invoke(
        app, ["fiat", "pain001", "--input", str(typo), "--output", str(other), *common]
    )
    assert refused.exit_code == 2 and "iban_checksum_mismatch" in refused.output
    assert not other.exists()


async def _return_all(settings: Settings) -> None:
    from tradewind.adapters.banks.camt053 import Camt053Reader
    from tradewind.adapters.local import SystemClock
    from tradewind.adapters.sql import Database
    from tradewind.adapters.sql.audit import SqlAuditStore
    from tradewind.adapters.sql.fiat import SqlFiatStore
    from tradewind.services.admin import CLI_ACTOR
    from tradewind.services.audit import AuditLog
    from tradewind.services.fiat.bank_deposits import BankDeposits
    from tradewind.services.fiat.config import parse_fiat

    assert settings.fiat is not None
    db = Database.from_url(settings.resolved_database_url)
    store = SqlFiatStore(db)

    async def exists(_: int) -> bool:
        return True

    service = BankDeposits(
        config=parse_fiat(settings.fiat),
        store=store,
        reader=Camt053Reader(),
        bus=None,
        audit=AuditLog(SqlAuditStore(db), SystemClock()),
        clock=SystemClock(),
        decimals_of=lambda _: 2,
        user_exists=exists,
    )
    for line in await store.lines(status="review", limit=10):
        await service.return_line(CLI_ACTOR, line.id, "payer unknown")
    await db.dispose()


def test_returned_transfers_are_paid_back_once(tmp_path: Path) -> None:
    config = tmp_path / "tw.toml"
    config.write_text(CONFIG)
    common = ["--config", str(config), "--data-dir", str(tmp_path / "data")]
    settings = load_settings(config, environ={}, overrides={"data_dir": tmp_path / "data"})
    statement = tmp_path / "s.xml"
    statement.write_bytes(
        camt053(
            [
                Entry("12.34", txs=[Tx(ustrd=["who am I"])], ref="RET-A"),
                Entry("5.00", txs=[Tx(ustrd=["?"], debtor_iban=None)], ref="RET-B"),
            ]
        )
    )
    runner = CliRunner()
    assert runner.invoke(app, ["fiat", "import-camt", str(statement), *common]).exit_code == 0
    asyncio.run(_return_all(settings))
    out = tmp_path / "returns.xml"
    result = runner.invoke(app, ["fiat", "returns", "--output", str(out), *common])
    assert result.exit_code == 0, result.output
    assert "stays returned: the bank reported no payer IBAN" in result.output
    assert "1 returned transfer(s)" in result.output
    paid = read_pain001(out.read_bytes())
    (payout,) = paid.payouts
    assert payout.iban == "FR1420041010050500013M02606" and str(payout.amount) == "12.34"
    assert payout.name == "Jane Payer" and paid.message_id.startswith("RET-")
    again = runner.invoke(app, ["fiat", "returns", "--output", str(tmp_path / "r2.xml"), *common])
    assert "no returned transfer to pay back" in again.output
    assert not (tmp_path / "r2.xml").exists()
