"""The identity adapters on SQLite and PostgreSQL: the same contract as the in-memory
fakes, and "use once" holding under concurrency (two replicas, one winner)."""

from __future__ import annotations

import asyncio

import aiosmtpd.controller
import pytest

from tradewind.adapters.mail.smtp import (
    OutboxDeliverer,
    SmtpSender,
    SmtpSettings,
    SmtpUrlError,
)
from tradewind.adapters.sql import Database, SqlSessionRepository, SqlUserRepository
from tradewind.adapters.sql.email_tokens import SqlTokenRepository
from tradewind.adapters.sql.login_throttle import SqlLoginThrottleRepository
from tradewind.adapters.sql.outbox import SENT_BODY, SqlOutbox
from tradewind.services.identity_ports import (
    DeviceSessionRepository,
    IdentityRepository,
    LoginThrottleRepository,
    TokenRepository,
)
from tradewind.services.mail import Mail, Outbox

T0 = 1_700_000_000_000


async def new_user(db: Database, email: str = "a@example.com") -> int:
    user = await SqlUserRepository(db).add(email=email, password_hash="h", created_at_ms=T0)
    assert user is not None
    return user.id


@pytest.mark.asyncio
async def test_identity_columns_round_trip_and_verification_is_bound_to_the_address(
    db: Database,
) -> None:
    repo: IdentityRepository = SqlUserRepository(db)
    user_id = await new_user(db)
    fresh = await repo.get_identity(user_id)
    assert fresh is not None and fresh.email_verified_at_ms is None
    assert not await repo.mark_email_verified(user_id, "other@example.com", T0)
    assert await repo.mark_email_verified(user_id, "a@example.com", T0 + 1)
    assert await repo.mark_email_verified(user_id, "a@example.com", T0 + 2)  # keeps the first
    await repo.set_anti_phishing_code(user_id, "Blue-Owl")
    other = await new_user(db, "b@example.com")
    assert not await repo.change_email(other, "a@example.com", T0)  # taken
    assert await repo.change_email(other, "c@example.com", T0 + 5)
    got = await repo.get_identity(user_id)
    assert got is not None and got.email_verified_at_ms == T0 + 1
    assert got.anti_phishing_code == "Blue-Owl"
    moved = await repo.get_identity(other)
    assert moved is not None and (moved.email, moved.email_verified_at_ms) == (
        "c@example.com",
        T0 + 5,
    )


@pytest.mark.asyncio
async def test_totp_state_steps_and_recovery_codes(db: Database) -> None:
    repo: IdentityRepository = SqlUserRepository(db)
    user_id = await new_user(db)
    await repo.set_totp_pending(user_id, b"sealed-1")
    assert not await repo.enable_totp(user_id, b"sealed-0", 10, ["h1"])  # not the pending one
    assert await repo.enable_totp(user_id, b"sealed-1", 10, ["h1", "h2"])
    assert not await repo.enable_totp(user_id, b"sealed-1", 11, ["h3"])  # already on
    assert not await repo.advance_totp_step(user_id, 10)
    assert await repo.advance_totp_step(user_id, 11)
    assert not await repo.advance_totp_step(user_id, 9)
    assert await repo.count_recovery_codes(user_id) == 2
    assert await repo.use_recovery_code(user_id, "h1", T0)
    assert not await repo.use_recovery_code(user_id, "h1", T0)
    other = await new_user(db, "b@example.com")
    assert not await repo.use_recovery_code(other, "h2", T0)  # not theirs
    assert await repo.count_recovery_codes(user_id) == 1
    await repo.disable_totp(user_id)
    off = await repo.get_identity(user_id)
    assert off is not None and off.totp_secret_sealed is None and off.totp_last_step is None
    assert await repo.count_recovery_codes(user_id) == 0


@pytest.mark.asyncio
async def test_a_totp_step_and_a_token_are_won_by_one_of_many_racers(db: Database) -> None:
    repo = SqlUserRepository(db)
    tokens: TokenRepository = SqlTokenRepository(db)
    user_id = await new_user(db)
    await repo.set_totp_pending(user_id, b"s")
    assert await repo.enable_totp(user_id, b"s", 1, [])
    wins = await asyncio.gather(*(repo.advance_totp_step(user_id, 2) for _ in range(8)))
    assert sum(wins) == 1
    await tokens.add(
        jti="j1", user_id=user_id, purpose="verify_email", created_at_ms=T0, expires_at_ms=T0 + 10
    )
    used = await asyncio.gather(
        *(tokens.consume("j1", "verify_email", user_id, T0 + 1) for _ in range(8))
    )
    assert sum(used) == 1


