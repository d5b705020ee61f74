"""``tradewind admin ...`` and ``tradewind audit verify``: the operator at the machine.

Why a command line: the first admin cannot be made through the admin API (nobody is
an admin yet), and checking the audit log must not depend on the server being up.
Both work on the database of the settings (SQLite in the data dir, or
``TRADEWIND_DATABASE_URL``), apply the migrations first, and write to the audit log as
the actor ``cli`` (no user id).

Invariants:
- the password never appears on the command line (it would be in the shell history
  and in ``ps``): it is read from a prompt, or from stdin with ``--password-stdin``;
- it is checked and hashed exactly as registration does (same normalisation, length
  policy and argon2id hasher defaults);
- ``audit verify`` exits 0 only when the whole chain checks (and contains
  ``--expect-head`` when given); otherwise 1, naming the first bad entry.
"""

from __future__ import annotations

import asyncio
import json
import unicodedata

from argon2 import PasswordHasher

from tradewind.adapters.local import SystemClock
from tradewind.adapters.sql import Database, SqlUserRepository, upgrade_async
from tradewind.adapters.sql.admin import SqlAdminStore
from tradewind.adapters.sql.audit import SqlAuditStore
from tradewind.runtime.config import Settings
from tradewind.services.accounts import AccountsConfig, normalise_email
from tradewind.services.admin import ROLES
from tradewind.services.audit import AuditLog
from tradewind.services.errors import InvalidEmail


class CliError(Exception):
    """A refusal to print (without a traceback) and exit 2."""


def check_password(password: str) -> str:
    policy = AccountsConfig()
    text = unicodedata.normalize("NFKC", password)
    lo, hi = policy.min_password_length, policy.max_password_length
    if not lo <= len(text) <= hi:
        raise CliError(f"the password must be {lo} to {hi} characters long")
    return text


async def _open(settings: Settings) -> Database:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.resolved_database_url)
    return Database.from_url(settings.resolved_database_url)


async def create_user(settings: Settings, email: str, password: str | None, role: str) -> str:
    """Create the user (or find it, if it exists) and give it ``role``; returns a line
    to print. ``password`` is needed only when the user does not exist yet."""
    if role not in ROLES:
        raise CliError(f"role must be one of {', '.join(ROLES)}")
    try:
        address = normalise_email(email)
    except InvalidEmail:
        raise CliError(f"{email!r} is not a valid email address") from None
    clock = SystemClock()
    db = await _open(settings)
    try:
        users = SqlUserRepository(db)
        audit = AuditLog(SqlAuditStore(db), clock)
        user = await users.get_by_email(address)
        created = user is None
        if user is None:
            if password is None:
                raise CliError("no such user: give a password to create it")
            hashed = await asyncio.to_thread(PasswordHasher().hash, check_password(password))
            user = await users.add(
                email=address, password_hash=hashed, created_at_ms=clock.now_ms()
            )
            if user is None:
                raise CliError(f"{address} was registered meanwhile; run again to set its role")
            # the operator at the machine vouches for a staff member's address
            await users.mark_email_verified(user.id, address, clock.now_ms())
        store = SqlAdminStore(db)
        previous = await store.role_of(user.id)
        await store.set_role(user.id, role, by=None, at_ms=clock.now_ms())
        await audit.record(
            "admin.user_created" if created else "admin.role_set",
            actor_role="cli",
            subject_id=user.id,
            details={"role": role, "previous": previous, "email": address},
        )
        verb = "created" if created else "updated"
        return f"user {user.id} ({address}) {verb} with role {role}"
    finally:
        await db.dispose()


async def verify_audit(
    settings: Settings, expect_head: str | None, as_json: bool
) -> tuple[int, str]:
    """Returns ``(exit code, text to print)``."""
    db = await _open(settings)
    try:
        result = await AuditLog(SqlAuditStore(db), SystemClock()).verify(expect_head=expect_head)
    finally:
        await db.dispose()
    if as_json:
        return (0 if result.ok else 1), json.dumps(
            {
                "ok": result.ok,
                "entries": result.entries,
                "head_seq": result.head_seq,
                "head_hash": result.head_hash,
                "first_bad_seq": result.first_bad_seq,
                "reason": result.reason,
            }
        )
    if result.ok:
        return 0, (
            f"audit log OK: {result.entries} entries; head {result.head_seq}:{result.head_hash}"
            " (keep this head elsewhere; check it later with --expect-head)"
        )
    return 1, (
        f"audit log TAMPERED: first bad entry is seq {result.first_bad_seq}: {result.reason}"
        f" ({result.entries} entries read; last good {result.head_seq}:{result.head_hash})"
    )
