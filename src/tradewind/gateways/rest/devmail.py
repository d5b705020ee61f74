"""``/dev/mail``: the mail outbox as a page, for demo mode only.

Demo mode has no mail server, so verification and reset tokens would be unreachable;
this page shows every email the exchange wrote, newest first. It must never be served
by a real deployment (it would hand anyone everyone's reset tokens): the runtime
installs it only in demo mode without SMTP. ``/dev/mail/messages`` is the same as JSON
(``?to=address`` to filter), which the end-to-end tests read.
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import FastAPI, Query
from starlette.responses import HTMLResponse, Response

from tradewind.gateways.rest.errors import JSON
from tradewind.services.mail import Outbox, OutboxRecord

PAGE_SIZE = 100


def _out(mail: OutboxRecord) -> dict[str, object]:
    return {
        "id": mail.id,
        "to": mail.to,
        "subject": mail.subject,
        "body": mail.body,
        "kind": mail.kind,
        "created_at": mail.created_at_ms,
    }


def _article(m: OutboxRecord) -> str:
    meta = f"to {html.escape(m.to)} - {html.escape(m.kind)} - #{m.id}"
    return (
        f"<article><h2>{html.escape(m.subject)}</h2><p class=meta>{meta}</p>"
        f"<pre>{html.escape(m.body)}</pre></article>"
    )


def install_dev_mail(app: FastAPI, outbox: Outbox) -> None:
    @app.get("/dev/mail/messages", tags=["demo"], summary="Demo outbox as JSON")
    async def dev_mail_messages(
        to: Annotated[str | None, Query(max_length=254)] = None,
        limit: Annotated[int, Query(ge=1, le=PAGE_SIZE)] = PAGE_SIZE,
    ) -> Response:
        mails = await outbox.recent(limit, to.strip().lower() if to else None)
        return JSON([_out(m) for m in mails])

    @app.get("/dev/mail", include_in_schema=False)
    async def dev_mail_page() -> Response:
        mails = await outbox.recent(PAGE_SIZE)
        items = "".join(_article(m) for m in mails)
        page = (
            "<!doctype html><html><head><meta charset=utf-8><title>Demo mail</title>"
            "<style>body{font:15px sans-serif;max-width:50em;margin:2em auto}"
            "article{border-bottom:1px solid #ccc}pre{white-space:pre-wrap}"
            ".meta{color:#666}</style></head><body><h1>Demo outbox</h1>"
            "<p>Every email the demo exchange sent, newest first. Demo mode only.</p>"
            f"{items or '<p>No mail yet.</p>'}</body></html>"
        )
        return HTMLResponse(page)
