"""Tenant isolation over every route, and the retired endpoints.

Every route is enumerated from ``app.routes``: a route that takes a workspace is called on
another tenant's workspace (404, as for a workspace that does not exist), and a route that
takes an object id is called in the caller's own workspace with the other tenant's ids (404,
never 403). Retired routes answer 410 to everyone.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from gateway_support import API_BASE, Seed, bearer
from sqlalchemy import select

from gmv_common.db.models import Binding, GmvMaxBindingConfig, SyncRun, Workspace
from gmv_common.runtime import Runtime

OBJECT_PARAMS = ("auth_id", "run_id", "user_id", "token_id", "advertiser_id")

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/sync"): {"scope": "meta"},
    ("PUT", "/config"): {"auto_sync_products": False},
    ("PATCH", "/{auth_id}"): {"alias": "stolen"},
    ("PATCH", "/tenants/{workspace_id}"): {"name": "Stolen"},
    ("POST", "/authorize"): {},
    ("POST", "/members"): {"email": "nobody@example.test", "role": "member"},
}


def _body(method: str, path: str) -> dict[str, Any] | None:
    for (body_method, suffix), body in BODIES.items():
        if method == body_method and path.endswith(suffix):
            return body
    return {} if method in ("POST", "PUT", "PATCH") else None


def _routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, path template) the app serves, through included routers too."""
    found = []
    for context in iter_route_contexts(app.routes):
        if context.path is None:
            continue
        for method in sorted(context.methods or ()):
            if method != "HEAD":
                found.append((method, context.path))
    return found


@pytest.fixture
async def tenants(seed: Seed) -> dict[str, Any]:
    attacker = await seed.tenant(name="Attacker")
    victim = await seed.tenant(name="Victim")
    app = await seed.provider_app()
    attacker_binding = await seed.binding(workspace_id=attacker.id, app=app)
    victim_binding = await seed.binding(
        workspace_id=victim.id, app=app, alias="Victim shop"
    )
    await seed.catalog(binding=victim_binding)
    victim_run = await seed.run(binding=victim_binding)
    return {
        "attacker": attacker,
        "victim": victim,
        "attacker_binding": attacker_binding,
        "victim_binding": victim_binding,
        "victim_run": victim_run,
    }


def _fill(path: str, values: dict[str, Any]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", str(value))
    return path.replace("{path:path}", "anything")


async def test_every_route_hides_other_tenants_workspace_and_objects(
    app: Any, client: httpx.AsyncClient, tenants: dict[str, Any], runtime: Runtime
) -> None:
    attacker, victim = tenants["attacker"], tenants["victim"]
    headers = bearer(attacker.owner_token)
    foreign_ids = {
        "auth_id": tenants["victim_binding"].id,
        "run_id": tenants["victim_run"].id,
        "user_id": victim.owner.id,
        "advertiser_id": "adv-1",
        "provider": "tiktok-business",
    }
    checked = []
    for method, template in _routes(app):
        if "{workspace_id}" not in template:
            continue
        legacy = "/ttb/" in template or (
            template.endswith(
                ("/business-centers", "/advertisers", "/stores", "/products")
            )
            and "{auth_id}" not in template
        )
        body = _body(method, template)
        other_workspace = _fill(template, {"workspace_id": victim.id, **foreign_ids})
        response = await client.request(
            method, other_workspace, json=body, headers=headers
        )
        expected = 410 if legacy else 404
        assert response.status_code == expected, (method, template, response.text)
        assert "Victim" not in response.text
        checked.append((method, template))
        if legacy or not any("{" + p + "}" in template for p in OBJECT_PARAMS):
            continue
        own_workspace = _fill(template, {"workspace_id": attacker.id, **foreign_ids})
        response = await client.request(
            method, own_workspace, json=body, headers=headers
        )
        if template.endswith("/members/{user_id}"):
            assert response.status_code == 404, (method, template, response.text)
            continue
        assert response.status_code == 404, (method, template, response.text)
        assert response.json()["error"]["code"] == "NOT_FOUND"
        assert "Victim" not in response.text

    assert len(checked) >= 30
    async with runtime.sessionmaker() as session:
        binding = await session.get(Binding, tenants["victim_binding"].id)
        workspace = await session.get(Workspace, victim.id)
        runs = (await session.scalars(select(SyncRun))).all()
        configs = (await session.scalars(select(GmvMaxBindingConfig))).all()
    assert binding is not None
    assert binding.alias == "Victim shop"
    assert binding.status == "active"
    assert [run.id for run in runs] == [tenants["victim_run"].id]
    assert configs == []
    assert ("PATCH", "/api/v1/tenants/{workspace_id}") in checked
    assert workspace is not None
    assert workspace.name == "Victim"


async def test_another_users_token_cannot_be_revoked(
    client: httpx.AsyncClient, tenants: dict[str, Any]
) -> None:
    attacker, victim = tenants["attacker"], tenants["victim"]
    victim_tokens = await client.get(
        "/api/v1/auth/tokens", headers=bearer(victim.owner_token)
    )
    token_id = victim_tokens.json()["items"][0]["id"]

    response = await client.delete(
        f"/api/v1/auth/tokens/{token_id}", headers=bearer(attacker.owner_token)
    )
    still_valid = await client.get(
        "/api/v1/auth/me", headers=bearer(victim.owner_token)
    )

    assert response.status_code == 404
    assert still_valid.status_code == 200


RETIRED_TAILS = (
    "providers/tiktok-business/business-centers",
    "providers/tiktok_business/advertisers",
    "providers/tiktok-business/stores",
    "providers/tiktok-business/products",
    "ttb/anything/below",
    "ttb/accounts",
)


async def test_retired_endpoints_answer_410_for_any_method(
    client: httpx.AsyncClient,
) -> None:
    for tail in RETIRED_TAILS:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            response = await client.request(method, f"{API_BASE}/1/{tail}")

            assert response.status_code == 410, (method, tail)
            assert response.json()["error"]["code"] == "TTB_LEGACY_DISABLED"
