"""The embedded default (``gmv dev``, what ``make run`` calls).

Every service, the outbox relay and the TikTok sandbox run in this one process, on a SQLite file and
the in-memory bus. The first start creates a demo workspace, an admin user and a provider app for
the sandbox, and connects a TikTok binding through the real OAuth flow (authorize → the sandbox's
consent → callback), which starts the first meta sync. Every start prints a fresh API token and
ready-to-paste curl lines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_cli.runner import (
    WORKERS,
    http_server,
    load_worker,
    run_all,
    serve_until_stopped,
)
from gmv_common.bindings import open_access_token
from gmv_common.db import migrate
from gmv_common.db.models import Binding, ProviderApp, User, Workspace
from gmv_common.logging import get_logger
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_gateway.app import create_app
from gmv_gateway.audit import Actor
from gmv_gateway.auth.service import create_api_token, create_user, set_password
from gmv_gateway.bindings.schemas import ProviderAppIn
from gmv_gateway.bindings.service import save_provider_app
from gmv_gateway.workspaces.service import create_workspace
from gmv_sandbox import DemoSandbox, SandboxServer, build_demo

log = get_logger(__name__)

DEMO_EMAIL = "admin@gmv.local"
DEMO_PASSWORD = "gmv-demo-password"
DEMO_WORKSPACE = "Demo agency"


@dataclass(frozen=True)
class DemoAccess:
    workspace_id: int
    api_token: str
    auth_id: int | None


async def _bootstrap(
    runtime: Runtime, demo: DemoSandbox, sandbox_url: str
) -> DemoAccess:
    """Create (once) the demo user, workspace and provider app; a new API token each start."""
    settings = runtime.settings
    async with runtime.sessionmaker.begin() as session:
        user = await session.scalar(select(User).where(User.email == DEMO_EMAIL))
        if user is None:
            user = await create_user(
                session,
                email=DEMO_EMAIL,
                password=DEMO_PASSWORD,
                display_name="Demo admin",
                is_platform_admin=True,
            )
        else:
            await set_password(session, user=user, password=DEMO_PASSWORD)
        workspace = await session.scalar(
            select(Workspace).where(Workspace.name == DEMO_WORKSPACE)
        )
        if workspace is None:
            workspace = await create_workspace(
                session, name=DEMO_WORKSPACE, owner_user_id=user.id
            )
        await save_provider_app(
            session,
            runtime,
            ProviderAppIn(
                app_id=demo.app.app_id,
                name="TikTok sandbox app",
                secret=demo.app.secret,
                redirect_uri=settings.tiktok_oauth_redirect_uri,  # type: ignore[arg-type]
                qps_limit=float(demo.app.qps),
                is_default=True,
                api_base_url=f"{sandbox_url}/open_api/v1.3/",  # type: ignore[arg-type]
                authorize_url=f"{sandbox_url}/portal/auth",  # type: ignore[arg-type]
            ),
            Actor(user_id=None),
        )
        _, api_token = await create_api_token(session, user_id=user.id, name="gmv dev")
        auth_id = await _restore_sandbox_tokens(session, runtime, demo, workspace.id)
    return DemoAccess(workspace_id=workspace.id, api_token=api_token, auth_id=auth_id)


async def _restore_sandbox_tokens(
    session: AsyncSession, runtime: Runtime, demo: DemoSandbox, workspace_id: int
) -> int | None:
    """The sandbox forgets tokens on restart; teach it the ones our bindings hold."""
    rows = (
        await session.execute(
            select(Binding, ProviderApp)
            .join(ProviderApp, ProviderApp.id == Binding.provider_app_id)
            .where(Binding.workspace_id == workspace_id, Binding.status != "revoked")
            .order_by(Binding.id)
        )
    ).all()
    for binding, app in rows:
        if app.app_id != demo.app.app_id:
            continue
        token = open_access_token(binding, runtime.keyring)
        demo.state.issue_token(app.app_id, None, access_token=token)
    return rows[0][0].id if rows else None


async def _connect_binding(api_url: str, access: DemoAccess, demo: DemoSandbox) -> int:
    """Run the OAuth flow the way a user's browser would, against the sandbox."""
    headers = {"Authorization": f"Bearer {access.api_token}"}
    tenant = f"{api_url}/api/v1/tenants/{access.workspace_id}"
    async with httpx.AsyncClient(timeout=10) as client:
        started = await client.post(
            f"{tenant}/oauth/tiktok-business/authorize",
            json={"alias": "Sandbox shop"},
            headers=headers,
        )
        started.raise_for_status()
        query = parse_qs(urlparse(started.json()["authorize_url"]).query)
        code = demo.state.mint_auth_code(demo.app.app_id, None)
        callback = await client.get(
            f"{api_url}/api/oauth/tiktok-business/callback",
            params={"auth_code": code.auth_code, "state": query["state"][0]},
        )
        if callback.status_code >= 400:
            raise RuntimeError(f"OAuth callback failed: {callback.text}")
        accounts = await client.get(
            f"{tenant}/providers/tiktok-business/accounts", headers=headers
        )
        accounts.raise_for_status()
        auth_id: int = accounts.json()["items"][0]["auth_id"]
    return auth_id


