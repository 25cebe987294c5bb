"""The ``ttb.sync.meta`` schedule: every active binding is synced on an interval.

Several schedulers may run at once. Each tick, a scheduler gives schedules to active
bindings that lack one, then fires the due ones: a firing is claimed by a conditional
update of ``next_fire_at`` (only one scheduler's update matches), and the sync is
requested in the same transaction through ``request_meta_sync``, which joins a sync
already queued or running for the binding instead of starting a second one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.bindings import STATUS_ACTIVE
from gmv_common.db.base import utcnow
from gmv_common.logging import get_logger
from gmv_common.sync.runs import redispatch_stale_runs, request_meta_sync
from gmv_metadata_sync import repository
from gmv_metadata_sync.repository import META_TASK_KIND

log = get_logger(__name__)

BATCH = 100


@dataclass(frozen=True, slots=True)
class TickResult:
    schedules_created: int
    fired: int
    started: int
    joined: int
    skipped_inactive: int


async def scheduler_tick(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    topic_prefix: str,
    interval_seconds: int,
) -> TickResult:
    """One pass: create missing schedules, then fire every due one exactly once."""
    created = await _create_missing_schedules(
        sessionmaker, interval_seconds=interval_seconds
    )
    async with sessionmaker() as session:
        due = await repository.due_meta_schedules(session, now=utcnow(), limit=BATCH)
    fired = started = joined = skipped = 0
    for schedule_id, fire_at in due:
        async with sessionmaker.begin() as session:
            outcome = await _fire(
                session, schedule_id, fire_at, topic_prefix=topic_prefix
            )
        if outcome is None:
            continue
        fired += 1
        if outcome == "started":
            started += 1
        elif outcome == "joined":
            joined += 1
        else:
            skipped += 1
    if fired or created:
        log.info(
            "meta_sync.scheduler_tick",
            schedules_created=created,
            fired=fired,
            started=started,
            joined=joined,
            skipped_inactive=skipped,
        )
    return TickResult(created, fired, started, joined, skipped)


async def _create_missing_schedules(
    sessionmaker: async_sessionmaker[AsyncSession], *, interval_seconds: int
) -> int:
    created = 0
    async with sessionmaker.begin() as session:
        missing = await repository.active_bindings_without_meta_schedule(
            session, limit=BATCH
        )
        for workspace_id, auth_id in missing:
            # Due now: a binding without a schedule has not been synced on one yet.
            if await repository.insert_meta_schedule(
                session,
                workspace_id=workspace_id,
                auth_id=auth_id,
                interval_seconds=interval_seconds,
                next_fire_at=utcnow(),
            ):
                created += 1
    return created


async def _fire(
    session: AsyncSession, schedule_id: int, fire_at: datetime, *, topic_prefix: str
) -> str | None:
    """Claim one due firing; return "started", "joined", "inactive" or None (lost)."""
    schedule = await repository.claim_schedule_firing(
        session, schedule_id, expected_fire_at=fire_at, now=utcnow()
    )
    if schedule is None:
        return None
    status = await repository.binding_status(session, auth_id=schedule.auth_id)
    if status != STATUS_ACTIVE:
        log.info(
            "meta_sync.schedule_skipped",
            schedule_id=schedule_id,
            auth_id=schedule.auth_id,
            binding_status=status,
        )
        return "inactive"
    request = await request_meta_sync(
        session,
        workspace_id=schedule.workspace_id,
        auth_id=schedule.auth_id,
        trigger="schedule",
        topic_prefix=topic_prefix,
        schedule_id=schedule.id,
        task_kind=META_TASK_KIND,
    )
    await repository.set_schedule_last_run(session, schedule.id, request.run.id)
    return "started" if request.created else "joined"


async def run_scheduler(
    sessionmaker: async_sessionmaker[AsyncSession],
    stop: asyncio.Event,
    *,
    topic_prefix: str,
    interval_seconds: int,
    tick_seconds: float,
) -> None:
    """Tick until ``stop``; a failing tick is logged and retried on the next one."""
    while not stop.is_set():
        try:
            await scheduler_tick(
                sessionmaker,
                topic_prefix=topic_prefix,
                interval_seconds=interval_seconds,
            )
        except Exception as exc:
            log.warning("meta_sync.scheduler_failed", error=repr(exc)[:300])
        await _sleep_or_stop(stop, tick_seconds)


async def run_redispatcher(
    sessionmaker: async_sessionmaker[AsyncSession],
    stop: asyncio.Event,
    *,
    topic_prefix: str,
    every_seconds: float,
) -> None:
    """Re-send commands of runs whose worker died or whose command was lost."""
    while not stop.is_set():
        try:
            async with sessionmaker.begin() as session:
                run_ids = await redispatch_stale_runs(
                    session, topic_prefix=topic_prefix
                )
            if run_ids:
                log.info("meta_sync.redispatched", run_ids=run_ids)
        except Exception as exc:
            log.warning("meta_sync.redispatch_failed", error=repr(exc)[:300])
        await _sleep_or_stop(stop, every_seconds)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return
