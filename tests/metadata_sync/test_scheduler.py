"""The ``ttb.sync.meta`` schedule: due bindings fire once, even with two schedulers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
from meta_sync_support import SandboxBinding, add_binding, make_sandbox, request_run
from sqlalchemy import func, select, update

from gmv_common.db.base import utcnow
from gmv_common.db.models import Binding, OutboxMessage, Schedule, SyncRun
from gmv_common.runtime import Runtime
from gmv_metadata_sync.repository import META_TASK_KIND
from gmv_metadata_sync.scheduler import scheduler_tick
from gmv_metadata_sync.service import ensure_meta_schedule

INTERVAL = 1800


async def _bindings(runtime: Runtime, count: int) -> list[SandboxBinding]:
    state, app_id, token = make_sandbox(business_centers=1, advertisers=2)
    return [
        await add_binding(
            runtime.sessionmaker,
            runtime.keyring,
            state,
            app_id=app_id,
            access_token=token,
            workspace_name=f"Agency {index}",
        )
        for index in range(count)
    ]


async def _tick(runtime: Runtime) -> object:
    return await scheduler_tick(
        runtime.sessionmaker,
        topic_prefix=runtime.settings.kafka_topic_prefix,
        interval_seconds=INTERVAL,
    )


async def _runs_per_binding(runtime: Runtime) -> dict[int, int]:
    async with runtime.sessionmaker() as session:
        rows = await session.execute(
            select(SyncRun.auth_id, func.count()).group_by(SyncRun.auth_id)
        )
        return {int(auth_id): int(count) for auth_id, count in rows.all()}


@pytest.mark.mariadb
async def test_two_schedulers_start_one_run_per_due_binding(
    mariadb_runtime_factory: Callable[..., Runtime],
) -> None:
    first, second = mariadb_runtime_factory(), mariadb_runtime_factory()
    bindings = await _bindings(first, 6)

    results = []
    for _ in range(3):
        results += await asyncio.gather(_tick(first), _tick(second))

    assert sum(result.fired for result in results) == 6
    assert sum(result.joined for result in results) == 0
    runs = await _runs_per_binding(first)
    assert runs == {binding.auth_id: 1 for binding in bindings}
    async with first.sessionmaker() as session:
        schedules = list(await session.scalars(select(Schedule)))
        commands = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.topic.like("%commands.meta-sync"))
        )
    assert len(schedules) == 6
    assert commands == 6
    for schedule in schedules:
        assert schedule.task_kind == META_TASK_KIND
        assert schedule.next_fire_at > utcnow() + timedelta(seconds=INTERVAL - 60)
        assert schedule.last_run_id is not None


@pytest.mark.mariadb
async def test_due_schedule_joins_a_sync_already_queued(
    mariadb_runtime_factory: Callable[..., Runtime],
) -> None:
    runtime = mariadb_runtime_factory()
    (binding,) = await _bindings(runtime, 1)
    queued = await request_run(
        runtime.sessionmaker, binding, topic_prefix=runtime.settings.kafka_topic_prefix
    )

    result = await _tick(runtime)

    assert (result.started, result.joined) == (0, 1)
    assert await _runs_per_binding(runtime) == {binding.auth_id: 1}
    async with runtime.sessionmaker() as session:
        schedule = await session.scalar(select(Schedule))
    assert schedule is not None
    assert schedule.last_run_id == queued


async def test_binding_needing_reauth_is_not_synced_on_schedule(
    sqlite_runtime: Runtime,
) -> None:
    (binding,) = await _bindings(sqlite_runtime, 1)
    async with sqlite_runtime.sessionmaker.begin() as session:
        stored = await session.get(Binding, binding.auth_id)
        assert stored is not None
        await ensure_meta_schedule(session, stored, interval_seconds=INTERVAL)
        stored.status = "needs_reauth"
        await session.execute(update(Schedule).values(next_fire_at=utcnow()))

    result = await _tick(sqlite_runtime)

    assert (result.fired, result.skipped_inactive, result.started) == (1, 1, 0)
    assert await _runs_per_binding(sqlite_runtime) == {}


async def test_schedule_is_not_due_again_before_its_interval(
    sqlite_runtime: Runtime,
) -> None:
    await _bindings(sqlite_runtime, 2)

    first = await _tick(sqlite_runtime)
    again = await _tick(sqlite_runtime)

    assert (first.schedules_created, first.started) == (2, 2)
    assert (again.schedules_created, again.fired) == (0, 0)


async def test_ensure_meta_schedule_creates_once(sqlite_runtime: Runtime) -> None:
    (binding,) = await _bindings(sqlite_runtime, 1)

    async with sqlite_runtime.sessionmaker.begin() as session:
        stored = await session.get(Binding, binding.auth_id)
        assert stored is not None
        created = await ensure_meta_schedule(session, stored, interval_seconds=60)
        again = await ensure_meta_schedule(session, stored, interval_seconds=60)

    assert (created, again) == (True, False)
