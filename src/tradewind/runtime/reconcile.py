"""``tradewind reconcile``: the core against the SQL ledger and against custody.

Read-only, like ``tradewind verify``: the journal and snapshots are read, never cut, so
it is safe next to a running exchange. The core and the ledger are compared at the same
seq: the ledger's offset and sums are read until two offset reads agree around the
sums (the projector commits legs and offset together), then the core is rebuilt from
the newest snapshot at or before that seq and the journal up to exactly it.

Custody, per network given with ``--rpc NETWORK=URL``: the chain balance of every
deposit address the exchange handed out (the SQL table), of the network's cold address in
``[funding.sweeps]`` and of every address given with ``--address NETWORK=ADDRESS`` (the
hot wallet, whose key only the signer knows), for each asset configured on that
network: on EVM networks the native coin with ``eth_getBalance`` and tokens with ERC-20
``balanceOf``; on Bitcoin the confirmed coins of those addresses with bitcoind's
``scantxoutset`` (the chain state, no node wallet needed; ADR 0029). Converted to the
core's decimals (rounded down), summed per asset over networks. Network fees recorded
but not booked in the core yet (``network_fees`` pending, ADR 0034) are named next to
it, so a shortfall that is only those fees is told from a loss.

Bank, per fiat currency when ``[fiat]`` is configured (or ``--bank``): the newest
closing booked balance of the ``[fiat.bank]`` account from the imported camt.053
statements against what the core owes, adjusted by what is in flight between them
(services/reconcile.py ``bank_position``; ADR 0036).

``--alert`` stores each critical finding as an operator alert (the back office's list,
ADR 0030), once while it is open: the dedupe key is the check, the place and the
difference, so a timer running this every hour counts a persisting difference on one
alert instead of opening a new one each run.

Exit codes: 0 nothing wrong (a custody or bank surplus is reported, not wrong), 1 a
difference (the findings say where, with the numbers), 2 the inputs cannot be read.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from tradewind.adapters.chain.bitcoind_reader import BitcoindReader, btc_to_satoshi
from tradewind.adapters.sql import Database
from tradewind.adapters.sql.alerts import SqlAlertStore
from tradewind.adapters.sql.audit import SqlAuditStore
from tradewind.adapters.sql.deposit_addresses import DepositAddressRow
from tradewind.adapters.sql.fiat import SqlFiatStore
from tradewind.adapters.sql.network_fees import SqlNetworkFeeStore
from tradewind.adapters.sql.projections import SqlProjectionStore
from tradewind.adapters.sql.withdrawals import SqlWithdrawalStore
from tradewind.core.engine import Core
from tradewind.journal.journal import JournalError, JournalSeqError
from tradewind.journal.snapshot import SnapshotError
from tradewind.runtime.config import Settings
from tradewind.runtime.funding import network_catalog
from tradewind.services.alerts import AlertService
from tradewind.services.audit import AuditLog
from tradewind.services.fiat.config import FiatConfig, FiatConfigError, demo_fiat, parse_fiat
from tradewind.services.funding.sweep_config import parse_sweep_settings
from tradewind.services.funding.withdrawals import FIAT_NETWORK
from tradewind.services.projectors.ports import LedgerBalance
from tradewind.services.projectors.runner import core_at as replay_to
from tradewind.services.reconcile import (
    BankPosition,
    Finding,
    Holdings,
    Report,
    bank_position,
    reconcile,
    units,
)

if TYPE_CHECKING:
    from web3 import Web3

ERC20_BALANCE_OF = "0x70a08231"
"""Selector of ``balanceOf(address)``."""
SCAN_CHUNK = 1_000
"""Addresses per ``scantxoutset`` (each call reads the whole UTXO set once)."""


class ReconcileError(Exception):
    """An input cannot be read (exit code 2)."""


def core_at(data_dir: Path, seq: int) -> Core:
    """The core as it was after command ``seq``, rebuilt from ``data_dir``."""
    try:
        return replay_to(data_dir, seq)
    except JournalSeqError as e:
        raise ReconcileError(
            f"the ledger is at seq {seq} but the journal in {data_dir} cannot give it: {e}"
        ) from e
    except (JournalError, SnapshotError, OSError) as e:
        raise ReconcileError(f"cannot read the core's data in {data_dir}: {e}") from e


async def ledger_at_one_seq(
    store: SqlProjectionStore, tries: int = 20
) -> tuple[int, Mapping[tuple[int, str], LedgerBalance]]:
    for _ in range(tries):
        before = (await store.offsets()).get("ledger", 0)
        sums = await store.balances()
        after = (await store.offsets()).get("ledger", 0)
        if before == after:
            return before, sums
        await asyncio.sleep(0.05)
    raise ReconcileError("the ledger kept moving while it was read; try again")


def parse_pairs(values: Sequence[str], what: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in values:
        name, sep, rest = v.partition("=")
        if not sep or not name or not rest:
            raise ReconcileError(f"{what}: expected NETWORK=VALUE, got {v!r}")
        out.setdefault(name, []).append(rest)
    return out


def http_node(url: str) -> Web3:
    import web3

    return web3.Web3(web3.HTTPProvider(url))


def _evm_holdings(
    w3: Web3, addresses: Sequence[str], assets: Sequence[tuple[str, str | None, int]]
) -> dict[str, int]:
    """``assets``: (asset, token contract or None, chain decimals - core decimals)."""
    from eth_typing import HexStr
    from eth_utils.address import to_checksum_address

    out: dict[str, int] = {}
    for asset, contract, shift in assets:
        total = 0
        for address in addresses:
            who = to_checksum_address(address)
            if contract is None:
                raw = int(w3.eth.get_balance(who))
            else:
                data = HexStr(ERC20_BALANCE_OF + who[2:].lower().rjust(64, "0"))
                answer = w3.eth.call({"to": to_checksum_address(contract), "data": data})
                raw = int.from_bytes(bytes(answer), "big") if answer else 0
            total += raw
        out[asset] = total // 10**shift if shift > 0 else total * 10 ** (-shift)
    return out


def bitcoin_node(settings: Settings) -> Callable[[str], BitcoindReader]:
    """A bitcoind client for ``--rpc bitcoin=URL``: credentials in the URL, else the
    watcher's ``bitcoin_rpc_user``/``bitcoin_rpc_password``/``bitcoin_rpc_cookie_file``."""

    def connect(url: str) -> BitcoindReader:
        if "@" in url:
            return BitcoindReader(url)
        return BitcoindReader(
            url,
            user=settings.bitcoin_rpc_user,
            password=settings.bitcoin_rpc_password,
            cookie_file=settings.bitcoin_rpc_cookie_file,
        )

    return connect


