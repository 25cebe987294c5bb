"""MariaDB restarted under load: 503 with a clear code while it is down, recovery without restarts.

A load loop reads the accounts list and requests syncs the whole time, each request bounded by
a client timeout. While the server is down every answer must be 503 ``DATABASE_UNAVAILABLE``
(never a 500, never a hung request). Once it is back, the gateway answers 200 again and a sync
requested afterwards completes, with no service process restarted.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from e2e_support import Stack, Tenant, run_script, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.kafka]

CLIENT_TIMEOUT = 10.0


@dataclass
class Load:
    """Answers seen by the load loop per phase: up, stopping, down, starting, recovered."""

    phase: str = "up"
    answers: dict[str, Counter[str]] = field(default_factory=dict)
    slowest_seconds: float = 0.0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, outcome: str, seconds: float) -> None:
        self.answers.setdefault(self.phase, Counter())[outcome] += 1
        self.slowest_seconds = max(self.slowest_seconds, seconds)

    def outcomes(self, *phases: str) -> set[str]:
        return {o for p in phases for o in self.answers.get(p, Counter())}


@pytest.fixture
async def mariadb_restored() -> AsyncIterator[None]:
    """Whatever happens in the test, MariaDB runs again afterwards."""
    try:
        yield
    finally:
        await asyncio.to_thread(run_script, "mariadb", "start", timeout=240)


async def _outcome(request: Any) -> str:
    try:
        response = await request
    except httpx.TimeoutException:
        return "timeout"
    except httpx.TransportError as exc:
        return f"transport:{type(exc).__name__}"
    if response.status_code >= 500:
        code = response.json().get("error", {}).get("code", "?")
        return f"{response.status_code}:{code}"
    return str(response.status_code)


async def _load(stack: Stack, tenant: Tenant, auth_id: int, load: Load) -> None:
    accounts = f"{tenant.base}/providers/tiktok-business/accounts"
    while not load.stop.is_set():
        for request in (
            stack.http.get(accounts, headers=tenant.headers, timeout=CLIENT_TIMEOUT),
            stack.request_sync(tenant, auth_id, timeout=CLIENT_TIMEOUT),
        ):
            started = time.monotonic()
            outcome = await _outcome(request)
            load.record(outcome, time.monotonic() - started)
        await asyncio.sleep(0.1)


async def test_database_restart_answers_503_then_recovers_without_restarts(
    stack: Stack,
    mariadb_restored: None,
    figures: Callable[[str, Any], None],
) -> None:
    tenant = await stack.bootstrap_tenant(name="Database outage agency")
    await stack.set_provider_qps(1000)
    advertisers = await stack.sandbox.advertiser_ids()
    auth_id, run_id = await stack.connect_binding(
        tenant, advertiser_ids=advertisers[:4]
    )
    assert run_id is not None
    await stack.wait_finished(tenant, auth_id, run_id)
    starts = {name: p.starts for name, p in stack.services.items()}
    load = Load()
    loader = asyncio.create_task(_load(stack, tenant, auth_id, load))

    try:
        load.phase = "stopping"
        await asyncio.to_thread(run_script, "mariadb", "stop", timeout=120)
        load.phase = "down"
        down_at = time.monotonic()

        async def enough_answers() -> bool:
            return sum(load.answers.get("down", Counter()).values()) >= 10 and (
                time.monotonic() - down_at > 8
            )

        await wait_until(enough_answers, timeout=60, what="answers while down")
        load.phase = "starting"
        await asyncio.to_thread(run_script, "mariadb", "start", timeout=240)
        load.phase = "recovered"
        up_at = time.monotonic()

        async def gateway_reads() -> bool:
            return "200" in load.outcomes("recovered")

        await wait_until(gateway_reads, timeout=60, what="gateway answers 200")
        recovered_seconds = time.monotonic() - up_at
    finally:
        load.stop.set()
        await loader

    figures("answers", {phase: dict(c) for phase, c in load.answers.items()})
    figures("slowest_answer_seconds", round(load.slowest_seconds, 2))
    figures("gateway_recovered_seconds_after_start", round(recovered_seconds, 1))
    assert load.outcomes("down") == {"503:DATABASE_UNAVAILABLE"}, load.answers
    unavailable = {"200", "202", "503:DATABASE_UNAVAILABLE"}
    assert load.outcomes("stopping", "starting", "recovered") <= unavailable
    assert load.slowest_seconds < CLIENT_TIMEOUT

    await _sync_completes_after_recovery(stack, tenant, auth_id, figures)
    assert {name: p.starts for name, p in stack.services.items()} == starts
    assert all(p.running for p in stack.services.values())


async def _sync_completes_after_recovery(
    stack: Stack,
    tenant: Tenant,
    auth_id: int,
    figures: Callable[[str, Any], None],
) -> None:
    async def accepted() -> httpx.Response | None:
        answer = await stack.request_sync(tenant, auth_id, {"scope": "meta"})
        return answer if answer.status_code == 202 else None

    answer = await wait_until(accepted, timeout=60, what="sync accepted")
    started = time.monotonic()
    run = await stack.wait_finished(tenant, auth_id, answer.json()["run"]["id"])
    figures("sync_after_recovery_seconds", round(time.monotonic() - started, 1))
    assert run["status"] == "succeeded", run
