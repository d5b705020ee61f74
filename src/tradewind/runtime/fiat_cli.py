"""``tradewind fiat import-camt`` and ``tradewind fiat pain001``: the operator's side of
the bank rails.

- ``import-camt FILE`` stores a camt.053 statement's credit lines in the database of
  the settings (matched or for review; all or nothing) and audits the import as the
  actor ``cli``. It does not talk to the core: the running exchange's crediting pass
  (every API process, every few seconds) credits the matched lines, once each.
- ``pain001 --input payouts.json --output FILE`` writes a pain.001.001.03 payment file
  from approved payouts (checked: IBAN mod-97, BIC, names, exact amounts) with the
  exchange's ``[fiat.bank]`` account as the debtor, then reads the file back through the
  checking reader before saying it is done.
- ``returns --output FILE`` writes the payment file that sends the review queue's
  returned transfers back to their payers, then marks those lines ``return_sent``
  (services/fiat/returns.py).

Both refuse with a message and exit 2, without a traceback, and change nothing then.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from tradewind.adapters.banks.camt053 import Camt053Reader
from tradewind.adapters.banks.pain001 import read_pain001, write_pain001
from tradewind.adapters.local import SystemClock
from tradewind.adapters.sql import Database, upgrade_async
from tradewind.adapters.sql.admin import SqlAdminStore
from tradewind.adapters.sql.audit import SqlAuditStore
from tradewind.adapters.sql.fiat import SqlFiatStore
from tradewind.runtime.config import Settings
from tradewind.runtime.fiat import fiat_config
from tradewind.services.admin import CLI_ACTOR, AdminService
from tradewind.services.audit import AuditLog
from tradewind.services.errors import ServiceError
from tradewind.services.fiat.bank_deposits import BankDeposits
from tradewind.services.fiat.config import FiatConfig
from tradewind.services.fiat.payouts import Payout, payouts_from
from tradewind.services.fiat.returns import return_batch
from tradewind.services.fiat.withdrawals import FiatPayouts, fiat_withdrawal_rules


class FiatCliError(Exception):
    """A refusal to print and exit 2."""


def _config(settings: Settings) -> FiatConfig:
    config = fiat_config(settings)
    if config is None:
        raise FiatCliError("no [fiat] table in the config (docs/fiat.md)")
    return config


async def import_camt(settings: Settings, file: Path) -> str:
    config = _config(settings)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise FiatCliError(f"{file}: {exc.strerror}") from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.resolved_database_url)
    db = Database.from_url(settings.resolved_database_url)
    try:
        admin = SqlAdminStore(db)

        async def user_exists(user_id: int) -> bool:
            return await admin.get_user(user_id) is not None

        clock = SystemClock()
        service = BankDeposits(
            config=config,
            store=SqlFiatStore(db),
            reader=Camt053Reader(),
            bus=None,
            audit=AuditLog(SqlAuditStore(db), clock),
            clock=clock,
            decimals_of=config.currencies.get,
            user_exists=user_exists,
        )
        # booked debits of fiat withdrawals' payment files mark them paid
        service.on_debits = _fiat_service(settings, db).paid_by_statement
        try:
            report = await service.import_statement(data, CLI_ACTOR)
        except ServiceError as exc:
            raise FiatCliError(f"{file}: {exc.code}: {exc.message}") from None
    finally:
        await db.dispose()
    return (
        f"{report.version} {report.message_id}: {report.lines} credit line(s), "
        f"{report.new} new, {report.already_imported} imported before; "
        f"{report.matched} matched, {report.review} for review; "
        f"{report.skipped} other entr(y/ies) skipped. Matched lines are credited by the "
        "running exchange within seconds."
    )


def write_payment_file(
    settings: Settings,
    input_file: Path,
    output: Path,
    *,
    message_id: str | None = None,
    execution_date: str | None = None,
    now: dt.datetime | None = None,
) -> str:
    config = _config(settings)
    try:
        raw = json.loads(input_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FiatCliError(f"{input_file}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise FiatCliError(f"{input_file}: not JSON ({exc})") from None
    items = raw.get("payouts") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise FiatCliError(f"{input_file}: a list of payouts, or an object with 'payouts'")
    moment = now or dt.datetime.now(dt.UTC)
    try:
        payouts = payouts_from(items)
        data = write_pain001(
            payouts,
            debtor=config.bank,
            message_id=message_id or moment.strftime("TW-%Y%m%d%H%M%S"),
            created_at=moment.strftime("%Y-%m-%dT%H:%M:%S"),
            execution_date=execution_date or moment.strftime("%Y-%m-%d"),
        )
        checked = read_pain001(data)
    except ServiceError as exc:
        raise FiatCliError(f"{exc.code}: {exc.message}") from None
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(output)
    totals: dict[str, Decimal] = {}
    for p in checked.payouts:
        totals[p.currency] = totals.get(p.currency, Decimal(0)) + p.amount
    shown = ", ".join(f"{total} {currency}" for currency, total in sorted(totals.items()))
    count = len(checked.payouts)
    return f"{output}: pain.001.001.03 {checked.message_id}, {count} payout(s), {shown}"


def _write_checked(
    payouts: list[Payout],
    config: FiatConfig,
    output: Path,
    message_id: str,
    execution_date: str | None,
    now: dt.datetime | None,
) -> str:
    moment = now or dt.datetime.now(dt.UTC)
    try:
        data = write_pain001(
            payouts,
            debtor=config.bank,
            message_id=message_id,
            created_at=moment.strftime("%Y-%m-%dT%H:%M:%S"),
            execution_date=execution_date or moment.strftime("%Y-%m-%d"),
        )
        checked = read_pain001(data)
    except ServiceError as exc:
        raise FiatCliError(f"{exc.code}: {exc.message}") from None
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(output)
    return checked.message_id


async def write_returns(
    settings: Settings,
    output: Path,
    *,
    execution_date: str | None = None,
    now: dt.datetime | None = None,
) -> str:
    config = _config(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.resolved_database_url)
    db = Database.from_url(settings.resolved_database_url)
    try:
        store = SqlFiatStore(db)
        batch = return_batch(await store.lines(status="returned", limit=1000))
        notes = [f"line {line_id} stays returned: {why}" for line_id, why in batch.skipped]
        if not batch.payouts:
            return "\n".join([*notes, "no returned transfer to pay back"])
        message_id = _write_checked(
            list(batch.payouts), config, output, batch.message_id, execution_date, now
        )
        moved = await store.move_lines(batch.line_ids, "returned", "return_sent")
        audit = AuditLog(SqlAuditStore(db), SystemClock())
        await audit.record(
            "fiat.returns_file",
            actor_role=CLI_ACTOR.role,
            details={"message_id": message_id, "lines": moved, "file": str(output)[:200]},
        )
    finally:
        await db.dispose()
    return "\n".join(
        [*notes, f"{output}: pain.001.001.03 {message_id}, {moved} returned transfer(s)"]
    )


# -- fiat withdrawals (services/fiat/withdrawals.py) -----------------------------------


class _NoCore:
    """The command line never talks to the core: the running exchange's fiat pass
    settles and releases (``FiatPayouts.finish``)."""

    available = False

    async def submit(self, cmd: object) -> object:
        raise FiatCliError("the command line does not submit to the core")


class _NoSecondFactor:
    async def enabled(self, user_id: int) -> bool:
        return False

    async def require(self, user_id: int, code: str | None) -> None:
        raise FiatCliError("no second factor on the command line")


def _fiat_service(settings: Settings, db: Database) -> FiatPayouts:
    import os
    from typing import Any, cast

    from tradewind.adapters.aml_list import ListScreening
    from tradewind.adapters.sql import SqlUserRepository
    from tradewind.adapters.sql.outbox import SqlOutbox
    from tradewind.adapters.sql.withdrawals import SqlWithdrawalStore
    from tradewind.runtime.funding import network_catalog
    from tradewind.services.funding.networks import NetworkCatalog
    from tradewind.services.funding.withdrawal_config import parse_withdrawal_policy
    from tradewind.services.funding.withdrawals import MailNotifier, WithdrawalService

    config = _config(settings)
    clock = SystemClock()
    audit = AuditLog(SqlAuditStore(db), clock)
    admin = AdminService(
        store=SqlAdminStore(db), bus=cast(Any, _NoCore()), audit=audit, clock=clock
    )
    service = WithdrawalService(
        catalog=network_catalog(settings) or NetworkCatalog(()),
        store=SqlWithdrawalStore(db),
        bus=cast(Any, _NoCore()),
        two_factor=_NoSecondFactor(),
        kyc=cast(Any, None),  # requests are not made here
        admin=admin,
        audit=audit,
        notifier=MailNotifier(SqlUserRepository(db), SqlOutbox(db), clock.now_ms),
        screening=ListScreening(()),
        policy=parse_withdrawal_policy(settings.funding, os.environ),
        now_ms=clock.now_ms,
        fiat=fiat_withdrawal_rules(config.currencies, config.withdrawals),
    )
    return FiatPayouts(service)


async def write_fiat_payouts(
    settings: Settings,
    output: Path,
    *,
    execution_date: str | None = None,
    now: dt.datetime | None = None,
) -> str:
    """``tradewind fiat payouts --output FILE``: the approved fiat withdrawals in one
    pain.001 file, each marked sent once (``broadcast``)."""
    config = _config(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.resolved_database_url)
    db = Database.from_url(settings.resolved_database_url)
    try:
        payouts = _fiat_service(settings, db)
        batch = await payouts.take()
        if not batch.payouts:
            return "no approved fiat withdrawal to pay"
        message_id = _write_checked(
            list(batch.payouts), config, output, batch.message_id, execution_date, now
        )
        moved = await payouts.sent(batch)
        await AuditLog(SqlAuditStore(db), SystemClock()).record(
            "fiat.payouts_file",
            actor_role=CLI_ACTOR.role,
            details={
                "message_id": message_id,
                "withdrawals": ",".join(map(str, batch.withdrawal_ids)),
                "file": str(output)[:200],
            },
        )
    finally:
        await db.dispose()
    total = sum((p.amount for p in batch.payouts), Decimal(0))
    return (
        f"{output}: pain.001.001.03 {message_id}, {len(batch.payouts)} withdrawal(s) "
        f"({moved} newly sent), {total} in total"
    )


async def answer_fiat_withdrawals(
    settings: Settings, ids: list[int], *, paid: bool, reason: str | None = None
) -> str:
    """``tradewind fiat confirm ID...`` (the bank paid) or ``tradewind fiat returned ID...
    --reason R`` (the bank sent it back); the running exchange settles or releases them
    within seconds."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.resolved_database_url)
    db = Database.from_url(settings.resolved_database_url)
    try:
        payouts = _fiat_service(settings, db)
        if paid:
            moved = await payouts.paid(ids, reason or "paid by the bank (operator)")
        else:
            moved = await payouts.returned(ids, reason or "returned by the bank")
    finally:
        await db.dispose()
    left = sorted(set(ids) - set(moved))
    verb = "paid" if paid else "returned"
    text = f"{len(moved)} fiat withdrawal(s) marked {verb}: {', '.join(map(str, moved)) or '-'}"
    if left:
        text += f"; not sent in a payment file (or answered before): {', '.join(map(str, left))}"
    return text
