"""A sync worker killed with SIGKILL in the middle of a run: the run still ends, exactly once.

Runs on the shared stack (24 advertisers; the product run reads a store of 1,500 products).
The app's QPS budget is lowered so a run lasts several seconds; the worker process is killed
once the sandbox has served part of the run. The run's lease (4 s here) expires, the stale
run is dispatched again, and the restarted worker finishes it. Data must equal the
sandbox's, no natural key may appear twice, and no run may stay ``running``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from e2e_support import (
    Stack,
    Tenant,
    assert_meta_matches,
    assert_products_match,
    duplicate_keys,
    store_pairs,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.kafka]


@pytest.fixture(scope="module")
async def tenant(stack: Stack) -> Tenant:
    return await stack.bootstrap_tenant(name="Crash agency")


async def _calls(stack: Stack, endpoint: str) -> int:
    counters = await stack.sandbox.admin("GET", "/counters")
    return int(counters["calls"].get(endpoint, 0))


async def _running_runs(stack: Stack, auth_id: int) -> int:
    return int(
        await stack.scalar(
            "SELECT COUNT(*) FROM sync_runs WHERE auth_id = :a AND status = 'running'",
            a=auth_id,
        )
    )


async def _kill_mid_run(
    stack: Stack, auth_id: int, service: str, endpoint: str, min_calls: int
) -> float:
    """Kill ``service`` once the sandbox served ``min_calls`` of ``endpoint``; restart it."""

    async def in_flight() -> bool:
        return await _calls(stack, endpoint) >= min_calls

    await wait_until(in_flight, timeout=60, what=f"{endpoint} calls")
    assert await _running_runs(stack, auth_id) == 1
    stack.services[service].kill()
    killed_at = time.monotonic()
    await stack.start_service(service)
    return killed_at


async def test_meta_worker_killed_mid_run_finishes_after_restart(
    stack: Stack, tenant: Tenant, figures: Callable[[str, Any], None]
) -> None:
    await stack.set_provider_qps(6)
    before = await _calls(stack, "store/list")
    auth_id, run_id = await stack.connect_binding(tenant)
    assert run_id is not None

    killed_at = await _kill_mid_run(
        stack, auth_id, "metadata-sync", "store/list", before + 4
    )
    run = await stack.wait_finished(tenant, auth_id, run_id, timeout=180)

    figures(
        "meta_run_finished_seconds_after_kill", round(time.monotonic() - killed_at, 1)
    )
    figures("meta_run_attempts", run["attempts"])
    assert run["status"] == "succeeded", run
    assert run["attempts"] >= 2
    counts = await assert_meta_matches(stack, auth_id)
    figures("meta_rows", counts)
    assert set((await duplicate_keys(stack)).values()) == {0}
    assert await _running_runs(stack, auth_id) == 0
    runs = await stack.scalar(
        "SELECT COUNT(*) FROM sync_runs WHERE auth_id = :a AND scope = 'meta'",
        a=auth_id,
    )
    assert runs == 1


async def test_product_worker_killed_mid_run_finishes_after_restart(
    stack: Stack, tenant: Tenant, figures: Callable[[str, Any], None]
) -> None:
    await stack.set_provider_qps(1000)
    advertiser_id = (await stack.sandbox.advertiser_ids())[-1]
    big_store = await stack.sandbox.admin(
        "POST", "/stores", json={"advertiser_id": advertiser_id, "products": 1500}
    )
    store_id = big_store["store_id"]
    auth_id, run_id = await stack.connect_binding(
        tenant, advertiser_ids=[advertiser_id]
    )
    assert run_id is not None
    await stack.wait_finished(tenant, auth_id, run_id)
    assert (advertiser_id, store_id) in await store_pairs(stack, auth_id)
    await stack.set_provider_qps(2)
    before = await _calls(stack, "store/product/get")

    accepted = await stack.request_sync(
        tenant,
        auth_id,
        {"scope": "products", "advertiser_id": advertiser_id, "store_id": store_id},
    )
    assert accepted.status_code == 202, accepted.text
    product_run = accepted.json()["run"]["id"]
    killed_at = await _kill_mid_run(
        stack, auth_id, "product-sync", "store/product/get", before + 3
    )
    run = await stack.wait_finished(tenant, auth_id, product_run, timeout=180)

    figures(
        "product_run_finished_seconds_after_kill",
        round(time.monotonic() - killed_at, 1),
    )
    figures("product_run_attempts", run["attempts"])
    assert run["status"] == "succeeded", run
    assert run["attempts"] >= 2
    products = await assert_products_match(
        stack, auth_id, store_id=store_id, advertiser_id=advertiser_id
    )
    figures("products_synced", products)
    assert set((await duplicate_keys(stack)).values()) == {0}
    assert await _running_runs(stack, auth_id) == 0
