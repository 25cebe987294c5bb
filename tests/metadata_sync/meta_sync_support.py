"""Builders shared by the metadata-sync tests: a sandbox, a binding, a worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.bindings import seal_access_token, seal_app_secret
from gmv_common.crypto import Keyring
from gmv_common.db.models import (
    Advertiser,
    AdvertiserStoreLink,
    BcAdvertiserLink,
    Binding,
    BusinessCenter,
    ProviderApp,
    Store,
    Workspace,
)
from gmv_common.settings import Settings
from gmv_common.tiktok import RateLimiter, RetryPolicy, TikTokClient
from gmv_metadata_sync.worker import MetaSyncWorker, WorkerConfig
from gmv_sandbox.app import create_app
from gmv_sandbox.state import SandboxState
from gmv_sandbox.world import WorldSpec

SANDBOX_BASE_URL = "http://sandbox.test/open_api/v1.3/"
FAST_RETRY = RetryPolicy(
    max_attempts=3, initial_wait_seconds=0.01, max_wait_seconds=0.05
)


@dataclass
class SandboxBinding:
    """A sandbox world with an app and a token, and the binding that holds the token."""

    state: SandboxState
    app_id: str
    access_token: str
    workspace_id: int
    auth_id: int

    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.ASGITransport(app=create_app(self.state))

    def expected(self) -> dict[str, Any]:
        return self.state.snapshot(access_token=self.access_token)


def make_sandbox(*, sandbox_qps: int = 0, **spec: Any) -> tuple[SandboxState, str, str]:
    """A sandbox world, an app on it (``sandbox_qps`` 0: unlimited) and a token."""
    state = SandboxState.generate(WorldSpec(**spec))
    app = state.create_app(qps=sandbox_qps)
    token = state.issue_token(app.app_id)
    return state, app.app_id, token.access_token


async def add_binding(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    state: SandboxState,
    *,
    app_id: str,
    access_token: str,
    qps_limit: float = 1000.0,
    workspace_name: str = "Acme agency",
) -> SandboxBinding:
    """Workspace, provider app and binding rows for a sandbox token."""
    secret = state.auths.app(app_id).secret
    async with sessionmaker.begin() as session:
        workspace = Workspace(name=workspace_name)
        session.add(workspace)
        app = await session.scalar(
            select(ProviderApp).where(ProviderApp.app_id == app_id)
        )
        if app is None:
            app = ProviderApp(
                app_id=app_id,
                name="Sandbox app",
                redirect_uri="http://127.0.0.1:8000/callback",
                api_base_url=SANDBOX_BASE_URL,
                qps_limit=qps_limit,
            )
            seal_app_secret(app, keyring, secret)
            session.add(app)
        await session.flush()
        binding = Binding(
            workspace_id=workspace.id,
            provider_app_id=app.id,
            alias="Sandbox binding",
            status="active",
        )
        seal_access_token(binding, keyring, access_token)
        session.add(binding)
        await session.flush()
        return SandboxBinding(
            state=state,
            app_id=app_id,
            access_token=access_token,
            workspace_id=workspace.id,
            auth_id=binding.id,
        )


def make_worker(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    settings: Settings,
    limiter: RateLimiter,
    state: SandboxState,
    **config: Any,
) -> MetaSyncWorker:
    """A worker whose TikTok client talks to the in-process sandbox."""
    transport = httpx.ASGITransport(app=create_app(state))

    def client_factory(base_url: str | None) -> TikTokClient:
        return TikTokClient(
            limiter=limiter,
            settings=settings,
            base_url=base_url or SANDBOX_BASE_URL,
            retry=FAST_RETRY,
            transport=transport,
        )

    values: dict[str, Any] = {
        "topic_prefix": settings.kafka_topic_prefix,
        "lease_seconds": settings.sync_lease_seconds,
        "heartbeat_seconds": settings.sync_heartbeat_seconds,
        "schedule_interval_seconds": settings.meta_sync_interval_seconds,
    }
    values.update(config)
    return MetaSyncWorker(
        sessionmaker=sessionmaker,
        keyring=keyring,
        settings=settings,
        limiter=limiter,
        config=WorkerConfig(**values),
        client_factory=client_factory,
    )


async def stored_graph(
    sessionmaker: async_sessionmaker[AsyncSession], *, workspace_id: int, auth_id: int
) -> dict[str, Any]:
    """The live rows of a binding, in the shape of the sandbox's expected snapshot."""
    scope = {"workspace_id": workspace_id, "auth_id": auth_id}
    async with sessionmaker() as session:
        centers = await _live(session, BusinessCenter, scope)
        advertisers = await _live(session, Advertiser, scope)
        stores = await _live(session, Store, scope)
        store_links = await _live(session, AdvertiserStoreLink, scope)
        bc_links = await _live(session, BcAdvertiserLink, scope)
    return {
        "business_centers": {row.bc_id: row for row in centers},
        "advertisers": {row.advertiser_id: row for row in advertisers},
        "stores": {row.store_id: row for row in stores},
        "store_links": {(r.advertiser_id, r.store_id): r for r in store_links},
        "bc_links": {(r.bc_id, r.advertiser_id): r for r in bc_links},
    }


