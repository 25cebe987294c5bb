"""Workspaces over HTTP: create one (the caller owns it), list one's own, rename (owner)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from gateway_support import API_BASE, Seed, bearer, csrf_headers, login
from sqlalchemy import select

from gmv_common.db.models import AuditLogEntry, Membership, Workspace
from gmv_common.runtime import Runtime

WORKSPACES = "/api/v1/workspaces"


async def _audit(runtime: Runtime, action: str) -> list[AuditLogEntry]:
    async with runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditLogEntry).where(AuditLogEntry.action == action)
        )
        return list(rows.all())


async def test_any_user_creates_a_workspace_and_owns_it(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    user = await seed.user()
    token = await seed.token(user=user)

    response = await client.post(
        WORKSPACES, json={"name": "  North Agency  "}, headers=bearer(token)
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "role", "created_at"}
    assert body["name"] == "North Agency"
    assert body["role"] == "owner"
    async with runtime.sessionmaker() as session:
        membership = await session.scalar(
            select(Membership).where(Membership.workspace_id == body["id"])
        )
    assert membership is not None
    assert (membership.user_id, membership.role) == (user.id, "owner")
    created = await _audit(runtime, "workspace.created")
    assert [(row.workspace_id, row.actor_user_id) for row in created] == [
        (body["id"], user.id)
    ]
    members = await client.get(
        f"{API_BASE}/{body['id']}/members", headers=bearer(token)
    )
    assert [item["role"] for item in members.json()["items"]] == ["owner"]


async def test_created_workspace_is_listed_like_me_lists_it(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant = await seed.tenant(name="Existing")
    token = tenant.member_token
    created = await client.post(
        WORKSPACES, json={"name": "Side project"}, headers=bearer(token)
    )

    listed = await client.get(WORKSPACES, headers=bearer(token))
    me = await client.get("/api/v1/auth/me", headers=bearer(token))

    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [(i["id"], i["name"], i["role"]) for i in items] == [
        (tenant.id, "Existing", "member"),
        (created.json()["id"], "Side project", "owner"),
    ]
    assert items[1]["created_at"] == created.json()["created_at"]
    assert [
        (w["workspace_id"], w["workspace_name"], w["role"])
        for w in me.json()["workspaces"]
    ] == [(i["id"], i["name"], i["role"]) for i in items]


async def test_list_is_empty_for_a_user_without_workspaces(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    await seed.tenant()
    loner = await seed.user()
    token = await seed.token(user=loner)

    response = await client.get(WORKSPACES, headers=bearer(token))

    assert response.status_code == 200
    assert response.json() == {"items": []}


@pytest.mark.parametrize(
    "body",
    [{"name": ""}, {"name": "   "}, {"name": "x" * 121}, {}, {"name": 7}],
    ids=["empty", "blank", "too-long", "missing", "not-a-string"],
)
async def test_invalid_workspace_name_is_422(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime, body: dict[str, Any]
) -> None:
    user = await seed.user()
    token = await seed.token(user=user)

    response = await client.post(WORKSPACES, json=body, headers=bearer(token))

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_FAILED"
    assert response.json()["error"]["details"]["errors"][0]["loc"][:2] == [
        "body",
        "name",
    ]
    async with runtime.sessionmaker() as session:
        assert (await session.scalars(select(Workspace))).all() == []


async def test_name_of_120_characters_is_accepted(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    user = await seed.user()
    token = await seed.token(user=user)

    response = await client.post(
        WORKSPACES, json={"name": "y" * 120}, headers=bearer(token)
    )

    assert response.status_code == 201
    assert response.json()["name"] == "y" * 120


async def test_workspaces_need_authentication(client: httpx.AsyncClient) -> None:
    listed = await client.get(WORKSPACES)
    created = await client.post(WORKSPACES, json={"name": "Anonymous"})

    for response in (listed, created):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_cookie_create_needs_the_csrf_token(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    user = await seed.user()
    await login(client, user.email)

    refused = await client.post(WORKSPACES, json={"name": "Via browser"})
    accepted = await client.post(
        WORKSPACES, json={"name": "Via browser"}, headers=csrf_headers(client)
    )
    listed = await client.get(WORKSPACES)

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "CSRF_FAILED"
    assert accepted.status_code == 201
    assert [item["name"] for item in listed.json()["items"]] == ["Via browser"]


async def test_owner_renames_the_workspace(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    tenant = await seed.tenant(name="Old name")

    response = await client.patch(
        f"{API_BASE}/{tenant.id}",
        json={"name": " New name "},
        headers=bearer(tenant.owner_token),
    )
    seen_by_member = await client.get(WORKSPACES, headers=bearer(tenant.member_token))

    assert response.status_code == 200
    assert response.json()["id"] == tenant.id
    assert response.json()["name"] == "New name"
    assert response.json()["role"] == "owner"
    assert seen_by_member.json()["items"][0]["name"] == "New name"
    renamed = await _audit(runtime, "workspace.renamed")
    assert [row.details for row in renamed] == [{"from": "Old name", "to": "New name"}]


async def test_cookie_rename_needs_the_csrf_token(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant = await seed.tenant(name="Before")
    await login(client, tenant.owner.email)

    refused = await client.patch(f"{API_BASE}/{tenant.id}", json={"name": "After"})
    accepted = await client.patch(
        f"{API_BASE}/{tenant.id}", json={"name": "After"}, headers=csrf_headers(client)
    )

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "CSRF_FAILED"
    assert accepted.status_code == 200
    assert accepted.json()["name"] == "After"


@pytest.mark.parametrize("role", ["admin", "member"])
async def test_only_the_owner_renames(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime, role: str
) -> None:
    tenant = await seed.tenant(name="Kept")
    token = tenant.admin_token if role == "admin" else tenant.member_token

    response = await client.patch(
        f"{API_BASE}/{tenant.id}", json={"name": "Taken over"}, headers=bearer(token)
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    async with runtime.sessionmaker() as session:
        workspace = await session.get(Workspace, tenant.id)
    assert workspace is not None
    assert workspace.name == "Kept"


async def test_stranger_renaming_sees_the_workspace_as_missing(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    tenant = await seed.tenant(name="Private")
    stranger = await seed.user()
    token = await seed.token(user=stranger)

    existing = await client.patch(
        f"{API_BASE}/{tenant.id}", json={"name": "Mine"}, headers=bearer(token)
    )
    missing = await client.patch(
        f"{API_BASE}/999999", json={"name": "Mine"}, headers=bearer(token)
    )

    assert existing.status_code == missing.status_code == 404
    assert existing.json()["error"]["code"] == "NOT_FOUND"
    assert existing.json() == missing.json()
    async with runtime.sessionmaker() as session:
        workspace = await session.get(Workspace, tenant.id)
    assert workspace is not None
    assert workspace.name == "Private"


async def test_invalid_new_name_is_422(client: httpx.AsyncClient, seed: Seed) -> None:
    tenant = await seed.tenant()

    response = await client.patch(
        f"{API_BASE}/{tenant.id}",
        json={"name": " "},
        headers=bearer(tenant.owner_token),
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_FAILED"


async def test_rename_needs_authentication(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant = await seed.tenant()

    response = await client.patch(f"{API_BASE}/{tenant.id}", json={"name": "Anon"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_openapi_shows_the_workspace_routes_with_error_envelopes(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/api/openapi.json")).json()["paths"]

    create = paths[WORKSPACES]["post"]
    rename = paths["/api/v1/tenants/{workspace_id}"]["patch"]

    assert paths[WORKSPACES]["get"]["summary"]
    assert create["summary"]
    assert rename["summary"]
    assert {"401", "403", "422"} <= set(create["responses"])
    assert {"401", "403", "404", "422"} <= set(rename["responses"])
    ref = rename["responses"]["404"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ErrorResponse")