async def bitcoin_holdings(node: BitcoindReader, addresses: Sequence[str]) -> tuple[int, int]:
    """Satoshi in the confirmed coins of ``addresses``, and the height it was read at."""
    total, height = 0, -1
    for start in range(0, len(addresses), SCAN_CHUNK):
        chunk = addresses[start : start + SCAN_CHUNK]
        answer = await node.call("scantxoutset", "start", [f"addr({a})" for a in chunk])
        if not isinstance(answer, dict) or not answer.get("success", False):
            raise ReconcileError("scantxoutset did not finish (another scan running?)")
        total += sum(btc_to_satoshi(u["amount"]) for u in answer.get("unspents", ()))
        height = int(answer.get("height", -1))
    return total, height


async def custody(
    settings: Settings,
    db: Database,
    rpc: Mapping[str, list[str]],
    extra: Mapping[str, list[str]],
    connect: Callable[[str], Web3] = http_node,
    connect_bitcoin: Callable[[str], BitcoindReader] | None = None,
) -> dict[str, Holdings]:
    catalog = network_catalog(settings)
    if catalog is None:
        raise ReconcileError("no [funding] networks are configured")
    amounts: dict[str, int] = {}
    sources: dict[str, list[str]] = {}
    try:  # the cold wallets of [funding.sweeps] are custody too (ADR 0028)
        sweeps = parse_sweep_settings(settings.funding, catalog)
    except ValueError as e:
        raise ReconcileError(f"[funding.sweeps]: {e}") from e
    cold = {n: {s.cold_address} for n, s in sweeps.networks.items() if s.cold_address}
    for name, urls in sorted(rpc.items()):
        net = catalog.network(name)
        if net is None:
            raise ReconcileError(f"--rpc {name}: no such network in the config")
        async with db.read() as session:
            rows = await session.execute(
                sa.select(DepositAddressRow.address).where(DepositAddressRow.network == name)
            )
            addresses = sorted(
                {str(a) for (a,) in rows} | set(extra.get(name, ())) | cold.get(name, set())
            )
        if net.kind == "utxo":
            node = (connect_bitcoin or bitcoin_node(settings))(urls[-1])
            try:
                sats, height = await bitcoin_holdings(node, addresses)
            except ReconcileError:
                raise
            except Exception as e:  # a node that cannot be read is an input error
                raise ReconcileError(f"--rpc {name}: cannot read coins: {e}") from e
            finally:
                await node.aclose()
            for a in net.assets:
                shift = a.chain_decimals - a.decimals
                amount = sats // 10**shift if shift > 0 else sats * 10 ** (-shift)
                amounts[a.asset] = amounts.get(a.asset, 0) + amount
                sources.setdefault(a.asset, []).append(
                    f"{name}: {len(addresses)} addresses at height {height}"
                )
            continue
        assets = [(a.asset, a.contract, a.chain_decimals - a.decimals) for a in net.assets]
        try:
            held = await asyncio.to_thread(_evm_holdings, connect(urls[-1]), addresses, assets)
        except Exception as e:  # a node that cannot be read is an input error
            raise ReconcileError(f"--rpc {name}: cannot read balances: {e}") from e
        for asset, amount in held.items():
            amounts[asset] = amounts.get(asset, 0) + amount
            sources.setdefault(asset, []).append(f"{name}: {len(addresses)} addresses")
    return {a: Holdings(a, amounts[a], tuple(sources[a])) for a in sorted(amounts)}


