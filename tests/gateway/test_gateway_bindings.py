"""Bindings: lists, OAuth against the sandbox, rename, revoke, delete, provider apps."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
from gateway_support import API_BASE, Seed, Tenant, bearer
from sqlalchemy import func, select

from gmv_common.db.models import (
    AuditLogEntry,
    Binding,
    OutboxMessage,
    ProviderApp,
    Schedule,
    SyncRun,
)
from gmv_common.runtime import Runtime
from gmv_sandbox import DeveloperApp, FaultRule, SandboxState


def accounts_path(tenant: Tenant, provider: str = "tiktok-business") -> str:
    return f"{API_BASE}/{tenant.id}/providers/{provider}/accounts"


async def _authorize(
    client: httpx.AsyncClient, tenant: Tenant, **body: object
) -> httpx.Response:
    return await client.post(
        f"{API_BASE}/{tenant.id}/oauth/tiktok-business/authorize",
        json=body,
        headers=bearer(tenant.admin_token),
    )


async def _events(runtime: Runtime, event_type: str) -> list[dict[str, object]]:
    async with runtime.sessionmaker() as session:
        rows = (await session.scalars(select(OutboxMessage))).all()
    return [
        orjson.loads(row.payload)
        for row in rows
        if row.headers.get("ce_type") == event_type
    ]


async def test_accounts_are_paged_and_filterable_by_status(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant = await seed.tenant()
    app = await seed.provider_app()
    for status in ("active", "needs_reauth", "revoked"):
        await seed.binding(workspace_id=tenant.id, app=app, status=status)

    page = await client.get(
        accounts_path(tenant, "tiktok_business"),
        params={"page": 1, "page_size": 2},
        headers=bearer(tenant.member_token),
    )
    revoked = await client.get(
        accounts_path(tenant),
        params={"status": "revoked"},
        headers=bearer(tenant.member_token),
    )
    providers = await client.get(
        f"{API_BASE}/{tenant.id}/providers", headers=bearer(tenant.member_token)
    )

    assert page.status_code == 200
    assert page.json()["total"] == 3
    assert [item["status"] for item in page.json()["items"]] == [
        "active",
        "needs_reauth",
    ]
    assert [item["status"] for item in revoked.json()["items"]] == ["revoked"]
    assert providers.json()["items"][0]["provider"] == "tiktok-business"


async def test_unknown_provider_is_404(client: httpx.AsyncClient, seed: Seed) -> None:
    tenant = await seed.tenant()

    response = await client.get(
        accounts_path(tenant, "facebook"), headers=bearer(tenant.member_token)
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "PROVIDER_NOT_SUPPORTED"


async def test_account_page_size_above_limit_is_400(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant = await seed.tenant()

    response = await client.get(
        accounts_path(tenant),
        params={"page_size": 101},
        headers=bearer(tenant.member_token),
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "PAGE_SIZE_TOO_LARGE"


async def test_oauth_round_trip_stores_encrypted_token_and_starts_meta_sync(
    client: httpx.AsyncClient,
    seed: Seed,
    runtime: Runtime,
    sandbox: SandboxState,
    sandbox_app: DeveloperApp,
) -> None:
    tenant = await seed.tenant()
    await seed.provider_app(app_id=sandbox_app.app_id, secret=sandbox_app.secret)
    started = await _authorize(
        client, tenant, alias="Main shop", return_to="http://spa.test/bindings"
    )
    auth_url = urlsplit(started.json()["authorize_url"])
    state = parse_qs(auth_url.query)["state"][0]
    code = sandbox.mint_auth_code(sandbox_app.app_id)

    callback = await client.get(
        "/api/oauth/tiktok-business/callback",
        params={"auth_code": code.auth_code, "state": state},
    )

    assert started.status_code == 200
    assert parse_qs(auth_url.query)["app_id"] == [sandbox_app.app_id]
    assert callback.status_code == 303
    target = urlsplit(callback.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == (
        "http://spa.test/bindings"
    )
    auth_id = int(parse_qs(target.query)["auth_id"][0])
    async with runtime.sessionmaker() as session:
        binding = await session.get(Binding, auth_id)
        runs = (await session.scalars(select(SyncRun))).all()
        schedules = (await session.scalars(select(Schedule))).all()
    assert binding is not None
    assert binding.alias == "Main shop"
    assert binding.workspace_id == tenant.id
    token_text = sandbox.auths.live_tokens_of(sandbox_app.app_id)[0].access_token
    assert token_text.encode() not in binding.access_token_cipher
    assert [(run.scope, run.trigger) for run in runs] == [("meta", "oauth")]
    assert [schedule.task_kind for schedule in schedules] == ["ttb.sync.meta"]
    created = await _events(runtime, "gmv.binding.changed.v1")
    assert [event["change"] for event in created] == ["created"]


async def test_oauth_state_is_single_use(
    client: httpx.AsyncClient,
    seed: Seed,
    sandbox: SandboxState,
    sandbox_app: DeveloperApp,
) -> None:
    tenant = await seed.tenant()
    await seed.provider_app(app_id=sandbox_app.app_id, secret=sandbox_app.secret)
    started = await _authorize(client, tenant)
    state = parse_qs(urlsplit(started.json()["authorize_url"]).query)["state"][0]
    first_code = sandbox.mint_auth_code(sandbox_app.app_id)
    second_code = sandbox.mint_auth_code(sandbox_app.app_id)

    first = await client.get(
        "/api/oauth/tiktok-business/callback",
        params={"auth_code": first_code.auth_code, "state": state},
    )
    replay = await client.get(
        "/api/oauth/tiktok-business/callback",
        params={"auth_code": second_code.auth_code, "state": state},
    )

    assert first.status_code == 200
    assert first.json()["ok"] is True
    assert replay.status_code == 400
    assert replay.json()["error"]["code"] == "OAUTH_STATE_INVALID"


async def test_forged_oauth_state_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/oauth/tiktok-business/callback",
        params={"auth_code": "x", "state": "forged.state.value"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "OAUTH_STATE_INVALID"


async def test_foreign_return_to_is_refused(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant = await seed.tenant()
    await seed.provider_app()

    for target in ("https://evil.test/x", "//evil.test/x", "javascript:alert(1)"):
        response = await _authorize(client, tenant, return_to=target)

        assert response.status_code == 400, target
        assert response.json()["error"]["code"] == "REDIRECT_NOT_ALLOWED"


async def test_rejected_auth_code_redirects_with_error_and_spends_state(
    client: httpx.AsyncClient,
    seed: Seed,
    runtime: Runtime,
    sandbox_app: DeveloperApp,
) -> None:
    tenant = await seed.tenant()
    await seed.provider_app(app_id=sandbox_app.app_id, secret=sandbox_app.secret)
    started = await _authorize(client, tenant, return_to="/app/bindings")
    state = parse_qs(urlsplit(started.json()["authorize_url"]).query)["state"][0]

    response = await client.get(
        "/api/oauth/tiktok-business/callback",
        params={"auth_code": "not-a-code", "state": state},
    )

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("http://api.test/app/bindings?")
    assert parse_qs(urlsplit(location).query)["ok"] == ["0"]
    async with runtime.sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(Binding))
    assert count == 0


async def test_member_cannot_start_oauth(client: httpx.AsyncClient, seed: Seed) -> None:
    tenant = await seed.tenant()

    response = await client.post(
        f"{API_BASE}/{tenant.id}/oauth/tiktok-business/authorize",
        json={},
        headers=bearer(tenant.member_token),
    )

    assert response.status_code == 403


async def test_alias_edit_emits_binding_changed_and_audit(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    tenant = await seed.tenant()
    app = await seed.provider_app()
    binding = await seed.binding(workspace_id=tenant.id, app=app)

    response = await client.patch(
        f"{accounts_path(tenant)}/{binding.id}",
        json={"alias": "Renamed"},
        headers=bearer(tenant.admin_token),
    )

    assert response.status_code == 200
    assert response.json()["label"] == "Renamed"
    changes = await _events(runtime, "gmv.binding.changed.v1")
    assert [event["change"] for event in changes] == ["alias_changed"]
    async with runtime.sessionmaker() as session:
        actions = (await session.scalars(select(AuditLogEntry.action))).all()
    assert "binding.alias_changed" in actions


async def test_revoke_calls_tiktok_then_marks_revoked_and_stays_readable(
    client: httpx.AsyncClient,
    seed: Seed,
    runtime: Runtime,
    sandbox: SandboxState,
    sandbox_app: DeveloperApp,
) -> None:
    tenant = await seed.tenant()
    app = await seed.provider_app(app_id=sandbox_app.app_id, secret=sandbox_app.secret)
    token = sandbox.issue_token(sandbox_app.app_id)
    binding = await seed.binding(
        workspace_id=tenant.id, app=app, access_token=token.access_token
    )

    response = await client.post(
        f"{accounts_path(tenant)}/{binding.id}/revoke",
        headers=bearer(tenant.admin_token),
    )
    readable = await client.get(
        f"{accounts_path(tenant)}/{binding.id}", headers=bearer(tenant.member_token)
    )

    assert response.status_code == 200
    assert response.json()["remote_revoked"] is True
    assert response.json()["account"]["status"] == "revoked"
    assert readable.json()["status"] == "revoked"
    assert sandbox.auths.live_token(token.access_token) is None
    changes = await _events(runtime, "gmv.binding.changed.v1")
    assert [event["change"] for event in changes] == ["revoked"]


async def test_delete_removes_binding_and_its_schedules(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime, sandbox_app: DeveloperApp
) -> None:
    tenant = await seed.tenant()
    app = await seed.provider_app(app_id=sandbox_app.app_id, secret=sandbox_app.secret)
    binding = await seed.binding(workspace_id=tenant.id, app=app, status="revoked")
    await seed.schedule(binding=binding)

    response = await client.delete(
        f"{accounts_path(tenant)}/{binding.id}", headers=bearer(tenant.admin_token)
    )
    again = await client.get(
        f"{accounts_path(tenant)}/{binding.id}", headers=bearer(tenant.admin_token)
    )

    assert response.status_code == 204
    assert again.status_code == 404
    async with runtime.sessionmaker() as session:
        schedules = await session.scalar(select(func.count()).select_from(Schedule))
    assert schedules == 0
    changes = await _events(runtime, "gmv.binding.changed.v1")
    assert [event["change"] for event in changes] == ["deleted"]


async def test_platform_admin_saves_provider_app_with_encrypted_secret(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    admin = await seed.user(platform_admin=True)
    token = await seed.token(user=admin)
    body = {
        "app_id": "7123",
        "name": "Prod app",
        "secret": "s3cret-value",
        "redirect_uri": "http://api.test/api/oauth/tiktok-business/callback",
        "is_default": True,
    }

    created = await client.post(
        "/api/v1/platform/provider-apps", json=body, headers=bearer(token)
    )
    updated = await client.post(
        "/api/v1/platform/provider-apps",
        json={**body, "name": "Renamed"},
        headers=bearer(token),
    )
    listed = await client.get("/api/v1/platform/provider-apps", headers=bearer(token))

    assert created.status_code == 201
    assert updated.status_code == 200
    assert [app["name"] for app in listed.json()] == ["Renamed"]
    assert "secret" not in listed.text
    async with runtime.sessionmaker() as session:
        stored = await session.scalar(select(ProviderApp))
    assert stored is not None
    assert b"s3cret-value" not in stored.secret_cipher


async def test_provider_apps_need_a_platform_admin(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant = await seed.tenant()

    response = await client.get(
        "/api/v1/platform/provider-apps", headers=bearer(tenant.owner_token)
    )

    assert response.status_code == 403


async def test_failed_remote_revoke_is_502_and_changes_nothing(
    client: httpx.AsyncClient,
    seed: Seed,
    runtime: Runtime,
    sandbox: SandboxState,
    sandbox_app: DeveloperApp,
) -> None:
    tenant = await seed.tenant()
    app = await seed.provider_app(app_id=sandbox_app.app_id, secret=sandbox_app.secret)
    token = sandbox.issue_token(sandbox_app.app_id)
    binding = await seed.binding(
        workspace_id=tenant.id, app=app, access_token=token.access_token
    )
    sandbox.add_fault(
        FaultRule(endpoint="oauth2/revoke_token/", error_code=50000, error_rate=1.0)
    )

    response = await client.post(
        f"{accounts_path(tenant)}/{binding.id}/revoke",
        headers=bearer(tenant.admin_token),
    )

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "REVOKE_FAILED"
    async with runtime.sessionmaker() as session:
        stored = await session.get(Binding, binding.id)
    assert stored is not None
    assert stored.status == "active"


async def test_callback_without_code_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/oauth/tiktok-business/callback", params={"state": "x"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "OAUTH_CALLBACK_INVALID"
