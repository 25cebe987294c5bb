"""Product sync speed: rows per second into MariaDB, and pacing at the 10 QPS app budget.

Creates a database of its own on the MariaDB of ``GMV_BENCH_DATABASE_URL`` (else
``GMV_TEST_DATABASE_URL``, else the local test server) and runs the TikTok sandbox over
HTTP in a process of its own (as TikTok is remote: its page building does not share the
worker's CPU; ``--inline-sandbox`` keeps it in process). Every run goes through the
production path: ``RunExecutor`` claims it with a
lease, ``ProductSyncService`` reads ``store/product/get`` page by page through the shared
database rate limiter and writes in bulk, and the run's event lands in the outbox.

1. Throughput, QPS limit lifted: a store of ``--products`` products synced into an empty
   database (all inserts), then again unchanged (reads and comparisons only). Reports
   products per second and the share of the run's time spent in database calls.
2. Pacing at ``--qps`` (10): a store of ``--paced-products`` products synced with the
   sandbox app limited to that budget (it answers 40100 above it). The floor is the
   number of TikTok calls divided by the budget; goal: at most 110% of it.

Writes ``bench/results/product_sync.json``.

    .venv/bin/python bench/bench_product_sync.py [--products 100000] [--paced-products 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from support import (
    DeveloperApp,
    bench_runtime,
    database_server_url,
    machine,
    scratch_database,
    seed_binding,
    write_results,
)

from gmv_common.bindings import build_rate_limiter, build_tiktok_client
from gmv_common.db.models import AdvertiserStoreLink, ProviderApp, SyncRun
from gmv_common.logging import configure_logging
from gmv_common.runtime import Runtime
from gmv_common.sync.runs import request_product_sync
from gmv_common.tiktok import TikTokClient
from gmv_product_sync.app import build_executor
from gmv_product_sync.executor import RunExecutor
from gmv_sandbox import SandboxState, WorldSpec, create_app

SANDBOX_BASE_URL = "http://sandbox.bench/open_api/v1.3/"
GOAL_RATIO = 1.10
LIFTED_QPS = 100_000


def world_spec(seed: int, products: int, *, advertisers: int) -> dict[str, Any]:
    return {
        "seed": seed,
        "business_centers": 1,
        "advertisers": advertisers,
        "stores_per_advertiser": 1,
        "products_per_store": products,
        "orphan_advertiser_share": 0.0,
        "shared_store_share": 0.0,
        "gmv_max_eligible_share": 1.0,
    }


SANDBOX_PROCESS = """
import json, sys
from gmv_sandbox import SandboxState, WorldSpec
from gmv_sandbox.server import serve_forever
spec, app, port = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
state = SandboxState.generate(WorldSpec(**spec))
state.create_app(app_id=app["app_id"], secret=app["secret"], qps=app["qps"])
state.issue_token(app["app_id"], access_token=app["token"])
serve_forever(state, host="127.0.0.1", port=port, log_level="warning")
"""


class Sandbox:
    """The sandbox world with one app: in process, or served by a child process.

    Both sides generate the same world from the same spec, so ids agree.
    """

    def __init__(self, spec: dict[str, Any], *, qps: int, inline: bool) -> None:
        self.state = SandboxState.generate(WorldSpec(**spec))
        self.app: dict[str, Any] = {
            "app_id": f"7{uuid.uuid4().int % 10**18:018d}",
            "secret": uuid.uuid4().hex,
            "token": uuid.uuid4().hex,
            "qps": qps,
        }
        self._spec = spec
        self._inline = inline
        self._process: asyncio.subprocess.Process | None = None
        self._admin = ""
        self.transport: httpx.AsyncBaseTransport | None = None
        self.api_base_url = SANDBOX_BASE_URL

    async def __aenter__(self) -> Sandbox:
        if self._inline:
            self.state.create_app(
                app_id=self.app["app_id"],
                secret=self.app["secret"],
                qps=self.app["qps"],
            )
            self.state.issue_token(self.app["app_id"], access_token=self.app["token"])
            self.transport = httpx.ASGITransport(app=create_app(self.state))
            return self
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SANDBOX_PROCESS,
            json.dumps(self._spec),
            json.dumps(self.app),
            str(port),
        )
        self.api_base_url = f"http://127.0.0.1:{port}/open_api/v1.3/"
        self._admin = f"http://127.0.0.1:{port}/_sandbox"
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                try:
                    await client.get(f"{self._admin}/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.terminate()
            await asyncio.wait_for(self._process.wait(), 10)

    async def counters(self) -> dict[str, Any]:
        if self._process is None:
            return self.state.counters()
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{self._admin}/counters")
            counters: dict[str, Any] = response.json()
            return counters

    async def reset_counters(self) -> None:
        if self._process is None:
            self.state.reset_counters()
            return
        async with httpx.AsyncClient() as client:
            await client.post(f"{self._admin}/counters/reset")


class Bench:
    """One sandbox and one database; pairs are seeded on demand."""

    def __init__(self, runtime: Runtime, sandbox: Sandbox) -> None:
        self.runtime = runtime
        self.sandbox = sandbox
        self.state = sandbox.state
        self._limiter = build_rate_limiter(runtime.sessionmaker, runtime.settings)

    def executor(self) -> RunExecutor:
        settings = self.runtime.settings.model_copy(
            update={"tiktok_api_base_url": self.sandbox.api_base_url}
        )

        def client(app: ProviderApp) -> TikTokClient:
            return build_tiktok_client(
                settings, limiter=self._limiter, transport=self.sandbox.transport
            )

        return build_executor(
            self.runtime, limiter=self._limiter, client_factory=client
        )

    async def seed(self, advertiser_index: int) -> dict[str, Any]:
        """A workspace, app and binding for one sandbox pair."""
        sandbox_app = self.sandbox.app
        advertiser = list(self.state.world.advertisers.values())[advertiser_index]
        store = self.state.world.stores[advertiser.store_ids[0]]
        developer_app = DeveloperApp(
            app_id=sandbox_app["app_id"],
            secret=sandbox_app["secret"],
            access_token=sandbox_app["token"],
            qps=float(sandbox_app["qps"] or LIFTED_QPS),
        )
        binding = await seed_binding(
            self.runtime, developer_app, workspace_name=f"bench {advertiser_index}"
        )
        async with self.runtime.sessionmaker.begin() as session:
            session.add(
                AdvertiserStoreLink(
                    workspace_id=binding.workspace_id,
                    auth_id=binding.auth_id,
                    advertiser_id=advertiser.advertiser_id,
                    store_id=store.store_id,
                    store_authorized_bc_id=store.store_authorized_bc_id,
                )
            )
        return {
            "workspace_id": binding.workspace_id,
            "auth_id": binding.auth_id,
            "app_id": sandbox_app["app_id"],
            "advertiser_id": advertiser.advertiser_id,
            "store_id": store.store_id,
            "products_in_store": self.state.world.product_count(store),
        }

    async def sync(self, pair: dict[str, Any], *, trigger: str) -> SyncRun:
        async with self.runtime.sessionmaker.begin() as session:
            requested = await request_product_sync(
                session,
                workspace_id=pair["workspace_id"],
                auth_id=pair["auth_id"],
                advertiser_id=pair["advertiser_id"],
                store_id=pair["store_id"],
                bc_id=None,
                eligibility="gmv_max",
                trigger=trigger,
                topic_prefix=self.runtime.settings.kafka_topic_prefix,
            )
        executor = self.executor()
        async with executor.slot() as slot:
            assert await slot.start(requested.run.id)
        await executor.wait_idle()
        async with self.runtime.sessionmaker() as session:
            run = await session.get(SyncRun, requested.run.id)
        assert run is not None
        return run


def run_figures(run: SyncRun, seconds: float) -> dict[str, Any]:
    stats = run.stats or {}
    return {
        "status": run.status,
        "seconds": round(seconds, 2),
        "products": stats.get("fetched"),
        "products_per_second": round((stats.get("fetched") or 0) / seconds, 1),
        "db_share": stats.get("db_share"),
        "api_calls": stats.get("api_calls"),
        "added": stats.get("added"),
        "updated": stats.get("updated"),
        "unchanged": stats.get("unchanged"),
        "phases_ms": stats.get("phases_ms"),
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    lifted_spec = world_spec(2026, args.products, advertisers=2)
    paced_spec = world_spec(2027, args.paced_products, advertisers=1)
    async with (
        scratch_database(database_server_url()) as url,
        bench_runtime(url) as runtime,
    ):
        async with Sandbox(lifted_spec, qps=0, inline=args.inline_sandbox) as box:
            bench = Bench(runtime, box)
            lifted = await bench.seed(0)
            started = time.perf_counter()
            first = await bench.sync(lifted, trigger="manual")
            first_seconds = time.perf_counter() - started
            started = time.perf_counter()
            again = await bench.sync(lifted, trigger="schedule")
            again_seconds = time.perf_counter() - started

        async with Sandbox(
            paced_spec, qps=int(args.qps), inline=args.inline_sandbox
        ) as box:
            paced_bench = Bench(runtime, box)
            paced = await paced_bench.seed(0)
            await box.reset_counters()
            started = time.perf_counter()
            paced_run = await paced_bench.sync(paced, trigger="schedule")
            paced_seconds = time.perf_counter() - started
            counters = await box.counters()

    calls = (paced_run.stats or {}).get("api_calls") or 0
    floor = calls / args.qps
    app_counters = counters["apps"].get(paced["app_id"], {})
    return {
        "benchmark": "product_sync",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "database": "MariaDB",
        "sandbox": "in process" if args.inline_sandbox else "separate process (HTTP)",
        "throughput_qps_lifted": {
            "store_products": lifted["products_in_store"],
            "first_sync_all_inserts": run_figures(first, first_seconds),
            "second_sync_unchanged": run_figures(again, again_seconds),
        },
        "pacing": {
            "qps": args.qps,
            "store_products": paced["products_in_store"],
            "run": run_figures(paced_run, paced_seconds),
            "calls": calls,
            "upstream_requests_seen_by_sandbox": counters["total_calls"],
            "throttled_40100": counters["total_throttled"],
            "max_requests_in_any_second": app_counters.get("max_qps"),
            "floor_seconds": round(floor, 2),
            "ratio": round(paced_seconds / floor, 4) if floor else None,
            "goal_ratio": GOAL_RATIO,
            "goal_met": bool(floor) and paced_seconds / floor <= GOAL_RATIO,
        },
    }


def headline(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures the bench report shows (see bench/README.md)."""
    first = results["throughput_qps_lifted"]["first_sync_all_inserts"]
    again = results["throughput_qps_lifted"]["second_sync_unchanged"]
    pacing = results["pacing"]
    return [
        {
            "metric": "products/s into MariaDB, first sync (QPS limit lifted)",
            "value": first["products_per_second"],
            "unit": "products/s",
        },
        {
            "metric": "share of first-sync time in the database",
            "value": first["db_share"],
        },
        {
            "metric": "products/s, unchanged re-sync (QPS limit lifted)",
            "value": again["products_per_second"],
            "unit": "products/s",
        },
        {
            "metric": "wall time at 10 QPS / request-count floor",
            "value": pacing["ratio"],
            "goal": GOAL_RATIO,
            "better": "lower",
            "goal_met": pacing["goal_met"],
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--paced-products", type=int, default=20_000)
    parser.add_argument("--qps", type=float, default=10.0)
    parser.add_argument("--inline-sandbox", action="store_true")
    args = parser.parse_args()
    configure_logging(level="WARNING", fmt="console", service="bench")
    results = asyncio.run(measure(args))
    results["headline"] = headline(results)
    write_results("product_sync", results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