@pytest.mark.asyncio
async def test_tokens_expire_are_bound_and_revocable(db: Database) -> None:
    tokens: TokenRepository = SqlTokenRepository(db)
    user_id = await new_user(db)
    for jti in ("a", "b", "c"):
        await tokens.add(
            jti=jti,
            user_id=user_id,
            purpose="password_reset",
            created_at_ms=T0,
            expires_at_ms=T0 + 10,
        )
    assert not await tokens.consume("a", "password_reset", user_id, T0 + 10)  # expired
    assert not await tokens.consume("b", "verify_email", user_id, T0)  # other purpose
    assert not await tokens.consume("b", "password_reset", user_id + 1, T0)  # other user
    await tokens.revoke_all(user_id, "password_reset", T0)
    assert not await tokens.consume("c", "password_reset", user_id, T0 + 1)


@pytest.mark.asyncio
async def test_login_failures_count_forget_and_lock(db: Database) -> None:
    throttle: LoginThrottleRepository = SqlLoginThrottleRepository(db)
    assert await throttle.get("ip:1.2.3.4") is None
    counts = await asyncio.gather(*(throttle.add_failure("ip:1.2.3.4", T0, 0) for _ in range(6)))
    assert sorted(counts) == [1, 2, 3, 4, 5, 6]  # concurrent failures are never lost
    await throttle.lock("ip:1.2.3.4", T0 + 100)
    await throttle.lock("ip:1.2.3.4", T0 + 50)  # a shorter lock does not shorten it
    state = await throttle.get("ip:1.2.3.4")
    assert state is not None and (state.failures, state.locked_until_ms) == (6, T0 + 100)
    assert await throttle.add_failure("ip:1.2.3.4", T0 + 10_000, T0 + 5_000) == 1  # old: forgotten
    await throttle.clear("ip:1.2.3.4")
    assert await throttle.get("ip:1.2.3.4") is None


@pytest.mark.asyncio
async def test_sessions_device_list_operations(db: Database) -> None:
    sessions: DeviceSessionRepository = SqlSessionRepository(db)
    alice, bob = await new_user(db), await new_user(db, "b@example.com")
    assert await sessions.count_all(alice) == 0
    a1 = await sessions.add(
        user_id=alice,
        token_hash="1" * 64,
        created_at_ms=T0,
        expires_at_ms=T0 + 10**6,
        ip="1.1.1.1",
        user_agent="laptop",
    )
    a2 = await sessions.add(
        user_id=alice,
        token_hash="2" * 64,
        created_at_ms=T0,
        expires_at_ms=T0 + 10**6,
        ip=None,
        user_agent=None,
    )
    b1 = await sessions.add(
        user_id=bob,
        token_hash="3" * 64,
        created_at_ms=T0,
        expires_at_ms=T0 + 10**6,
        ip="1.1.1.1",
        user_agent="laptop",
    )
    await sessions.touch(a1.id, T0 + 500)
    await sessions.touch(a1.id, T0 + 100)  # never goes back
    got = await sessions.get_by_token_hash("1" * 64)
    assert got is not None and got.last_seen_at_ms == T0 + 500
    assert await sessions.seen_device(alice, "1.1.1.1", "laptop")
    assert await sessions.seen_device(alice, None, None)
    assert not await sessions.seen_device(alice, "1.1.1.1", "phone")
    assert not await sessions.revoke_by_id(bob, a1.id, T0 + 1)  # not Bob's
    assert await sessions.revoke_others(alice, a2.id, T0 + 1) == 1
    assert [s.id for s in await sessions.list_active(alice, T0 + 2)] == [a2.id]
    assert [s.id for s in await sessions.list_active(bob, T0 + 2)] == [b1.id]
    assert await sessions.revoke_by_id(alice, a2.id, T0 + 3)
    assert not await sessions.revoke_by_id(alice, a2.id, T0 + 4)
    assert await sessions.count_all(alice) == 2


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.content)  # type: ignore[attr-defined]
        )
        return "250 OK"


