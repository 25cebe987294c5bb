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
import os
import time
from datetime import UTC, datetime
from typing import Any

from support import (
    DeveloperApp,
    SeededBinding,
    bench_runtime,
    database_server_url,
    machine,
    scratch_database,
    seed_binding,
    write_results,
)

from gmv_common.bindings import build_rate_limiter
from gmv_common.db.models import SyncRun
from gmv_common.logging import configure_logging
from gmv_common.runtime import Runtime
from gmv_common.sync.runs import request_meta_sync
from gmv_metadata_sync.worker import MetaSyncWorker, WorkerConfig
from gmv_sandbox.process import SandboxProcess

GOAL_RATIO = 1.10
BUSINESS_CENTERS = 55


async def seed(sandbox: SandboxProcess, runtime: Runtime, qps: float) -> SeededBinding:
    """A binding of the sandbox's app, with a new token it issued."""
    (sandbox_app,) = await sandbox.admin_async("GET", "apps")
    token = await sandbox.admin_async("POST", "tokens", app_id=sandbox_app["app_id"])
    app = DeveloperApp(
        app_id=sandbox_app["app_id"],
        secret=sandbox_app["secret"],
        access_token=token["access_token"],
        qps=qps,
        api_base_url=sandbox.api_base_url,
    )
    return await seed_binding(runtime, app, workspace_name="Bench agency")


async def run(server_url: str, advertisers: int, qps: float) -> dict[str, Any]:
    async with scratch_database(server_url) as url, bench_runtime(url) as runtime:
        return await _measure(runtime, advertisers, qps)


async def _measure(runtime: Runtime, advertisers: int, qps: float) -> dict[str, Any]:
    sandbox = await asyncio.to_thread(
        SandboxProcess,
        advertisers=advertisers,
        qps=int(qps),
        world={"seed": 7, "business_centers": BUSINESS_CENTERS},
    )
    try:
        return await _sync_once(runtime, sandbox, advertisers, qps)
    finally:
        sandbox.stop()


async def _sync_once(
    runtime: Runtime, sandbox: SandboxProcess, advertisers: int, qps: float
) -> dict[str, Any]:
    binding = await seed(sandbox, runtime, qps)
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
            workspace_id=binding.workspace_id,
            auth_id=binding.auth_id,
            trigger="schedule",
            topic_prefix=runtime.settings.kafka_topic_prefix,
        )
        run_id = request.run.id
    await sandbox.admin_async("POST", "counters/reset")

    started = time.perf_counter()
    task = await worker.submit(run_id)
    assert task is not None
    await task
    seconds = time.perf_counter() - started
    await worker.drain(1)

    async with runtime.sessionmaker() as session:
        sync_run = await session.get(SyncRun, run_id)
    assert sync_run is not None
    stats: dict[str, Any] = sync_run.stats or {}
    counters = await sandbox.admin_async("GET", "counters")
    world = await sandbox.admin_async("GET", "world")
    upstream_calls = int(counters["total_calls"])
    throttled = int(counters["total_throttled"])
    max_qps = max((app["max_qps"] for app in counters["apps"].values()), default=0)
    calls = int(stats["api_calls"]["total"])
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
        "machine": machine(),
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
            k: v for k, v in stats["api_calls"].items() if k != "total"
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
        "phase_seconds": stats["phase_seconds"],
        "entities": stats["entities"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--advertisers", type=int, default=1000)
    parser.add_argument("--qps", type=float, default=10.0)
    args = parser.parse_args()
    configure_logging(level="WARNING", fmt="console", service="bench")
    results = asyncio.run(run(database_server_url(), args.advertisers, args.qps))
    write_results("meta_sync", results)
    print(
        f"calls={results['calls']} seconds={results['seconds']} "
        f"floor={results['floor_seconds']} ratio={results['ratio']} "
        f"throttled={results['throttled_40100']} goal_met={results['goal_met']}"
    )


if __name__ == "__main__":
    main()
