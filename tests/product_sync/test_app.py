"""The whole worker (``app.run``) in embedded mode: SQLite, in-memory bus, sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from product_sync_support import (
    expected_items,
    make_runtime,
    product_rows,
    sandbox_executor,
    seed_pair,
    world,
)
from sqlalchemy import select

from gmv_common.db.models import GmvMaxBindingConfig, SyncRun
from gmv_common.messaging.outbox import OutboxRelay
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_product_sync.app import run
from gmv_product_sync.scheduler import apply_auto_sync_config


@pytest.fixture
async def runtime(
    sqlite_url: str, make_settings: Callable[..., Settings], topic_prefix: str
) -> AsyncIterator[Runtime]:
    runtime = make_runtime(
        make_settings(
            database_url=sqlite_url,
            kafka_topic_prefix=topic_prefix,
            scheduler_tick_seconds=0.2,
            product_sync_redispatch_seconds=0.5,
        )
    )
    await runtime.start()
    yield runtime
    await runtime.close()


async def finished_runs(runtime: Runtime) -> list[SyncRun]:
    async with runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(SyncRun).where(SyncRun.status.in_(("succeeded", "failed")))
        )
        return list(rows)


async def wait_for_finished_run(runtime: Runtime) -> list[SyncRun]:
    for _ in range(300):
        done = await finished_runs(runtime)
        if done:
            return done
        await asyncio.sleep(0.2)
    raise TimeoutError("no product sync run finished")


async def test_enabling_auto_sync_makes_the_running_worker_sync_the_pair(
    runtime: Runtime,
) -> None:
    state = world(products=150)
    pair = await seed_pair(runtime.sessionmaker, runtime.keyring, state)
    stop = asyncio.Event()
    relay = OutboxRelay(runtime.sessionmaker, runtime.bus, poll_seconds=0.1)
    tasks = [
        asyncio.create_task(relay.run(stop)),
        asyncio.create_task(
            run(runtime, stop, executor=sandbox_executor(runtime, state))
        ),
    ]

    async with runtime.sessionmaker.begin() as session:
        config = GmvMaxBindingConfig(
            workspace_id=pair.workspace_id,
            auth_id=pair.auth_id,
            bc_id=pair.bc_id,
            advertiser_id=pair.advertiser_id,
            store_id=pair.store_id,
            auto_sync_products=True,
        )
        session.add(config)
        await session.flush()
        await apply_auto_sync_config(session, config, min_interval_seconds=900)
    try:
        done = await wait_for_finished_run(runtime)
    finally:
        stop.set()
        await asyncio.gather(*tasks)

    assert [(r.trigger, r.status) for r in done] == [("auto", "succeeded")]
    assert set(await product_rows(runtime.sessionmaker, pair)) == set(
        expected_items(state, pair)
    )
