"""Meta sync pacing: one binding with 1,000 advertisers synced at the app budget of 10 QPS.

Creates a database of its own on the MariaDB of ``GMV_BENCH_DATABASE_URL`` (else
``GMV_TEST_DATABASE_URL``, else the local test server), starts the TikTok sandbox as a
process of its own (``python -m gmv_sandbox``) serving HTTP on loopback, with the app
limited to 10 QPS (it answers 40100 above that), and runs one scheduled meta sync (bulk
priority) through the production path: ``MetaSyncWorker`` with the client that
``build_tiktok_client`` makes, on the shared database rate limiter, writes on MariaDB,
the run's event in the outbox.

The floor for a run is its number of TikTok calls divided by the budget (10 per second).
Goal: the run takes at most 110% of that floor. Prints calls, seconds and the ratio, and
writes ``bench/results/meta_sync.json``.

    .venv/bin/python bench/bench_meta_sync.py [--advertisers 1000] [--qps 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from gmv_common.bindings import build_rate_limiter
from gmv_common.crypto import (
    Keyring,
    app_secret_context,
    binding_token_context,
    fingerprint,
)
from gmv_common.db import migrate
from gmv_common.db.models import Binding, ProviderApp, SyncRun, Workspace
from gmv_common.db.session import create_null_pool_engine
from gmv_common.logging import configure_logging
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_common.sync.runs import request_meta_sync
from gmv_metadata_sync.worker import MetaSyncWorker, WorkerConfig

RESULTS = Path(__file__).parent / "results" / "meta_sync.json"
DEFAULT_URL = "mysql+aiomysql://gmv:gmv@127.0.0.1:13306/gmv"
GOAL_RATIO = 1.10
BUSINESS_CENTERS = 55


async def create_database(server_url: str) -> str:
    name = f"gmv_bench_{uuid.uuid4().hex[:10]}"
    engine = create_null_pool_engine(server_url)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                "COLLATE utf8mb4_unicode_ci"
            )
    finally:
        await engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, url: str) -> None:
    engine = create_null_pool_engine(server_url)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                f"DROP DATABASE IF EXISTS `{make_url(url).database}`"
            )
    finally:
        await engine.dispose()


class SandboxProcess:
    """``python -m gmv_sandbox`` on a free loopback port, driven through its admin API."""

    def __init__(self, *, advertisers: int, qps: float) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_base_url = f"{self.base_url}/open_api/v1.3/"
        self._command = [
            sys.executable,
            "-m",
            "gmv_sandbox",
            "--port",
            str(self.port),
            "--seed",
            "7",
            "--business-centers",
            str(BUSINESS_CENTERS),
            "--advertisers",
            str(advertisers),
            "--qps",
            str(int(qps)),
            "--log-level",
            "warning",
        ]
        self._process: asyncio.subprocess.Process | None = None
        self.admin = httpx.AsyncClient(base_url=f"{self.base_url}/_sandbox")

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *self._command,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if (await self.admin.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError("the sandbox process did not start")

    async def stop(self) -> None:
        await self.admin.aclose()
        if self._process is not None:
            self._process.terminate()
            await asyncio.wait_for(self._process.wait(), timeout=10)

    async def admin_json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.admin.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None


async def seed_binding(
    runtime: Runtime, sandbox: SandboxProcess, *, qps: float
) -> tuple[int, int]:
    """The sandbox's app and a new token of it, and the binding rows holding them."""
    (sandbox_app,) = await sandbox.admin_json("GET", "/apps")
    token = await sandbox.admin_json(
        "POST", "/tokens", json={"app_id": sandbox_app["app_id"]}
    )
    keyring: Keyring = runtime.keyring
    async with runtime.sessionmaker.begin() as session:
        workspace = Workspace(name="Bench agency")
        secret_cipher, key_version = keyring.encrypt(
            sandbox_app["secret"],
            associated_data=app_secret_context(sandbox_app["app_id"]),
        )
        app = ProviderApp(
            app_id=sandbox_app["app_id"],
            name="Bench app",
            secret_cipher=secret_cipher,
            key_version=key_version,
            redirect_uri="http://127.0.0.1:8000/callback",
            api_base_url=sandbox.api_base_url,
            qps_limit=qps,
        )
        session.add_all([workspace, app])
        await session.flush()
        token_cipher, token_version = keyring.encrypt(
            token["access_token"],
            associated_data=binding_token_context(workspace.id, app.id),
        )
        binding = Binding(
            workspace_id=workspace.id,
            provider_app_id=app.id,
            alias="Bench binding",
            access_token_cipher=token_cipher,
            key_version=token_version,
            token_fingerprint=fingerprint(token["access_token"]),
            status="active",
        )
        session.add(binding)
        await session.flush()
        return workspace.id, binding.id


