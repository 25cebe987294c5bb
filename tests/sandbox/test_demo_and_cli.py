"""The demo builder and the ``sandbox`` command."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import httpx
from typer.testing import CliRunner

from gmv_sandbox import build_demo, create_app
from gmv_sandbox.cli import app as sandbox_cli


def test_demo_is_the_same_on_every_start() -> None:
    first = build_demo()
    second = build_demo()

    assert (first.app.app_id, first.app.secret, first.access_token) == (
        second.app.app_id,
        second.app.secret,
        second.access_token,
    )
    assert first.state.snapshot(
        access_token=first.access_token, include_products=True
    ) == second.state.snapshot(access_token=second.access_token, include_products=True)


def test_demo_world_shows_every_relation_kind() -> None:
    stats = build_demo().state.world_stats()

    assert stats["business_centers"] == 2
    assert stats["advertisers"] == 6
    assert stats["orphan_advertisers"] >= 1
    assert stats["multi_bc_advertisers"] >= 1
    assert stats["shared_stores"] >= 1


async def test_demo_token_works_on_the_surface() -> None:
    demo = build_demo()
    transport = httpx.ASGITransport(app=create_app(demo.state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as c:
        response = await c.get(
            "/open_api/v1.3/oauth2/advertiser/get/",
            params={"app_id": demo.app.app_id, "secret": demo.app.secret},
            headers={"Access-Token": demo.access_token},
        )

    assert len(response.json()["data"]["list"]) == 6


def test_cli_help_lists_the_world_knobs() -> None:
    result = CliRunner().invoke(sandbox_cli, ["--help"])

    assert result.exit_code == 0
    for option in (
        "--port",
        "--seed",
        "--advertisers",
        "--qps",
        "--products-per-store",
    ):
        assert option in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _burst_async(url: str, token: str, calls: int) -> list[int]:
    async with httpx.AsyncClient(headers={"Access-Token": token}) as client:
        responses = await asyncio.gather(*(client.get(url) for _ in range(calls)))
    return [response.json()["code"] for response in responses]


def _burst(url: str, token: str, calls: int) -> list[int]:
    """Calls sent together, so they land in one second even on a busy machine."""
    return asyncio.run(_burst_async(url, token, calls))


def test_cli_serves_the_generated_world() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gmv_sandbox",
            "--port",
            str(port),
            "--advertisers",
            "30",
            "--qps",
            "3",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        token = lines[3].rsplit(" ", 1)[1].strip()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/_sandbox/health")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the sandbox did not start"
                time.sleep(0.1)
        codes = _burst(f"{base}/open_api/v1.3/bc/get/", token, 5)
        world = httpx.get(f"{base}/_sandbox/world").json()
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()

    assert "30 advertisers" in lines[0]
    assert codes.count(0) == 3
    assert codes.count(40100) == 2
    assert world["stats"]["advertisers"] == 30