async def unbooked_fees(db: Database) -> dict[str, int]:
    """Per asset, the network fees recorded but not booked in the core yet."""
    out: dict[str, int] = {}
    for fee in await SqlNetworkFeeStore(db).pending(1_000_000):
        out[fee.asset] = out.get(fee.asset, 0) + fee.amount
    return out


def bank_config(settings: Settings, wanted: bool | None) -> FiatConfig | None:
    """The fiat configuration when the bank is checked: ``wanted`` ``None`` means when
    ``[fiat]`` is in the config, ``True`` also with the demo's fiat, ``False`` never."""
    if wanted is False:
        return None
    try:
        if settings.fiat is not None:
            return parse_fiat(settings.fiat)
    except FiatConfigError as e:
        raise ReconcileError(f"[fiat]: {e}") from e
    if wanted and settings.demo:
        return demo_fiat()
    if wanted:
        raise ReconcileError("--bank: no [fiat] table in the config (docs/fiat.md)")
    return None


async def bank_positions(config: FiatConfig, db: Database, core: Core) -> dict[str, BankPosition]:
    """Per fiat currency, the bank's side read from SQL and compared with ``core``.

    Read in this order, each in its own transaction, so that a statement imported
    meanwhile can only look like a surplus (its credits missing from the lines, or its
    payouts' debits present while its balance is not), never like a shortfall."""
    store = SqlFiatStore(db)
    ibans = [config.bank.iban]
    lines = await store.lines_not_settled(ibans, core.seq)
    newest = await store.newest_balances(ibans)
    firsts = await store.first_imports(ibans)
    debits = await store.debits(ibans)
    intents = await store.card_intents(("created", "credited"))
    withdrawals_store = SqlWithdrawalStore(db)
    withdrawals = {
        w.id: w
        for w in await withdrawals_store.list_by_status(
            ("settling", "confirmed"), limit=10_000_000, network=FIAT_NETWORK
        )
    }
    for d in debits:  # payouts a statement shows, in whatever state they are now
        m = re.fullmatch(r"WD-([1-9][0-9]{0,18})", d.end_to_end_id)
        if m is not None and int(m.group(1)) not in withdrawals:
            w = await withdrawals_store.get(int(m.group(1)))
            if w is not None and w.network == FIAT_NETWORK:
                withdrawals[w.id] = w
    previous = []
    for s in newest:  # the statement before each newest one, to find one not imported
        older = await store.balances_of(s.balance.account_iban, s.balance.currency)
        if len(older) > 1:
            previous.append(older[-2].balance)
    out: dict[str, BankPosition] = {}
    for currency, configured in sorted(config.currencies.items()):
        decimals = core.assets.get(currency, configured)
        first = [ms for (iban, c), ms in firsts.items() if c == currency]
        out[currency] = bank_position(
            currency,
            decimals,
            balances=[s.balance for s in newest if s.balance.currency == currency],
            first_import_ms=min(first) if first else None,
            lines=lines,
            debits=debits,
            withdrawals=list(withdrawals.values()),
            card_intents=intents,
            applied_refs=core.deposit_refs,
            held=core.withdrawals.keys(),
            previous=previous,
        )
    return out


def alert_key(f: Finding) -> str:
    """The same check, place and difference is the same finding (the figures around
    it may move: a persisting shortfall while users trade is one alert)."""
    shape = hashlib.sha256(re.sub(r"[0-9.]+", "#", f.message).encode()).hexdigest()[:16]
    where = f"{f.asset or '-'}:{'-' if f.account is None else f.account}"
    return f"reconcile:{f.check}:{where}:{f.difference}:{shape}"[:200]


