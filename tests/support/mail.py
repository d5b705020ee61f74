"""Reading the demo outbox in tests, as a user reads their inbox."""

from __future__ import annotations

from typing import Any, Protocol


class _Http(Protocol):
    def get(self, url: str, **kwargs: Any) -> Any: ...

    def post(self, url: str, **kwargs: Any) -> Any: ...


def token_in(body: str) -> str:
    """The token of an emailed body: the line after the blank line that follows a line
    ending in ":"."""
    lines = body.splitlines()
    for i, line in enumerate(lines):
        if line.rstrip().endswith(":") and i + 2 < len(lines) and not lines[i + 1]:
            candidate = lines[i + 2].strip()
            if candidate and " " not in candidate:
                return candidate
    raise AssertionError(f"no token in {body!r}")


def last_mail(http: _Http, to: str, kind: str | None = None) -> dict[str, Any]:
    """The newest mail to ``to`` (of ``kind``) from ``/dev/mail/messages``."""
    r = http.get("/dev/mail/messages", params={"to": to})
    assert r.status_code == 200, r.text
    for mail in r.json():
        if kind is None or mail["kind"] == kind:
            return dict(mail)
    raise AssertionError(f"no {kind or 'mail'} to {to}")


def verify_email(http: _Http, email: str) -> None:
    """Redeem the verification token last sent to ``email``."""
    token = token_in(last_mail(http, email.strip().lower(), "verify_email")["body"])
    r = http.post("/api/v1/auth/verify-email", json={"token": token})
    assert r.status_code == 200, r.text
