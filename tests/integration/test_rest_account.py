"""Account routes over HTTP (embedded exchange): lockouts answer 429 with Retry-After,
security routes refuse API keys, one user's session id means nothing to another, and
the demo outbox page exists only in demo mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.mail import last_mail, token_in, verify_email
from tradewind.runtime.bootstrap import build_embedded
from tradewind.runtime.config import load_settings
from tradewind.services.login_throttle import ACCOUNT_POLICY

PASSWORD = "correct horse battery staple"


def client_for(data_dir: Path, **overrides: object) -> TestClient:
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": data_dir,
            "demo": True,
            "demo_bot": False,
            "rate_limits": "off",
            **overrides,
        },
    )
    return TestClient(build_embedded(settings).app)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with client_for(tmp_path_factory.mktemp("account")) as c:
        yield c


def login(client: TestClient, email: str, **extra: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD, **extra})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def member(client: TestClient, email: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    verify_email(client, email)
    return login(client, email)


def test_lockout_is_429_with_retry_after(client: TestClient) -> None:
    member(client, "locked@example.com")
    for _ in range(ACCOUNT_POLICY.free + 1):
        r = client.post(
            "/api/v1/auth/login", json={"email": "locked@example.com", "password": "nope nope"}
        )
        assert (r.status_code, r.json()["code"]) == (401, "invalid_credentials")
    r = client.post(
        "/api/v1/auth/login", json={"email": "locked@example.com", "password": PASSWORD}
    )
    assert (r.status_code, r.json()["code"]) == (429, "login_locked")
    assert r.headers["Retry-After"] == str(r.json()["retry_after"])
    assert f"try again in {r.json()['retry_after']} seconds" in r.json()["message"]


def test_unknown_email_and_wrong_password_answer_the_same(client: TestClient) -> None:
    member(client, "known@example.com")
    answers = [
        client.post("/api/v1/auth/login", json={"email": e, "password": "wrong password"}).json()
        for e in ("known@example.com", "unknown@example.com")
    ]
    assert (
        answers[0]
        == answers[1]
        == {
            "code": "invalid_credentials",
            "message": "email or password is wrong",
        }
    )
    for email in ("known@example.com", "unknown@example.com"):
        r = client.post("/api/v1/auth/password-reset", json={"email": email})
        assert r.status_code == 202 and r.json()["status"].startswith("if the address")


def test_security_routes_refuse_api_keys(client: TestClient) -> None:
    bearer = member(client, "keys@example.com")
    key = client.post(
        "/api/v1/api-keys", json={"label": "k", "permissions": ["read"]}, headers=bearer
    ).json()
    from tests.integration.test_rest_api import User

    user = User(client, 0, "", key["key_id"], key["secret"])
    for method, path in [
        ("GET", "/api/v1/account"),
        ("GET", "/api/v1/sessions"),
        ("POST", "/api/v1/account/2fa/setup"),
    ]:
        r = user.signed(method, path)
        assert (r.status_code, r.json()["code"]) == (403, "session_required"), path


def test_sessions_of_another_user_are_not_found(client: TestClient) -> None:
    alice = member(client, "alice@example.com")
    mallory = member(client, "mallory@example.com")
    (mine,) = client.get("/api/v1/sessions", headers=alice).json()
    assert mine["current"] and mine["device"] == "testclient"
    r = client.delete(f"/api/v1/sessions/{mine['id']}", headers=mallory)
    assert (r.status_code, r.json()["code"]) == (404, "session_not_found")
    assert client.get("/api/v1/account", headers=alice).status_code == 200
    r = client.delete(f"/api/v1/sessions/{mine['id']}", headers=alice)
    assert r.status_code == 204
    r = client.get("/api/v1/account", headers=alice)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_session")


def test_password_change_signs_out_other_devices(client: TestClient) -> None:
    here = member(client, "mover@example.com")
    there = login(client, "mover@example.com")
    r = client.post(
        "/api/v1/account/password",
        json={"current_password": PASSWORD, "new_password": "another long password"},
        headers=here,
    )
    assert r.status_code == 200 and r.json() == {"revoked_sessions": 1}
    assert client.get("/api/v1/account", headers=there).status_code == 401
    assert client.get("/api/v1/account", headers=here).json()["email"] == "mover@example.com"
    mail = last_mail(client, "mover@example.com", "security_notice")
    assert "password changed" in mail["subject"]


def test_reset_token_reuse_is_refused(client: TestClient) -> None:
    member(client, "forgot@example.com")
    client.post("/api/v1/auth/password-reset", json={"email": "forgot@example.com"})
    token = token_in(last_mail(client, "forgot@example.com", "password_reset")["body"])
    body = {"token": token, "new_password": "a fresh long password"}
    assert client.post("/api/v1/auth/password-reset/confirm", json=body).status_code == 204
    r = client.post("/api/v1/auth/password-reset/confirm", json=body)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_token")


def test_dev_mail_exists_only_in_demo_mode(tmp_path: Path) -> None:
    with client_for(tmp_path, demo=False) as c:
        assert c.get("/dev/mail").status_code == 404
        assert c.get("/dev/mail/messages").status_code == 404