async def raise_alerts(report: Report, db: Database) -> int:
    """Each critical finding as an operator alert (``reconcile.<check>``); returns how
    many alerts are new (a repeat of an open one only counts)."""
    from tradewind.adapters.local import SystemClock

    clock = SystemClock()
    service = AlertService(SqlAlertStore(db), AuditLog(SqlAuditStore(db), clock), clock)
    new = 0
    for f in report.findings:
        if f.severity != "critical":
            continue
        alert = await service.raise_alert(
            f"reconcile.{f.check}",
            "critical",
            f.message[:2000],
            {
                "check": f.check,
                "asset": f.asset,
                "account": f.account,
                "expected": f.expected,
                "actual": f.actual,
                "difference": f.difference,
                "seq": report.seq,
            },
            dedupe_key=alert_key(f),
        )
        new += int(alert.count == 1)
    return new


def render(report: Report, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            {
                "ok": report.ok,
                "seq": report.seq,
                "checks": list(report.checks),
                "liabilities": dict(report.liabilities),
                "holdings": {a: h.amount for a, h in report.holdings.items()},
                "bank": {
                    c: {
                        "decimals": p.decimals,
                        "closing": p.closing,
                        "statements": list(p.statements),
                        "owed": report.liabilities.get(c, 0),
                        "uncredited": p.uncredited,
                        "card_credits": p.card_credits,
                        "settled_not_on_statement": p.settled_not_on_statement,
                        "paid_not_settled": p.paid_not_settled,
                        "expected": p.expected(report.liabilities.get(c, 0)),
                    }
                    for c, p in report.bank.items()
                },
                "findings": [
                    {
                        "check": f.check,
                        "severity": f.severity,
                        "message": f.message,
                        "asset": f.asset,
                        "account": f.account,
                        "expected": f.expected,
                        "actual": f.actual,
                        "difference": f.difference,
                    }
                    for f in report.findings
                ],
            },
            sort_keys=True,
        )
    lines = [f"reconciled at seq {report.seq}: {', '.join(report.checks)}"]
    for c, p in report.bank.items():
        if p.closing is not None:
            owes = report.liabilities.get(c, 0)
            lines.append(
                f"bank {c}: statements close at {units(p.closing, p.decimals)}, expected "
                f"{units(p.expected(owes), p.decimals)} (the core owes {units(owes, p.decimals)})"
            )
    for f in report.findings:
        lines.append(f"{f.severity.upper():8} {f.check:7} {f.message}")
    lines.append("OK" if report.ok else "DIFFERENCES FOUND")
    return "\n".join(lines)


async def run_reconcile(
    settings: Settings,
    *,
    as_json: bool = False,
    rpc: Sequence[str] = (),
    addresses: Sequence[str] = (),
    connect: Callable[[str], Web3] = http_node,
    connect_bitcoin: Callable[[str], BitcoindReader] | None = None,
    bank: bool | None = None,
    alert: bool = False,
) -> tuple[int, str]:
    """Returns ``(exit code, text to print)``. ``bank``: ``None`` checks the bank when
    ``[fiat]`` is configured; ``alert`` stores critical findings as operator alerts."""
    try:
        rpc_map = parse_pairs(rpc, "--rpc")
        extra = parse_pairs(addresses, "--address")
        unknown = sorted(set(extra) - set(rpc_map))
        if unknown:
            raise ReconcileError(f"--address {unknown[0]}: give that network's --rpc too")
        if not settings.data_dir.is_dir():
            raise ReconcileError(f"{settings.data_dir} is not a directory")
        fiat = bank_config(settings, bank)
        db = Database.from_url(settings.resolved_database_url)
        try:
            seq, ledger = await ledger_at_one_seq(SqlProjectionStore(db))
            core = await asyncio.to_thread(core_at, settings.data_dir, seq)
            held = (
                await custody(settings, db, rpc_map, extra, connect, connect_bitcoin)
                if rpc_map
                else None
            )
            positions = await bank_positions(fiat, db, core) if fiat is not None else None
            unbooked = await unbooked_fees(db) if rpc_map else None
            report = reconcile(core, ledger, held, positions, unbooked)
            new_alerts = await raise_alerts(report, db) if alert else None
        finally:
            await db.dispose()
    except ReconcileError as e:
        return 2, f"error: {e}"
    except sa.exc.SQLAlchemyError as e:
        return 2, f"error: cannot read the database: {e}"
    text = render(report, as_json)
    if new_alerts is not None and as_json:
        text = json.dumps({**json.loads(text), "alerts_new": new_alerts}, sort_keys=True)
    elif new_alerts is not None:
        critical = sum(1 for f in report.findings if f.severity == "critical")
        text += f"\nalerts: {critical} critical finding(s), {new_alerts} new alert(s)"
    return (0 if report.ok else 1), text
