"""The service entry point on SQLite and the in-memory bus: commands, lost commands."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from meta_sync_support import (
    SandboxBinding,
    add_binding,
    assert_matches_sandbox,
    make_sandbox,
    make_worker,
    request_run,
    stored_graph,
)
from sqlalchemy import delete, update

from gmv_common.bus.memory import InMemoryBus
from gmv_common.db.base import utcnow
from gmv_common.db.models import OutboxMessage, SyncRun
from gmv_common.messaging.outbox import OutboxRelay
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_common.tiktok import InMemoryRateLimiter
from gmv_metadata_sync.app import run


async def _serve_until_finished(
    runtime: Runtime, binding: SandboxBinding, run_id: int
) -> SyncRun:
    worker = make_worker(
        runtime.sessionmaker,
        runtime.keyring,
        runtime.settings,
        InMemoryRateLimiter(),
        binding.state,
    )
    stop = asyncio.Event()
    relay = OutboxRelay(runtime.sessionmaker, runtime.bus, poll_seconds=0.1)
    tasks = [
        asyncio.create_task(relay.run(stop)),
        asyncio.create_task(run(runtime, stop, worker=worker)),
    ]
    try:
        async with asyncio.timeout(30):
            while True:
                async with runtime.sessionmaker() as session:
                    row = await session.get(SyncRun, run_id)
                if row is not None and row.status not in ("queued", "running"):
                    return row
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def _runtime(
    sqlite_url: str, make_settings: Callable[..., Settings], topic_prefix: str
) -> Runtime:
    settings = make_settings(
        database_url=sqlite_url,
        kafka_topic_prefix=topic_prefix,
        sync_lease_seconds=2.0,
        sync_heartbeat_seconds=0.5,
        scheduler_tick_seconds=0.5,
    )
    runtime = Runtime.create(settings, bus=InMemoryBus(default_partitions=2))
    await runtime.start()
    return runtime


async def _binding(runtime: Runtime) -> SandboxBinding:
    state, app_id, token = make_sandbox(business_centers=2, advertisers=5)
    return await add_binding(
        runtime.sessionmaker, runtime.keyring, state, app_id=app_id, access_token=token
    )


async def test_service_runs_a_requested_sync_from_its_command(
    sqlite_url: str, make_settings: Callable[..., Settings], topic_prefix: str
) -> None:
    runtime = await _runtime(sqlite_url, make_settings, topic_prefix)
    binding = await _binding(runtime)
    run_id = await request_run(runtime.sessionmaker, binding, topic_prefix=topic_prefix)

    finished = await _serve_until_finished(runtime, binding, run_id)

    assert finished.status == "succeeded"
    assert_matches_sandbox(
        await stored_graph(
            runtime.sessionmaker,
            workspace_id=binding.workspace_id,
            auth_id=binding.auth_id,
        ),
        binding.expected(),
    )
    await runtime.close()


async def test_service_redispatches_a_run_whose_command_was_lost(
    sqlite_url: str, make_settings: Callable[..., Settings], topic_prefix: str
) -> None:
    runtime = await _runtime(sqlite_url, make_settings, topic_prefix)
    binding = await _binding(runtime)
    run_id = await request_run(runtime.sessionmaker, binding, topic_prefix=topic_prefix)
    async with runtime.sessionmaker.begin() as session:
        await session.execute(delete(OutboxMessage))
        await session.execute(
            update(SyncRun).values(heartbeat_at=utcnow() - timedelta(minutes=5))
        )

    finished = await _serve_until_finished(runtime, binding, run_id)

    assert finished.status == "succeeded"
    await runtime.close()
