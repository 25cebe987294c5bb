"""Product sync runs on SQLite against the in-process sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest
from product_sync_support import (
    Pair,
    eligibility_rows,
    expected_items,
    make_runtime,
    product_rows,
    request,
    run_to_end,
    sandbox_executor,
    seed_pair,
    world,
)
from sqlalchemy import select, update

from gmv_common.db.models import Binding, GmvMaxBindingConfig, OutboxMessage, SyncRun
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_sandbox import FaultRule, SandboxState


@pytest.fixture
async def runtime(
    sqlite_url: str, make_settings: Callable[..., Settings], topic_prefix: str
) -> AsyncIterator[Runtime]:
    runtime = make_runtime(
        make_settings(database_url=sqlite_url, kafka_topic_prefix=topic_prefix)
    )
    yield runtime
    await runtime.close()


@pytest.fixture
def state() -> SandboxState:
    return world(products=250)


@pytest.fixture
async def pair(runtime: Runtime, state: SandboxState) -> Pair:
    return await seed_pair(runtime.sessionmaker, runtime.keyring, state)


async def sync(runtime: Runtime, state: SandboxState, pair: Pair, **options: Any):
    requested = await request(
        runtime.sessionmaker,
        pair,
        topic_prefix=runtime.settings.kafka_topic_prefix,
        **options,
    )
    executor = sandbox_executor(runtime, state)
    return await run_to_end(executor, requested.run.id)


async def events(runtime: Runtime, event_type: str) -> list[dict[str, Any]]:
    """Payloads of the outbox messages of one CloudEvents type, oldest first."""
    async with runtime.sessionmaker() as session:
        rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [
            orjson.loads(row.payload)
            for row in rows
            if row.headers["ce_type"] == event_type
        ]


async def test_first_sync_stores_every_eligible_product_like_the_sandbox(
    runtime: Runtime, state: SandboxState, pair: Pair
) -> None:
    run = await sync(runtime, state, pair)

    expected = expected_items(state, pair)
    rows = await product_rows(runtime.sessionmaker, pair)
    assert run.status == "succeeded"
    assert set(rows) == set(expected)
    sample = next(iter(expected.values()))
    row = rows[sample["item_group_id"]]
    assert row.title == sample["title"]
    assert row.min_price == Decimal(sample["min_price"])
    assert row.max_price == Decimal(sample["max_price"])
    assert row.gmv_max_ads_status == sample["gmv_max_ads_status"]
    assert row.is_running_custom_shop_ads == sample["is_running_custom_shop_ads"]
    assert row.raw_json["item_group_id"] == sample["item_group_id"]
    assert run.stats["added"] == len(expected)
    assert run.stats["fetched"] == len(expected)
    assert run.stats["api_calls"] == -(-len(expected) // 100)
    assert run.stats["reads"]["gmv_max"]["complete"] is True
    elig = await eligibility_rows(runtime.sessionmaker, pair)
    assert {key[2] for key in elig} == set(expected)
    assert {key[:2] for key in elig} == {(pair.advertiser_id, "gmv_max")}


async def test_second_sync_of_unchanged_store_rewrites_nothing(
    runtime: Runtime, state: SandboxState, pair: Pair
) -> None:
    await sync(runtime, state, pair)
    before = {
        k: (r.content_hash, r.last_seen_at)
        for k, r in (await product_rows(runtime.sessionmaker, pair)).items()
    }

    run = await sync(runtime, state, pair)

    after = {
        k: (r.content_hash, r.last_seen_at)
        for k, r in (await product_rows(runtime.sessionmaker, pair)).items()
    }
    assert run.status == "succeeded"
    assert after == before
    assert (run.stats["added"], run.stats["updated"], run.stats["removed"]) == (0, 0, 0)
    assert run.stats["unchanged"] == len(before)


async def test_full_sync_tombstones_vanished_products_and_reports_changes(
    runtime: Runtime, state: SandboxState, pair: Pair
) -> None:
    await sync(runtime, state, pair)
    ids = sorted(expected_items(state, pair))
    state.update_product(pair.store_id, ids[0], title="Renamed serum")
    state.remove_product(pair.store_id, ids[1])
    added = state.add_product(pair.store_id, status="AVAILABLE")
    state.set_eligibility(
        pair.store_id,
        added.item_group_id,
        ad_creation_eligible="GMV_MAX",
        eligible=True,
    )

    run = await sync(runtime, state, pair)

    rows = await product_rows(runtime.sessionmaker, pair)
    assert rows[ids[0]].title == "Renamed serum"
    assert rows[ids[1]].deleted_at is not None
    assert rows[added.item_group_id].deleted_at is None
    completed = (await events(runtime, "gmv.sync.completed.v1"))[-1]
    assert completed["run_id"] == run.id
    assert completed["changes"]["products"] == {
        "added": [added.item_group_id],
        "updated": [ids[0]],
        "removed": [ids[1]],
    }
    assert (run.stats["added"], run.stats["updated"], run.stats["removed"]) == (1, 1, 1)


async def test_incremental_sync_keeps_products_that_vanished(
    runtime: Runtime, state: SandboxState, pair: Pair
) -> None:
    await sync(runtime, state, pair)
    gone = sorted(expected_items(state, pair))[0]
    state.remove_product(pair.store_id, gone)

    run = await sync(runtime, state, pair, mode="incremental")

    rows = await product_rows(runtime.sessionmaker, pair)
    assert run.status == "succeeded"
    assert rows[gone].deleted_at is None
    assert run.stats["removed"] == 0


async def test_eligibility_all_reads_both_kinds_and_stores_each(
    runtime: Runtime, state: SandboxState, pair: Pair
) -> None:
    run = await sync(runtime, state, pair, eligibility="all")

    gmv_max = expected_items(state, pair, kind="GMV_MAX")
    ads = expected_items(state, pair, kind="CUSTOM_SHOP_ADS")
    rows = await product_rows(runtime.sessionmaker, pair)
    elig = await eligibility_rows(runtime.sessionmaker, pair)
    assert run.status == "succeeded"
    assert set(rows) == set(gmv_max) | set(ads)
    assert {k[2] for k in elig if k[1] == "gmv_max"} == set(gmv_max)
    assert {k[2] for k in elig if k[1] == "ads"} == set(ads)
    assert run.stats["api_calls"] == -(-len(gmv_max) // 100) + -(-len(ads) // 100)


async def test_revoked_token_fails_run_and_flags_binding_for_reauth(
    runtime: Runtime, state: SandboxState, pair: Pair
) -> None:
    state.revoke_token(pair.access_token)

    run = await sync(runtime, state, pair)

    async with runtime.sessionmaker() as session:
        binding = await session.get(Binding, pair.auth_id)
    assert run.status == "failed"
    assert run.error_code == "TOKEN_INVALID"
    assert binding is not None
    assert binding.status == "needs_reauth"
    assert await product_rows(runtime.sessionmaker, pair) == {}
    failed = (await events(runtime, "gmv.sync.failed.v1"))[-1]
    assert failed["error_code"] == "TOKEN_INVALID"
    assert await events(runtime, "gmv.binding.changed.v1")


async def test_store_without_known_business_center_fails_with_stable_code(
    runtime: Runtime, state: SandboxState
) -> None:
    pair = await seed_pair(
        runtime.sessionmaker, runtime.keyring, state, link_store=False
    )

    run = await sync(runtime, state, pair)

    assert run.status == "failed"
    assert run.error_code == "STORE_BC_UNKNOWN"


async def test_command_business_center_is_used_when_store_is_unknown(
    runtime: Runtime, state: SandboxState
) -> None:
    pair = await seed_pair(
        runtime.sessionmaker, runtime.keyring, state, link_store=False
    )

    run = await sync(runtime, state, pair, bc_id=pair.bc_id)

    assert run.status == "succeeded"
    assert run.stats["added"] == len(expected_items(state, pair))


async def test_manual_and_auto_runs_update_their_own_fields_of_binding_config(
    runtime: Runtime, state: SandboxState, pair: Pair
) -> None:
    async with runtime.sessionmaker.begin() as session:
        session.add(
            GmvMaxBindingConfig(
                workspace_id=pair.workspace_id,
                auth_id=pair.auth_id,
                bc_id=pair.bc_id,
                advertiser_id=pair.advertiser_id,
                store_id=pair.store_id,
            )
        )

    manual = await sync(runtime, state, pair)
    auto = await sync(runtime, state, pair, trigger="auto")

    async with runtime.sessionmaker() as session:
        config = await session.scalar(select(GmvMaxBindingConfig))
    assert config is not None
    assert config.last_manual_run_id == manual.id
    assert config.last_manual_summary["added"] == manual.stats["added"]
    assert config.last_auto_run_id == auto.id
    assert config.last_auto_summary["status"] == "succeeded"
    assert config.last_auto_sync_at is not None


async def test_listing_that_keeps_failing_fails_run_and_writes_nothing(
    runtime: Runtime, state: SandboxState, pair: Pair
) -> None:
    await sync(runtime, state, pair)
    ids = sorted(expected_items(state, pair))
    state.update_product(pair.store_id, ids[0], title="Never stored")
    state.remove_product(pair.store_id, ids[1])
    state.add_fault(
        FaultRule(
            endpoint="store/product/get", error_code=50000, error_rate=1.0, remaining=50
        )
    )

    run = await sync(runtime, state, pair)

    rows = await product_rows(runtime.sessionmaker, pair)
    assert run.status == "failed"
    assert run.error_code == "TIKTOK_UNAVAILABLE"
    assert rows[ids[0]].title != "Never stored"
    assert all(row.deleted_at is None for row in rows.values())


async def test_run_claimed_too_many_times_fails_instead_of_looping(
    runtime: Runtime, state: SandboxState, pair: Pair
) -> None:
    requested = await request(
        runtime.sessionmaker, pair, topic_prefix=runtime.settings.kafka_topic_prefix
    )
    async with runtime.sessionmaker.begin() as session:
        await session.execute(
            update(SyncRun).where(SyncRun.id == requested.run.id).values(attempts=5)
        )

    run = await run_to_end(sandbox_executor(runtime, state), requested.run.id)

    assert run.status == "failed"
    assert run.error_code == "RUN_ATTEMPTS_EXHAUSTED"
    assert await product_rows(runtime.sessionmaker, pair) == {}
