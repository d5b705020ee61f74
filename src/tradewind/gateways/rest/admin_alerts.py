"""The back office's alerts, ``/api/v1/admin/alerts`` (services/alerts.py).

Invariants:
- staff sessions only (support, compliance, admin read and acknowledge); an ordinary
  user's token gets ``403 role_required`` before any lookup;
- the list is newest first, paged by id: ``next_before`` is the id to pass as
  ``before`` for the next (older) page, ``null`` on the last page; ``open_count`` is
  the number of open alerts whatever the filter (the nav badge reads it);
- acknowledging needs the ``Confirmed`` guard (a current 2FA code when the staff member
  has 2FA) and happens once: ``409 alert_not_open`` the second time.

(No ``from __future__ import annotations``: FastAPI reads the signatures at runtime.)
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from starlette.responses import Response

from tradewind.gateways.rest.errors import JSON
from tradewind.gateways.rest.staff import staff_guards
from tradewind.gateways.rest.units import MAX_INT
from tradewind.services.admin import Actor, AdminService
from tradewind.services.alerts import Alert, AlertService

AlertId = Annotated[int, Path(ge=1, le=MAX_INT)]


def alert_out(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": a.kind,
        "severity": a.severity,
        "message": a.message,
        "details": a.details_dict(),
        "created_at": a.created_at_ms,
        "last_seen_at": a.last_seen_at_ms,
        "count": a.count,
        "status": a.status,
        "acknowledged_by": a.acknowledged_by,
        "acknowledged_at": a.acknowledged_at_ms,
    }


def install_admin_alerts(app: FastAPI, alerts: AlertService, admin: AdminService) -> None:
    guards = staff_guards(admin)
    Staff = Annotated[Actor, Depends(guards.staff)]
    Confirmed = Annotated[Actor, Depends(guards.confirmed)]
    router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

    @router.get("/alerts")
    async def list_alerts(
        actor: Staff,
        status: Annotated[Literal["open", "acknowledged", "all"], Query()] = "open",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
    ) -> Response:
        items = await alerts.list_alerts(
            actor, status=None if status == "all" else status, limit=limit, before_id=before
        )
        return JSON(
            {
                "items": [alert_out(a) for a in items],
                "next_before": items[-1].id if len(items) == limit else None,
                "open_count": await alerts.open_count(actor),
            }
        )

    @router.post("/alerts/{alert_id}/acknowledge")
    async def acknowledge(alert_id: AlertId, actor: Confirmed) -> Response:
        return JSON(alert_out(await alerts.acknowledge(actor, alert_id)))

    app.include_router(router)
