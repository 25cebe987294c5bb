"""Helpers of the product-sync tests: a seeded binding, the sandbox, a worker, row dumps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.bindings import (
    build_tiktok_client,
    seal_access_token,
    seal_app_secret,
)
from gmv_common.bus.memory import InMemoryBus
from gmv_common.crypto import (
    Keyring,
)
from gmv_common.db.models import (
    AdvertiserStoreLink,
    Binding,
    GmvMaxBindingConfig,
    Product,
    ProductEligibility,
    ProviderApp,
    Store,
    SyncRun,
    Workspace,
)
from gmv_common.db.models.work import Schedule
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_common.sync.runs import RunRequest, request_product_sync
from gmv_common.tiktok import InMemoryRateLimiter, RetryPolicy, TikTokClient
from gmv_product_sync.app import build_executor
from gmv_product_sync.executor import RunExecutor
from gmv_sandbox import SandboxState, WorldSpec, create_app

FAST_RETRY = RetryPolicy(
    max_attempts=3, initial_wait_seconds=0.01, max_wait_seconds=0.05
)


@dataclass
class Pair:
    """A seeded binding and one advertiser/store pair of the sandbox world."""

    workspace_id: int
    auth_id: int
    app_id: str
    access_token: str
    advertiser_id: str
    store_id: str
    bc_id: str


def world(
    *,
    products: int,
    advertisers: int = 2,
    seed: int = 7,
    gmv_max_eligible_share: float = 0.85,
) -> SandboxState:
    spec = WorldSpec(
        seed=seed,
        business_centers=1,
        advertisers=advertisers,
        stores_per_advertiser=1,
        products_per_store=products,
        orphan_advertiser_share=0.0,
        shared_store_share=0.0,
        gmv_max_eligible_share=gmv_max_eligible_share,
    )
    return SandboxState.generate(spec)


async def seed_pair(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    state: SandboxState,
    *,
    qps: int = 0,
    advertiser_index: int = 0,
    link_store: bool = True,
) -> Pair:
    """A workspace, app and binding in the database for a fresh sandbox app and token."""
    developer_app = state.create_app(qps=qps)
    token = state.issue_token(developer_app.app_id)
    advertiser = list(state.world.advertisers.values())[advertiser_index]
    store = state.world.stores[advertiser.store_ids[0]]
    async with sessionmaker.begin() as session:
        workspace = Workspace(name="Acme agency")
        session.add(workspace)
        await session.flush()
        app = ProviderApp(
            app_id=developer_app.app_id,
            name="sandbox app",
            redirect_uri="http://localhost/callback",
            qps_limit=float(qps or 10_000),
        )
        seal_app_secret(app, keyring, developer_app.secret)
        session.add(app)
        await session.flush()
        binding = Binding(
            workspace_id=workspace.id, provider_app_id=app.id, alias="main"
        )
        seal_access_token(binding, keyring, token.access_token)
        session.add(binding)
        await session.flush()
        if link_store:
            session.add(
                Store(
                    workspace_id=workspace.id,
                    auth_id=binding.id,
                    store_id=store.store_id,
                    name=store.store_name,
                    store_authorized_bc_id=store.store_authorized_bc_id,
                )
            )
            session.add(
                AdvertiserStoreLink(
                    workspace_id=workspace.id,
                    auth_id=binding.id,
                    advertiser_id=advertiser.advertiser_id,
                    store_id=store.store_id,
                    store_authorized_bc_id=store.store_authorized_bc_id,
                )
            )
    return Pair(
        workspace_id=workspace.id,
        auth_id=binding.id,
        app_id=developer_app.app_id,
        access_token=token.access_token,
        advertiser_id=advertiser.advertiser_id,
        store_id=store.store_id,
        bc_id=store.store_authorized_bc_id,
    )


def client_factory(
    state: SandboxState, settings: Settings, limiter: InMemoryRateLimiter
) -> Callable[[ProviderApp], TikTokClient]:
    """TikTok clients that reach the sandbox in process."""
    transport = httpx.ASGITransport(app=create_app(state))

    def factory(app: ProviderApp) -> TikTokClient:
        return build_tiktok_client(
            settings.model_copy(
                update={"tiktok_api_base_url": "http://sandbox/open_api/v1.3/"}
            ),
            limiter=limiter,
            retry=FAST_RETRY,
            transport=transport,
        )

    return factory


def make_runtime(settings: Settings) -> Runtime:
    return Runtime.create(settings, bus=InMemoryBus(default_partitions=2))


def sandbox_executor(
    runtime: Runtime,
    state: SandboxState,
    *,
    qps: float = 10_000.0,
    owner: str | None = None,
) -> RunExecutor:
    limiter = InMemoryRateLimiter(default_qps=qps)
    return build_executor(
        runtime,
        limiter=limiter,
        client_factory=client_factory(state, runtime.settings, limiter),
        owner=owner,
    )


async def request(
    sessionmaker: async_sessionmaker[AsyncSession],
    pair: Pair,
    *,
    topic_prefix: str,
    eligibility: str = "gmv_max",
    mode: str = "full",
    trigger: str = "manual",
    **options: Any,
) -> RunRequest:
    async with sessionmaker.begin() as session:
        return await request_product_sync(
            session,
            workspace_id=pair.workspace_id,
            auth_id=pair.auth_id,
            advertiser_id=pair.advertiser_id,
            store_id=pair.store_id,
            bc_id=options.pop("bc_id", None),
            eligibility=eligibility,
            trigger=trigger,
            topic_prefix=topic_prefix,
            mode=mode,
            **options,
        )


async def run_to_end(
    executor: RunExecutor, run_id: int, *, timeout: float = 120.0
) -> SyncRun:
    """Claim and execute ``run_id`` on ``executor``; wait until it is done."""
    async with executor.slot() as slot:
        assert await slot.start(run_id)
    await asyncio.wait_for(executor.wait_idle(), timeout)
    return await load_run(executor, run_id)


async def load_run(executor: RunExecutor, run_id: int) -> SyncRun:
    async with executor._sessionmaker() as session:
        run = await session.get(SyncRun, run_id)
        assert run is not None
        return run


async def product_rows(
    sessionmaker: async_sessionmaker[AsyncSession], pair: Pair
) -> dict[str, Product]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Product).where(
                Product.auth_id == pair.auth_id, Product.store_id == pair.store_id
            )
        )
        return {row.item_group_id: row for row in rows}


async def eligibility_rows(
    sessionmaker: async_sessionmaker[AsyncSession], pair: Pair
) -> dict[tuple[str, str, str], ProductEligibility]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(ProductEligibility).where(ProductEligibility.auth_id == pair.auth_id)
        )
        return {(r.advertiser_id, r.eligibility, r.item_group_id): r for r in rows}


async def count(
    sessionmaker: async_sessionmaker[AsyncSession], model: type[Any]
) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def dump_tables(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a product sync touches, for before/after comparisons."""
    from gmv_common.db.models import InboxMessage, OutboxMessage

    tables: dict[str, list[tuple[Any, ...]]] = {}
    async with sessionmaker() as session:
        for model in (
            Product,
            ProductEligibility,
            SyncRun,
            OutboxMessage,
            InboxMessage,
            GmvMaxBindingConfig,
            Schedule,
        ):
            table = model.__table__
            result = await session.execute(select(table).order_by(table.c.id))
            tables[table.name] = [tuple(row) for row in result]
    return tables


def expected_items(
    state: SandboxState, pair: Pair, *, kind: str = "GMV_MAX"
) -> dict[str, dict[str, Any]]:
    items = state.expected_products(
        pair.store_id, advertiser_id=pair.advertiser_id, ad_creation_eligible=kind
    )
    return {item["item_group_id"]: item for item in items}


async def wait_for_product_pages(
    state: SandboxState, pages: int, *, timeout: float = 30.0
) -> None:
    """Wait until the sandbox has served ``pages`` product pages."""
    for _ in range(int(timeout / 0.05)):
        if state.counters()["calls"].get("store/product/get", 0) >= pages:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the sandbox did not serve {pages} product pages")
