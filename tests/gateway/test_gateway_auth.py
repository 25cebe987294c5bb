"""Login sessions, CSRF, API tokens, throttling and members."""

from __future__ import annotations

import httpx
from gateway_support import Seed, bearer, csrf_headers, login
from sqlalchemy import select

from gmv_common.db.models import AuditLogEntry, UserSession
from gmv_common.runtime import Runtime


async def test_login_sets_http_only_session_and_readable_csrf_cookie(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    tenant = await seed.tenant()

    response = await login(client, tenant.member.email)

    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == tenant.member.email
    assert body["workspaces"] == [
        {"workspace_id": tenant.id, "workspace_name": "Agency", "role": "member"}
    ]
    cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("gmv_session="))
    csrf_cookie = next(c for c in cookies if c.startswith("gmv_csrf="))
    assert "HttpOnly" in session_cookie
    assert "HttpOnly" not in csrf_cookie
    assert client.cookies["gmv_csrf"] == body["csrf_token"]
    async with runtime.sessionmaker() as session:
        stored = (await session.scalars(select(UserSession))).all()
    raw_id = client.cookies["gmv_session"]
    assert all(raw_id not in row.session_hash for row in stored)


async def test_me_answers_with_the_session_cookie(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant = await seed.tenant()
    await login(client, tenant.owner.email)

    response = await client.get("/api/v1/auth/me")

    assert response.status_code == 200
    assert response.json()["auth_method"] == "session"


async def test_me_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/auth/me")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_wrong_password_is_401_and_audited(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    user = await seed.user()

    response = await login(client, user.email, "wrong password")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "INVALID_CREDENTIALS"
    async with runtime.sessionmaker() as session:
        actions = (await session.scalars(select(AuditLogEntry.action))).all()
    assert "auth.login_failed" in actions


async def test_repeated_failures_throttle_login_with_retry_after(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    user = await seed.user()
    for _ in range(5):
        await login(client, user.email, "wrong password")

    response = await login(client, user.email)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "LOGIN_THROTTLED"
    assert int(response.headers["retry-after"]) > 0


async def test_logout_revokes_the_session_on_the_server(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    user = await seed.user()
    await login(client, user.email)
    stolen_cookie = client.cookies["gmv_session"]

    response = await client.post("/api/v1/auth/logout", headers=csrf_headers(client))
    client.cookies.set("gmv_session", stolen_cookie)
    replay = await client.get("/api/v1/auth/me")

    assert response.status_code == 204
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "SESSION_EXPIRED"


async def test_cookie_write_without_csrf_token_is_403(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    user = await seed.user()
    await login(client, user.email)

    missing = await client.post("/api/v1/auth/tokens", json={"name": "ci"})
    wrong = await client.post(
        "/api/v1/auth/tokens", json={"name": "ci"}, headers={"X-CSRF-Token": "nope"}
    )
    right = await client.post(
        "/api/v1/auth/tokens", json={"name": "ci"}, headers=csrf_headers(client)
    )

    assert missing.status_code == 403
    assert missing.json()["error"]["code"] == "CSRF_FAILED"
    assert wrong.status_code == 403
    assert right.status_code == 201


async def test_tampered_session_cookie_is_401(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    user = await seed.user()
    await login(client, user.email)
    tampered = client.cookies["gmv_session"][:-2] + "xx"

    client.cookies.set("gmv_session", tampered)
    response = await client.get("/api/v1/auth/me")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "SESSION_INVALID"


async def test_api_token_is_shown_once_listed_and_revocable(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    user = await seed.user()
    first = await seed.token(user=user)

    created = await client.post(
        "/api/v1/auth/tokens", json={"name": "deploy"}, headers=bearer(first)
    )
    plaintext = created.json()["token"]
    listed = await client.get("/api/v1/auth/tokens", headers=bearer(plaintext))
    revoked = await client.delete(
        f"/api/v1/auth/tokens/{created.json()['id']}", headers=bearer(first)
    )
    after = await client.get("/api/v1/auth/me", headers=bearer(plaintext))

    assert created.status_code == 201
    assert plaintext.startswith("gmv_")
    assert all("token" not in item for item in listed.json()["items"])
    assert [item["name"] for item in listed.json()["items"]] == ["test", "deploy"]
    assert revoked.status_code == 204
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "TOKEN_INVALID"


async def test_bearer_writes_need_no_csrf_token(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    user = await seed.user()
    token = await seed.token(user=user)

    response = await client.post(
        "/api/v1/auth/tokens", json={"name": "x"}, headers=bearer(token)
    )

    assert response.status_code == 201


async def test_revoking_another_users_token_is_404(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    alice = await seed.user()
    bob = await seed.user()
    alice_token = await seed.token(user=alice)
    bob_token = await seed.token(user=bob)
    bob_tokens = await client.get("/api/v1/auth/tokens", headers=bearer(bob_token))

    response = await client.delete(
        f"/api/v1/auth/tokens/{bob_tokens.json()['items'][0]['id']}",
        headers=bearer(alice_token),
    )

    assert response.status_code == 404


async def test_malformed_authorization_header_is_401(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/api/v1/auth/me", headers={"Authorization": "Basic Zm9vOmJhcg=="}
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "TOKEN_INVALID"


async def test_owner_adds_changes_and_removes_members(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant = await seed.tenant()
    newcomer = await seed.user()
    path = f"/api/v1/tenants/{tenant.id}/members"

    added = await client.post(
        path,
        json={"email": newcomer.email, "role": "admin"},
        headers=bearer(tenant.owner_token),
    )
    listed = await client.get(path, headers=bearer(tenant.member_token))
    removed = await client.delete(
        f"{path}/{newcomer.id}", headers=bearer(tenant.owner_token)
    )

    assert added.status_code == 201
    assert added.json()["role"] == "admin"
    assert newcomer.email in [item["email"] for item in listed.json()["items"]]
    assert removed.status_code == 204


async def test_admin_cannot_manage_members(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant = await seed.tenant()

    response = await client.post(
        f"/api/v1/tenants/{tenant.id}/members",
        json={"email": tenant.member.email, "role": "owner"},
        headers=bearer(tenant.admin_token),
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


async def test_last_owner_cannot_be_removed(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant = await seed.tenant()

    response = await client.delete(
        f"/api/v1/tenants/{tenant.id}/members/{tenant.owner.id}",
        headers=bearer(tenant.owner_token),
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "LAST_OWNER_REQUIRED"


async def test_non_member_sees_the_workspace_as_missing(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant = await seed.tenant()
    outsider = await seed.user()
    token = await seed.token(user=outsider)

    existing = await client.get(
        f"/api/v1/tenants/{tenant.id}/members", headers=bearer(token)
    )
    missing = await client.get("/api/v1/tenants/999999/members", headers=bearer(token))

    assert existing.status_code == missing.status_code == 404
    assert existing.json() == missing.json()
