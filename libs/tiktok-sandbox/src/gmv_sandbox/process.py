"""The sandbox as a process of its own, for tests and benchmarks that measure pacing.

``SandboxProcess`` runs ``python -m gmv_sandbox`` on a free port and waits until it
answers; it stands for TikTok's edge, which our machine's load cannot slow down, so it
runs at a raised scheduling priority when allowed (a starved sandbox would stamp queued
requests late and see bursts that no client sent). ``warm_transport`` opens a client's
connections before a measurement starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import httpx


class SandboxProcess:
    """A generated world served on loopback, with one registered app limited to ``qps``.

    ``world`` takes further ``python -m gmv_sandbox`` options by their parameter names
    (``seed``, ``business_centers``, ...).
    """

    def __init__(
        self,
        *,
        advertisers: int = 4,
        qps: int = 10,
        world: Mapping[str, int] | None = None,
        startup_seconds: float = 120,
    ) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_base_url = f"{self.base_url}/open_api/v1.3/"
        command = [sys.executable, "-m", "gmv_sandbox", "--port", str(self.port)]
        command += ["--advertisers", str(advertisers), "--qps", str(qps)]
        for name, value in (world or {}).items():
            command += [f"--{name.replace('_', '-')}", str(int(value))]
        command += ["--log-level", "warning"]
        # This interpreter and numbers only: nothing from outside reaches the command.
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603
        with contextlib.suppress(PermissionError):
            os.setpriority(os.PRIO_PROCESS, self._process.pid, -10)
        self._wait_ready(startup_seconds)

    def _wait_ready(self, seconds: float) -> None:
        deadline = time.time() + seconds
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
        return response.json() if response.content else None

    async def admin_async(self, method: str, path: str, **body: Any) -> Any:
        """``admin`` for callers on an event loop."""
        async with httpx.AsyncClient(base_url=f"{self.base_url}/_sandbox/") as client:
            response = await client.request(method, path, json=body or None)
        response.raise_for_status()
        return response.json() if response.content else None

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


async def warm_transport(
    api_base_url: str, connections: int
) -> httpx.AsyncHTTPTransport:
    """A connection pool already holding one open connection per lane.

    Long-running workers keep their connections; opening a dozen at the same instant
    (only a measurement's start does that) stalls the sandbox for a moment, and it then
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
