"""Helpers shared by the TikTok tests and their worker processes."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
from typing import Any, cast

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Table
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gmv_common.db.base import Base
from gmv_common.db.models.rate_limits import TikTokRateLimit
from gmv_common.db.session import (
    create_engine,
    create_null_pool_engine,
    create_sessionmaker,
)
from gmv_common.settings import Settings
from gmv_common.tiktok import (
    DatabaseRateLimiter,
    InMemoryRateLimiter,
    PacerConfig,
    Priority,
    RateLimiter,
    RetryPolicy,
    TikTokClient,
    TikTokCredentials,
    TikTokError,
)
from gmv_sandbox.app import create_app
from gmv_sandbox.process import warm_transport
from gmv_sandbox.state import SandboxState
from gmv_sandbox.world import WorldSpec


def max_calls_in_one_second(times: Iterable[float]) -> int:
    """The most calls any window ``(t - 1, t]`` holds, counted as the sandbox does."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker process does: ``calls`` bulk ``bc/get`` calls, ``concurrency``
    at a time, through its own database limiter and client."""

    database_url: str
    api_base_url: str
    app_id: str
    access_token: str
    calls: int
    concurrency: int


def run_worker(
    plan: WorkerPlan,
    ready: Queue[str],
    start: EventType,
    results: Queue[dict[str, Any]],
) -> None:
    """Process entry point: report ready, wait for ``start``, work, report results."""
    results.put(asyncio.run(_work(plan, ready, start)))


async def _work(
    plan: WorkerPlan, ready: Queue[str], start: EventType
) -> dict[str, Any]:
    settings = Settings(
        _env_file=None, environment="test", database_url=plan.database_url
    )
    engine = create_engine(settings)
    limiter = DatabaseRateLimiter(create_sessionmaker(engine), default_qps=10)
    credentials = TikTokCredentials(
        app_id=plan.app_id, access_token=SecretStr(plan.access_token)
    )
    finished: list[float] = []
    failures: list[str] = []
    remaining = list(range(plan.calls))

    transport = await warm_transport(plan.api_base_url, plan.concurrency)
    async with TikTokClient(
        limiter=limiter,
        settings=settings,
        base_url=plan.api_base_url,
        transport=transport,
    ) as client:
        await limiter.snapshot(plan.app_id)
        ready.put("ready")
        await asyncio.to_thread(start.wait)

        async def lane() -> None:
            while remaining:
                remaining.pop()
                try:
                    await client.get_business_centers_page(
                        credentials, priority=Priority.BULK, page_size=5
                    )
                    finished.append(time.time())
                except TikTokError as error:
                    failures.append(error.code)

        await asyncio.gather(*(lane() for _ in range(plan.concurrency)))
    await engine.dispose()
    return {"finished": finished, "failures": failures}


LIMITER_TABLE = cast(Table, TikTokRateLimit.__table__)
SANDBOX_API = "http://sandbox.test/open_api/v1.3/"
MARIADB_URL = os.environ.get(
    "GMV_TEST_DATABASE_URL", "mysql+aiomysql://gmv:gmv@127.0.0.1:13306/gmv"
)


async def create_limiter_table(url: str) -> None:
    engine = create_null_pool_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(
                lambda sync: Base.metadata.create_all(sync, tables=[LIMITER_TABLE])
            )
    finally:
        await engine.dispose()


async def create_mariadb_database() -> str:
    base = make_url(MARIADB_URL)
    name = f"gmv_t_{uuid.uuid4().hex[:12]}"
    engine = create_null_pool_engine(base.render_as_string(hide_password=False))
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
    except Exception as exc:
        pytest.fail(f"MariaDB at {base.host}:{base.port} is not reachable ({exc})")
    finally:
        await engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


async def drop_mariadb_database(url: str) -> None:
    name = make_url(url).database
    engine = create_null_pool_engine(
        make_url(MARIADB_URL).render_as_string(hide_password=False)
    )
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        await engine.dispose()


class Sessions:
    """Session factories on their own engines, as separate processes would have."""

    def __init__(self) -> None:
        self._engines: list[AsyncEngine] = []

    def open(self, url: str) -> async_sessionmaker[AsyncSession]:
        settings = Settings(_env_file=None, environment="test", database_url=url)
        engine = create_engine(settings)
        self._engines.append(engine)
        return create_sessionmaker(engine)

    async def close(self) -> None:
        for engine in self._engines:
            await engine.dispose()


@dataclass
class Sandbox:
    """An in-process sandbox with one app (no QPS limit) and an all-advertiser token."""

    state: SandboxState
    app_id: str
    app_secret: str
    access_token: str
    credentials: TikTokCredentials

    def client(
        self,
        *,
        limiter: RateLimiter | None = None,
        max_attempts: int = 6,
        base_url: str = SANDBOX_API,
    ) -> TikTokClient:
        return TikTokClient(
            limiter=limiter or fast_limiter(),
            settings=Settings(_env_file=None, environment="test"),
            base_url=base_url,
            retry=RetryPolicy(
                max_attempts=max_attempts,
                initial_wait_seconds=0.001,
                max_wait_seconds=0.01,
                rate_limit_min_wait_seconds=0.0,
            ),
            transport=httpx.ASGITransport(app=create_app(self.state)),
        )


def fast_limiter() -> InMemoryRateLimiter:
    """A limiter that never holds the functional tests back, even after a 40100."""
    return InMemoryRateLimiter(
        default_qps=10_000, config=PacerConfig(throttle_pause_seconds=0.0)
    )


SANDBOX_SPEC = WorldSpec(
    seed=7,
    business_centers=60,
    advertisers=130,
    stores_per_advertiser=1,
    products_per_store=20,
)
