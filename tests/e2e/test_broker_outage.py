"""Kafka stopped for ~30 s while 100 sync requests arrive: all accepted, all done once, later.

Two bindings of one workspace (ten advertisers each). The 100 requests: one meta sync per
binding and one product sync per advertiser/store pair and eligibility kind (``gmv_max``,
``ads``, ``all``), each distinct target with its own ``Idempotency-Key`` (77 targets with
the shared world), then repeats of the first requests with the same keys up to 100, which
return the same run (``joined="idempotency_key"``). So 100 requests make exactly one run per
distinct target. Commands wait in the outbox while the broker is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from e2e_support import Stack, Tenant, duplicate_keys, run_script, store_pairs

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.kafka]

OUTAGE_SECONDS = 30
REQUESTS = 100


@pytest.fixture
async def kafka_restored() -> AsyncIterator[None]:
    """Whatever happens in the test, the broker runs again afterwards."""
    try:
        yield
    finally:
        run_script("kafka", "start", timeout=240)


async def _bindings(stack: Stack, tenant: Tenant) -> list[int]:
    advertisers = await stack.sandbox.advertiser_ids()
    auth_ids = []
    for grant in (advertisers[:10], advertisers[10:20]):
        auth_id, run_id = await stack.connect_binding(tenant, advertiser_ids=grant)
        assert run_id is not None
        run = await stack.wait_finished(tenant, auth_id, run_id)
        assert run["status"] == "succeeded", run
        auth_ids.append(auth_id)
    return auth_ids


async def _requests(
    stack: Stack, auth_ids: list[int]
) -> list[tuple[int, dict[str, Any]]]:
    """(auth_id, body) of every distinct target: meta per binding, products per pair/kind."""
    targets: list[tuple[int, dict[str, Any]]] = []
    for auth_id in auth_ids:
        targets.append((auth_id, {"scope": "meta"}))
        for advertiser_id, store_id in await store_pairs(stack, auth_id):
            for kind in ("gmv_max", "ads", "all"):
                body = {
                    "scope": "products",
                    "advertiser_id": advertiser_id,
                    "store_id": store_id,
                    "options": {"eligibility": kind},
                }
                targets.append((auth_id, body))
    return targets


@pytest.mark.timeout(600)
async def test_sync_requests_during_broker_outage_all_complete_once_after_it(
    stack: Stack,
    kafka_restored: None,
    figures: Callable[[str, Any], None],
) -> None:
    tenant = await stack.bootstrap_tenant(name="Outage agency")
    await stack.set_provider_qps(1000)
    auth_ids = await _bindings(stack, tenant)
    targets = await _requests(stack, auth_ids)
    assert len(targets) < REQUESTS
    keyed = [(f"outage-{i}", *target) for i, target in enumerate(targets)]
    repeats = [keyed[i % len(keyed)] for i in range(REQUESTS - len(keyed))]

    run_script("kafka", "stop", timeout=120)
    stopped_at = time.monotonic()
    answers = []
    for key, auth_id, body in [*keyed, *repeats]:
        answer = await stack.request_sync(
            tenant, auth_id, body, idempotency_key=key, timeout=15
        )
        answers.append((auth_id, answer))
    accepted_seconds = time.monotonic() - stopped_at
    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - accepted_seconds))
    run_script("kafka", "start", timeout=240)
    restarted_at = time.monotonic()

    assert [a.status_code for _, a in answers] == [202] * REQUESTS
    runs = {(auth_id, a.json()["run"]["id"]) for auth_id, a in answers}
    assert len(runs) == len(targets)
    joined = [a.json()["joined"] for _, a in answers[len(keyed) :]]
    assert joined == ["idempotency_key"] * len(repeats)
    finished = [
        await stack.wait_finished(tenant, auth_id, run_id, timeout=240)
        for auth_id, run_id in sorted(runs)
    ]
    figures("requests_accepted_while_broker_down", REQUESTS)
    figures("distinct_runs", len(runs))
    figures("seconds_to_accept_100_requests", round(accepted_seconds, 1))
    figures(
        "seconds_from_broker_start_to_all_runs_done",
        round(time.monotonic() - restarted_at, 1),
    )
    assert {run["status"] for run in finished} == {"succeeded"}
    assert {run["attempts"] for run in finished} == {1}
    assert set((await duplicate_keys(stack)).values()) == {0}
    total = await stack.scalar(
        "SELECT COUNT(*) FROM sync_runs WHERE workspace_id = :w", w=tenant.workspace_id
    )
    assert total == len(targets) + len(auth_ids)
