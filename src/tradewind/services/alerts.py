"""Operator alerts: something a person must look at (issues 5/6; docs/security.md, Alerts).

Any part of the exchange raises an alert through :meth:`AlertService.raise_alert`
(a chain watcher's deep reorg, a hot wallet running low, a failed payout...); staff
see them in the back office and acknowledge them.

Invariants:
- raising is idempotent by a dedupe key: while an alert with that key is open, raising
  it again adds nothing but a count and a "last seen" time (the store's job, one
  conditional write, so two processes raising at once make one alert); once it is
  acknowledged, the same key opens a new alert;
- an alert is acknowledged once (a compare-and-set from ``open``), by a named staff
  member whose role is looked up server-side, and the acknowledgement is in the audit
  log; so is every refused attempt and every new alert (not the repeats);
- details are small JSON values (ids, amounts as strings, names): never secrets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from tradewind.services.admin import STAFF, Actor, RoleRequired
from tradewind.services.audit import AuditLog, DetailValue, canonical_details
from tradewind.services.errors import ServiceError
from tradewind.services.ports import Clock

SEVERITIES = ("info", "warning", "critical")
Severity = Literal["info", "warning", "critical"]
AlertStatus = Literal["open", "acknowledged"]
READ_ROLES = STAFF
"""Who lists and acknowledges alerts: every staff role (support, compliance, admin)."""
_KIND = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,63}")
MAX_MESSAGE = 2000
MAX_KEY = 200
MAX_DETAILS = 4000


class UnknownAlert(ServiceError):
    code = "unknown_alert"
    status_hint = 404
    default_message = "no such alert"


class AlertNotOpen(ServiceError):
    code = "alert_not_open"
    status_hint = 409
    default_message = "the alert was already acknowledged"


class InvalidAlert(ServiceError):
    code = "invalid_alert"
    status_hint = 400
    default_message = (
        "an alert needs a kind (lowercase, up to 64 characters), a severity of info, "
        "warning or critical, a message of 1 to 2000 characters and small details"
    )


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    kind: str
    """A dotted or snake name of what happened, e.g. ``chain.deep_reorg``."""
    severity: str
    message: str
    details: str
    """Canonical JSON of the details (sorted keys, no spaces)."""
    dedupe_key: str
    created_at_ms: int
    last_seen_at_ms: int
    count: int
    """How many times it was raised while open (1 for a new alert)."""
    status: str
    """``open`` or ``acknowledged``."""
    acknowledged_by: int | None
    acknowledged_at_ms: int | None

    def details_dict(self) -> dict[str, DetailValue]:
        value = json.loads(self.details)
        return value if isinstance(value, dict) else {}


class AlertStore(Protocol):
    async def raise_alert(
        self,
        *,
        kind: str,
        severity: str,
        message: str,
        details: str,
        dedupe_key: str,
        at_ms: int,
    ) -> tuple[Alert, bool]:
        """Open a new alert, or, when one with ``dedupe_key`` is open, count it once more
        (message, details and severity become the latest); ``True`` when new."""
        ...

    async def get(self, alert_id: int) -> Alert | None: ...

    async def list(
        self, *, status: AlertStatus | None, limit: int, before_id: int | None
    ) -> Sequence[Alert]:
        """Newest first (by id), ids below ``before_id`` when given."""
        ...

    async def acknowledge(self, alert_id: int, *, by: int, at_ms: int) -> bool:
        """Compare-and-set from ``open``; ``False`` if it was not open."""
        ...

    async def count_open(self) -> int: ...


def default_dedupe_key(kind: str, message: str) -> str:
    return f"{kind}:{message}"[:MAX_KEY]


class AlertService:
    def __init__(self, store: AlertStore, audit: AuditLog, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    async def raise_alert(
        self,
        kind: str,
        severity: Severity,
        message: str,
        details: Mapping[str, DetailValue] | None = None,
        *,
        dedupe_key: str | None = None,
    ) -> Alert:
        """Raise (or repeat) an alert; returns the open alert it is now.

        ``dedupe_key`` defaults to ``kind:message``: give one when the message varies
        between repeats of the same condition (a balance in it, a block number...)."""
        if not isinstance(kind, str) or not _KIND.fullmatch(kind):
            raise InvalidAlert(f"bad alert kind {str(kind)[:64]!r}")
        if severity not in SEVERITIES:
            raise InvalidAlert(f"severity must be one of {', '.join(SEVERITIES)}")
        text = message.strip() if isinstance(message, str) else ""
        if not 1 <= len(text) <= MAX_MESSAGE:
            raise InvalidAlert("the message must have 1 to 2000 characters")
        try:
            encoded = canonical_details(details)
        except (TypeError, ValueError) as e:
            raise InvalidAlert("details must be a mapping of JSON scalars") from e
        if len(encoded) > MAX_DETAILS:
            raise InvalidAlert("details are limited to 4000 characters of JSON")
        key = dedupe_key if dedupe_key is not None else default_dedupe_key(kind, text)
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY:
            raise InvalidAlert("the dedupe key must have 1 to 200 characters")
        alert, new = await self._store.raise_alert(
            kind=kind,
            severity=severity,
            message=text,
            details=encoded,
            dedupe_key=key,
            at_ms=self._clock.now_ms(),
        )
        if new:
            await self._audit.record(
                "alert.raised",
                actor_id=None,
                actor_role="system",
                details={"alert": alert.id, "kind": kind, "severity": severity},
            )
        return alert

    async def _require(self, actor: Actor, action: str) -> None:
        if actor.role not in READ_ROLES:
            await self._audit.record(
                "admin.denied",
                actor_id=actor.user_id,
                actor_role=actor.role,
                details={"attempted": action},
                ip=actor.ip,
            )
            raise RoleRequired(f"{action} needs a staff role")

    async def list_alerts(
        self,
        actor: Actor,
        *,
        status: AlertStatus | None = "open",
        limit: int = 100,
        before_id: int | None = None,
    ) -> Sequence[Alert]:
        await self._require(actor, "alerts.list")
        return await self._store.list(status=status, limit=limit, before_id=before_id)

    async def open_count(self, actor: Actor) -> int:
        await self._require(actor, "alerts.list")
        return await self._store.count_open()

    async def acknowledge(self, actor: Actor, alert_id: int) -> Alert:
        await self._require(actor, "alerts.acknowledge")
        if actor.user_id is None:
            raise RoleRequired("alerts are acknowledged by a named staff member")
        alert = await self._store.get(alert_id)
        if alert is None:
            raise UnknownAlert()
        if alert.status != "open" or not await self._store.acknowledge(
            alert_id, by=actor.user_id, at_ms=self._clock.now_ms()
        ):
            raise AlertNotOpen()
        await self._audit.record(
            "admin.alert_acknowledged",
            actor_id=actor.user_id,
            actor_role=actor.role,
            details={"alert": alert_id, "kind": alert.kind, "severity": alert.severity},
            ip=actor.ip,
        )
        found = await self._store.get(alert_id)
        assert found is not None
        return found


__all__ = [
    "SEVERITIES",
    "Alert",
    "AlertNotOpen",
    "AlertService",
    "AlertStore",
    "InvalidAlert",
    "UnknownAlert",
]
