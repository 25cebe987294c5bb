"""Product auto-sync from the GMV Max binding config, on the real MariaDB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from product_sync_support import (
    Pair,
    make_runtime,
    request,
    run_to_end,
    sandbox_executor,
    seed_pair,
    world,
)
from sqlalchemy import select, update

from gmv_common.db.base import utcnow
from gmv_common.db.models import Binding, GmvMaxBindingConfig, Schedule, SyncRun
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_product_sync.scheduler import (
    AutoSyncScheduler,
    apply_auto_sync_config,
    next_fire_after,
)
from gmv_sandbox import SandboxState

pytestmark = pytest.mark.mariadb

MIN_INTERVAL = 900


@pytest.fixture
async def runtime(
    mariadb_url: str, make_settings: Callable[..., Settings], topic_prefix: str
) -> AsyncIterator[Runtime]:
    runtime = make_runtime(
        make_settings(
            database_url=mariadb_url,
            kafka_topic_prefix=topic_prefix,
            product_auto_sync_min_interval_seconds=MIN_INTERVAL,
        )
    )
    yield runtime
    await runtime.close()


@pytest.fixture
def state() -> SandboxState:
    return world(products=120)


@pytest.fixture
async def pair(runtime: Runtime, state: SandboxState) -> Pair:
    return await seed_pair(runtime.sessionmaker, runtime.keyring, state)


async def save_config(
    runtime: Runtime, pair: Pair, **fields: object
) -> Schedule | None:
    """What the gateway's ``PUT .../gmvmax/config`` does: upsert, then apply."""
    async with runtime.sessionmaker.begin() as session:
        config = await session.scalar(
            select(GmvMaxBindingConfig).where(
                GmvMaxBindingConfig.auth_id == pair.auth_id
            )
        )
        if config is None:
            config = GmvMaxBindingConfig(
                workspace_id=pair.workspace_id, auth_id=pair.auth_id
            )
            session.add(config)
        for name, value in fields.items():
            setattr(config, name, value)
        await session.flush()
        return await apply_auto_sync_config(
            session, config, min_interval_seconds=MIN_INTERVAL
        )


def on(pair: Pair, **fields: object) -> dict[str, object]:
    return {
        "bc_id": pair.bc_id,
        "advertiser_id": pair.advertiser_id,
        "store_id": pair.store_id,
        "auto_sync_products": True,
        **fields,
    }


async def runs(runtime: Runtime) -> list[SyncRun]:
    async with runtime.sessionmaker() as session:
        return list(await session.scalars(select(SyncRun).order_by(SyncRun.id)))


async def test_enabling_auto_sync_creates_one_schedule_at_the_minimum_interval(
    runtime: Runtime, pair: Pair
) -> None:
    schedule = await save_config(
        runtime, pair, **on(pair, auto_sync_interval_seconds=60)
    )
    again = await save_config(runtime, pair, **on(pair, auto_sync_interval_seconds=60))

    assert schedule is not None
    assert again is not None
    assert again.id == schedule.id
    assert schedule.enabled
    assert schedule.task_kind == "ttb.sync.products"
    assert schedule.interval_seconds == MIN_INTERVAL
    assert schedule.params == {
        "advertiser_id": pair.advertiser_id,
        "store_id": pair.store_id,
        "bc_id": pair.bc_id,
        "eligibility": "gmv_max",
    }


async def test_disabling_auto_sync_disables_the_schedule(
    runtime: Runtime, pair: Pair
) -> None:
    await save_config(runtime, pair, **on(pair))

    schedule = await save_config(runtime, pair, auto_sync_products=False)
    fired = await AutoSyncScheduler(runtime.sessionmaker, runtime.settings).fire_due()

    assert schedule is not None
    assert not schedule.enabled
    assert fired == []


async def test_due_schedule_fires_exactly_once_across_several_schedulers(
    runtime: Runtime, pair: Pair
) -> None:
    await save_config(runtime, pair, **on(pair, auto_sync_interval_seconds=3600))
    schedulers = [
        AutoSyncScheduler(runtime.sessionmaker, runtime.settings) for _ in range(4)
    ]

    fired = await asyncio.gather(*(s.fire_due() for s in schedulers))
    fired_again = await asyncio.gather(*(s.fire_due() for s in schedulers))

    all_runs = await runs(runtime)
    assert sorted(run_id for ids in fired for run_id in ids) == [all_runs[0].id]
    assert fired_again == [[], [], [], []]
    assert len(all_runs) == 1
    assert all_runs[0].trigger == "auto"
    async with runtime.sessionmaker() as session:
        schedule = await session.scalar(select(Schedule))
    assert schedule is not None
    assert schedule.last_run_id == all_runs[0].id
    assert schedule.next_fire_at > utcnow() + timedelta(seconds=3500)


async def test_auto_fire_joins_a_manual_run_already_in_progress(
    runtime: Runtime, pair: Pair
) -> None:
    manual = await request(
        runtime.sessionmaker, pair, topic_prefix=runtime.settings.kafka_topic_prefix
    )
    await save_config(runtime, pair, **on(pair))

    fired = await AutoSyncScheduler(runtime.sessionmaker, runtime.settings).fire_due()

    assert fired == [manual.run.id]
    assert len(await runs(runtime)) == 1


async def test_auto_run_records_its_result_on_the_binding_config(
    runtime: Runtime, state: SandboxState, pair: Pair
) -> None:
    await save_config(runtime, pair, **on(pair))
    [run_id] = await AutoSyncScheduler(
        runtime.sessionmaker, runtime.settings
    ).fire_due()

    finished = await run_to_end(sandbox_executor(runtime, state), run_id)

    async with runtime.sessionmaker() as session:
        config = await session.scalar(select(GmvMaxBindingConfig))
    assert finished.status == "succeeded"
    assert config is not None
    assert config.last_auto_run_id == run_id
    assert config.last_auto_summary["added"] == finished.stats["added"]
    assert config.last_manual_run_id is None


async def test_schedule_of_binding_needing_reauth_advances_without_a_run(
    runtime: Runtime, pair: Pair
) -> None:
    await save_config(runtime, pair, **on(pair))
    async with runtime.sessionmaker.begin() as session:
        await session.execute(
            update(Binding)
            .where(Binding.id == pair.auth_id)
            .values(status="needs_reauth")
        )

    fired = await AutoSyncScheduler(runtime.sessionmaker, runtime.settings).fire_due()

    async with runtime.sessionmaker() as session:
        schedule = await session.scalar(select(Schedule))
    assert fired == []
    assert await runs(runtime) == []
    assert schedule is not None
    assert schedule.next_fire_at > utcnow()


def test_missed_fires_are_skipped_to_the_next_slot_after_now() -> None:
    due = utcnow() - timedelta(seconds=3 * 900 + 10)

    upcoming = next_fire_after(due, 900, utcnow())

    assert utcnow() < upcoming <= utcnow() + timedelta(seconds=900)
