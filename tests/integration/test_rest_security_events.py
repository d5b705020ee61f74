"""A user's own security activity (``GET /api/v1/account/security-events``).

After a notice email a user checks what happened: the sign-ins with their address, API
keys created and revoked, and only their own entries (never another user's, never a
staff action), newest first, with a cursor that pages without repeats.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_rest_api import PASSWORD, Api, make_exchange


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    exchange = make_exchange(tmp_path_factory.mktemp("security-events"))
    with TestClient(exchange.app) as client:
        yield Api(client, exchange)


def events(api: Api, token: str, query: str = "") -> dict[str, object]:
    r = api.client.get(
        f"/api/v1/account/security-events{query}", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_a_user_sees_their_sign_ins_and_key_changes_newest_first(api: Api) -> None:
    alice = api.user()
    bob = api.user()
    r = api.client.delete(f"/api/v1/api-keys/{alice.key_id}", headers=alice.bearer)
    assert r.status_code in (200, 204), r.text
    items = events(api, alice.token)["items"]
    assert isinstance(items, list)
    names = [i["event"] for i in items]
    assert names[0] == "api_key_revoked" and items[0]["details"] == {"key": alice.key_id}
    assert "signed_in" in names and any(n.startswith("api_key_created") for n in names)
    signed_in = next(i for i in items if i["event"] == "signed_in")
    assert signed_in["ip"] == "testclient" and signed_in["kind"] == "security"
    seqs = [i["seq"] for i in items]
    assert seqs == sorted(seqs, reverse=True)
    # nothing of bob's
    bob_items = events(api, bob.token)["items"]
    assert isinstance(bob_items, list)
    assert not {i["seq"] for i in bob_items} & set(seqs)


def test_pages_follow_the_cursor_without_repeats(api: Api) -> None:
    carol = api.user()
    email = api.client.get("/api/v1/account", headers=carol.bearer).json()["email"]
    for _ in range(3):  # three more sign-ins
        r = api.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200
    everything = events(api, carol.token)["items"]
    assert isinstance(everything, list) and len(everything) >= 5
    seen: list[int] = []
    cursor = ""
    while True:
        page = events(api, carol.token, f"?limit=2{cursor}")
        items = page["items"]
        assert isinstance(items, list) and len(items) <= 2
        seen += [i["seq"] for i in items]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == [i["seq"] for i in everything]


def test_refusals(api: Api) -> None:
    dave = api.user()
    r = api.client.get("/api/v1/account/security-events")
    assert r.status_code == 401
    for query, code in (("?cursor=abc", "invalid_cursor"), ("?limit=0", "invalid_request")):
        r = api.client.get(f"/api/v1/account/security-events{query}", headers=dave.bearer)
        assert r.status_code in (400, 422) and r.json()["code"] == code, r.text
    # API keys do not read it: the page is for the signed-in person
    r = dave.signed("GET", "/api/v1/account/security-events")
    assert r.status_code in (401, 403), r.text
