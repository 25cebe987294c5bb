"""Fixtures of the TikTok client and rate limiter tests.

The limiter's table is created with ``create_all`` on a database of the test's own: a
SQLite file, or a fresh database on the real MariaDB (dropped afterwards).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gmv_common.db.models.rate_limits import TikTokRateLimit
from gmv_common.db.session import (
    create_engine,
    create_null_pool_engine,
    create_sessionmaker,
)
from gmv_common.settings import Settings
from gmv_common.tiktok import (
    InMemoryRateLimiter,
    PacerConfig,
    RateLimiter,
    RetryPolicy,
    TikTokClient,
    TikTokCredentials,
)
from gmv_sandbox.app import create_app
from gmv_sandbox.state import SandboxState
from gmv_sandbox.world import WorldSpec

SANDBOX_API = "http://sandbox.test/open_api/v1.3/"
MARIADB_URL = os.environ.get(
    "GMV_TEST_DATABASE_URL", "mysql+aiomysql://gmv:gmv@127.0.0.1:13306/gmv"
)


async def create_limiter_table(url: str) -> None:
    engine = create_null_pool_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(TikTokRateLimit.__table__.create)
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


@pytest.fixture
async def limiter_sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'limiter.db'}"
    await create_limiter_table(url)
    return url


@pytest.fixture
async def limiter_mariadb_url() -> AsyncIterator[str]:
    url = await create_mariadb_database()
    await create_limiter_table(url)
    yield url
    await drop_mariadb_database(url)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
async def limiter_db_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    """The limiter table on SQLite, then on the real MariaDB."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'limiter.db'}"
        await create_limiter_table(url)
        yield url
        return
    url = await create_mariadb_database()
    await create_limiter_table(url)
    yield url
    await drop_mariadb_database(url)


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


@pytest.fixture
async def sessions() -> AsyncIterator[Sessions]:
    opened = Sessions()
    yield opened
    await opened.close()


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


@pytest.fixture
def sandbox() -> Sandbox:
    state = SandboxState.generate(SANDBOX_SPEC)
    developer_app = state.create_app(qps=0)
    token = state.issue_token(developer_app.app_id)
    return Sandbox(
        state=state,
        app_id=developer_app.app_id,
        app_secret=developer_app.secret,
        access_token=token.access_token,
        credentials=TikTokCredentials(
            app_id=developer_app.app_id,
            access_token=SecretStr(token.access_token),
            app_secret=SecretStr(developer_app.secret),
        ),
    )
