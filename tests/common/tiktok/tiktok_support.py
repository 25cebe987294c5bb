"""Helpers shared by the TikTok tests and their worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
from typing import Any

import httpx
from pydantic import SecretStr

from gmv_common.db.session import create_engine, create_sessionmaker
from gmv_common.settings import Settings
from gmv_common.tiktok import (
    DatabaseRateLimiter,
    Priority,
    TikTokClient,
    TikTokCredentials,
    TikTokError,
)


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


async def warm_transport(
    api_base_url: str, connections: int
) -> httpx.AsyncHTTPTransport:
    """A connection pool already holding one open connection per lane.

    Long-running workers keep their connections; opening a dozen at the same instant
    (only a benchmark's start does that) stalls the sandbox for a moment, and it then
    stamps the queued requests as one burst.
    """
    transport = httpx.AsyncHTTPTransport()
    health = api_base_url.split("/open_api/")[0] + "/_sandbox/health"

    async def open_one() -> None:
        response = await transport.handle_async_request(httpx.Request("GET", health))
        await response.aread()
        await response.aclose()

    await asyncio.gather(*(open_one() for _ in range(connections)))
    return transport


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


class SandboxProcess:
    """``python -m gmv_sandbox`` on a free port: a TikTok stand-in outside this process.

    It stands for TikTok's edge, which our machine's load cannot slow down, so it runs at
    a raised scheduling priority when allowed: a starved sandbox would stamp queued
    requests late and see bursts that no client sent.
    """

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_base_url = f"{self.base_url}/open_api/v1.3/"
        command = [sys.executable, "-m", "gmv_sandbox", "--port", str(self.port)]
        self._process = subprocess.Popen(
            [*command, "--advertisers", "4", "--log-level", "warning"],
            stdout=subprocess.DEVNULL,
        )
        with contextlib.suppress(PermissionError):
            os.setpriority(os.PRIO_PROCESS, self._process.pid, -10)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.base_url}/_sandbox/health").raise_for_status()
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the sandbox process did not start")

    def admin(self, method: str, path: str, **body: Any) -> Any:
        response = httpx.request(
            method, f"{self.base_url}/_sandbox/{path}", json=body or None
        )
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
