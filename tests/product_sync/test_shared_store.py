"""Two advertisers of one store, synced at the same time, on the real MariaDB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest
from product_sync_support import (
    eligibility_rows,
    expected_items,
    load_run,
    make_runtime,
    product_rows,
    request,
    run_to_end,
    sandbox_executor,
    seed_pair,
    world,
)

from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_sandbox import FaultRule

pytestmark = pytest.mark.mariadb


@pytest.fixture
async def runtime(
    mariadb_url: str, make_settings: Callable[..., Settings], topic_prefix: str
) -> AsyncIterator[Runtime]:
    runtime = make_runtime(
        make_settings(database_url=mariadb_url, kafka_topic_prefix=topic_prefix)
    )
    yield runtime
    await runtime.close()


async def test_concurrent_syncs_of_two_advertisers_of_one_store_both_complete(
    runtime: Runtime,
) -> None:
    state = world(products=800, gmv_max_eligible_share=0.6)
    first = await seed_pair(runtime.sessionmaker, runtime.keyring, state)
    other_advertiser = list(state.world.advertisers)[1]
    state.link_store(first.store_id, other_advertiser)
    second = replace(first, advertiser_id=other_advertiser)
    prefix = runtime.settings.kafka_topic_prefix
    state.add_fault(FaultRule(endpoint="store/product/get", latency_ms=30))
    requested = [
        await request(runtime.sessionmaker, pair, topic_prefix=prefix, bc_id=pair.bc_id)
        for pair in (first, second)
    ]

    executor = sandbox_executor(runtime, state)
    for requested_run in requested:
        async with executor.slot() as slot:
            assert await slot.start(requested_run.run.id)
    await asyncio.wait_for(executor.wait_idle(), 120)
    runs = [(await load_run(executor, r.run.id)).status for r in requested]

    one, two = expected_items(state, first), expected_items(state, second)
    rows = await product_rows(runtime.sessionmaker, first)
    elig = await eligibility_rows(runtime.sessionmaker, first)
    assert runs == ["succeeded", "succeeded"]
    assert set(one) != set(two)
    assert set(rows) == set(one) | set(two)
    assert all(row.deleted_at is None for row in rows.values())
    assert {k[2] for k in elig if k[0] == first.advertiser_id} == set(one)
    assert {k[2] for k in elig if k[0] == second.advertiser_id} == set(two)

    state.clear_faults()
    again = await request(runtime.sessionmaker, first, topic_prefix=prefix)
    rerun = await run_to_end(executor, again.run.id)

    rows = await product_rows(runtime.sessionmaker, first)
    assert rerun.status == "succeeded"
    assert rerun.stats["removed"] == 0
    assert {ig for ig, row in rows.items() if row.deleted_at is None} == set(one) | set(
        two
    )
