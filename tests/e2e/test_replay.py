"""Replaying every topic from offset 0 leaves the database unchanged.

The way ``docs/events.md`` tells operators to do it: stop the services, reset each consumer
group (named as the workers' logs name them) to the earliest offsets of all its topics with
Kafka's own tool (through ``deploy/local/kafka-cli``), start the services again. Every
command and event is delivered a second time; the inbox and the idempotent writes must make
that a no-op. The checksum covers every table except the columns named in ``VOLATILE``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from e2e_support import (
    WORKER_SERVICES,
    Stack,
    consumer_lag,
    run_script,
    store_pairs,
    table_checksums,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.kafka]

# Not data: the shared TikTok rate limiter's pacing state moves with every process start.
VOLATILE: dict[str, set[str]] = {"tiktok_rate_limits": {"*"}}


async def _settled(stack: Stack) -> dict[str, str]:
    """Checksums once nothing is queued, running or unpublished and two reads agree."""

    async def idle() -> bool:
        busy = await stack.scalar(
            "SELECT (SELECT COUNT(*) FROM sync_runs WHERE status IN "
            "('queued', 'running')) + (SELECT COUNT(*) FROM outbox "
            "WHERE published_at IS NULL)"
        )
        return int(busy) == 0

    await wait_until(idle, timeout=120, what="no queued run or pending outbox row")
    previous: dict[str, str] = {}

    async def stable() -> dict[str, str] | None:
        nonlocal previous
        current = await table_checksums(stack, volatile=VOLATILE)
        same = current == previous
        previous = current
        return current if same else None

    return await wait_until(stable, timeout=60, interval=2, what="stable checksums")


def _groups(stack: Stack) -> list[str]:
    """The consumer groups the workers joined, as their logs say (names may carry the prefix)."""
    groups = set()
    for name in WORKER_SERVICES:
        for line in stack.services[name].log_text().splitlines():
            if '"kafka.consumer_started"' in line:
                groups.add(json.loads(line)["group"])
    return sorted(groups)


async def _reset_groups(groups: list[str]) -> None:
    for group in groups:

        async def reset(group: str = group) -> bool:
            await asyncio.to_thread(
                run_script,
                "kafka-cli",
                "consumer-groups",
                "--reset-offsets",
                "--to-earliest",
                "--all-topics",
                "--group",
                group,
                "--execute",
            )
            return True

        # Refused while the group still has a member; the stopped services leave it.
        await wait_until(reset, timeout=90, interval=2, what=f"reset of {group}")


async def test_replaying_every_topic_from_offset_zero_leaves_the_database_unchanged(
    stack: Stack, figures: Callable[[str, Any], None]
) -> None:
    tenant = await stack.bootstrap_tenant(name="Replay agency")
    await stack.set_provider_qps(1000)
    grant = (await stack.sandbox.advertiser_ids())[14:18]
    auth_id, run_id = await stack.connect_binding(tenant, advertiser_ids=grant)
    assert run_id is not None
    await stack.wait_finished(tenant, auth_id, run_id)
    for advertiser_id, store_id in (await store_pairs(stack, auth_id))[:2]:
        body = {"scope": "products", "advertiser_id": advertiser_id}
        answer = await stack.request_sync(
            tenant, auth_id, {**body, "store_id": store_id}
        )
        assert answer.status_code == 202, answer.text
        await stack.wait_finished(tenant, auth_id, answer.json()["run"]["id"])
    before = await _settled(stack)
    groups = _groups(stack)
    assert len(groups) >= len(WORKER_SERVICES)

    for name in ("api-gateway", *WORKER_SERVICES):
        stack.services[name].stop()
    await _reset_groups(groups)
    for name in ("api-gateway", *WORKER_SERVICES):
        await stack.start_service(name)

    lags: dict[str, int | None] = {}

    async def replayed() -> bool:
        for group in groups:
            lags[group] = await asyncio.to_thread(
                consumer_lag, group, stack.topic_prefix
            )
        return all(lag == 0 for lag in lags.values())

    try:
        await wait_until(replayed, timeout=180, interval=2, what="replay consumed")
    finally:
        figures("lag_per_group_at_end", dict(lags))
    after = await _settled(stack)

    figures("tables_compared", len(after))
    figures("rows_compared", sum(int(v.split(":")[0]) for v in after.values()))
    figures("volatile_excluded", sorted(VOLATILE))
    changed = {
        t: (before.get(t), after.get(t)) for t in after if before.get(t) != after[t]
    }
    assert changed == {}
