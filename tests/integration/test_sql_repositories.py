"""Repository contract tests, run against the in-memory fakes, SQLite and PostgreSQL.

The same assertions hold for every backend, so the fakes used by the unit tests behave
like the real stores. SQL-only properties follow: exact amounts up to 38 digits,
projector offsets committed with their rows, SQLite pragmas and write concurrency, and
the accounts service end to end on each database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import argon2
import pytest
import pytest_asyncio
import sqlalchemy as sa

from tests.fakes import MemoryApiKeyRepository, MemorySessionRepository, MemoryUserRepository
from tests.support.mail import token_in
from tradewind.adapters.local import InMemoryReplayCache
from tradewind.adapters.secretbox import AesGcmSecretBox
from tradewind.adapters.sql import (
    Database,
    SqlApiKeyRepository,
    SqlSessionRepository,
    SqlUserRepository,
    upgrade_async,
)
from tradewind.adapters.sql.email_tokens import SqlTokenRepository
from tradewind.adapters.sql.ledger import LedgerEntryRow
from tradewind.adapters.sql.login_throttle import SqlLoginThrottleRepository
from tradewind.adapters.sql.outbox import SqlOutbox
from tradewind.adapters.sql.projector_offsets import (
    OffsetWentBackwards,
    advance_offset,
    get_offset,
)
from tradewind.adapters.sql.users import UserRow
from tradewind.services.accounts import AccountsService, sign_request
from tradewind.services.errors import EmailTaken, ReplayedSignature
from tradewind.services.ports import (
    ApiKeyRecord,
    ApiKeyRepository,
    SessionRecord,
    SessionRepository,
    UserRepository,
)

T0 = 1_700_000_000_000
HOUR = 3_600_000


@dataclass
class Repos:
    users: UserRepository
    sessions: SessionRepository
    api_keys: ApiKeyRepository
    db: Database | None = None


async def open_database(url: str) -> Database:
    await upgrade_async(url)
    return Database.from_url(url)


def sql_repos(db: Database) -> Repos:
    # Typed as the ports: mypy checks that the SQL adapters satisfy them.
    users: UserRepository = SqlUserRepository(db)
    sessions: SessionRepository = SqlSessionRepository(db)
    api_keys: ApiKeyRepository = SqlApiKeyRepository(db)
    return Repos(users, sessions, api_keys, db)


@pytest_asyncio.fixture(params=["memory", "sqlite", "postgresql"])
async def repos(request: pytest.FixtureRequest) -> AsyncIterator[Repos]:
    if request.param == "memory":
        yield Repos(MemoryUserRepository(), MemorySessionRepository(), MemoryApiKeyRepository())
        return
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_migrated_url"
    database = await open_database(str(request.getfixturevalue(fixture)))
    try:
        yield sql_repos(database)
    finally:
        await database.dispose()


async def add_user(repos: Repos, email: str = "a@example.com") -> int:
    user = await repos.users.add(email=email, password_hash="$argon2id$x", created_at_ms=T0)
    assert user is not None
    return user.id


# -- users ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_users_add_and_get(repos: Repos) -> None:
    user = await repos.users.add(email="a@example.com", password_hash="h1", created_at_ms=T0)
    assert user is not None and user.id > 0
    assert (user.email, user.password_hash, user.status, user.created_at_ms) == (
        "a@example.com",
        "h1",
        "active",
        T0,
    )
    for found in (await repos.users.get(user.id), await repos.users.get_by_email("a@example.com")):
        assert found is not None
        assert (found.id, found.email, found.password_hash, found.status) == (
            user.id,
            "a@example.com",
            "h1",
            "active",
        )
    assert await repos.users.get(user.id + 1000) is None
    assert await repos.users.get_by_email("b@example.com") is None


@pytest.mark.asyncio
async def test_users_email_is_unique(repos: Repos) -> None:
    first = await repos.users.add(email="a@example.com", password_hash="h1", created_at_ms=T0)
    assert (
        await repos.users.add(email="a@example.com", password_hash="h2", created_at_ms=T0) is None
    )
    found = await repos.users.get_by_email("a@example.com")
    assert first is not None and found is not None and found.password_hash == "h1"
    second = await repos.users.add(email="b@example.com", password_hash="h3", created_at_ms=T0)
    assert second is not None and second.id > first.id


@pytest.mark.asyncio
async def test_users_set_password_hash(repos: Repos) -> None:
    user_id = await add_user(repos)
    await repos.users.set_password_hash(user_id, "new-hash")
    found = await repos.users.get(user_id)
    assert found is not None and found.password_hash == "new-hash"


# -- sessions -------------------------------------------------------------------------


async def add_session(
    repos: Repos, user_id: int, token: str, expires: int = T0 + HOUR
) -> SessionRecord:
    return await repos.sessions.add(
        user_id=user_id,
        token_hash=token,
        created_at_ms=T0,
        expires_at_ms=expires,
        ip=None,
        user_agent=None,
    )


@pytest.mark.asyncio
async def test_sessions_add_and_get(repos: Repos) -> None:
    user_id = await add_user(repos)
    added = await repos.sessions.add(
        user_id=user_id,
        token_hash="ab" * 32,
        created_at_ms=T0,
        expires_at_ms=T0 + HOUR,
        ip="2001:db8::1",
        user_agent="Mozilla/5.0 ü",
    )
    found = await repos.sessions.get_by_token_hash("ab" * 32)
    assert found is not None
    for record in (added, found):
        assert (record.user_id, record.token_hash, record.created_at_ms) == (
            user_id,
            "ab" * 32,
            T0,
        )
        assert (record.expires_at_ms, record.revoked_at_ms) == (T0 + HOUR, None)
        assert (record.ip, record.user_agent) == ("2001:db8::1", "Mozilla/5.0 ü")
    assert found.id == added.id
    assert await repos.sessions.get_by_token_hash("cd" * 32) is None


@pytest.mark.asyncio
async def test_sessions_revoke(repos: Repos) -> None:
    user_id = await add_user(repos)
    await add_session(repos, user_id, "t1")
    assert await repos.sessions.revoke("t1", T0 + 5)
    assert not await repos.sessions.revoke("t1", T0 + 6)
    assert not await repos.sessions.revoke("unknown", T0 + 6)
    found = await repos.sessions.get_by_token_hash("t1")
    assert found is not None and found.revoked_at_ms == T0 + 5


@pytest.mark.asyncio
async def test_sessions_revoke_all_and_list_active(repos: Repos) -> None:
    alice = await add_user(repos, "alice@example.com")
    bob = await add_user(repos, "bob@example.com")
    for token in ("a1", "a2", "a3"):
        await add_session(repos, alice, token)
    await add_session(repos, alice, "a-expired", expires=T0 + 10)
    await add_session(repos, bob, "b1")
    await repos.sessions.revoke("a3", T0 + 1)

    active = await repos.sessions.list_active(alice, T0 + 100)
    assert [s.token_hash for s in active] == ["a2", "a1"]  # newest first
    assert await repos.sessions.revoke_all(alice, T0 + 100) == 2
    assert await repos.sessions.list_active(alice, T0 + 100) == []
    assert [s.token_hash for s in await repos.sessions.list_active(bob, T0 + 100)] == ["b1"]


@pytest.mark.asyncio
async def test_sessions_delete_expired(repos: Repos) -> None:
    user_id = await add_user(repos)
    await add_session(repos, user_id, "old", expires=T0 + 10)
    await add_session(repos, user_id, "revoked")
    await add_session(repos, user_id, "live")
    await repos.sessions.revoke("revoked", T0 + 5)
    assert await repos.sessions.delete_expired(T0 + 20) == 2
    assert await repos.sessions.get_by_token_hash("old") is None
    assert await repos.sessions.get_by_token_hash("revoked") is None
    assert await repos.sessions.get_by_token_hash("live") is not None


# -- API keys -------------------------------------------------------------------------


async def add_key(repos: Repos, user_id: int, key_id: str, **overrides: object) -> ApiKeyRecord:
    fields: dict[str, object] = {
        "key_id": key_id,
        "user_id": user_id,
        "label": "bot",
        "permissions": frozenset({"read", "trade"}),
        "ip_allowlist": None,
        "secret_sealed": b"\x01\x00sealed\x00\xff",
        "created_at_ms": T0,
    }
    fields.update(overrides)
    return await repos.api_keys.add(**fields)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_api_keys_add_and_get(repos: Repos) -> None:
    user_id = await add_user(repos)
    added = await add_key(
        repos, user_id, "k1", ip_allowlist=("10.0.0.0/8", "2001:db8::/64"), label="Bot ü"
    )
    found = await repos.api_keys.get("k1")
    assert found is not None
    for record in (added, found):
        assert (record.key_id, record.user_id, record.label) == ("k1", user_id, "Bot ü")
        assert record.permissions == frozenset({"read", "trade"})
        assert record.ip_allowlist == ("10.0.0.0/8", "2001:db8::/64")
        assert record.secret_sealed == b"\x01\x00sealed\x00\xff"
        assert (record.created_at_ms, record.revoked_at_ms) == (T0, None)
    assert await repos.api_keys.get("nope") is None
    plain = await add_key(repos, user_id, "k2")
    assert plain.ip_allowlist is None
    stored = await repos.api_keys.get("k2")
    assert stored is not None and stored.ip_allowlist is None


@pytest.mark.asyncio
async def test_api_keys_list_count_and_revoke(repos: Repos) -> None:
    alice = await add_user(repos, "alice@example.com")
    bob = await add_user(repos, "bob@example.com")
    for key_id in ("k1", "k2", "k3"):
        await add_key(repos, alice, key_id)
    await add_key(repos, bob, "kb")
    assert await repos.api_keys.count_active(alice) == 3

    assert not await repos.api_keys.revoke(bob, "k2", T0 + 1)  # not bob's
    assert await repos.api_keys.revoke(alice, "k2", T0 + 1)
    assert not await repos.api_keys.revoke(alice, "k2", T0 + 2)
    assert not await repos.api_keys.revoke(alice, "missing", T0 + 2)

    assert [k.key_id for k in await repos.api_keys.list_active(alice)] == ["k1", "k3"]
    assert await repos.api_keys.count_active(alice) == 2
    assert await repos.api_keys.count_active(bob) == 1
    revoked = await repos.api_keys.get("k2")
    assert revoked is not None and revoked.revoked_at_ms == T0 + 1


# -- SQL only -------------------------------------------------------------------------


def ledger_row(seq: int, leg: int, amount: int, **overrides: object) -> LedgerEntryRow:
    fields: dict[str, object] = {
        "seq": seq,
        "event_index": 0,
        "leg": leg,
        "ts": T0,
        "account": 7,
        "bucket": "available",
        "asset": "ETH",
        "amount": amount,
        "kind": "deposit",
        "ref": None,
    }
    fields.update(overrides)
    return LedgerEntryRow(**fields)


AMOUNTS = [0, 1, -1, 2**63, -(2**63) - 1, 10**30, -(10**30), 10**30 + 1, 10**38 - 1, -(10**38 - 1)]


@pytest.mark.asyncio
async def test_amounts_round_trip_exactly_to_38_digits(db: Database) -> None:
    async with db.write() as session:
        session.add_all(ledger_row(1, leg, amount) for leg, amount in enumerate(AMOUNTS))
    async with db.read() as session:
        stored = (
            await session.scalars(sa.select(LedgerEntryRow.amount).order_by(LedgerEntryRow.leg))
        ).all()
    assert list(stored) == AMOUNTS
    assert all(type(value) is int for value in stored)


@pytest.mark.asyncio
async def test_amounts_sum_exactly_on_postgresql(pg_migrated_url: str) -> None:
    """PostgreSQL sums NUMERIC exactly (on SQLite amounts are text, summed in Python)."""
    db = await open_database(pg_migrated_url)
    async with db.write() as session:
        session.add_all(
            [
                ledger_row(1, 0, 10**30 + 1),
                ledger_row(1, 1, 10**30 + 2),
                ledger_row(1, 2, -1),
            ]
        )
    async with db.read() as session:
        total = await session.scalar(sa.select(sa.func.sum(LedgerEntryRow.amount)))
    await db.dispose()
    assert total == 2 * 10**30 + 2


@pytest.mark.asyncio
@pytest.mark.parametrize("bad", [10**38, -(10**38), 1.5, True, "12"])
async def test_amounts_refuse_non_integers_and_overflow(db: Database, bad: object) -> None:
    with pytest.raises((TypeError, ValueError, sa.exc.StatementError)):
        async with db.write() as session:
            session.add(ledger_row(1, 0, bad))  # type: ignore[arg-type]
    async with db.read() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(LedgerEntryRow)) == 0


@pytest.mark.asyncio
async def test_ledger_entries_are_idempotent_by_seq_event_leg(db: Database) -> None:
    async with db.write() as session:
        session.add(ledger_row(5, 0, 100))
    with pytest.raises(sa.exc.IntegrityError):
        async with db.write() as session:
            session.add(ledger_row(5, 0, 100))


@pytest.mark.asyncio
async def test_projector_offset_commits_with_its_rows(db: Database) -> None:
    async with db.read() as session:
        assert await get_offset(session, "ledger") == 0
    async with db.write() as session:
        session.add(ledger_row(1, 0, 5))
        await advance_offset(session, "ledger", 1, T0)
    with pytest.raises(RuntimeError):
        async with db.write() as session:
            session.add(ledger_row(2, 0, 7))
            await advance_offset(session, "ledger", 2, T0 + 1)
            raise RuntimeError("crash before commit")
    async with db.read() as session:
        assert await get_offset(session, "ledger") == 1
        seqs = (await session.scalars(sa.select(LedgerEntryRow.seq))).all()
        assert list(seqs) == [1]
    async with db.write() as session:
        await advance_offset(session, "ledger", 9, T0 + 2)
        await advance_offset(session, "candles", 3, T0 + 2)
    with pytest.raises(OffsetWentBackwards):
        async with db.write() as session:
            await advance_offset(session, "ledger", 9, T0 + 3)
    async with db.read() as session:
        assert await get_offset(session, "ledger") == 9
        assert await get_offset(session, "candles") == 3


@pytest.mark.asyncio
async def test_foreign_keys_are_enforced_and_cascade(db: Database) -> None:
    repos = sql_repos(db)
    with pytest.raises(sa.exc.IntegrityError):
        await add_session(repos, 424242, "orphan")
    user_id = await add_user(repos)
    await add_session(repos, user_id, "t1")
    await add_key(repos, user_id, "k1")
    async with db.write() as session:
        await session.execute(sa.delete(UserRow).where(UserRow.id == user_id))
    assert await repos.sessions.get_by_token_hash("t1") is None
    assert await repos.api_keys.get("k1") is None


@pytest.mark.asyncio
async def test_sqlite_connection_settings(sqlite_url: str) -> None:
    database = await open_database(sqlite_url)
    try:
        async with database.engine.connect() as connection:
            values = {
                pragma: (await connection.exec_driver_sql(f"PRAGMA {pragma}")).scalar()
                for pragma in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
    finally:
        await database.dispose()
    assert values == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "synchronous": 2,
    }


@pytest.mark.asyncio
async def test_concurrent_writers_all_succeed(db: Database) -> None:
    users = SqlUserRepository(db)
    results = await asyncio.gather(
        *(
            users.add(email=f"u{i}@example.com", password_hash="h", created_at_ms=T0)
            for i in range(40)
        )
    )
    ids = [user.id for user in results if user is not None]
    assert len(set(ids)) == 40


@pytest.mark.asyncio
async def test_concurrent_registrations_of_one_email_yield_one_user(db: Database) -> None:
    users = SqlUserRepository(db)
    results = await asyncio.gather(
        *(
            users.add(email="same@example.com", password_hash="h", created_at_ms=T0)
            for _ in range(10)
        )
    )
    assert sum(user is not None for user in results) == 1


@pytest.mark.asyncio
async def test_read_then_write_transactions_do_not_fail_busy(db: Database) -> None:
    """The projector pattern (read the offset, write rows and the offset) run by several
    writers at once: on SQLite ``BEGIN IMMEDIATE`` makes them queue instead of failing."""

    async def project(index: int, rounds: int) -> None:
        # each writer its own event_index: rows keyed (seq, event_index, leg) never clash
        # (hash(name) % 1000 did, in about 1 run in 170: str hashes vary per process)
        name = f"p{index}"
        for _ in range(rounds):
            async with db.write() as session:
                seq = await get_offset(session, name) + 1
                session.add(ledger_row(seq, 0, seq, kind=name, event_index=index))
                await advance_offset(session, name, seq, T0 + seq)

    await asyncio.gather(*(project(i, 10) for i in range(4)))
    async with db.read() as session:
        assert [await get_offset(session, f"p{i}") for i in range(4)] == [10, 10, 10, 10]


# -- the accounts service on SQL ------------------------------------------------------


@pytest.mark.asyncio
async def test_accounts_service_end_to_end(db: Database) -> None:
    repos = sql_repos(db)
    clock_ms = [T0]

    class Clock:
        def now_ms(self) -> int:
            return clock_ms[0]

    identity = SqlUserRepository(db)
    outbox = SqlOutbox(db)
    service = AccountsService(
        users=identity,
        sessions=SqlSessionRepository(db),
        api_keys=repos.api_keys,
        replay_cache=InMemoryReplayCache(),
        secret_box=AesGcmSecretBox([bytes(32)]),
        clock=Clock(),
        hasher=argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST),
        identity=identity,
        tokens=SqlTokenRepository(db),
        throttle=SqlLoginThrottleRepository(db),
        outbox=outbox,
    )
    user_id = await service.register("Trader@Example.com", "long enough password")
    (mail,) = await outbox.recent(10, "trader@example.com")
    await service.verify_email(token_in(mail.body))
    with pytest.raises(EmailTaken):
        await service.register("trader@example.com", "long enough password")
    token = await service.login("trader@example.com", "long enough password", ip="127.0.0.1")
    assert (await service.authenticate(token)).user_id == user_id

    key = await service.create_api_key(user_id, "bot", ["read", "trade"], ["127.0.0.1"])
    path, body = "/api/v1/orders", b'{"symbol":"BTC-USDT"}'
    signature = sign_request(key.secret, T0, "POST", path, body)
    principal = await service.verify_signature(
        key.key_id, T0, "POST", path, body, signature, T0 + 3, client_ip="127.0.0.1"
    )
    assert principal.user_id == user_id and principal.permissions == {"read", "trade"}
    with pytest.raises(ReplayedSignature):
        await service.verify_signature(
            key.key_id, T0, "POST", path, body, signature, T0 + 4, client_ip="127.0.0.1"
        )
    await service.logout(token)
    assert await service.list_sessions(user_id) == []
