"""The shared TikTok budget under a backlog: worker processes against one sandbox at 10 QPS.

Starts the TikTok sandbox as a process of its own (``python -m gmv_sandbox``) and registers
an app limited to ``--qps`` (the sandbox answers 40100 above it and records the highest
number of calls it saw in any one-second window). Then ``--workers`` processes, each with
``--concurrency`` lanes, call ``bc/get`` as bulk work for ``--seconds`` through their own
``DatabaseRateLimiter`` on one database, while this process sends an interactive call every
1.5 s and times it. Run once on SQLite and once on MariaDB (``GMV_BENCH_DATABASE_URL``, else
``GMV_TEST_DATABASE_URL``, else the local test server; a database of its own, dropped after).

Utilisation = calls the sandbox received / (seconds from start to last answer * qps).
Goals: utilisation >= 0.90, highest one-second QPS <= qps, zero 40100. Prints the figures
and writes ``bench/results/rate_limiter.json``.

    .venv/bin/python bench/bench_rate_limiter.py [--backend both] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from prometheus_client import REGISTRY
from pydantic import SecretStr
from support import (
    create_database,
    database_server_url,
    drop_database,
    machine,
    write_results,
)

from gmv_common.db.models.rate_limits import TikTokRateLimit
from gmv_common.db.session import (
    create_engine,
    create_null_pool_engine,
    create_sessionmaker,
)
from gmv_common.settings import Settings
from gmv_common.tiktok import (
    DatabaseRateLimiter,
    PacerConfig,
    Priority,
    TikTokClient,
    TikTokCredentials,
    TikTokError,
)
from gmv_sandbox.process import SandboxProcess, warm_transport

GOAL_UTILISATION = 0.90
INTERACTIVE_EVERY_SECONDS = 1.5


@dataclass(frozen=True)
class Plan:
    database_url: str
    api_base_url: str
    app_id: str
    access_token: str
    qps: float
    concurrency: int
    seconds: float


def settings_for(plan: Plan) -> Settings:
    return Settings(
        _env_file=None,
        environment="test",
        log_level="WARNING",
        database_url=plan.database_url,
        tiktok_default_qps=plan.qps,
    )


def worker_main(
    plan: Plan, ready: Queue[str], start: Event, results: Queue[dict[str, Any]]
) -> None:
    results.put(asyncio.run(backlog(plan, ready, start)))


async def backlog(plan: Plan, ready: Queue[str], start: Event) -> dict[str, Any]:
    """Bulk calls on every lane until the time is up."""
    settings = settings_for(plan)
    engine = create_engine(settings)
    limiter = DatabaseRateLimiter(create_sessionmaker(engine), default_qps=plan.qps)
    credentials = TikTokCredentials(
        app_id=plan.app_id, access_token=SecretStr(plan.access_token)
    )
    answered: list[float] = []
    failures: list[str] = []

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
        deadline = time.time() + plan.seconds

        async def lane() -> None:
            while time.time() < deadline:
                try:
                    await client.get_business_centers_page(
                        credentials, priority=Priority.BULK, page_size=5
                    )
                    answered.append(time.time())
                except TikTokError as error:
                    failures.append(error.code)

        await asyncio.gather(*(lane() for _ in range(plan.concurrency)))
    await engine.dispose()
    missed = REGISTRY.get_sample_value("gmv_tiktok_limiter_missed_slots_total")
    return {"answered": answered, "failures": failures, "missed_slots": missed or 0}


async def interactive_probe(plan: Plan, stop_at: float) -> list[float]:
    """One interactive call every 1.5 s; the seconds each one took."""
    settings = settings_for(plan)
    engine = create_engine(settings)
    limiter = DatabaseRateLimiter(create_sessionmaker(engine), default_qps=plan.qps)
    credentials = TikTokCredentials(
        app_id=plan.app_id, access_token=SecretStr(plan.access_token)
    )
    latencies = []
    async with TikTokClient(
        limiter=limiter,
        settings=settings,
        base_url=plan.api_base_url,
        transport=await warm_transport(plan.api_base_url, 1),
    ) as client:
        await asyncio.sleep(INTERACTIVE_EVERY_SECONDS)
        while time.time() < stop_at - INTERACTIVE_EVERY_SECONDS:
            started = time.time()
            await client.get_business_centers_page(
                credentials, priority=Priority.INTERACTIVE, page_size=1
            )
            latencies.append(time.time() - started)
            await asyncio.sleep(INTERACTIVE_EVERY_SECONDS)
    await engine.dispose()
    return latencies


async def create_table(url: str) -> None:
    engine = create_null_pool_engine(url)
    async with engine.begin() as connection:
        table = TikTokRateLimit.metadata.tables[TikTokRateLimit.__tablename__]
        await connection.run_sync(table.create)
    await engine.dispose()


def run_backend(
    database_url: str, sandbox: SandboxProcess, args: argparse.Namespace
) -> dict[str, Any]:
    developer_app = sandbox.admin("POST", "apps", qps=args.qps)
    token = sandbox.admin("POST", "tokens", app_id=developer_app["app_id"])
    plan = Plan(
        database_url=database_url,
        api_base_url=f"{sandbox.base_url}/open_api/v1.3/",
        app_id=developer_app["app_id"],
        access_token=token["access_token"],
        qps=args.qps,
        concurrency=args.concurrency,
        seconds=args.seconds,
    )
    context = multiprocessing.get_context("spawn")
    ready: Queue[str] = context.Queue()
    results: Queue[dict[str, Any]] = context.Queue()
    start = context.Event()
    workers = [
        context.Process(target=worker_main, args=(plan, ready, start, results))
        for _ in range(args.workers)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=120)

    started = time.time()
    start.set()
    latencies = asyncio.run(interactive_probe(plan, started + args.seconds))
    reports = [results.get(timeout=args.seconds + 120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)

    counters = sandbox.admin("GET", "counters")["apps"][plan.app_id]
    last = max(moment for report in reports for moment in report["answered"])
    seconds = last - started
    return {
        "calls": counters["calls"],
        "seconds": round(seconds, 3),
        "utilisation": round(counters["calls"] / (seconds * args.qps), 4),
        "max_one_second_qps": counters["max_qps"],
        "throttled_40100": counters["throttled"],
        "failures": sum(len(report["failures"]) for report in reports),
        "missed_slots": sum(report["missed_slots"] for report in reports),
        "interactive_latency_seconds": {
            "count": len(latencies),
            "median": round(statistics.median(latencies), 3) if latencies else None,
            "max": round(max(latencies), 3) if latencies else None,
        },
    }


def summary_line(backend: str, run: dict[str, Any]) -> str:
    return (
        f"{backend:8} calls={run['calls']} seconds={run['seconds']:.2f} "
        f"utilisation={run['utilisation']:.3f} max_qps={run['max_one_second_qps']} "
        f"40100={run['throttled_40100']} missed_slots={run['missed_slots']:.0f} "
        f"interactive_max={run['interactive_latency_seconds']['max']}s"
    )


def headline(runs: dict[str, Any], qps: int, workers: int) -> list[dict[str, Any]]:
    """Per database: budget used, busiest second and throttles, each next to its goal."""
    entries: list[dict[str, Any]] = []
    for backend, run in runs.items():
        where = f"{backend}, {workers} processes"
        entries += [
            {
                "metric": f"budget used ({where})",
                "value": round(100 * run["utilisation"], 1),
                "unit": "%",
                "goal": round(100 * GOAL_UTILISATION),
                "better": "higher",
            },
            {
                "metric": f"busiest one-second window ({where})",
                "value": run["max_one_second_qps"],
                "unit": "calls",
                "goal": qps,
                "better": "lower",
            },
            {
                "metric": f"40100 answers ({where})",
                "value": run["throttled_40100"],
                "goal": 0,
                "better": "lower",
            },
        ]
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--backend", choices=["sqlite", "mariadb", "both"], default="both"
    )
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--qps", type=int, default=10)
    args = parser.parse_args()
    server_url = database_server_url()
    backends = ["sqlite", "mariadb"] if args.backend == "both" else [args.backend]

    sandbox = SandboxProcess()
    runs: dict[str, Any] = {}
    try:
        for backend in backends:
            if backend == "sqlite":
                folder = tempfile.mkdtemp(prefix="gmv-bench-")
                url = f"sqlite+aiosqlite:///{folder}/limiter.db"
            else:
                url = asyncio.run(create_database(server_url))
            asyncio.run(create_table(url))
            try:
                runs[backend] = run_backend(url, sandbox, args)
            finally:
                if backend == "mariadb":
                    asyncio.run(drop_database(server_url, url))
            print(summary_line(backend, runs[backend]))
    finally:
        sandbox.stop()

    results = {
        "benchmark": "rate_limiter",
        "headline": headline(runs, args.qps, args.workers),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "setup": {
            "workers": args.workers,
            "concurrency_per_worker": args.concurrency,
            "seconds": args.seconds,
            "qps": args.qps,
            "pacer": {
                name: None if value == math.inf else value
                for name, value in asdict(PacerConfig()).items()
            },
        },
        "runs": runs,
        "goal": {"utilisation": GOAL_UTILISATION, "max_qps": args.qps, "40100": 0},
        "goal_met": all(
            run["utilisation"] >= GOAL_UTILISATION
            and run["max_one_second_qps"] <= args.qps
            and run["throttled_40100"] == 0
            for run in runs.values()
        ),
    }
    write_results("rate_limiter", results)
    print(f"goal met: {results['goal_met']}")


if __name__ == "__main__":
    main()
