"""A worker killed mid-run on the real MariaDB: another worker resumes the run after its lease."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from product_sync_support import (
    count,
    expected_items,
    make_runtime,
    product_rows,
    request,
    run_to_end,
    sandbox_executor,
    seed_pair,
    wait_for_product_pages,
    world,
)
from sqlalchemy import func, select

from gmv_common.db.models import OutboxMessage, Product, ProductEligibility, SyncRun
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_common.sync.runs import redispatch_stale_runs
from gmv_sandbox import FaultRule

pytestmark = pytest.mark.mariadb

LEASE_SECONDS = 2.0


@pytest.fixture
async def runtime(
    mariadb_url: str, make_settings: Callable[..., Settings], topic_prefix: str
) -> AsyncIterator[Runtime]:
    runtime = make_runtime(
        make_settings(
            database_url=mariadb_url,
            kafka_topic_prefix=topic_prefix,
            sync_lease_seconds=LEASE_SECONDS,
            sync_heartbeat_seconds=0.5,
        )
    )
    yield runtime
    await runtime.close()


async def test_worker_killed_mid_run_is_resumed_by_another_without_duplicates(
    runtime: Runtime,
) -> None:
    state = world(products=3000)
    pair = await seed_pair(runtime.sessionmaker, runtime.keyring, state)
    prefix = runtime.settings.kafka_topic_prefix
    requested = await request(runtime.sessionmaker, pair, topic_prefix=prefix)
    state.add_fault(FaultRule(endpoint="store/product/get", latency_ms=40))
    doomed = sandbox_executor(runtime, state, owner="worker-a")
    async with doomed.slot() as slot:
        assert await slot.start(requested.run.id)
    await wait_for_product_pages(state, 12)

    await doomed.close()
    async with runtime.sessionmaker.begin() as session:
        too_early = await redispatch_stale_runs(session, topic_prefix=prefix)
    await asyncio.sleep(LEASE_SECONDS + 0.5)
    async with runtime.sessionmaker.begin() as session:
        redispatched = await redispatch_stale_runs(session, topic_prefix=prefix)
    state.clear_faults()
    survivor = sandbox_executor(runtime, state, owner="worker-b")
    finished = await run_to_end(survivor, requested.run.id)

    expected = expected_items(state, pair)
    rows = await product_rows(runtime.sessionmaker, pair)
    assert too_early == []
    assert redispatched == [requested.run.id]
    assert finished.status == "succeeded"
    assert finished.attempts == 2
    assert finished.stats["added"] == len(expected)
    assert set(rows) == set(expected)
    assert await count(runtime.sessionmaker, Product) == len(expected)
    assert await count(runtime.sessionmaker, ProductEligibility) == len(expected)
    async with runtime.sessionmaker() as session:
        completions = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.topic == f"{prefix}.events.sync")
        )
        run_row = await session.get(SyncRun, requested.run.id)
    assert completions == 1
    assert run_row is not None
    assert run_row.active_key is None


async def test_worker_that_lost_its_lease_writes_nothing(runtime: Runtime) -> None:
    state = world(products=1500)
    pair = await seed_pair(runtime.sessionmaker, runtime.keyring, state)
    prefix = runtime.settings.kafka_topic_prefix
    requested = await request(runtime.sessionmaker, pair, topic_prefix=prefix)
    state.add_fault(FaultRule(endpoint="store/product/get", latency_ms=300))
    slow = sandbox_executor(runtime, state, owner="worker-slow")
    async with slow.slot() as slot:
        assert await slot.start(requested.run.id)
    await asyncio.sleep(0.5)

    async with runtime.sessionmaker.begin() as session:
        run_row = await session.get(SyncRun, requested.run.id)
        assert run_row is not None
        run_row.lease_owner = "worker-thief"
    await asyncio.wait_for(slow.wait_idle(), 30)

    async with runtime.sessionmaker() as session:
        run_row = await session.get(SyncRun, requested.run.id)
    assert run_row is not None
    assert run_row.status == "running"
    assert run_row.lease_owner == "worker-thief"
    assert await count(runtime.sessionmaker, Product) == 0
