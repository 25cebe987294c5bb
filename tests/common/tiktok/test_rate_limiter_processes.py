"""One app budget shared by worker processes, measured by a real sandbox server."""

from __future__ import annotations

import asyncio
import multiprocessing
from typing import Any

import httpx
from tiktok_support import Sessions, WorkerPlan, run_worker

from gmv_common.tiktok import DatabaseRateLimiter, PacerConfig, Priority
from gmv_common.tiktok.limiter import slot_interval
from gmv_sandbox.process import SandboxProcess, warm_transport

WORKERS = 3
CALLS_PER_WORKER = 25
QPS = 10


async def test_worker_processes_share_one_app_budget_and_yield_to_interactive(
    limiter_db_url: str, sessions: Sessions
) -> None:
    sandbox = SandboxProcess()
    try:
        app_id = sandbox.admin("POST", "apps", qps=QPS)["app_id"]
        token = sandbox.admin("POST", "tokens", app_id=app_id)["access_token"]
        plan = WorkerPlan(
            database_url=limiter_db_url,
            api_base_url=sandbox.api_base_url,
            app_id=app_id,
            access_token=token,
            calls=CALLS_PER_WORKER,
            concurrency=4,
        )
        reports, interactive_waits, backlog_alive = await _run_workers(plan, sessions)
        app_counters = sandbox.admin("GET", "counters")["apps"][app_id]
    finally:
        sandbox.stop()

    finished = [moment for report in reports for moment in report["finished"]]
    assert [report["failures"] for report in reports] == [[]] * WORKERS
    assert len(finished) == WORKERS * CALLS_PER_WORKER
    assert app_counters["throttled"] == 0
    assert app_counters["max_qps"] <= QPS
    assert app_counters["calls"] == WORKERS * CALLS_PER_WORKER + 3
    assert backlog_alive
    config = PacerConfig()
    widest = slot_interval(QPS, 1, config, config.jitter_cap_seconds)
    assert max(interactive_waits) < config.bulk_horizon_seconds + 2 * widest


async def _run_workers(
    plan: WorkerPlan, sessions: Sessions
) -> tuple[list[dict[str, Any]], list[float], bool]:
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    results = context.Queue()
    start = context.Event()
    workers = [
        context.Process(target=run_worker, args=(plan, ready, start, results))
        for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        await asyncio.to_thread(ready.get, timeout=120)
    start.set()

    await asyncio.sleep(2.0)
    interactive_waits = await _interactive_calls(plan, sessions)
    backlog_alive = all(worker.is_alive() for worker in workers)

    reports = [await asyncio.to_thread(results.get, timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return reports, interactive_waits, backlog_alive


async def _interactive_calls(plan: WorkerPlan, sessions: Sessions) -> list[float]:
    """Three interactive sends; the seconds each waited for its slot."""
    limiter = DatabaseRateLimiter(sessions.open(plan.database_url), default_qps=QPS)
    waits = []
    transport = await warm_transport(plan.api_base_url, 1)
    async with httpx.AsyncClient(
        base_url=plan.api_base_url, transport=transport
    ) as http:
        for _ in range(3):
            waits.append(await limiter.acquire(plan.app_id, Priority.INTERACTIVE))
            response = await http.get(
                "bc/get/", headers={"Access-Token": plan.access_token}
            )
            assert response.json()["code"] == 0
    return waits
