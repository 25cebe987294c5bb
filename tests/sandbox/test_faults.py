"""Fault injection: error codes at a rate, latency, HTTP 5xx and dropped connections."""

from __future__ import annotations

import time

import httpx
import pytest

from gmv_sandbox import DroppedConnection, FaultRule, InvalidChange, SandboxState


async def _codes(client: httpx.AsyncClient, path: str, calls: int) -> list[int]:
    return [(await client.get(path)).json()["code"] for _ in range(calls)]


async def test_error_rate_is_roughly_as_configured(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    state.set_faults(
        [FaultRule(endpoint="bc/get", error_code=50002, error_rate=0.3)], seed=4
    )

    codes = await _codes(client, "bc/get/", 1000)

    failed = codes.count(50002)
    assert 240 <= failed <= 360
    assert set(codes) == {0, 50002}
    assert state.counters()["faults"] == {"bc/get": failed}


async def test_the_same_fault_seed_fails_the_same_calls(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    rule = FaultRule(error_code=40100, error_rate=0.5)

    state.set_faults([rule], seed=99)
    first = await _codes(client, "bc/get/", 60)
    state.set_faults([FaultRule(error_code=40100, error_rate=0.5)], seed=99)
    second = await _codes(client, "bc/get/", 60)

    assert first == second
    assert 0 < first.count(40100) < 60


async def test_faults_target_only_their_endpoint(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    state.set_faults([FaultRule(endpoint="store/list", error_code=50000, error_rate=1)])

    assert await _codes(client, "bc/get/", 5) == [0] * 5


async def test_remaining_limits_a_rule_to_the_next_calls(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    state.add_fault(FaultRule(error_code=40133, error_rate=1.0, remaining=3))

    codes = await _codes(client, "bc/get/", 5)

    assert codes == [40133, 40133, 40133, 0, 0]
    assert state.fault_rules() == []


async def test_latency_is_added(client: httpx.AsyncClient, state: SandboxState) -> None:
    state.set_faults([FaultRule(endpoint="bc/get", latency_ms=80)])

    started = time.perf_counter()
    response = await client.get("bc/get/")
    elapsed = time.perf_counter() - started

    assert response.json()["code"] == 0
    assert elapsed >= 0.08


async def test_http_5xx_comes_with_a_plain_body(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    state.set_faults([FaultRule(http_status=504, http_error_rate=1.0)])

    response = await client.get("bc/get/")

    assert response.status_code == 504
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Gateway Timeout"
    assert state.counters()["codes"]["bc/get"] == {"http_504": 1}


async def test_dropped_connection_is_a_transport_error_in_process(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    state.set_faults([FaultRule(drop_rate=1.0, remaining=1)])

    with pytest.raises(httpx.TransportError) as raised:
        await client.get("bc/get/")

    assert isinstance(raised.value, DroppedConnection)
    assert (await client.get("bc/get/")).json()["code"] == 0
    assert state.counters()["codes"]["bc/get"] == {"dropped": 1, "0": 1}


async def test_mixed_rule_splits_outcomes(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    state.set_faults(
        [FaultRule(error_code=50002, error_rate=0.2, http_error_rate=0.2)], seed=1
    )

    statuses = []
    for _ in range(400):
        response = await client.get("bc/get/")
        statuses.append(
            response.status_code
            if response.status_code != 200
            else response.json()["code"]
        )

    assert 50 <= statuses.count(504) <= 110
    assert 50 <= statuses.count(50002) <= 110
    assert statuses.count(0) >= 180


def test_impossible_rules_are_refused() -> None:
    with pytest.raises(InvalidChange):
        FaultRule(error_rate=0.5)
    with pytest.raises(InvalidChange):
        FaultRule(error_code=50000, error_rate=0.7, drop_rate=0.4)
    with pytest.raises(InvalidChange):
        FaultRule(http_status=404, http_error_rate=1.0)


async def test_rules_name_endpoints_with_or_without_the_api_path(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    state.set_faults(
        [FaultRule(endpoint="/open_api/v1.3/bc/get/", error_code=50000, error_rate=1)]
    )

    assert await _codes(client, "bc/get/", 1) == [50000]
    with pytest.raises(InvalidChange, match="no endpoint"):
        state.add_fault(FaultRule(endpoint="bc/list", error_code=50000, error_rate=1))
