"""Product auto-sync: one ``ttb.sync.products`` schedule per binding, fired exactly once.

The gateway calls ``apply_auto_sync_config`` after saving a binding's GMV Max config; it
creates, updates or disables the binding's schedule in the same transaction. Every
product-sync instance runs ``AutoSyncScheduler``; a due schedule is taken by a
conditional update of ``next_fire_at`` (only one instance wins a given due time), and the
winner requests a sync with trigger ``auto`` that joins a run already queued or running.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.db.base import utcnow
from gmv_common.db.models import Binding, GmvMaxBindingConfig, Schedule
from gmv_common.logging import bound_context, get_logger
from gmv_common.settings import Settings, get_settings
from gmv_common.sync.runs import request_product_sync
from gmv_product_sync import repository

log = get_logger(__name__)

TASK_KIND = "ttb.sync.products"
DUE_BATCH = 100


def auto_sync_interval(
    config: GmvMaxBindingConfig, *, min_interval_seconds: int
) -> int:
    return max(int(config.auto_sync_interval_seconds or 0), min_interval_seconds)


async def apply_auto_sync_config(
    session: AsyncSession,
    config: GmvMaxBindingConfig,
    *,
    min_interval_seconds: int | None = None,
) -> Schedule | None:
    """Make the binding's product schedule follow ``config``; returns it (None if none).

    On with an advertiser and a store: the schedule is enabled with the pair and an
    interval of at least ``min_interval_seconds`` (default: the setting
    ``product_auto_sync_min_interval_seconds``); a newly enabled one fires at once.
    Otherwise an existing schedule is disabled. Flushes; never commits.
    """
    if min_interval_seconds is None:
        min_interval_seconds = get_settings().product_auto_sync_min_interval_seconds
    wanted = bool(
        config.auto_sync_products and config.advertiser_id and config.store_id
    )
    schedule = await repository.schedule_of(
        session,
        workspace_id=config.workspace_id,
        auth_id=config.auth_id,
        task_kind=TASK_KIND,
    )
    if not wanted:
        if schedule is not None and schedule.enabled:
            schedule.enabled = False
            await session.flush()
            log.info("product_auto_sync.disabled", schedule_id=schedule.id)
        return schedule

    now = utcnow()
    interval = auto_sync_interval(config, min_interval_seconds=min_interval_seconds)
    params: dict[str, Any] = {
        "advertiser_id": config.advertiser_id,
        "store_id": config.store_id,
        "bc_id": config.bc_id,
        "eligibility": config.eligibility or "gmv_max",
    }
    if schedule is None:
        schedule = await _insert_schedule(session, config, params, interval, now)
        log.info(
            "product_auto_sync.enabled", schedule_id=schedule.id, interval=interval
        )
        return schedule

    if not schedule.enabled or schedule.params != params:
        schedule.next_fire_at = now
    elif schedule.interval_seconds != interval:
        base = schedule.last_fired_at or now
        schedule.next_fire_at = max(now, base + timedelta(seconds=interval))
    schedule.enabled = True
    schedule.params = params
    schedule.interval_seconds = interval
    await session.flush()
    log.info("product_auto_sync.updated", schedule_id=schedule.id, interval=interval)
    return schedule


async def _insert_schedule(
    session: AsyncSession,
    config: GmvMaxBindingConfig,
    params: dict[str, Any],
    interval: int,
    now: datetime,
) -> Schedule:
    schedule = Schedule(
        workspace_id=config.workspace_id,
        auth_id=config.auth_id,
        task_kind=TASK_KIND,
        params=params,
        interval_seconds=interval,
        enabled=True,
        next_fire_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(schedule)
            await session.flush()
    except IntegrityError:
        # Another request created it a moment ago: take that row and update it.
        existing = await repository.schedule_of(
            session,
            workspace_id=config.workspace_id,
            auth_id=config.auth_id,
            task_kind=TASK_KIND,
        )
        assert existing is not None
        existing.enabled = True
        existing.params = params
        existing.interval_seconds = interval
        await session.flush()
        return existing
    return schedule


def next_fire_after(due_at: datetime, interval_seconds: int, now: datetime) -> datetime:
    """The first fire time after ``now`` on the schedule's grid (missed fires are skipped)."""
    step = timedelta(seconds=max(1, interval_seconds))
    if due_at > now:
        return due_at + step
    missed = int((now - due_at) / step) + 1
    return due_at + missed * step


class AutoSyncScheduler:
    """Fires due product schedules; several instances may run side by side."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings

    async def run(self, stop: asyncio.Event) -> None:
        log.info("product_auto_sync.scheduler_started")
        while not stop.is_set():
            try:
                await self.fire_due()
            except Exception as exc:
                log.warning("product_auto_sync.tick_failed", error=repr(exc)[:300])
            try:
                await asyncio.wait_for(
                    stop.wait(), self._settings.scheduler_tick_seconds
                )
            except TimeoutError:
                continue

    async def fire_due(self) -> list[int]:
        """Fire every due schedule this instance wins; returns the run ids requested."""
        async with self._sessionmaker() as session:
            due = await repository.due_schedules(
                session, task_kind=TASK_KIND, now=utcnow(), limit=DUE_BATCH
            )
        run_ids = []
        for schedule in due:
            with bound_context(
                workspace_id=schedule.workspace_id,
                auth_id=schedule.auth_id,
                schedule_id=schedule.id,
            ):
                run_id = await self._fire(schedule)
            if run_id is not None:
                run_ids.append(run_id)
        return run_ids

    async def _fire(self, schedule: Schedule) -> int | None:
        async with self._sessionmaker.begin() as session:
            now = utcnow()
            claimed = await repository.claim_fire(
                session,
                schedule.id,
                due_at=schedule.next_fire_at,
                next_fire_at=next_fire_after(
                    schedule.next_fire_at, schedule.interval_seconds, now
                ),
                now=now,
            )
            if not claimed:
                return None
            config = await repository.binding_config(
                session, workspace_id=schedule.workspace_id, auth_id=schedule.auth_id
            )
            binding = await session.get(Binding, schedule.auth_id)
            pair = _wanted_pair(config, binding)
            if config is None or pair is None:
                log.info("product_auto_sync.skipped", reason="config_or_binding")
                return None
            advertiser_id, store_id = pair
            request = await request_product_sync(
                session,
                workspace_id=schedule.workspace_id,
                auth_id=schedule.auth_id,
                advertiser_id=advertiser_id,
                store_id=store_id,
                bc_id=config.bc_id,
                eligibility=config.eligibility or "gmv_max",
                trigger="auto",
                topic_prefix=self._settings.kafka_topic_prefix,
                mode="full",
                idempotency_key=(
                    f"auto:{schedule.id}:{int(schedule.next_fire_at.timestamp())}"
                ),
                schedule_id=schedule.id,
                on_active="join",
            )
            await repository.record_schedule_run(session, schedule.id, request.run.id)
        log.info(
            "product_auto_sync.fired",
            run_id=request.run.id,
            joined=not request.created,
        )
        return request.run.id


def _wanted_pair(
    config: GmvMaxBindingConfig | None, binding: Binding | None
) -> tuple[str, str] | None:
    """The advertiser/store pair to sync, if auto-sync is still on for a usable binding."""
    if config is None or binding is None or not config.auto_sync_products:
        return None
    if binding.workspace_id != config.workspace_id or binding.status != "active":
        return None
    if not config.advertiser_id or not config.store_id:
        return None
    return config.advertiser_id, config.store_id