@pytest.mark.asyncio
async def test_outbox_is_delivered_over_smtp_once_and_the_body_is_not_kept(
    db: Database, unused_tcp_port: int
) -> None:
    outbox: Outbox = SqlOutbox(db)
    user_id = await new_user(db)
    for i in range(3):
        await outbox.put(
            Mail(to="a@example.com", subject=f"s{i}", body=f"token-{i}", kind="k", user_id=user_id),
            T0 + i,
        )
    inbox = Inbox()
    server = aiosmtpd.controller.Controller(inbox, hostname="127.0.0.1", port=unused_tcp_port)
    server.start()
    try:
        settings = SmtpSettings.from_url(
            f"smtp://127.0.0.1:{unused_tcp_port}?from=noreply@tradewind.test"
        )
        sql = SqlOutbox(db)
        one = OutboxDeliverer(sql, SmtpSender(settings), lambda: T0 + 100)
        two = OutboxDeliverer(sql, SmtpSender(settings), lambda: T0 + 100)
        sent = await asyncio.gather(one.deliver_once(), two.deliver_once())
        assert sum(sent) == 3 and len(inbox.messages) == 3  # two replicas, no duplicate
        assert await one.deliver_once() == 0
    finally:
        server.stop()
    assert {m[0] for m in inbox.messages} == {"noreply@tradewind.test"}
    assert sorted(b"token-" in m[2] for m in inbox.messages) == [True] * 3
    assert all(m.body == SENT_BODY and m.sent_at_ms == T0 + 100 for m in await outbox.recent(10))


@pytest.mark.asyncio
async def test_sent_mails_are_deleted_after_the_retention_and_unsent_ones_never(
    db: Database, unused_tcp_port: int
) -> None:
    day = 86_400_000
    outbox = SqlOutbox(db)
    for i in range(3):
        await outbox.put(Mail(to="a@example.com", subject=f"s{i}", body="b", kind="k"), T0)
    inbox = Inbox()
    server = aiosmtpd.controller.Controller(inbox, hostname="127.0.0.1", port=unused_tcp_port)
    server.start()
    now = [T0]
    try:
        smtp = SmtpSender(SmtpSettings.from_url(f"smtp://127.0.0.1:{unused_tcp_port}"))
        deliverer = OutboxDeliverer(outbox, smtp, lambda: now[0], retention_ms=7 * day)
        assert await deliverer.deliver_once() == 3
    finally:
        server.stop()
    pending = await outbox.put(Mail(to="b@example.com", subject="later", body="b", kind="k"), T0)
    now[0] = T0 + 7 * day  # exactly the retention: kept
    assert await deliverer.sweep_once() == 0
    assert len(await outbox.recent(10)) == 4
    now[0] = T0 + 30 * day
    assert await deliverer.sweep_once() == 3
    assert [m.id for m in await outbox.recent(10)] == [pending]  # never sent: kept
    with pytest.raises(ValueError):
        OutboxDeliverer(outbox, smtp, lambda: now[0], retention_ms=0)


@pytest.mark.asyncio
async def test_delete_sent_goes_in_bounded_batches(db: Database) -> None:
    outbox = SqlOutbox(db)
    ids = [
        await outbox.put(Mail(to="a@example.com", subject="s", body="b", kind="k"), T0)
        for _ in range(5)
    ]
    for mail_id in ids:
        await outbox.mark_sent(mail_id, T0)
    assert await outbox.delete_sent(T0 + 1, limit=2) == 2
    assert [m.id for m in await outbox.recent(10)] == ids[:1:-1]  # the oldest went first
    assert await outbox.delete_sent(T0, limit=10) == 0  # sent at T0 is not before T0
    assert await outbox.delete_sent(T0 + 1, limit=10) == 3


@pytest.mark.asyncio
async def test_a_failed_send_is_retried_later(db: Database, unused_tcp_port: int) -> None:
    outbox = SqlOutbox(db)
    await outbox.put(Mail(to="a@example.com", subject="s", body="b", kind="k"), T0)
    now = [T0]
    nobody = SmtpSettings.from_url(f"smtp://127.0.0.1:{unused_tcp_port}")
    deliverer = OutboxDeliverer(outbox, SmtpSender(nobody, timeout_s=2), lambda: now[0])
    assert await deliverer.deliver_once() == 0
    assert await deliverer.deliver_once() == 0  # backing off: not even tried
    (mail,) = await outbox.recent(1)
    assert mail.sent_at_ms is None and mail.attempts == 1


def test_smtp_urls() -> None:
    s = SmtpSettings.from_url("smtps://user%40x:p%3Ass@mail.example.com?from=a@b.c")
    assert (s.host, s.port, s.security, s.sender) == ("mail.example.com", 465, "tls", "a@b.c")
    assert (s.username, s.password) == ("user@x", "p:ss") and "p:ss" not in repr(s)
    assert SmtpSettings.from_url("smtp+starttls://h").port == 587
    assert SmtpSettings.from_url("smtp://h:2525").sender == "no-reply@h"
    for bad in ("http://h", "smtp://", "smtp://h:notaport"):
        with pytest.raises(SmtpUrlError):
            SmtpSettings.from_url(bad)
