"""The app-wide QPS limit (40100) and the traffic counters."""

from __future__ import annotations

import asyncio

import httpx
from sandbox_support import API, FakeClock

from gmv_sandbox import DeveloperApp, SandboxState, create_app


async def _codes(client: httpx.AsyncClient, token: str, calls: int) -> list[int]:
    responses = await asyncio.gather(
        *(
            client.get(f"{API}bc/get/", headers={"Access-Token": token})
            for _ in range(calls)
        )
    )
    return [response.json()["code"] for response in responses]


async def test_calls_beyond_qps_in_one_second_get_40100(
    raw_client: httpx.AsyncClient, state: SandboxState
) -> None:
    app = state.create_app(qps=5)
    token = state.issue_token(app.app_id).access_token

    codes = await _codes(raw_client, token, 12)

    assert codes.count(0) == 5
    assert codes.count(40100) == 7
    counters = state.counters()
    assert counters["apps"][app.app_id] == {"calls": 12, "throttled": 7, "max_qps": 12}
    assert counters["total_throttled"] == 7
    assert counters["codes"]["bc/get"] == {"0": 5, "40100": 7}


async def test_throttle_message_names_the_app(
    raw_client: httpx.AsyncClient, state: SandboxState
) -> None:
    app = state.create_app(qps=1)
    token = state.issue_token(app.app_id).access_token
    await _codes(raw_client, token, 1)

    response = await raw_client.get(f"{API}bc/get/", headers={"Access-Token": token})

    assert response.status_code == 200
    assert response.json()["code"] == 40100
    assert app.app_id in response.json()["message"]


async def test_the_window_slides_over_one_second(
    raw_client: httpx.AsyncClient, state: SandboxState, clock: FakeClock
) -> None:
    app = state.create_app(qps=3)
    token = state.issue_token(app.app_id).access_token

    first = await _codes(raw_client, token, 3)
    clock.advance(0.5)
    half_second_later = await _codes(raw_client, token, 1)
    clock.advance(0.51)
    after_the_first_second = await _codes(raw_client, token, 3)

    assert first == [0, 0, 0]
    assert half_second_later == [40100]
    assert after_the_first_second == [0, 0, 0]
    assert state.counters()["apps"][app.app_id]["max_qps"] == 4


async def test_refused_calls_do_not_use_up_budget(
    raw_client: httpx.AsyncClient, state: SandboxState, clock: FakeClock
) -> None:
    app = state.create_app(qps=2)
    token = state.issue_token(app.app_id).access_token

    await _codes(raw_client, token, 2)
    for _ in range(5):
        clock.advance(0.1)
        assert await _codes(raw_client, token, 1) == [40100]
    clock.advance(0.51)

    assert await _codes(raw_client, token, 2) == [0, 0]


async def test_apps_have_separate_budgets_shared_by_their_tokens(
    raw_client: httpx.AsyncClient, state: SandboxState
) -> None:
    first_app = state.create_app(qps=2)
    second_app = state.create_app(qps=2)
    one = state.issue_token(first_app.app_id).access_token
    two = state.issue_token(first_app.app_id).access_token
    other = state.issue_token(second_app.app_id).access_token

    assert await _codes(raw_client, one, 1) == [0]
    assert await _codes(raw_client, two, 2) == [0, 40100]
    assert await _codes(raw_client, other, 2) == [0, 0]
    assert state.counters()["tokens"] == {one: 1, two: 2, other: 2}


async def test_oauth_calls_count_against_the_app_named_in_the_body(
    raw_client: httpx.AsyncClient, state: SandboxState
) -> None:
    app = state.create_app(qps=1)
    codes = [state.mint_auth_code(app.app_id).auth_code for _ in range(2)]

    bodies = [
        (
            await raw_client.post(
                f"{API}oauth2/access_token/",
                json={"app_id": app.app_id, "secret": app.secret, "auth_code": code},
            )
        ).json()
        for code in codes
    ]

    assert [body["code"] for body in bodies] == [0, 40100]


async def test_qps_zero_means_unlimited(
    raw_client: httpx.AsyncClient, developer_app: DeveloperApp, state: SandboxState
) -> None:
    token = state.issue_token(developer_app.app_id).access_token

    codes = await _codes(raw_client, token, 50)

    assert set(codes) == {0}
    assert state.counters()["apps"][developer_app.app_id]["max_qps"] == 50


async def test_reset_counters_forgets_everything(
    raw_client: httpx.AsyncClient, state: SandboxState
) -> None:
    app = state.create_app(qps=1)
    token = state.issue_token(app.app_id).access_token
    await _codes(raw_client, token, 3)

    state.reset_counters()

    assert state.counters()["total_calls"] == 0
    assert state.counters()["apps"] == {}
    assert await _codes(raw_client, token, 1) == [0]


async def test_max_qps_is_measured_on_real_time() -> None:
    state = SandboxState.generate()
    app = state.create_app(qps=4)
    token = state.issue_token(app.app_id).access_token
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as c:
        codes = await _codes(c, token, 10)

    assert codes.count(0) == 4
    assert state.counters()["apps"][app.app_id]["max_qps"] == 10
