"""What the benchmarks share: the MariaDB server they use, a scratch database on it, a binding.

Every benchmark works in a database of its own, created on the server of
``GMV_BENCH_DATABASE_URL`` (else ``GMV_TEST_DATABASE_URL``, else the local test server
that ``deploy/local/up`` starts) and dropped afterwards, so runs never see each other's rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from gmv_common.bindings import seal_access_token, seal_app_secret
from gmv_common.db import migrate
from gmv_common.db.models import Binding, ProviderApp, Workspace
from gmv_common.db.session import create_null_pool_engine
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings

LOCAL_SERVER_URL = "mysql+aiomysql://gmv:gmv@127.0.0.1:13306/gmv"
RESULTS_DIR = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """What a result records of the machine it was measured on, load average included."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_1m_5m_15m": [round(value, 2) for value in os.getloadavg()],
    }


def write_results(name: str, results: dict[str, Any]) -> Path:
    """Write ``results/<name>.json``, where ``run_all.py`` reads it, and say so."""
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"written to {path.name} in {path.parent.name}/")
    return path


def database_server_url() -> str:
    """The MariaDB server the benchmarks create their databases on."""
    return os.environ.get(
        "GMV_BENCH_DATABASE_URL",
        os.environ.get("GMV_TEST_DATABASE_URL", LOCAL_SERVER_URL),
    )


async def create_database(server_url: str) -> str:
    """A new, empty database on ``server_url``'s server; returns its URL."""
    name = f"gmv_bench_{uuid.uuid4().hex[:10]}"
    await _execute(
        server_url,
        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    )
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, url: str) -> None:
    await _execute(server_url, f"DROP DATABASE IF EXISTS `{make_url(url).database}`")


@contextlib.asynccontextmanager
async def scratch_database(server_url: str) -> AsyncIterator[str]:
    """A migrated database of its own for one run, dropped when the run ends."""
    url = await create_database(server_url)
    try:
        await migrate.upgrade(url)
        yield url
    finally:
        await drop_database(server_url, url)


@contextlib.asynccontextmanager
async def bench_runtime(url: str) -> AsyncIterator[Runtime]:
    """The services' runtime on ``url`` with an in-memory bus (events stay in the outbox)."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=url,
        bus_backend="memory",
        kafka_topic_prefix="bench",
    )
    runtime = Runtime.create(settings)
    try:
        yield runtime
    finally:
        await runtime.close()


@dataclass(frozen=True, slots=True)
class DeveloperApp:
    """A sandbox developer app and an access token it issued."""

    app_id: str
    secret: str
    access_token: str
    qps: float
    # None: the client uses the settings' TikTok base URL.
    api_base_url: str | None = None


@dataclass(frozen=True, slots=True)
class SeededBinding:
    workspace_id: int
    auth_id: int


async def seed_binding(
    runtime: Runtime, app: DeveloperApp, *, workspace_name: str
) -> SeededBinding:
    """A workspace bound to ``app`` with its token, both stored encrypted as OAuth would."""
    keyring = runtime.keyring
    async with runtime.sessionmaker.begin() as session:
        workspace = Workspace(name=workspace_name)
        provider_app = ProviderApp(
            app_id=app.app_id,
            name="Bench app",
            redirect_uri="http://127.0.0.1:8000/callback",
            api_base_url=app.api_base_url,
            qps_limit=app.qps,
        )
        seal_app_secret(provider_app, keyring, app.secret)
        session.add_all([workspace, provider_app])
        await session.flush()
        binding = Binding(
            workspace_id=workspace.id,
            provider_app_id=provider_app.id,
            alias="Bench binding",
            status="active",
        )
        seal_access_token(binding, keyring, app.access_token)
        session.add(binding)
        await session.flush()
        return SeededBinding(workspace_id=workspace.id, auth_id=binding.id)


async def _execute(server_url: str, statement: str) -> None:
    engine = create_null_pool_engine(server_url)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()
