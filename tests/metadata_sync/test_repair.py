"""``gmv repair advertiser-info``: rehydrate advertisers with holes, infer bc_id, rerun safely."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from meta_sync_support import (
    FAST_RETRY,
    SANDBOX_BASE_URL,
    SandboxBinding,
    add_binding,
    make_sandbox,
    make_worker,
    sync_once,
)
from sqlalchemy import select, update
from typer.testing import CliRunner

from gmv_common.db.models import Advertiser
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_common.tiktok import InMemoryRateLimiter, RateLimiter, TikTokClient
from gmv_metadata_sync.cli import render_text, repair_app, run_repair
from gmv_sandbox.app import create_app


@pytest.fixture
async def synced(sqlite_runtime: Runtime) -> SandboxBinding:
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
    await sync_once(worker, binding)
    await worker.drain(1)
    return binding


def _sandbox_clients(
    binding: SandboxBinding,
) -> Callable[[Settings, RateLimiter], Callable[[str | None], TikTokClient]]:
    def build(
        settings: Settings, limiter: RateLimiter
    ) -> Callable[[str | None], TikTokClient]:
        def factory(base_url: str | None) -> TikTokClient:
            return TikTokClient(
                limiter=limiter,
                settings=settings,
                base_url=base_url or SANDBOX_BASE_URL,
                retry=FAST_RETRY,
                transport=httpx.ASGITransport(app=create_app(binding.state)),
            )

        return factory

    return build


async def _damage(runtime: Runtime, binding: SandboxBinding) -> dict[str, str]:
    """Blank a name (""), a timezone (NULL) and a bc_id; return what they should be."""
    async with runtime.sessionmaker.begin() as session:
        rows = list(
            await session.scalars(
                select(Advertiser)
                .where(Advertiser.auth_id == binding.auth_id)
                .where(Advertiser.owner_bc_id.is_not(None))
                .order_by(Advertiser.advertiser_id)
            )
        )
        first, second, third = rows[:3]
        expected = {
            "name": first.name,
            "timezone": second.timezone,
            "bc_id": third.bc_id,
        }
        await session.execute(
            update(Advertiser).where(Advertiser.id == first.id).values(name="")
        )
        await session.execute(
            update(Advertiser).where(Advertiser.id == second.id).values(timezone=None)
        )
        await session.execute(
            update(Advertiser)
            .where(Advertiser.id == third.id)
            .values(bc_id=None, owner_bc_id=None)
        )
        return {
            "first": first.advertiser_id,
            "second": second.advertiser_id,
            "third": third.advertiser_id,
            **expected,
        }


async def _repair(
    runtime: Runtime, binding: SandboxBinding, *, dry_run: bool = False
) -> object:
    return await run_repair(
        runtime.settings,
        workspace_id=binding.workspace_id,
        auth_id=binding.auth_id,
        qps=1000.0,
        dry_run=dry_run,
        show_progress=False,
        clients=_sandbox_clients(binding),
        shared_limiter=InMemoryRateLimiter(),
    )


async def _advertiser(runtime: Runtime, advertiser_id: str) -> Advertiser:
    async with runtime.sessionmaker() as session:
        row = await session.scalar(
            select(Advertiser).where(Advertiser.advertiser_id == advertiser_id)
        )
    assert row is not None
    return row


async def test_repair_fills_empty_and_null_fields_and_infers_bc_id(
    sqlite_runtime: Runtime, synced: SandboxBinding
) -> None:
    damaged = await _damage(sqlite_runtime, synced)

    report = await _repair(sqlite_runtime, synced)

    assert report.ok
    totals = report.totals()
    assert totals["updated"] >= 3
    assert totals["bc_backfilled"] >= 1
    assert totals["batches"] == 1
    assert (await _advertiser(sqlite_runtime, damaged["first"])).name == damaged["name"]
    second = await _advertiser(sqlite_runtime, damaged["second"])
    assert second.timezone == damaged["timezone"]
    assert (await _advertiser(sqlite_runtime, damaged["third"])).bc_id == damaged[
        "bc_id"
    ]
    assert "Completed: 1 binding(s), 1 API batch(es)" in render_text(report)


async def test_repair_dry_run_writes_nothing(
    sqlite_runtime: Runtime, synced: SandboxBinding
) -> None:
    damaged = await _damage(sqlite_runtime, synced)

    report = await _repair(sqlite_runtime, synced, dry_run=True)

    assert report.totals()["updated"] >= 3
    assert (await _advertiser(sqlite_runtime, damaged["first"])).name == ""
    assert "Dry run, nothing written" in render_text(report)


async def test_repair_rerun_changes_nothing(
    sqlite_runtime: Runtime, synced: SandboxBinding
) -> None:
    await _damage(sqlite_runtime, synced)
    await _repair(sqlite_runtime, synced)

    again = await _repair(sqlite_runtime, synced)

    assert again.ok
    assert again.totals()["updated"] == 0
    assert again.totals()["bc_backfilled"] == 0


async def test_repair_fails_the_binding_when_the_token_was_revoked(
    sqlite_runtime: Runtime, synced: SandboxBinding
) -> None:
    await _damage(sqlite_runtime, synced)
    synced.state.revoke_token(synced.access_token)

    report = await _repair(sqlite_runtime, synced)

    assert not report.ok
    assert report.bindings[0].errors[0].startswith("TOKEN_INVALID")
    assert "[ERROR]" in render_text(report)


def test_repair_command_refuses_a_non_positive_qps() -> None:
    result = CliRunner().invoke(repair_app, ["advertiser-info", "--qps", "0"])

    assert result.exit_code == 2
