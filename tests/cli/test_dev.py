"""`gmv dev` (what `make run` starts): up, demo binding synced, the tour works, Ctrl-C stops it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def _read_until(
    stream: asyncio.StreamReader, pattern: str, timeout: float
) -> str:
    seen: list[str] = []

    async def scan() -> str:
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError("gmv dev exited early:\n" + "".join(seen[-40:]))
            seen.append(line)
            if re.search(pattern, line):
                return "".join(seen)

    return await asyncio.wait_for(scan(), timeout)


async def test_dev_mode_syncs_the_demo_binding_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    port, sandbox_port = _free_port(), _free_port()
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("gmv")),
        "dev",
        "--port",
        str(port),
        "--sandbox-port",
        str(sandbox_port),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "LOG_FORMAT": "json"},
    )
    assert process.stdout is not None
    try:
        output = await _read_until(process.stdout, r"Stop with Ctrl-C", 90)
        token = re.search(r"TOKEN=(\S+)", output)
        workspace = re.search(r"WS=(\d+) AUTH=(\d+)", output)
        assert token is not None
        assert workspace is not None
        api = f"http://127.0.0.1:{port}"
        options_url = (
            f"{api}/api/v1/tenants/{workspace[1]}/providers/tiktok-business"
            f"/accounts/{workspace[2]}/gmvmax/options"
        )
        headers = {"Authorization": f"Bearer {token[1]}"}
        async with httpx.AsyncClient(timeout=10) as client:
            health = await client.get(f"{api}/healthz")
            document: dict[str, object] = {}
            for _ in range(100):
                response = await client.get(options_url, headers=headers)
                if response.status_code == 200 and response.json().get("advertisers"):
                    document = response.json()
                    break
                await asyncio.sleep(0.2)

        assert health.status_code == 200
        assert len(document["advertisers"]) == 6  # type: ignore[arg-type]
        assert len(document["stores"]) > 0  # type: ignore[arg-type]

        process.send_signal(signal.SIGINT)
        returncode = await asyncio.wait_for(process.wait(), 30)
        assert returncode == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
