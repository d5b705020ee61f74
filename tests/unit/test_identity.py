"""Identity features of the accounts service, played as an attacker would, against
in-memory fakes: TOTP replay and drift, recovery codes, credential stuffing and
lockouts, user enumeration, email-token forgery/reuse/expiry, sessions and IDOR."""

from __future__ import annotations

import argon2
import pyotp
import pytest

from tests.support.mail import token_in
from tests.unit.test_accounts import PASSWORD, CountingHasher, World, make_world
from tradewind.services import errors, totp
from tradewind.services.identity_errors import (
    EmailNotVerified,
    InvalidAntiPhishingCode,
    InvalidToken,
    InvalidTotp,
    LoginLocked,
    SessionNotFound,
    TotpRequired,
    TotpSetupMissing,
    WrongPassword,
)
from tradewind.services.login_throttle import ACCOUNT_POLICY, ADDRESS_POLICY

EMAIL = "victim@example.com"


@pytest.fixture
def world() -> World:
    return make_world()


async def with_2fa(world: World, email: str = EMAIL) -> tuple[int, pyotp.TOTP, list[str]]:
    user_id = await world.verified_user(email)
    setup = await world.service.totp_setup(user_id)
    app = pyotp.TOTP(setup.secret)  # what Google Authenticator or Authy computes
    codes = await world.service.totp_enable(user_id, app.at(world.clock.now // 1000))
    world.clock.advance(30_000)  # the enabling code is spent; move to a fresh step
    return user_id, app, codes


def now_code(world: World, app: pyotp.TOTP, steps: int = 0) -> str:
    return str(app.at(world.clock.now // 1000 + 30 * steps))


# -- TOTP ---------------------------------------------------------------------------


def test_totp_matches_the_rfc_6238_sha1_vectors() -> None:
    # RFC 6238 appendix B, SHA-1 secret "12345678901234567890", last 6 digits
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    for t, code in [(59, "287082"), (1111111109, "081804"), (1234567890, "005924")]:
        assert totp.code_at(secret, t // 30) == code
        assert totp.match_step(secret, code, t * 1000) == t // 30


@pytest.mark.asyncio
async def test_setup_gives_secret_uri_and_svg_and_enable_needs_a_valid_code(
    world: World,
) -> None:
    user_id = await world.verified_user(EMAIL)
    with pytest.raises(TotpSetupMissing):
        await world.service.totp_enable(user_id, "123456")
    setup = await world.service.totp_setup(user_id)
    assert setup.otpauth_uri.startswith("otpauth://totp/Tradewind:")
    assert f"secret={setup.secret}" in setup.otpauth_uri and "issuer=Tradewind" in setup.otpauth_uri
    assert setup.qr_svg.startswith("<svg") and setup.qr_svg.rstrip().endswith("</svg>")
    with pytest.raises(InvalidTotp):
        await world.service.totp_enable(user_id, "000000")
    assert not (await world.service.account(user_id)).totp_enabled
    app = pyotp.TOTP(setup.secret)
    codes = await world.service.totp_enable(user_id, app.at(world.clock.now // 1000))
    assert len(codes) == 10 and len(set(codes)) == 10
    info = await world.service.account(user_id)
    assert info.totp_enabled and info.recovery_codes_left == 10
    stored = world.users.extra[user_id]
    assert setup.secret.encode() not in (stored.totp_secret_sealed or b"")
    assert all(c.replace("-", "") not in str(world.users.recovery) for c in codes)


@pytest.mark.asyncio
async def test_login_needs_the_code_once_2fa_is_on(world: World) -> None:
    _, app, _ = await with_2fa(world)
    with pytest.raises(TotpRequired):
        await world.service.login(EMAIL, PASSWORD)
    with pytest.raises(InvalidTotp):
        await world.service.login(EMAIL, PASSWORD, totp="000000")
    assert await world.service.login(EMAIL, PASSWORD, totp=now_code(world, app))


@pytest.mark.asyncio
async def test_a_totp_code_is_accepted_once(world: World) -> None:
    _, app, _ = await with_2fa(world)
    code = now_code(world, app)
    await world.service.login(EMAIL, PASSWORD, totp=code)
    with pytest.raises(InvalidTotp):  # replayed by someone who saw it
        await world.service.login(EMAIL, PASSWORD, totp=code)
    # and an older code is refused once a newer one was used
    world.clock.advance(30_000)
    await world.service.login(EMAIL, PASSWORD, totp=now_code(world, app))
    with pytest.raises(InvalidTotp):
        await world.service.login(EMAIL, PASSWORD, totp=now_code(world, app, -1))


@pytest.mark.parametrize(("steps", "ok"), [(-2, False), (-1, True), (1, True), (2, False)])
@pytest.mark.asyncio
async def test_one_step_of_drift_either_way(world: World, steps: int, ok: bool) -> None:
    user_id, app, _ = await with_2fa(world)
    world.clock.advance(120_000)
    code = now_code(world, app, steps)
    if ok:
        await world.service.require_second_factor(user_id, code)
    else:
        with pytest.raises(InvalidTotp):
            await world.service.require_second_factor(user_id, code)


@pytest.mark.asyncio
async def test_recovery_codes_are_single_use_and_tell_the_user(world: World) -> None:
    user_id, _, codes = await with_2fa(world)
    await world.service.login(EMAIL, PASSWORD, totp=codes[0].upper())
    with pytest.raises(InvalidTotp):
        await world.service.login(EMAIL, PASSWORD, totp=codes[0])
    assert (await world.service.account(user_id)).recovery_codes_left == 9
    assert "9 are left" in world.outbox.last(EMAIL, "security_notice").body


@pytest.mark.asyncio
async def test_wrong_codes_lock_the_second_factor(world: World) -> None:
    user_id, app, _ = await with_2fa(world)
    for _ in range(5):
        with pytest.raises(InvalidTotp):
            await world.service.require_second_factor(user_id, "000000")
    with pytest.raises(InvalidTotp):
        await world.service.require_second_factor(user_id, "000001")
    with pytest.raises(LoginLocked):  # even the right code waits out the lock
        await world.service.require_second_factor(user_id, now_code(world, app))
    world.clock.advance(ACCOUNT_POLICY.base_lock_ms)
    await world.service.require_second_factor(user_id, now_code(world, app))


@pytest.mark.asyncio
async def test_2fa_guards_api_keys_and_security_settings(world: World) -> None:
    user_id, app, _ = await with_2fa(world)
    with pytest.raises(TotpRequired):
        await world.service.create_api_key(user_id, "bot", ["read"])
    with pytest.raises(TotpRequired):
        await world.service.set_anti_phishing_code(user_id, "blue-owl")
    with pytest.raises(TotpRequired):
        await world.service.change_password(user_id, 1, PASSWORD, "a new long password")
    with pytest.raises(TotpRequired):
        await world.service.request_email_change(user_id, "new@example.com", PASSWORD)
    with pytest.raises(TotpRequired):
        await world.service.totp_disable(user_id, None)
    await world.service.create_api_key(user_id, "bot", ["read"], totp=now_code(world, app))
    assert "API key created" in world.outbox.last(EMAIL, "security_notice").subject


@pytest.mark.asyncio
async def test_disable_needs_a_code_and_removes_the_recovery_codes(world: World) -> None:
    user_id, app, codes = await with_2fa(world)
    await world.service.totp_disable(user_id, now_code(world, app))
    info = await world.service.account(user_id)
    assert not info.totp_enabled and info.recovery_codes_left == 0
    assert await world.service.login(EMAIL, PASSWORD)
    await world.service.totp_setup(user_id)
    with pytest.raises(InvalidTotp):  # an old recovery code does not enable the new secret
        await world.service.totp_enable(user_id, codes[1])


# -- brute force and enumeration -------------------------------------------------------


@pytest.mark.asyncio
async def test_credential_stuffing_one_account_locks_it_with_growing_lockouts(
    world: World,
) -> None:
    await world.verified_user(EMAIL)
    for i in range(ACCOUNT_POLICY.free + 1):
        with pytest.raises(errors.InvalidCredentials):
            await world.service.login(EMAIL, f"guess number {i}", ip=f"10.0.0.{i}")
    verifications = world.hasher.verifications
    with pytest.raises(LoginLocked) as locked:
        await world.service.login(EMAIL, PASSWORD, ip="10.0.1.1")  # right password, still locked
    assert locked.value.retry_after_s == ACCOUNT_POLICY.base_lock_ms // 1000
    assert f"try again in {locked.value.retry_after_s} seconds" in locked.value.message
    assert world.hasher.verifications == verifications  # no argon2 work while locked
    world.clock.advance(ACCOUNT_POLICY.base_lock_ms)
    with pytest.raises(errors.InvalidCredentials):
        await world.service.login(EMAIL, "one more guess", ip="10.0.1.2")
    with pytest.raises(LoginLocked) as longer:
        await world.service.login(EMAIL, PASSWORD)
    assert longer.value.retry_after_s == 2 * locked.value.retry_after_s
    world.clock.advance(2 * ACCOUNT_POLICY.base_lock_ms)
    assert await world.service.login(EMAIL, PASSWORD)  # success clears the account counter
    with pytest.raises(errors.InvalidCredentials):
        await world.service.login(EMAIL, "a single slip")


@pytest.mark.asyncio
async def test_credential_stuffing_across_accounts_locks_the_address(world: World) -> None:
    await world.verified_user(EMAIL)
    for i in range(ADDRESS_POLICY.free + 1):
        with pytest.raises(errors.InvalidCredentials):
            await world.service.login(f"user{i}@example.com", "leaked password 1", ip="203.0.113.9")
    with pytest.raises(LoginLocked):
        await world.service.login(EMAIL, PASSWORD, ip="203.0.113.9")
    assert await world.service.login(EMAIL, PASSWORD, ip="198.51.100.1")


@pytest.mark.asyncio
async def test_unknown_and_known_emails_lock_alike(world: World) -> None:
    """A lockout must not tell an attacker which emails have accounts."""
    await world.verified_user(EMAIL)
    outcomes = []
    for email in (EMAIL, "nobody@example.com"):
        for _ in range(ACCOUNT_POLICY.free + 1):
            with pytest.raises(errors.InvalidCredentials) as wrong:
                await world.service.login(email, "wrong password!")
        with pytest.raises(LoginLocked) as locked:
            await world.service.login(email, "wrong password!")
        outcomes.append((wrong.value.message, locked.value.message))
    assert outcomes[0] == outcomes[1]


@pytest.mark.asyncio
async def test_reset_request_answers_alike_and_sends_only_to_real_accounts(world: World) -> None:
    await world.verified_user(EMAIL)
    sent = len(world.outbox.mails)
    assert await world.service.request_password_reset("nobody@example.com") is None
    assert await world.service.request_password_reset("not an email") is None
    assert len(world.outbox.mails) == sent
    assert await world.service.request_password_reset(EMAIL.upper()) is None
    assert world.outbox.last(EMAIL).kind == "password_reset"


# -- email tokens ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_unverified_accounts_cannot_create_api_keys(world: World) -> None:
    user_id = await world.service.register(EMAIL, PASSWORD)
    with pytest.raises(EmailNotVerified):
        await world.service.create_api_key(user_id, "bot", ["read"])
    principal = await world.service.authenticate(await world.service.login(EMAIL, PASSWORD))
    assert not principal.email_verified


@pytest.mark.asyncio
async def test_verification_tokens_are_single_use_and_newest_only(world: World) -> None:
    user_id = await world.service.register(EMAIL, PASSWORD)
    first = token_in(world.outbox.last(EMAIL).body)
    assert await world.service.resend_verification(user_id)
    second = token_in(world.outbox.last(EMAIL).body)
    with pytest.raises(InvalidToken):  # superseded
        await world.service.verify_email(first)
    assert await world.service.verify_email(second) == user_id
    with pytest.raises(InvalidToken):  # reused
        await world.service.verify_email(second)
    assert not await world.service.resend_verification(user_id)


@pytest.mark.asyncio
async def test_expired_forged_and_cross_purpose_tokens_are_refused(world: World) -> None:
    user_id = await world.verified_user(EMAIL)
    await world.service.request_password_reset(EMAIL)
    reset = token_in(world.outbox.last(EMAIL, "password_reset").body)
    with pytest.raises(InvalidToken):  # a reset token is no verification token
        await world.service.verify_email(reset)
    flipped = reset[:-3] + ("A" if reset[-3] != "A" else "B") + reset[-2:]
    for bad in (flipped, "", "x" * 2000, "not-base64!", reset + "AAAA"):
        with pytest.raises(InvalidToken):
            await world.service.confirm_password_reset(bad, "a new long password")
    world.clock.advance(30 * 60 * 1000)
    with pytest.raises(InvalidToken):
        await world.service.confirm_password_reset(reset, "a new long password")
    assert (await world.users.get(user_id)) is not None


@pytest.mark.asyncio
async def test_password_reset_signs_out_everywhere_and_is_single_use(world: World) -> None:
    user_id = await world.verified_user(EMAIL)
    token = await world.service.login(EMAIL, PASSWORD)
    await world.service.request_password_reset(EMAIL)
    reset = token_in(world.outbox.last(EMAIL, "password_reset").body)
    with pytest.raises(errors.InvalidPassword):  # a bad password does not spend the token
        await world.service.confirm_password_reset(reset, "short")
    await world.service.confirm_password_reset(reset, "a brand new password")
    with pytest.raises(errors.InvalidSession):
        await world.service.authenticate(token)
    with pytest.raises(InvalidToken):
        await world.service.confirm_password_reset(reset, "yet another password")
    assert await world.service.login(EMAIL, "a brand new password")
    assert user_id


@pytest.mark.asyncio
async def test_reset_with_2fa_needs_the_code(world: World) -> None:
    _, app, _ = await with_2fa(world)
    await world.service.request_password_reset(EMAIL)
    reset = token_in(world.outbox.last(EMAIL, "password_reset").body)
    with pytest.raises(TotpRequired):
        await world.service.confirm_password_reset(reset, "a brand new password")
    await world.service.confirm_password_reset(
        reset, "a brand new password", totp=now_code(world, app)
    )


@pytest.mark.asyncio
async def test_email_change_happens_only_when_the_new_address_confirms(world: World) -> None:
    user_id = await world.verified_user(EMAIL)
    with pytest.raises(WrongPassword):
        await world.service.request_email_change(user_id, "new@example.com", "not my password")
    await world.service.request_email_change(user_id, "New@Example.com", PASSWORD)
    assert (await world.service.account(user_id)).email == EMAIL
    assert "new@example.com" in world.outbox.last(EMAIL, "security_notice").body
    await world.service.verify_email(token_in(world.outbox.last("new@example.com").body))
    info = await world.service.account(user_id)
    assert info.email == "new@example.com" and info.email_verified
    assert world.outbox.last(EMAIL).subject.endswith("email address changed")
    assert await world.service.login("new@example.com", PASSWORD)


# -- anti-phishing code ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_every_email_carries_the_anti_phishing_code(world: World) -> None:
    user_id = await world.verified_user(EMAIL)
    for bad in ("abc", "x" * 21, "no spaces", "<script>", "ünïcode"):
        with pytest.raises(InvalidAntiPhishingCode):
            await world.service.set_anti_phishing_code(user_id, bad)
    await world.service.set_anti_phishing_code(user_id, "Blue-Owl_42")
    first = len(world.outbox.mails)
    await world.service.login(EMAIL, PASSWORD, ip="1.2.3.4", user_agent="first")
    await world.service.login(EMAIL, PASSWORD, ip="5.6.7.8", user_agent="elsewhere")
    await world.service.request_password_reset(EMAIL)
    await world.service.resend_verification(user_id)
    later = world.outbox.mails[first - 1 :]
    assert {m.kind for m in later} >= {"security_notice", "password_reset"}
    for mail in later:
        assert mail.body.startswith("Anti-phishing code: Blue-Owl_42\n"), mail.body
    unset = make_world()
    await unset.service.register(EMAIL, PASSWORD)
    assert unset.outbox.mails[0].body.startswith("Anti-phishing code: (not set)")


@pytest.mark.asyncio
async def test_new_device_notice_only_for_an_unseen_device(world: World) -> None:
    await world.verified_user(EMAIL)
    await world.service.login(EMAIL, PASSWORD, ip="1.2.3.4", user_agent="phone")
    mails = len(world.outbox.mails)
    await world.service.login(EMAIL, PASSWORD, ip="1.2.3.4", user_agent="phone")
    assert len(world.outbox.mails) == mails
    await world.service.login(EMAIL, PASSWORD, ip="9.9.9.9", user_agent="phone")
    notice = world.outbox.last(EMAIL)
    assert notice.subject.endswith("new sign-in") and "9.9.9.9" in notice.body


# -- sessions ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_sessions_list_and_revoke_only_ones_own(world: World) -> None:
    alice = await world.verified_user(EMAIL)
    mallory = await world.verified_user("mallory@example.com")
    a1 = await world.service.login(EMAIL, PASSWORD, ip="1.1.1.1", user_agent="laptop")
    world.clock.advance(120_000)
    a2 = await world.service.login(EMAIL, PASSWORD, ip="2.2.2.2", user_agent="phone")
    m1 = await world.service.login("mallory@example.com", PASSWORD)
    world.clock.advance(120_000)
    s1 = await world.service.authenticate(a1)  # touches "last seen"
    listed = await world.service.list_sessions(alice)
    assert [(s.ip, s.user_agent) for s in listed] == [("2.2.2.2", "phone"), ("1.1.1.1", "laptop")]
    assert listed[1].last_seen_at_ms == world.clock.now > listed[0].last_seen_at_ms
    with pytest.raises(SessionNotFound):  # IDOR: Mallory cannot sign Alice out
        await world.service.revoke_session(mallory, s1.session_id)
    assert await world.service.authenticate(a1)
    await world.service.revoke_session(alice, s1.session_id)
    with pytest.raises(errors.InvalidSession):
        await world.service.authenticate(a1)
    with pytest.raises(SessionNotFound):
        await world.service.revoke_session(alice, s1.session_id)
    assert await world.service.authenticate(a2) and await world.service.authenticate(m1)


@pytest.mark.asyncio
async def test_password_change_revokes_the_other_sessions(world: World) -> None:
    user_id = await world.verified_user(EMAIL)
    here = await world.service.authenticate(await world.service.login(EMAIL, PASSWORD))
    there = await world.service.login(EMAIL, PASSWORD, ip="8.8.8.8")
    with pytest.raises(WrongPassword):
        await world.service.change_password(user_id, here.session_id, "wrong", "a new password!")
    revoked = await world.service.change_password(
        user_id, here.session_id, PASSWORD, "a new password!"
    )
    assert revoked == 1
    with pytest.raises(errors.InvalidSession):
        await world.service.authenticate(there)
    assert [s.id for s in await world.service.list_sessions(user_id)] == [here.session_id]
    assert await world.service.login(EMAIL, "a new password!")


@pytest.mark.asyncio
async def test_argon2_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import threading

    world = make_world(hasher=CountingHasher())
    await world.verified_user(EMAIL)
    threads: list[str] = []
    verify = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        threads.append(threading.current_thread().name)
        return verify(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    main = threading.current_thread().name
    await world.service.login(EMAIL, PASSWORD)
    with pytest.raises(errors.InvalidCredentials):
        await world.service.login("nobody@example.com", PASSWORD)
    assert threads and main not in threads
    assert asyncio.get_running_loop()