async def _live(session: AsyncSession, model: Any, scope: dict[str, int]) -> list[Any]:
    result = await session.scalars(
        select(model).filter_by(**scope).where(model.deleted_at.is_(None))
    )
    return list(result)


async def count_rows(
    sessionmaker: async_sessionmaker[AsyncSession], model: Any, **filters: Any
) -> int:
    async with sessionmaker() as session:
        total = await session.scalar(
            select(func.count()).select_from(model).filter_by(**filters)
        )
    return int(total or 0)


def assert_matches_sandbox(graph: dict[str, Any], expected: dict[str, Any]) -> None:
    """The stored graph holds exactly what a complete read of the sandbox shows."""
    expected_centers = {c["bc_info"]["bc_id"]: c for c in expected["business_centers"]}
    assert set(graph["business_centers"]) == set(expected_centers)
    for bc_id, center in expected_centers.items():
        assert graph["business_centers"][bc_id].name == center["bc_info"]["name"]

    infos = {info["advertiser_id"]: info for info in expected["advertiser_info"]}
    assert set(graph["advertisers"]) == set(infos)
    for advertiser_id, info in infos.items():
        row = graph["advertisers"][advertiser_id]
        assert row.name == info["name"]
        assert row.timezone == info["timezone"]
        assert row.owner_bc_id == info.get("owner_bc_id")
        assert row.currency == info["currency"]

    expected_stores = {
        store["store_id"]: store
        for stores in expected["stores"].values()
        for store in stores
    }
    assert set(graph["stores"]) == set(expected_stores)
    for store_id, store in expected_stores.items():
        row = graph["stores"][store_id]
        assert row.name == store["store_name"]
        assert row.store_authorized_bc_id == store["store_authorized_bc_id"]

    expected_store_links = {
        (advertiser_id, store["store_id"])
        for advertiser_id, stores in expected["stores"].items()
        for store in stores
    }
    assert set(graph["store_links"]) == expected_store_links

    expected_bc_links: dict[tuple[str, str], str] = {}
    for advertiser_id, stores in expected["stores"].items():
        for store in stores:
            key = (store["store_authorized_bc_id"], advertiser_id)
            expected_bc_links[key] = "store_authorized"
    for advertiser_id, info in infos.items():
        if info.get("owner_bc_id"):
            expected_bc_links[(info["owner_bc_id"], advertiser_id)] = "owner"
    assert {k: r.relation for k, r in graph["bc_links"].items()} == expected_bc_links


async def request_run(
    sessionmaker: async_sessionmaker[AsyncSession],
    binding: SandboxBinding,
    *,
    topic_prefix: str,
    trigger: str = "manual",
) -> int:
    from gmv_common.sync.runs import request_meta_sync

    async with sessionmaker.begin() as session:
        request = await request_meta_sync(
            session,
            workspace_id=binding.workspace_id,
            auth_id=binding.auth_id,
            trigger=trigger,
            topic_prefix=topic_prefix,
        )
        return request.run.id


async def sync_once(
    worker: MetaSyncWorker,
    binding: SandboxBinding,
    *,
    trigger: str = "manual",
) -> Any:
    """Request a meta sync, run it to the end on ``worker``, return the run row."""
    from gmv_common.db.models import SyncRun

    run_id = await request_run(
        worker.sessionmaker,
        binding,
        topic_prefix=worker.config.topic_prefix,
        trigger=trigger,
    )
    task = await worker.submit(run_id)
    assert task is not None, "the run was not claimed"
    await task
    async with worker.sessionmaker() as session:
        return await session.get(SyncRun, run_id)
