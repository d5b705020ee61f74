"""Accounts service against in-memory fakes: registration, login, sessions, API keys
and the request signatures of DESIGN §6."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib
import inspect
import subprocess
import sys
from dataclasses import dataclass, replace
from typing import Literal

import argon2
import pytest

from tests.fakes import (
    FakeClock,
    MemoryApiKeyRepository,
    MemoryAuditStore,
    MemorySessionRepository,
)
from tests.identity_fakes import (
    MemoryIdentityUsers,
    MemoryLoginThrottleRepository,
    MemoryOutbox,
    MemoryTokenRepository,
)
from tests.support.mail import token_in
from tradewind.adapters.local import InMemoryReplayCache
from tradewind.adapters.secretbox import AesGcmSecretBox
from tradewind.services import errors
from tradewind.services.accounts import (
    AccountsConfig,
    AccountsService,
    NewApiKey,
    normalise_email,
    sign_request,
    signature_payload,
    token_hash,
)
from tradewind.services.audit import AuditLog

CHEAP = argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)
PASSWORD = "correct horse battery"
SERVER_SIDE = frozenset(
    {"core_unavailable", "not_supported", "margin_unavailable", "cards_unavailable"}
)
"""Service errors that are the server's side: the core down (503), a feature this
deployment lacks (501), or one this process cannot serve (503, like the gateway's
``funding_unavailable`` and ``fees_unavailable``: margin figures on an API replica,
card deposits without ``[fiat.stripe]``)."""
FULLWIDTH = "".join(chr(ord(c) + 0xFEE0) for c in "password12")  # NFKC: "password12"


class CountingHasher(argon2.PasswordHasher):
    """The cheap argon2id profile, counting verifications (for the timing-parity test)."""

    def __init__(self, time_cost: int = 1) -> None:
        p = argon2.profiles.CHEAPEST
        super().__init__(
            time_cost=time_cost,
            memory_cost=p.memory_cost,
            parallelism=p.parallelism,
            hash_len=p.hash_len,
            salt_len=p.salt_len,
            type=argon2.Type.ID,
        )
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifications += 1
        return super().verify(hash, password)


@dataclass
class World:
    service: AccountsService
    users: MemoryIdentityUsers
    sessions: MemorySessionRepository
    keys: MemoryApiKeyRepository
    replay: InMemoryReplayCache
    clock: FakeClock
    hasher: CountingHasher
    outbox: MemoryOutbox
    throttle: MemoryLoginThrottleRepository
    tokens: MemoryTokenRepository

    async def verified_user(self, email: str, password: str = PASSWORD) -> int:
        """Register and verify through the token in the outbox, like a user would."""
        user_id = await self.service.register(email, password)
        await self.service.verify_email(token_in(self.outbox.last(normalise_email(email)).body))
        return user_id


def make_world(
    hasher: CountingHasher | None = None,
    users: MemoryIdentityUsers | None = None,
    audit: MemoryAuditStore | None = None,
) -> World:
    world_hasher = hasher or CountingHasher()
    user_repo = users or MemoryIdentityUsers()
    sessions, keys = MemorySessionRepository(), MemoryApiKeyRepository()
    replay, clock = InMemoryReplayCache(), FakeClock()
    outbox, throttle, tokens = (
        MemoryOutbox(),
        MemoryLoginThrottleRepository(),
        MemoryTokenRepository(),
    )
    service = AccountsService(
        users=user_repo,
        sessions=sessions,
        api_keys=keys,
        replay_cache=replay,
        secret_box=AesGcmSecretBox([bytes(range(32))]),
        clock=clock,
        hasher=world_hasher,
        identity=user_repo,
        tokens=tokens,
        throttle=throttle,
        outbox=outbox,
        audit=AuditLog(audit, clock) if audit is not None else None,
    )
    return World(
        service, user_repo, sessions, keys, replay, clock, world_hasher, outbox, throttle, tokens
    )


@pytest.fixture
def world() -> World:
    return make_world()


# -- registration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice.Smith+tw@Example.COM ", "alice.smith+tw@example.com"),
        ("bob@mail.example.co.uk.", "bob@mail.example.co.uk"),
        ("carol@bücher.example", "carol@xn--bcher-kva.example"),
    ],
)
@pytest.mark.asyncio
async def test_register_stores_the_normalised_email(world: World, given: str, stored: str) -> None:
    user_id = await world.service.register(given, PASSWORD)
    user = await world.users.get(user_id)
    assert user is not None and user.email == stored and user.status == "active"
    assert user.created_at_ms == world.clock.now


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plain",
        "@example.com",
        "a@",
        "a@@example.com",
        "a@b@example.com",
        "a@localhost",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        "a b@example.com",
        "a@-example.com",
        "a@example-.com",
        "a@exa_mple.com",
        "a@[127.0.0.1]",
        "a@1.2.3.4",
        '"quoted"@example.com',
        "josé@example.com",
        "x" * 65 + "@example.com",
        "a@" + "b" * 64 + ".com",
        "a@" + ".".join(["b" * 60] * 5) + ".com",
        None,
        42,
    ],
)
@pytest.mark.asyncio
async def test_register_refuses_invalid_emails(world: World, email: object) -> None:
    with pytest.raises(errors.InvalidEmail) as caught:
        await world.service.register(email, PASSWORD)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_email"
    assert world.users.rows == {}


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("x" * 9, False),
        ("x" * 10, True),
        ("x" * 256, True),
        ("x" * 257, False),
        (FULLWIDTH, True),
        (None, False),
        (b"bytes-password", False),
    ],
)
@pytest.mark.asyncio
async def test_password_policy_is_10_to_256_characters(
    world: World, password: object, ok: bool
) -> None:
    if ok:
        await world.service.register("a@example.com", password)  # type: ignore[arg-type]
    else:
        with pytest.raises(errors.InvalidPassword):
            await world.service.register("a@example.com", password)  # type: ignore[arg-type]
        assert world.users.rows == {}


@pytest.mark.asyncio
async def test_nfkc_makes_equivalent_passwords_equal(world: World) -> None:
    await world.service.register("a@example.com", FULLWIDTH)
    assert await world.service.login("a@example.com", "password12")


@pytest.mark.asyncio
async def test_password_is_stored_as_argon2id_only(world: World) -> None:
    user_id = await world.service.register("a@example.com", PASSWORD)
    user = await world.users.get(user_id)
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert argon2.PasswordHasher().verify(user.password_hash, PASSWORD)


@pytest.mark.asyncio
async def test_an_email_registers_once_whatever_its_case(world: World) -> None:
    await world.service.register("a@example.com", PASSWORD)
    with pytest.raises(errors.EmailTaken) as caught:
        await world.service.register(" A@EXAMPLE.com", "another password")
    assert caught.value.code == "email_taken"
    assert len(world.users.rows) == 1


@pytest.mark.asyncio
async def test_a_lost_registration_race_is_email_taken() -> None:
    class RacingUsers(MemoryIdentityUsers):
        async def get_by_email(self, email: str) -> None:
            return None  # the check passes, the insert then finds the row

    world = make_world(users=RacingUsers())
    await world.service.register("a@example.com", PASSWORD)
    with pytest.raises(errors.EmailTaken):
        await world.service.register("a@example.com", PASSWORD)


# -- login and sessions ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_login_returns_a_token_stored_only_as_its_hash(world: World) -> None:
    user_id = await world.service.register("a@example.com", PASSWORD)
    token = await world.service.login(
        "A@example.com", PASSWORD, ip="203.0.113.9", user_agent="pytest"
    )
    assert len(token) >= 43
    (session,) = world.sessions.rows.values()
    assert session.token_hash == hashlib.sha256(token.encode()).hexdigest() == token_hash(token)
    assert token not in repr(session)
    assert (session.user_id, session.ip, session.user_agent) == (user_id, "203.0.113.9", "pytest")
    assert session.expires_at_ms == world.clock.now + AccountsConfig().session_ttl_ms
    principal = await world.service.authenticate(token)
    assert principal.user_id == user_id and principal.session_id == session.id


@pytest.mark.asyncio
async def test_each_login_gets_a_new_token(world: World) -> None:
    await world.service.register("a@example.com", PASSWORD)
    tokens = {await world.service.login("a@example.com", PASSWORD) for _ in range(3)}
    assert len(tokens) == 3


@pytest.mark.asyncio
async def test_wrong_password_and_unknown_email_look_the_same(world: World) -> None:
    await world.service.register("a@example.com", PASSWORD)
    caught = []
    for email, password in [
        ("a@example.com", "wrong password!"),
        ("nobody@example.com", PASSWORD),
        ("not an email", PASSWORD),
    ]:
        with pytest.raises(errors.InvalidCredentials) as exc:
            await world.service.login(email, password)
        caught.append((exc.value.code, exc.value.message))
    assert len(set(caught)) == 1 and caught[0][0] == "invalid_credentials"
    assert world.sessions.rows == {}


@pytest.mark.asyncio
async def test_unknown_email_costs_one_argon2_verify_like_a_known_one(world: World) -> None:
    await world.service.register("a@example.com", PASSWORD)
    world.hasher.verifications = 0
    with pytest.raises(errors.InvalidCredentials):
        await world.service.login("a@example.com", "wrong password!")
    known = world.hasher.verifications
    with pytest.raises(errors.InvalidCredentials):
        await world.service.login("nobody@example.com", "wrong password!")
    assert known == 1 and world.hasher.verifications - known == 1


@pytest.mark.asyncio
async def test_failed_sign_in_answers_before_its_audit_entry_is_written() -> None:
    """A wrong password for a real account is audited (an unknown email is not: it is
    attacker-chosen), yet both answers are the same and neither waits for the audit
    write, so the database write cannot tell which emails have accounts. The audit
    store is held shut: a login that waited for it would never return."""
    store = MemoryAuditStore()
    world = make_world(audit=store)
    user_id = await world.service.register("a@example.com", PASSWORD)
    assert world.service._audit is not None
    store.hold()
    answers = []
    for email in ("a@example.com", "nobody@example.com"):
        with pytest.raises(errors.InvalidCredentials) as exc:
            # the timeout only turns a deadlock into a failure; no duration is asserted
            await asyncio.wait_for(world.service.login(email, "wrong password!"), 30)
        answers.append((type(exc.value), exc.value.code, exc.value.message))
    assert answers[0] == answers[1]
    assert store.entries == []  # nothing written yet: the answers did not wait for it
    store.release()
    await world.service._audit.drain()
    failed = [e for e in store.entries if e.action == "security.sign_in_failed"]
    assert [(e.subject_id, e.details_dict()) for e in failed] == [(user_id, {"reason": "password"})]
    assert all("nobody@example.com" not in repr(e) for e in store.entries)


@pytest.mark.asyncio
async def test_disabled_user_cannot_log_in(world: World) -> None:
    user_id = await world.service.register("a@example.com", PASSWORD)
    world.users.set_status(user_id, "disabled")
    with pytest.raises(errors.InvalidCredentials):
        await world.service.login("a@example.com", PASSWORD)


@pytest.mark.asyncio
async def test_login_accepts_a_short_password_from_an_older_policy(world: World) -> None:
    legacy = CHEAP.hash("short")
    await world.users.add(email="old@example.com", password_hash=legacy, created_at_ms=0)
    assert await world.service.login("old@example.com", "short")
    with pytest.raises(errors.InvalidCredentials):
        await world.service.login("old@example.com", "x" * 2000)


@pytest.mark.asyncio
async def test_login_rehashes_when_the_parameters_changed() -> None:
    users = MemoryIdentityUsers()
    old = make_world(hasher=CountingHasher(time_cost=1), users=users)
    user_id = await old.service.register("a@example.com", PASSWORD)
    before = (await users.get(user_id)).password_hash  # type: ignore[union-attr]
    new = make_world(hasher=CountingHasher(time_cost=2), users=users)
    await new.service.login("a@example.com", PASSWORD)
    after = (await users.get(user_id)).password_hash  # type: ignore[union-attr]
    assert after != before and "t=2" in after
    assert await new.service.login("a@example.com", PASSWORD)


@pytest.mark.asyncio
async def test_session_expires(world: World) -> None:
    await world.service.register("a@example.com", PASSWORD)
    token = await world.service.login("a@example.com", PASSWORD)
    world.clock.advance(AccountsConfig().session_ttl_ms - 1)
    await world.service.authenticate(token)
    world.clock.advance(1)
    with pytest.raises(errors.InvalidSession) as caught:
        await world.service.authenticate(token)
    assert caught.value.code == "invalid_session"


@pytest.mark.parametrize("token", ["", "x" * 300, "not-a-token", None])
@pytest.mark.asyncio
async def test_bad_tokens_are_invalid_sessions(world: World, token: object) -> None:
    with pytest.raises(errors.InvalidSession):
        await world.service.authenticate(token)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_logout_revokes_and_is_idempotent(world: World) -> None:
    await world.service.register("a@example.com", PASSWORD)
    token = await world.service.login("a@example.com", PASSWORD)
    other = await world.service.login("a@example.com", PASSWORD)
    await world.service.logout(token)
    await world.service.logout(token)
    await world.service.logout("unknown")
    with pytest.raises(errors.InvalidSession):
        await world.service.authenticate(token)
    await world.service.authenticate(other)


@pytest.mark.asyncio
async def test_logout_everywhere_and_session_list(world: World) -> None:
    user_id = await world.service.register("a@example.com", PASSWORD)
    tokens = [await world.service.login("a@example.com", PASSWORD) for _ in range(3)]
    assert len(await world.service.list_sessions(user_id)) == 3
    assert await world.service.logout_everywhere(user_id) == 3
    assert await world.service.list_sessions(user_id) == []
    for token in tokens:
        with pytest.raises(errors.InvalidSession):
            await world.service.authenticate(token)


# -- API keys ---------------------------------------------------------------------------


async def new_user(world: World) -> int:
    return await world.verified_user("trader@example.com")


@pytest.mark.asyncio
async def test_create_api_key_shows_the_secret_once_and_stores_it_sealed(world: World) -> None:
    user_id = await new_user(world)
    key = await world.service.create_api_key(user_id, " bot ", ["trade", "read"])
    assert len(key.key_id) == 32 and len(key.secret) == 64
    int(key.key_id, 16), int(key.secret, 16)
    assert key.info.label == "bot" and key.info.permissions == {"read", "trade"}
    stored = world.keys.rows[key.key_id]
    assert key.secret.encode() not in stored.secret_sealed
    assert bytes.fromhex(key.secret) not in stored.secret_sealed
    (listed,) = await world.service.list_api_keys(user_id)
    assert listed == key.info and not hasattr(listed, "secret")


@pytest.mark.parametrize("permissions", [[], ["admin"], ["read", "admin"], "read", [1], None])
@pytest.mark.asyncio
async def test_permissions_must_be_a_non_empty_subset(world: World, permissions: object) -> None:
    user_id = await new_user(world)
    with pytest.raises(errors.InvalidPermissions):
        await world.service.create_api_key(user_id, "bot", permissions)  # type: ignore[arg-type]
    assert world.keys.rows == {}


@pytest.mark.parametrize("label", ["", "   ", "x" * 65, "tab\there", None])
@pytest.mark.asyncio
async def test_label_must_be_short_and_printable(world: World, label: object) -> None:
    user_id = await new_user(world)
    with pytest.raises(errors.InvalidLabel):
        await world.service.create_api_key(user_id, label, ["read"])  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_ip_allowlist_is_normalised(world: World) -> None:
    user_id = await new_user(world)
    key = await world.service.create_api_key(
        user_id, "bot", ["read"], ["10.1.2.3", "10.0.0.0/8", " 2001:db8::1 ", "10.1.2.3"]
    )
    assert key.info.ip_allowlist == ("10.1.2.3/32", "10.0.0.0/8", "2001:db8::1/128")
    empty = await world.service.create_api_key(user_id, "any", ["read"], [])
    assert empty.info.ip_allowlist is None


@pytest.mark.parametrize("allowlist", [["not an ip"], ["10.0.0.0/33"], "10.0.0.1", [None]])
@pytest.mark.asyncio
async def test_bad_ip_allowlists_are_refused(world: World, allowlist: object) -> None:
    user_id = await new_user(world)
    with pytest.raises(errors.InvalidIpAllowlist):
        await world.service.create_api_key(user_id, "bot", ["read"], allowlist)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_ip_allowlist_has_a_size_limit(world: World) -> None:
    user_id = await new_user(world)
    with pytest.raises(errors.InvalidIpAllowlist):
        await world.service.create_api_key(
            user_id, "bot", ["read"], [f"10.0.0.{i}" for i in range(33)]
        )


@pytest.mark.asyncio
async def test_api_keys_per_user_are_limited(world: World) -> None:
    user_id = await new_user(world)
    keys = [await world.service.create_api_key(user_id, f"k{i}", ["read"]) for i in range(30)]
    with pytest.raises(errors.TooManyApiKeys):
        await world.service.create_api_key(user_id, "one too many", ["read"])
    await world.service.revoke_api_key(user_id, keys[0].key_id)
    await world.service.create_api_key(user_id, "fits again", ["read"])


@pytest.mark.asyncio
async def test_revoke_api_key(world: World) -> None:
    user_id = await new_user(world)
    other = await world.service.register("other@example.com", PASSWORD)
    key = await world.service.create_api_key(user_id, "bot", ["read"])
    with pytest.raises(errors.ApiKeyNotFound):
        await world.service.revoke_api_key(other, key.key_id)
    await world.service.revoke_api_key(user_id, key.key_id)
    with pytest.raises(errors.ApiKeyNotFound):
        await world.service.revoke_api_key(user_id, key.key_id)
    assert await world.service.list_api_keys(user_id) == []


# -- signatures -------------------------------------------------------------------------

NOW = 1_700_000_000_000
PATH = "/api/v1/orders?symbol=BTC-USDT"
BODY = b'{"symbol":"BTC-USDT","side":"buy","type":"limit","price":"100.5","quantity":"0.1"}'


async def signed_key(
    world: World,
    permissions: tuple[str, ...] = ("read", "trade"),
    allowlist: list[str] | None = None,
) -> tuple[int, NewApiKey]:
    user_id = await new_user(world)
    key = await world.service.create_api_key(user_id, "bot", permissions, allowlist)
    return user_id, key


def test_the_signed_payload_is_timestamp_method_path_body() -> None:
    assert signature_payload(NOW, "post", PATH, BODY) == (
        b"1700000000000POST/api/v1/orders?symbol=BTC-USDT" + BODY
    )
    secret = "ab" * 32
    expected = hmac.new(secret.encode(), b"1700000000000GET/ws", hashlib.sha256).hexdigest()
    assert sign_request(secret, NOW, "GET", "/ws", b"") == expected
    assert sign_request(secret, NOW, "GET", "/ws", "") == expected


@pytest.mark.asyncio
async def test_a_correctly_signed_request_is_accepted(world: World) -> None:
    user_id, key = await signed_key(world)
    signature = sign_request(key.secret, NOW, "POST", PATH, BODY)
    principal = await world.service.verify_signature(
        key.key_id, NOW, "POST", PATH, BODY, signature, NOW + 10
    )
    assert (principal.user_id, principal.key_id) == (user_id, key.key_id)
    principal.require("trade")
    with pytest.raises(errors.PermissionDenied) as caught:
        principal.require("withdraw")
    assert caught.value.code == "permission_denied"


@pytest.mark.asyncio
async def test_upper_case_hex_and_str_body_are_accepted(world: World) -> None:
    _, key = await signed_key(world)
    signature = sign_request(key.secret, NOW, "POST", PATH, BODY).upper()
    await world.service.verify_signature(
        key.key_id, NOW, "post", PATH, BODY.decode(), signature, NOW
    )


@pytest.mark.parametrize(
    "tamper",
    ["timestamp", "method", "path", "query", "body", "secret", "truncated", "not_hex", "empty"],
)
@pytest.mark.asyncio
async def test_any_change_breaks_the_signature(world: World, tamper: str) -> None:
    _, key = await signed_key(world)
    ts, method, path, body, secret = NOW, "POST", PATH, BODY, key.secret
    signature = sign_request(secret, ts, method, path, body)
    if tamper == "timestamp":
        ts += 1
    elif tamper == "method":
        method = "PUT"
    elif tamper == "path":
        path = path.replace("/orders", "/order")
    elif tamper == "query":
        path = path.replace("BTC", "ETH")
    elif tamper == "body":
        body = body.replace(b"0.1", b"10")
    elif tamper == "secret":
        signature = sign_request("cd" * 32, ts, method, path, body)
    elif tamper == "truncated":
        signature = signature[:-2]
    elif tamper == "not_hex":
        signature = "z" * 64
    elif tamper == "empty":
        signature = ""
    with pytest.raises(errors.InvalidSignature) as caught:
        await world.service.verify_signature(key.key_id, ts, method, path, body, signature, NOW)
    assert caught.value.code == "invalid_signature"


@pytest.mark.parametrize(
    ("offset", "window", "ok"),
    [
        (0, 5000, True),
        (-5000, 5000, True),
        (-5001, 5000, False),
        (-59_000, 60_000, True),
        (1000, 5000, True),
        (1001, 5000, False),
        (-100, 100, True),
        (-101, 100, False),
    ],
)
@pytest.mark.asyncio
async def test_receive_window(world: World, offset: int, window: int, ok: bool) -> None:
    _, key = await signed_key(world)
    ts = NOW + offset
    signature = sign_request(key.secret, ts, "GET", "/api/v1/balances", b"")
    call = world.service.verify_signature(
        key.key_id, ts, "GET", "/api/v1/balances", b"", signature, NOW, window
    )
    if ok:
        await call
    else:
        with pytest.raises(errors.TimestampOutOfWindow) as caught:
            await call
        assert caught.value.code == "timestamp_out_of_window"


@pytest.mark.parametrize("window", [0, -1, 60_001])
@pytest.mark.asyncio
async def test_receive_window_is_bounded(world: World, window: int) -> None:
    _, key = await signed_key(world)
    signature = sign_request(key.secret, NOW, "GET", "/", b"")
    with pytest.raises(errors.InvalidRecvWindow):
        await world.service.verify_signature(
            key.key_id, NOW, "GET", "/", b"", signature, NOW, window
        )


@pytest.mark.parametrize("timestamp", ["1700000000000", 1.7e12, True, None])
@pytest.mark.asyncio
async def test_timestamp_must_be_an_int(world: World, timestamp: object) -> None:
    _, key = await signed_key(world)
    with pytest.raises(errors.InvalidTimestamp):
        await world.service.verify_signature(
            key.key_id,
            timestamp,  # type: ignore[arg-type]
            "GET",
            "/",
            b"",
            "00" * 32,
            NOW,
        )


@pytest.mark.asyncio
async def test_a_signature_is_accepted_once(world: World) -> None:
    _, key = await signed_key(world)
    signature = sign_request(key.secret, NOW, "POST", PATH, BODY)
    args = (key.key_id, NOW, "POST", PATH, BODY, signature)
    await world.service.verify_signature(*args, NOW)
    for later, window in [(NOW, 5000), (NOW + 4000, 5000), (NOW + 4000, 60_000)]:
        with pytest.raises(errors.ReplayedSignature) as caught:
            await world.service.verify_signature(*args, later, window)
        assert caught.value.code == "replayed_signature"
    with pytest.raises(errors.ReplayedSignature):
        await world.service.verify_signature(*args[:-1], signature.upper(), NOW + 1)
    # Once out of every possible window, the timestamp check refuses it anyway.
    with pytest.raises(errors.TimestampOutOfWindow):
        await world.service.verify_signature(*args, NOW + 60_001, 60_000)


@pytest.mark.asyncio
async def test_refused_attempts_do_not_burn_the_signature(world: World) -> None:
    _, key = await signed_key(world)
    signature = sign_request(key.secret, NOW, "POST", PATH, BODY)
    with pytest.raises(errors.InvalidSignature):
        await world.service.verify_signature(
            key.key_id, NOW, "POST", PATH, b"tampered", signature, NOW
        )
    await world.service.verify_signature(key.key_id, NOW, "POST", PATH, BODY, signature, NOW)


@pytest.mark.asyncio
async def test_remembered_signatures_expire(world: World) -> None:
    _, key = await signed_key(world)
    for i in range(5):
        ts = NOW + i * 1000
        signature = sign_request(key.secret, ts, "GET", "/", b"")
        await world.service.verify_signature(key.key_id, ts, "GET", "/", b"", signature, ts)
    assert len(world.replay) == 5
    later = NOW + 10 * 60_000
    signature = sign_request(key.secret, later, "GET", "/", b"")
    await world.service.verify_signature(key.key_id, later, "GET", "/", b"", signature, later)
    assert len(world.replay) == 1


@pytest.mark.parametrize("key_id", ["unknown", "", "x" * 65, None])
@pytest.mark.asyncio
async def test_unknown_keys_are_refused(world: World, key_id: object) -> None:
    with pytest.raises(errors.InvalidApiKey) as caught:
        await world.service.verify_signature(
            key_id,  # type: ignore[arg-type]
            NOW,
            "GET",
            "/",
            b"",
            "00" * 32,
            NOW,
        )
    assert caught.value.code == "invalid_api_key"


@pytest.mark.asyncio
async def test_revoked_keys_are_refused(world: World) -> None:
    user_id, key = await signed_key(world)
    await world.service.revoke_api_key(user_id, key.key_id)
    signature = sign_request(key.secret, NOW, "GET", "/", b"")
    with pytest.raises(errors.InvalidApiKey):
        await world.service.verify_signature(key.key_id, NOW, "GET", "/", b"", signature, NOW)


@pytest.mark.parametrize(
    ("client_ip", "ok"),
    [
        ("10.1.2.3", True),
        ("192.168.7.200", True),
        ("::ffff:10.1.2.3", True),
        ("2001:db8::5", True),
        ("10.1.2.4", False),
        ("192.168.8.1", False),
        ("garbage", False),
        (None, False),
    ],
)
@pytest.mark.asyncio
async def test_ip_allowlist_is_enforced(world: World, client_ip: str | None, ok: bool) -> None:
    allowlist = ["10.1.2.3", "192.168.7.0/24", "2001:db8::/64"]
    _, key = await signed_key(world, allowlist=allowlist)
    signature = sign_request(key.secret, NOW, "GET", "/", b"")
    call = world.service.verify_signature(
        key.key_id, NOW, "GET", "/", b"", signature, NOW, client_ip=client_ip
    )
    if ok:
        await call
    else:
        with pytest.raises(errors.IpNotAllowed):
            await call
        # The refused request did not burn the signature.
        await world.service.verify_signature(
            key.key_id, NOW, "GET", "/", b"", signature, NOW, client_ip="10.1.2.3"
        )


@pytest.mark.asyncio
async def test_a_secret_sealed_for_one_key_does_not_open_for_another(world: World) -> None:
    user_id = await new_user(world)
    first = await world.service.create_api_key(user_id, "a", ["read"])
    second = await world.service.create_api_key(user_id, "b", ["read"])
    sealed = world.keys.rows[first.key_id].secret_sealed
    world.keys.rows[second.key_id] = replace(world.keys.rows[second.key_id], secret_sealed=sealed)
    signature = sign_request(first.secret, NOW, "GET", "/", b"")
    with pytest.raises(Exception, match="authentication"):
        await world.service.verify_signature(second.key_id, NOW, "GET", "/", b"", signature, NOW)


# -- error codes and layering -----------------------------------------------------------


def test_error_codes_are_unique_and_stable() -> None:
    # Every module defining service errors is imported, so the set does not depend on
    # which other tests ran first in this process.
    importlib.import_module("tradewind.services.trading")
    classes = errors.ServiceError.__subclasses__()
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    assert {
        "email_taken",
        "invalid_credentials",
        "invalid_signature",
        "timestamp_out_of_window",
        "replayed_signature",
        "permission_denied",
    } <= set(codes)
    for cls in classes:
        if any(
            p.default is inspect.Parameter.empty and p.name != "self"
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.kind is p.POSITIONAL_OR_KEYWORD
        ):
            assert cls.default_message, cls.code  # built with data, e.g. RateLimited
        else:
            err = cls()
            assert err.message and str(err) == err.message
        # Only SERVER_SIDE codes are the server's side; every other error is the caller's.
        assert 400 <= cls.status_hint < 500 or cls.code in SERVER_SIDE, cls.code


def test_normalise_email_is_idempotent() -> None:
    once = normalise_email(" Mixed.Case@Example.ORG ")
    assert normalise_email(once) == once == "mixed.case@example.org"


def test_services_do_not_import_sqlalchemy() -> None:
    code = (
        "import sys, tradewind.services.accounts, tradewind.services.ports; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sqlalchemy', 'alembic', 'asyncpg', 'aiosqlite', 'tradewind'} "
        "and not m.startswith(('tradewind.services', 'tradewind.__init__')) and m != 'tradewind'); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
