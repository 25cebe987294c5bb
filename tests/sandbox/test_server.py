"""The sandbox over real HTTP: uvicorn in a background thread on a free port."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from sandbox_support import SMALL_SPEC, walk_sync

from gmv_sandbox import FaultRule, SandboxServer, SandboxState, serve_in_thread


@pytest.fixture
def served() -> Iterator[tuple[SandboxState, SandboxServer]]:
    state = SandboxState.generate(SMALL_SPEC)
    with SandboxServer(state) as server:
        yield state, server


async def test_a_full_sync_over_tcp_matches_the_snapshot(
    served: tuple[SandboxState, SandboxServer],
) -> None:
    state, server = served
    app = state.create_app(qps=0)
    token = state.issue_token(app.app_id)

    async with httpx.AsyncClient(
        base_url=server.api_base_url, headers={"Access-Token": token.access_token}
    ) as client:
        started = time.perf_counter()
        synced = await walk_sync(client, app, ad_creation_eligible="GMV_MAX")
        elapsed = time.perf_counter() - started

    expected = state.snapshot(
        access_token=token.access_token,
        include_products=True,
        ad_creation_eligible="GMV_MAX",
    )
    expected.pop("revision")
    assert synced == expected
    calls = state.counters()["total_calls"]
    print(f"\nfull sync over TCP: {calls} calls in {elapsed * 1000:.0f} ms")


async def test_dropped_connection_gets_no_response_over_tcp(
    served: tuple[SandboxState, SandboxServer],
) -> None:
    state, server = served
    app = state.create_app(qps=0)
    token = state.issue_token(app.app_id)
    state.set_faults([FaultRule(endpoint="bc/get", drop_rate=1.0, remaining=1)])

    async with httpx.AsyncClient(
        base_url=server.api_base_url, headers={"Access-Token": token.access_token}
    ) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("bc/get/")
        after = await client.get("bc/get/")

    assert after.json()["code"] == 0


async def test_http_504_over_tcp(served: tuple[SandboxState, SandboxServer]) -> None:
    state, server = served
    app = state.create_app(qps=0)
    token = state.issue_token(app.app_id)
    state.set_faults([FaultRule(http_status=504, http_error_rate=1.0, remaining=1)])

    async with httpx.AsyncClient(
        base_url=server.api_base_url, headers={"Access-Token": token.access_token}
    ) as client:
        response = await client.get("bc/get/")

    assert response.status_code == 504
    assert response.text == "Gateway Timeout"


async def test_qps_limit_holds_across_concurrent_clients(
    served: tuple[SandboxState, SandboxServer],
) -> None:
    state, server = served
    app = state.create_app(qps=10)
    tokens = [state.issue_token(app.app_id).access_token for _ in range(3)]

    async def burst(token: str) -> list[int]:
        async with httpx.AsyncClient(
            base_url=server.api_base_url, headers={"Access-Token": token}
        ) as client:
            responses = await asyncio.gather(
                *(client.get("bc/get/") for _ in range(10))
            )
        return [r.json()["code"] for r in responses]

    results = await asyncio.gather(*(burst(token) for token in tokens))

    codes = [code for result in results for code in result]
    counters = state.counters()["apps"][app.app_id]
    assert codes.count(0) >= 10
    assert codes.count(0) + codes.count(40100) == 30
    assert counters["throttled"] == codes.count(40100)
    assert counters["max_qps"] >= 11


def test_another_process_can_use_the_same_sandbox() -> None:
    state = SandboxState.generate(SMALL_SPEC)
    app = state.create_app(qps=0)
    token = state.issue_token(app.app_id)
    server = serve_in_thread(state)
    script = (
        "import sys, httpx; "
        "r = httpx.get(sys.argv[1] + 'bc/get/', headers={'Access-Token': sys.argv[2]}); "
        "print(r.json()['code'])"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script, server.api_base_url, token.access_token],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        server.stop()

    assert result.stdout.strip() == "0"
    assert state.counters()["tokens"] == {token.access_token: 1}


def test_a_stopped_server_frees_its_port() -> None:
    state = SandboxState.generate(SMALL_SPEC)
    server = serve_in_thread(state)
    url = f"{server.base_url}/_sandbox/health"
    assert httpx.get(url).json() == {"status": "ok"}

    server.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(url)
