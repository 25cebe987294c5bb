"""`gmv dev` (what `make run` starts): demo binding synced, README tour runs, Ctrl-C stops it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from dataclasses import dataclass
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


README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass(frozen=True)
class TourResult:
    returncode: int
    output: str


def readme_tour() -> str:
    """The bash block of the README's curl tour, minus the lines that set placeholders."""
    section = README.read_text().split("## Curl tour", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return "\n".join(
        line for line in block.splitlines() if not line.startswith("export ")
    )


async def _run_readme_tour(
    api: str, token: str, workspace: str, auth: str
) -> TourResult:
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        readme_tour(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "GMV": api, "TOKEN": token, "WS": workspace, "AUTH": auth},
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return TourResult(process.returncode or 0, output.decode())


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

        tour = await _run_readme_tour(api, token[1], workspace[1], workspace[2])
        assert tour.returncode == 0, tour.output
        # Status-code lines follow JSON bodies that end without a newline.
        assert re.search(r"(^|[}\]])304$", tour.output, re.MULTILINE)
        assert re.search(r"(^|[}\]])410$", tour.output, re.MULTILINE)
        assert '"status":"queued"' in tour.output or '"status":"running"' in tour.output

        process.send_signal(signal.SIGINT)
        returncode = await asyncio.wait_for(process.wait(), 30)
        assert returncode == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
