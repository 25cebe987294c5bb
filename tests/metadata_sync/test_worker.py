"""The meta-sync worker on SQLite with the in-process sandbox: the chain end to end."""

from __future__ import annotations

from meta_sync_support import (
    add_binding,
    assert_matches_sandbox,
    make_sandbox,
    make_worker,
    stored_graph,
)
from sqlalchemy import select

from gmv_common.db.models import SyncRun
from gmv_common.runtime import Runtime
from gmv_common.sync.runs import request_meta_sync
from gmv_common.tiktok import InMemoryRateLimiter


async def _request(
    runtime: Runtime, workspace_id: int, auth_id: int, trigger: str = "manual"
) -> int:
    async with runtime.sessionmaker.begin() as session:
        request = await request_meta_sync(
            session,
            workspace_id=workspace_id,
            auth_id=auth_id,
            trigger=trigger,
            topic_prefix=runtime.settings.kafka_topic_prefix,
        )
        return request.run.id


async def test_meta_sync_stores_the_whole_sandbox_tree(sqlite_runtime: Runtime) -> None:
    state, app_id, token = make_sandbox(business_centers=3, advertisers=12)
    binding = await add_binding(
        sqlite_runtime.sessionmaker,
        sqlite_runtime.keyring,
        state,
        app_id=app_id,
        access_token=token,
    )
    worker = make_worker(
        sqlite_runtime.sessionmaker,
        sqlite_runtime.keyring,
        sqlite_runtime.settings,
        InMemoryRateLimiter(),
        state,
    )
    run_id = await _request(sqlite_runtime, binding.workspace_id, binding.auth_id)

    task = await worker.submit(run_id)
    assert task is not None
    await task

    async with sqlite_runtime.sessionmaker() as session:
        run = await session.scalar(select(SyncRun).where(SyncRun.id == run_id))
    assert run is not None
    assert (run.status, run.error_code) == ("succeeded", None), run.error_message
    graph = await stored_graph(
        sqlite_runtime.sessionmaker,
        workspace_id=binding.workspace_id,
        auth_id=binding.auth_id,
    )
    assert_matches_sandbox(graph, binding.expected())
    await worker.drain(1)
