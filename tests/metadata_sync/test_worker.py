"""The meta-sync worker on SQLite with the in-process sandbox: the chain end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from meta_sync_support import (
    SandboxBinding,
    add_binding,
    assert_matches_sandbox,
    make_sandbox,
    make_worker,
    request_run,
    stored_graph,
    sync_once,
)
from sqlalchemy import select, update

from gmv_common.db.models import Advertiser, Binding, OutboxMessage, Store, SyncRun
from gmv_common.runtime import Runtime
from gmv_common.tiktok import InMemoryRateLimiter
from gmv_metadata_sync.worker import MetaSyncWorker
from gmv_sandbox.faults import FaultRule


@pytest.fixture
async def binding(sqlite_runtime: Runtime) -> SandboxBinding:
    state, app_id, token = make_sandbox(business_centers=3, advertisers=12)
    return await add_binding(
        sqlite_runtime.sessionmaker,
        sqlite_runtime.keyring,
        state,
        app_id=app_id,
        access_token=token,
    )


@pytest.fixture
async def worker(
    sqlite_runtime: Runtime, binding: SandboxBinding
) -> AsyncIterator[MetaSyncWorker]:
    worker = make_worker(
        sqlite_runtime.sessionmaker,
        sqlite_runtime.keyring,
        sqlite_runtime.settings,
        InMemoryRateLimiter(),
        binding.state,
    )
    yield worker
    await worker.drain(1)


async def _graph(runtime: Runtime, binding: SandboxBinding) -> dict[str, object]:
    return await stored_graph(
        runtime.sessionmaker,
        workspace_id=binding.workspace_id,
        auth_id=binding.auth_id,
    )


async def _events(runtime: Runtime, event_type: str) -> list[dict[str, object]]:
    async with runtime.sessionmaker() as session:
        rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [
            orjson.loads(row.payload)
            for row in rows
            if row.headers["ce_type"] == event_type
        ]


async def test_meta_sync_stores_the_whole_sandbox_tree(
    sqlite_runtime: Runtime, binding: SandboxBinding, worker: MetaSyncWorker
) -> None:
    run = await sync_once(worker, binding)

    assert (run.status, run.error_code) == ("succeeded", None), run.error_message
    assert_matches_sandbox(await _graph(sqlite_runtime, binding), binding.expected())
    stats = run.stats["entities"]["advertisers"]
    assert stats == {
        "fetched": 12,
        "added": 12,
        "updated": 0,
        "removed": 0,
        "unchanged": 0,
    }


async def test_second_sync_reports_exact_added_updated_removed(
    sqlite_runtime: Runtime, binding: SandboxBinding, worker: MetaSyncWorker
) -> None:
    await sync_once(worker, binding)
    world = binding.state.world
    advertiser_ids = sorted(world.advertisers)
    renamed, removed = advertiser_ids[0], advertiser_ids[1]
    binding.state.update_advertiser(renamed, name="Renamed Ads")
    binding.state.remove_advertiser(removed)
    owner = next(iter(world.business_centers))
    added = binding.state.add_advertiser(owner_bc_id=owner, stores=1)

    run = await sync_once(worker, binding)

    changes = run.stats["entities"]["advertisers"]
    assert changes["added"] == 1
    assert changes["updated"] == 1
    assert changes["removed"] == 1
    assert changes["unchanged"] == 10
    graph = await _graph(sqlite_runtime, binding)
    assert_matches_sandbox(graph, binding.expected())
    completed = [
        e
        for e in await _events(sqlite_runtime, "gmv.sync.completed.v1")
        if e["run_id"] == run.id
    ]
    assert completed[0]["changes"]["advertisers"] == {
        "added": [added.advertiser_id],
        "updated": [renamed],
        "removed": [removed],
    }


async def test_removed_advertiser_comes_back_when_it_reappears(
    sqlite_runtime: Runtime, binding: SandboxBinding, worker: MetaSyncWorker
) -> None:
    await sync_once(worker, binding)
    victim = sorted(binding.state.world.advertisers)[3]
    binding.state.revoke_advertiser(binding.access_token, victim)
    await sync_once(worker, binding)
    assert victim not in (await _graph(sqlite_runtime, binding))["advertisers"]

    token = binding.state.auths.tokens[binding.access_token]
    token.revoked_advertisers.discard(victim)
    run = await sync_once(worker, binding)

    assert run.stats["entities"]["advertisers"]["added"] == 1
    assert victim in (await _graph(sqlite_runtime, binding))["advertisers"]
    async with sqlite_runtime.sessionmaker() as session:
        rows = await session.scalars(
            select(Advertiser).where(Advertiser.advertiser_id == victim)
        )
        assert len(list(rows)) == 1


async def test_failed_store_read_makes_the_run_partial_and_tombstones_no_store(
    sqlite_runtime: Runtime, binding: SandboxBinding, worker: MetaSyncWorker
) -> None:
    await sync_once(worker, binding)
    stores_before = set((await _graph(sqlite_runtime, binding))["stores"])
    binding.state.add_fault(
        FaultRule(endpoint="store/list", error_code=40001, error_rate=1.0, remaining=1)
    )

    run = await sync_once(worker, binding)

    assert run.status == "partial"
    assert run.error_code == "PARTIAL_READ"
    errors = run.stats["errors"]
    assert [(e["phase"], e["code"], e["advertiser_count"]) for e in errors] == [
        ("stores", "TIKTOK_PERMISSION_DENIED", 1)
    ]
    assert set((await _graph(sqlite_runtime, binding))["stores"]) == stores_before
    assert run.stats["entities"]["stores"]["removed"] == 0


async def test_revoked_token_fails_the_run_and_flags_the_binding(
    sqlite_runtime: Runtime, binding: SandboxBinding, worker: MetaSyncWorker
) -> None:
    binding.state.revoke_token(binding.access_token)

    run = await sync_once(worker, binding)

    assert (run.status, run.error_code) == ("failed", "TOKEN_INVALID")
    async with sqlite_runtime.sessionmaker() as session:
        stored = await session.get(Binding, binding.auth_id)
    assert stored is not None
    assert stored.status == "needs_reauth"
    changed = await _events(sqlite_runtime, "gmv.binding.changed.v1")
    assert [e["status"] for e in changed] == ["needs_reauth"]
    failed = await _events(sqlite_runtime, "gmv.sync.failed.v1")
    assert failed[-1]["error_code"] == "TOKEN_INVALID"


async def test_successful_sync_returns_a_flagged_binding_to_active(
    sqlite_runtime: Runtime, binding: SandboxBinding, worker: MetaSyncWorker
) -> None:
    async with sqlite_runtime.sessionmaker.begin() as session:
        stored = await session.get(Binding, binding.auth_id)
        assert stored is not None
        stored.status = "needs_reauth"

    run = await sync_once(worker, binding)

    assert run.status == "succeeded"
    async with sqlite_runtime.sessionmaker() as session:
        stored = await session.get(Binding, binding.auth_id)
    assert stored is not None
    assert stored.status == "active"
    changed = await _events(sqlite_runtime, "gmv.binding.changed.v1")
    assert [e["status"] for e in changed] == ["active"]


async def test_orphan_advertiser_is_never_filed_under_the_first_center(
    sqlite_runtime: Runtime, binding: SandboxBinding, worker: MetaSyncWorker
) -> None:
    orphan = binding.state.add_advertiser(owner_bc_id=None, stores=0)

    await sync_once(worker, binding)

    graph = await _graph(sqlite_runtime, binding)
    row = graph["advertisers"][orphan.advertiser_id]
    assert row.bc_id is None
    assert row.owner_bc_id is None
    assert not [k for k in graph["bc_links"] if k[1] == orphan.advertiser_id]


async def test_advertiser_without_owner_takes_its_single_store_center(
    sqlite_runtime: Runtime, binding: SandboxBinding, worker: MetaSyncWorker
) -> None:
    partner = sorted(binding.state.world.business_centers)[-1]
    orphan = binding.state.add_advertiser(
        owner_bc_id=None, partner_bc_ids=[partner], stores=1
    )
    store = binding.state.world.stores_of(orphan.advertiser_id)[0]

    await sync_once(worker, binding)

    graph = await _graph(sqlite_runtime, binding)
    row = graph["advertisers"][orphan.advertiser_id]
    assert row.bc_id == store.store_authorized_bc_id
    link = graph["bc_links"][(store.store_authorized_bc_id, orphan.advertiser_id)]
    assert (link.relation, link.source) == ("store_authorized", "store.list")


async def test_empty_upstream_strings_are_stored_as_null(
    sqlite_runtime: Runtime, binding: SandboxBinding, worker: MetaSyncWorker
) -> None:
    advertiser_id = sorted(binding.state.world.advertisers)[0]
    binding.state.update_advertiser(advertiser_id, company="", industry="  ")
    store_id = next(iter(binding.state.world.stores))
    binding.state.update_store(store_id, store_code="")

    await sync_once(worker, binding)

    async with sqlite_runtime.sessionmaker() as session:
        advertiser = await session.scalar(
            select(Advertiser).where(Advertiser.advertiser_id == advertiser_id)
        )
        store = await session.scalar(select(Store).where(Store.store_id == store_id))
    assert advertiser is not None
    assert store is not None
    assert (advertiser.company, advertiser.industry) == (None, None)
    assert store.store_code is None


async def test_unchanged_second_sync_rewrites_nothing_but_last_seen(
    sqlite_runtime: Runtime, binding: SandboxBinding, worker: MetaSyncWorker
) -> None:
    await sync_once(worker, binding)
    before = await _graph(sqlite_runtime, binding)
    seen_before = {k: r.last_seen_at for k, r in before["advertisers"].items()}

    run = await sync_once(worker, binding)

    for kind, counts in run.stats["entities"].items():
        assert counts["added"] == counts["updated"] == counts["removed"] == 0, kind
    after = await _graph(sqlite_runtime, binding)
    for key, row in after["advertisers"].items():
        assert row.last_seen_at > seen_before[key]
        assert row.hydrated_at == before["advertisers"][key].hydrated_at


async def test_overlong_upstream_name_is_cut_to_its_column(
    sqlite_runtime: Runtime, binding: SandboxBinding, worker: MetaSyncWorker
) -> None:
    advertiser_id = sorted(binding.state.world.advertisers)[0]
    binding.state.update_advertiser(advertiser_id, name="N" * 300)

    run = await sync_once(worker, binding)

    assert run.status == "succeeded"
    row = (await _graph(sqlite_runtime, binding))["advertisers"][advertiser_id]
    assert row.name == "N" * 255
    assert "write" in run.stats["phase_seconds"]


async def test_failed_hydration_batch_keeps_what_was_known(
    sqlite_runtime: Runtime, binding: SandboxBinding, worker: MetaSyncWorker
) -> None:
    await sync_once(worker, binding)
    before = (await _graph(sqlite_runtime, binding))["advertisers"]
    renamed = sorted(binding.state.world.advertisers)[0]
    binding.state.update_advertiser(renamed, name="Not read this time")
    binding.state.add_fault(
        FaultRule(
            endpoint="advertiser/info", error_code=40001, error_rate=1.0, remaining=1
        )
    )

    run = await sync_once(worker, binding)

    assert run.status == "partial"
    assert [e["phase"] for e in run.stats["errors"]] == ["hydration"]
    assert run.stats["entities"]["advertisers"]["removed"] == 0
    after = (await _graph(sqlite_runtime, binding))["advertisers"]
    assert set(after) == set(before)
    assert after[renamed].name == before[renamed].name
    assert after[renamed].timezone == before[renamed].timezone


async def test_runs_of_two_bindings_execute_side_by_side(
    sqlite_runtime: Runtime, binding: SandboxBinding, worker: MetaSyncWorker
) -> None:
    other = await add_binding(
        sqlite_runtime.sessionmaker,
        sqlite_runtime.keyring,
        binding.state,
        app_id=binding.app_id,
        access_token=binding.access_token,
        workspace_name="Second agency",
    )
    prefix = worker.config.topic_prefix
    first_id = await request_run(
        sqlite_runtime.sessionmaker, binding, topic_prefix=prefix
    )
    second_id = await request_run(
        sqlite_runtime.sessionmaker, other, topic_prefix=prefix
    )

    first = await worker.submit(first_id)
    second = await worker.submit(second_id)

    assert first is not None
    assert second is not None
    assert worker.running == 2
    await asyncio.gather(first, second)
    for run_id in (first_id, second_id):
        async with sqlite_runtime.sessionmaker() as session:
            row = await session.get(SyncRun, run_id)
        assert row is not None
        assert row.status == "succeeded"


async def test_full_worker_leaves_the_run_queued_for_later(
    sqlite_runtime: Runtime, binding: SandboxBinding
) -> None:
    worker = make_worker(
        sqlite_runtime.sessionmaker,
        sqlite_runtime.keyring,
        sqlite_runtime.settings,
        InMemoryRateLimiter(),
        binding.state,
        max_concurrent_runs=1,
    )
    other = await add_binding(
        sqlite_runtime.sessionmaker,
        sqlite_runtime.keyring,
        binding.state,
        app_id=binding.app_id,
        access_token=binding.access_token,
        workspace_name="Second agency",
    )
    prefix = worker.config.topic_prefix
    first_id = await request_run(
        sqlite_runtime.sessionmaker, binding, topic_prefix=prefix
    )
    second_id = await request_run(
        sqlite_runtime.sessionmaker, other, topic_prefix=prefix
    )

    running = await worker.submit(first_id)
    refused = await worker.submit(second_id)

    assert running is not None
    assert refused is None
    async with sqlite_runtime.sessionmaker() as session:
        queued = await session.get(SyncRun, second_id)
    assert queued is not None
    assert queued.status == "queued"
    await worker.drain(30)


async def test_run_claimed_too_often_fails_instead_of_running_again(
    sqlite_runtime: Runtime, binding: SandboxBinding, worker: MetaSyncWorker
) -> None:
    prefix = worker.config.topic_prefix
    run_id = await request_run(
        sqlite_runtime.sessionmaker, binding, topic_prefix=prefix
    )
    async with sqlite_runtime.sessionmaker.begin() as session:
        await session.execute(
            update(SyncRun).where(SyncRun.id == run_id).values(attempts=5)
        )

    task = await worker.submit(run_id)
    assert task is not None
    await task

    async with sqlite_runtime.sessionmaker() as session:
        row = await session.get(SyncRun, run_id)
    assert row is not None
    assert (row.status, row.error_code) == ("failed", "RUN_ATTEMPTS_EXHAUSTED")
    assert binding.state.counters()["total_calls"] == 0