def _print_tour(
    api_url: str, sandbox_url: str, access: DemoAccess, auth_id: int
) -> None:
    account = (
        f"{api_url}/api/v1/tenants/{access.workspace_id}"
        f"/providers/tiktok-business/accounts/{auth_id}"
    )
    lines = [
        "",
        "GMV Backend is running (embedded mode: SQLite, in-memory bus, TikTok sandbox).",
        f"  API        {api_url}   (OpenAPI: {api_url}/api/docs)",
        f"  Sandbox    {sandbox_url}/_sandbox/counters",
        f"  Login      {DEMO_EMAIL} / {DEMO_PASSWORD}",
        "",
        "Paste into a shell:",
        f"  export GMV={api_url} TOKEN={access.api_token}",
        f"  export WS={access.workspace_id} AUTH={auth_id}",
        '  curl -s -H "Authorization: Bearer $TOKEN" $GMV/api/v1/auth/me',
        '  curl -s -H "Authorization: Bearer $TOKEN" '
        "$GMV/api/v1/tenants/$WS/providers/tiktok-business/accounts",
        '  curl -s -H "Authorization: Bearer $TOKEN" '
        "$GMV/api/v1/tenants/$WS/providers/tiktok-business/accounts/$AUTH/gmvmax/options",
        f"  # the account URL: {account}",
        "",
        "Stop with Ctrl-C.",
        "",
    ]
    print("\n".join(lines), flush=True)


async def run_dev(
    settings: Settings, *, host: str, port: int, sandbox_port: int, stop: asyncio.Event
) -> None:
    demo = build_demo()
    sandbox = SandboxServer(demo.state, host=host, port=sandbox_port).start()
    sandbox_url = sandbox.base_url
    api_url = f"http://{host}:{port}"
    settings = settings.model_copy(
        update={
            "tiktok_api_base_url": f"{sandbox_url}/open_api/v1.3/",
            "tiktok_authorize_url": f"{sandbox_url}/portal/auth",
            "public_base_url": api_url,
            "tiktok_oauth_redirect_uri": f"{api_url}/api/oauth/tiktok-business/callback",
        }
    )
    await migrate.upgrade(settings.database_url)
    runtime = Runtime.create(settings)
    try:
        await runtime.start()
        access = await _bootstrap(runtime, demo, sandbox_url)
        gateway = http_server(create_app(runtime), host, port)
        jobs: list[Awaitable[None]] = [serve_until_stopped(gateway, stop)]
        jobs += [load_worker(service)(runtime, stop) for service in WORKERS]
        runner = asyncio.create_task(run_all(runtime, stop, jobs))
        # uvicorn exposes only a flag for "started", no event to await.
        while not gateway.started and not runner.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if not runner.done():
            auth_id = access.auth_id or await _connect_binding(api_url, access, demo)
            _print_tour(api_url, sandbox_url, access, auth_id)
        await runner
    finally:
        await runtime.close()
        sandbox.stop()