async def run(server_url: str, advertisers: int, qps: float) -> dict[str, Any]:
    url = await create_database(server_url)
    try:
        await migrate.upgrade(url)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment="test",
            database_url=url,
            bus_backend="memory",
            kafka_topic_prefix="bench",
        )
        runtime = Runtime.create(settings)
        try:
            return await _measure(runtime, advertisers, qps)
        finally:
            await runtime.engine.dispose()
    finally:
        await drop_database(server_url, url)


async def _measure(runtime: Runtime, advertisers: int, qps: float) -> dict[str, Any]:
    sandbox = SandboxProcess(advertisers=advertisers, qps=qps)
    await sandbox.start()
    try:
        return await _sync_once(runtime, sandbox, advertisers, qps)
    finally:
        await sandbox.stop()


async def _sync_once(
    runtime: Runtime, sandbox: SandboxProcess, advertisers: int, qps: float
) -> dict[str, Any]:
    workspace_id, auth_id = await seed_binding(runtime, sandbox, qps=qps)
    limiter = build_rate_limiter(runtime.sessionmaker, runtime.settings)
    worker = MetaSyncWorker(
        sessionmaker=runtime.sessionmaker,
        keyring=runtime.keyring,
        settings=runtime.settings,
        limiter=limiter,
        config=WorkerConfig.from_settings(runtime.settings),
    )
    async with runtime.sessionmaker.begin() as session:
        request = await request_meta_sync(
            session,
            workspace_id=workspace_id,
            auth_id=auth_id,
            trigger="schedule",
            topic_prefix=runtime.settings.kafka_topic_prefix,
        )
        run_id = request.run.id
    await sandbox.admin_json("POST", "/counters/reset")

    started = time.perf_counter()
    task = await worker.submit(run_id)
    assert task is not None
    await task
    seconds = time.perf_counter() - started
    await worker.drain(1)

    async with runtime.sessionmaker() as session:
        sync_run = await session.get(SyncRun, run_id)
    assert sync_run is not None
    counters = await sandbox.admin_json("GET", "/counters")
    world = await sandbox.admin_json("GET", "/world")
    upstream_calls = int(counters["total_calls"])
    throttled = int(counters["total_throttled"])
    max_qps = max((app["max_qps"] for app in counters["apps"].values()), default=0)
    calls = int(sync_run.stats["api_calls"]["total"])
    floor = calls / qps
    ratio = seconds / floor
    return {
        "benchmark": "meta_sync",
        "headline": [
            {
                "metric": f"meta sync, {advertisers} advertisers at {qps:g} QPS: "
                "time / (calls / QPS)",
                "value": round(ratio, 4),
                "goal": GOAL_RATIO,
                "better": "lower",
                "goal_met": sync_run.status == "succeeded" and ratio <= GOAL_RATIO,
            },
            {"metric": "meta sync wall time", "value": round(seconds, 1), "unit": "s"},
            {"metric": "meta sync TikTok calls", "value": calls},
            {
                "metric": "40100 answers",
                "value": throttled,
                "goal": 0,
                "better": "lower",
            },
        ],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "database": "MariaDB",
        "world": {
            "business_centers": BUSINESS_CENTERS,
            "advertisers": advertisers,
            "stores": world["stats"].get("stores"),
        },
        "qps": qps,
        "priority": "bulk (scheduled run)",
        "transport": "HTTP on loopback to the sandbox in its own process",
        "run_status": sync_run.status,
        "calls": calls,
        "calls_by_endpoint": {
            k: v for k, v in sync_run.stats["api_calls"].items() if k != "total"
        },
        "upstream_requests_seen_by_sandbox": upstream_calls,
        "throttled_40100": throttled,
        "max_requests_in_any_second": max_qps,
        "seconds": round(seconds, 2),
        "floor_seconds": round(floor, 2),
        "ratio": round(ratio, 4),
        "goal_ratio": GOAL_RATIO,
        "goal_met": sync_run.status == "succeeded" and ratio <= GOAL_RATIO,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "phase_seconds": sync_run.stats["phase_seconds"],
        "entities": sync_run.stats["entities"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--advertisers", type=int, default=1000)
    parser.add_argument("--qps", type=float, default=10.0)
    args = parser.parse_args()
    server_url = os.environ.get(
        "GMV_BENCH_DATABASE_URL", os.environ.get("GMV_TEST_DATABASE_URL", DEFAULT_URL)
    )
    configure_logging(level="WARNING", fmt="console", service="bench")
    results = asyncio.run(run(server_url, args.advertisers, args.qps))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"calls={results['calls']} seconds={results['seconds']} "
        f"floor={results['floor_seconds']} ratio={results['ratio']} "
        f"throttled={results['throttled_40100']} goal_met={results['goal_met']}"
    )
    print(f"written to {RESULTS.name} in {RESULTS.parent.name}/")


if __name__ == "__main__":
    main()
