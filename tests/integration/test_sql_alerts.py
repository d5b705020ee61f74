"""Operator alerts on SQLite and PostgreSQL: raised once per dedupe key while open,
acknowledged once by staff (audited), mirrored from the chain watcher's alerts."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from tradewind.adapters.sql.alerts import SqlAlertStore
from tradewind.adapters.sql.audit import SqlAuditStore
from tradewind.adapters.sql.chain_watch import SqlWatcherStore
from tradewind.adapters.sql.engine import Database
from tradewind.services.admin import Actor, RoleRequired
from tradewind.services.alerts import AlertNotOpen, AlertService, InvalidAlert, UnknownAlert
from tradewind.services.audit import AuditLog


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def now_ms(self) -> int:
        self.now += 1
        return self.now


STAFF = Actor(7, "support", "10.0.0.1")


def service(db: Database) -> tuple[AlertService, AuditLog]:
    clock = Clock()
    audit = AuditLog(SqlAuditStore(db), clock)
    return AlertService(SqlAlertStore(db), audit, clock), audit


@pytest.mark.asyncio
async def test_raising_twice_while_open_is_one_alert(db: Database) -> None:
    alerts, _ = service(db)
    first = await alerts.raise_alert(
        "hot_wallet.low", "warning", "ETH hot wallet low", {"balance": "1.5"}, dedupe_key="hw:ETH"
    )
    again = await alerts.raise_alert(
        "hot_wallet.low",
        "critical",
        "ETH hot wallet lower",
        {"balance": "0.2"},
        dedupe_key="hw:ETH",
    )
    assert again.id == first.id and again.count == 2
    assert again.severity == "critical" and again.details_dict() == {"balance": "0.2"}
    assert await alerts.open_count(STAFF) == 1
    # two raisers at once still make one alert
    both = await asyncio.gather(
        *(alerts.raise_alert("x.race", "info", "same thing") for _ in range(5))
    )
    assert len({a.id for a in both}) == 1
    assert max(a.count for a in both) == 5


@pytest.mark.asyncio
async def test_acknowledged_once_then_the_key_opens_a_new_alert(db: Database) -> None:
    alerts, audit = service(db)
    alert = await alerts.raise_alert("payout.failed", "critical", "payout 12 failed")
    done = await alerts.acknowledge(STAFF, alert.id)
    assert (done.status, done.acknowledged_by) == ("acknowledged", STAFF.user_id)
    with pytest.raises(AlertNotOpen):
        await alerts.acknowledge(Actor(8, "admin"), alert.id)
    with pytest.raises(UnknownAlert):
        await alerts.acknowledge(STAFF, 999_999)
    fresh = await alerts.raise_alert("payout.failed", "critical", "payout 12 failed")
    assert fresh.id != alert.id and fresh.status == "open" and fresh.count == 1
    listed = await alerts.list_alerts(STAFF, status="acknowledged", limit=10)
    assert [a.id for a in listed] == [alert.id]
    page1 = await alerts.list_alerts(STAFF, status=None, limit=1)
    page2 = await alerts.list_alerts(STAFF, status=None, limit=1, before_id=page1[0].id)
    assert [page1[0].id, page2[0].id] == [fresh.id, alert.id]
    actions = [(e.action, e.actor_id) for e in await audit.recent(limit=20)]
    assert ("admin.alert_acknowledged", STAFF.user_id) in actions
    assert ("alert.raised", None) in actions


@pytest.mark.asyncio
async def test_users_are_refused_and_the_refusal_audited(db: Database) -> None:
    alerts, audit = service(db)
    alert = await alerts.raise_alert("x.y", "info", "hello")
    user = Actor(9, "user")
    with pytest.raises(RoleRequired):
        await alerts.list_alerts(user)
    with pytest.raises(RoleRequired):
        await alerts.acknowledge(user, alert.id)
    assert (await alerts.list_alerts(STAFF))[0].status == "open"
    denied = [e for e in await audit.recent(limit=10) if e.action == "admin.denied"]
    assert {e.details_dict()["attempted"] for e in denied} == {
        "alerts.list",
        "alerts.acknowledge",
    }


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kind", "severity", "message"),
    [
        ("Bad Kind", "info", "m"),
        ("ok", "loud", "m"),
        ("ok", "info", "   "),
        ("ok", "info", "m" * 2001),
    ],
)
async def test_bad_alerts_are_refused(db: Database, kind: str, severity: str, message: str) -> None:
    alerts, _ = service(db)
    with pytest.raises(InvalidAlert):
        await alerts.raise_alert(kind, severity, message)  # type: ignore[arg-type]
    assert await alerts.open_count(STAFF) == 0


@pytest.mark.asyncio
async def test_chain_watcher_alerts_are_operator_alerts(db: Database) -> None:
    alerts, _ = service(db)
    watcher = SqlWatcherStore(db)
    await watcher.add_alert("eth", "deep_reorg", "eth: reorg of 9 blocks", 120, 1_000)
    await watcher.add_alert("eth", "deep_reorg", "eth: reorg of 9 blocks", 120, 2_000)
    assert await watcher.alerts("eth") == [("deep_reorg", "eth: reorg of 9 blocks", 120)] * 2
    [alert] = await alerts.list_alerts(STAFF)
    assert (alert.kind, alert.severity, alert.count) == ("chain.deep_reorg", "critical", 2)
    assert alert.details_dict() == {"block": 120, "network": "eth"}


@pytest.mark.asyncio
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_migration_copies_earlier_chain_alerts(
    request: pytest.FixtureRequest, backend: str
) -> None:
    """Chain alerts written before migration 0014 become open alerts, one each."""
    from tradewind.adapters.sql.migrate import upgrade_async

    url = str(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url"))
    await upgrade_async(url, "0011")
    db = Database.from_url(url)
    try:
        async with db.write() as session:
            for i, kind in enumerate(("deep_reorg", "reorg_beyond_window"), start=1):
                await session.execute(
                    sa.text(
                        "INSERT INTO chain_alerts (network, kind, message, block_number, "
                        "created_at_ms) VALUES (:n, :k, :m, :b, :t)"
                    ),
                    {"n": "eth", "k": kind, "m": f"reorg {i}", "b": 100 + i, "t": 5_000 + i},
                )
        await upgrade_async(url)
        alerts, _ = service(db)
        listed = await alerts.list_alerts(STAFF)
        assert sorted((a.kind, a.message, a.created_at_ms) for a in listed) == [
            ("chain.deep_reorg", "reorg 1", 5_001),
            ("chain.reorg_beyond_window", "reorg 2", 5_002),
        ]
        assert {a.severity for a in listed} == {"critical"}
        assert listed[0].details_dict()["network"] == "eth"
    finally:
        await db.dispose()
