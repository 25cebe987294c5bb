"""The meta sync on the real MariaDB: a large binding, deltas, a worker dying mid-run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from meta_sync_support import (
    add_binding,
    assert_matches_sandbox,
    count_rows,
    make_sandbox,
    make_worker,
    request_run,
    stored_graph,
    sync_once,
)
from sqlalchemy import select

from gmv_common.db.models import (
    Advertiser,
    AdvertiserStoreLink,
    BcAdvertiserLink,
    BusinessCenter,
    OutboxMessage,
    Store,
    SyncRun,
)
from gmv_common.runtime import Runtime
from gmv_common.sync.runs import redispatch_stale_runs
from gmv_common.tiktok import InMemoryRateLimiter
from gmv_sandbox.faults import FaultRule

pytestmark = pytest.mark.mariadb


async def test_large_binding_syncs_completely_and_second_sync_reports_exact_deltas(
    mariadb_runtime_factory: Callable[..., Runtime],
) -> None:
    runtime = mariadb_runtime_factory()
    state, app_id, token = make_sandbox(
        business_centers=55, advertisers=1000, stores_per_advertiser=1
    )
    binding = await add_binding(
        runtime.sessionmaker,
        runtime.keyring,
        state,
        app_id=app_id,
        access_token=token,
        qps_limit=5000.0,
    )
    worker = make_worker(
        runtime.sessionmaker,
        runtime.keyring,
        runtime.settings,
        InMemoryRateLimiter(),
        state,
    )
    scope = {"workspace_id": binding.workspace_id, "auth_id": binding.auth_id}

    first = await sync_once(worker, binding)

    assert first.status == "succeeded", first.error_message
    assert first.stats["entities"]["business_centers"]["added"] == 55
    assert first.stats["entities"]["advertisers"]["added"] == 1000
    assert first.stats["api_calls"]["bc/get"] == 2
    assert first.stats["api_calls"]["advertiser/info"] == 10
    assert_matches_sandbox(
        await stored_graph(runtime.sessionmaker, **scope), binding.expected()
    )

    world = state.world
    advertiser_ids = sorted(world.advertisers)
    centers = sorted(world.business_centers)
    for advertiser_id in advertiser_ids[:7]:
        state.update_advertiser(advertiser_id, name=f"Renamed {advertiser_id[-4:]}")
    for advertiser_id in advertiser_ids[100:105]:
        state.remove_advertiser(advertiser_id)
    added = [
        state.add_advertiser(owner_bc_id=centers[0], stores=1).advertiser_id
        for _ in range(3)
    ]
    new_center = state.add_business_center()
    state.update_business_center(centers[1], name="Renamed center")

    second = await sync_once(worker, binding)

    entities = second.stats["entities"]
    assert second.status == "succeeded"
    assert entities["advertisers"] == {
        "fetched": 998,
        "added": 3,
        "updated": 7,
        "removed": 5,
        "unchanged": 988,
    }
    assert (
        entities["business_centers"]["added"],
        entities["business_centers"]["updated"],
    ) == (1, 1)
    assert entities["business_centers"]["removed"] == 0
    completed = await _completed_event(runtime, second.id)
    assert sorted(completed["changes"]["advertisers"]["added"]) == sorted(added)
    assert completed["changes"]["advertisers"]["removed"] == advertiser_ids[100:105]
    assert completed["changes"]["business_centers"]["added"] == [new_center.bc_id]
    graph = await stored_graph(runtime.sessionmaker, **scope)
    assert_matches_sandbox(graph, binding.expected())
    await worker.drain(1)


async def _completed_event(runtime: Runtime, run_id: int) -> dict[str, object]:
    import orjson

    async with runtime.sessionmaker() as session:
        rows = await session.scalars(select(OutboxMessage))
        for row in rows:
            payload = orjson.loads(row.payload)
            if (
                row.headers["ce_type"] == "gmv.sync.completed.v1"
                and payload["run_id"] == run_id
            ):
                return payload
    raise AssertionError(f"no SyncCompleted for run {run_id}")


async def test_run_abandoned_mid_read_is_finished_by_another_worker(
    mariadb_runtime_factory: Callable[..., Runtime],
) -> None:
    runtime_a = mariadb_runtime_factory(
        sync_lease_seconds=1.5, sync_heartbeat_seconds=0.4
    )
    runtime_b = mariadb_runtime_factory(
        sync_lease_seconds=1.5, sync_heartbeat_seconds=0.4
    )
    state, app_id, token = make_sandbox(business_centers=4, advertisers=40)
    binding = await add_binding(
        runtime_a.sessionmaker,
        runtime_a.keyring,
        state,
        app_id=app_id,
        access_token=token,
    )
    state.add_fault(FaultRule(endpoint="store/list", latency_ms=60))
    worker_a = make_worker(
        runtime_a.sessionmaker,
        runtime_a.keyring,
        runtime_a.settings,
        InMemoryRateLimiter(),
        state,
        chain_concurrency=2,
    )
    worker_b = make_worker(
        runtime_b.sessionmaker,
        runtime_b.keyring,
        runtime_b.settings,
        InMemoryRateLimiter(),
        state,
    )
    run_id = await request_run(
        runtime_a.sessionmaker, binding, topic_prefix=worker_a.config.topic_prefix
    )

    task_a = await worker_a.submit(run_id)
    assert task_a is not None
    await asyncio.sleep(0.6)
    assert not task_a.done()
    task_a.cancel()
    await asyncio.gather(task_a, return_exceptions=True)
    assert await worker_b.submit(run_id) is None, "claimed while A's lease was valid"

    redispatched: list[int] = []
    for _ in range(40):
        async with runtime_b.sessionmaker.begin() as session:
            redispatched = await redispatch_stale_runs(
                session, topic_prefix=worker_b.config.topic_prefix
            )
        if redispatched:
            break
        await asyncio.sleep(0.2)
    assert redispatched == [run_id]
    task_b = await worker_b.submit(run_id)
    assert task_b is not None
    await task_b

    async with runtime_b.sessionmaker() as session:
        run = await session.get(SyncRun, run_id)
    assert run is not None
    assert (run.status, run.attempts) == ("succeeded", 2)
    scope = {"workspace_id": binding.workspace_id, "auth_id": binding.auth_id}
    graph = await stored_graph(runtime_b.sessionmaker, **scope)
    assert_matches_sandbox(graph, binding.expected())
    for model, kind in (
        (BusinessCenter, "business_centers"),
        (Advertiser, "advertisers"),
        (Store, "stores"),
        (BcAdvertiserLink, "bc_links"),
        (AdvertiserStoreLink, "store_links"),
    ):
        assert await count_rows(runtime_b.sessionmaker, model, **scope) == len(
            graph[kind]
        )
    assert run.stats["entities"]["advertisers"]["added"] == 40
    await worker_a.drain(0.1)
    await worker_b.drain(1)
