"""Fixtures of the gateway tests: a runtime, the app with its lifespan, clients and factories.

The app runs in-process (httpx ``ASGITransport`` inside ``LifespanManager``) on a migrated
SQLite file or, for tests marked ``mariadb``, on a fresh database of the real MariaDB. TikTok
is the sandbox, in-process.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from gateway_support import API_BASE, Seed, csrf_headers, login

from gmv_common.bus.memory import InMemoryBus
from gmv_common.db import migrate
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_common.tiktok import InMemoryRateLimiter
from gmv_gateway.app import create_app
from gmv_gateway.tiktok import TikTokAccess
from gmv_sandbox import DeveloperApp, SandboxState, WorldSpec
from gmv_sandbox import create_app as create_sandbox_app

SMALL_WORLD = WorldSpec(
    seed=5,
    business_centers=2,
    advertisers=4,
    stores_per_advertiser=1,
    products_per_store=5,
)


@pytest.fixture
def sandbox() -> SandboxState:
    return SandboxState.generate(SMALL_WORLD)


@pytest.fixture
def sandbox_app(sandbox: SandboxState) -> DeveloperApp:
    return sandbox.create_app(qps=0)


@pytest.fixture(scope="session")
async def migrated_sqlite_template(
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """One migrated SQLite file per run; each test gets a copy (migrating costs ~1 s)."""
    path = tmp_path_factory.mktemp("gateway-template") / "template.db"
    await migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def database_url(migrated_sqlite_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "gateway.db"
    shutil.copyfile(migrated_sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
def gateway_settings(
    make_settings: Callable[..., Settings], database_url: str
) -> Settings:
    return make_settings(
        database_url=database_url,
        cors_origins=["http://spa.test"],
        public_base_url="http://api.test",
        options_refresh_wait_seconds=1.0,
        tiktok_max_attempts=1,
    )


@pytest.fixture
async def runtime(gateway_settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime.create(gateway_settings, bus=InMemoryBus(default_partitions=2))
    await runtime.start()
    yield runtime
    await runtime.close()


@pytest.fixture
async def app(runtime: Runtime, sandbox: SandboxState) -> AsyncIterator[Any]:
    transport = httpx.ASGITransport(app=create_sandbox_app(sandbox))

    def factory(rt: Runtime) -> TikTokAccess:
        return TikTokAccess(
            rt, InMemoryRateLimiter(default_qps=1000.0), transport=transport
        )

    application = create_app(runtime, tiktok_factory=factory)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as c:
        yield c


@pytest.fixture
async def seed(runtime: Runtime) -> Seed:
    return Seed(runtime)


__all__ = ["API_BASE", "csrf_headers", "login"]
