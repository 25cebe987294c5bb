"""The gateway's per-process cache of callers survives requests that end in an error.

A request that fails rolls its session back, which expires every object the session holds.
The cached caller must not be one of them: the next read by the same caller would find it
detached and unreadable and answer 500 (found by the end-to-end fuzzing and database-outage
tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gmv_common.bus.memory import InMemoryBus
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_gateway.app import create_app
from gmv_gateway.auth.service import create_api_token, create_user


@pytest.fixture
async def runtime(
    make_settings: Callable[..., Settings], sqlite_url: str
) -> AsyncIterator[Runtime]:
    runtime = Runtime.create(make_settings(database_url=sqlite_url), bus=InMemoryBus())
    await runtime.start()
    yield runtime
    await runtime.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app: Any = create_app(runtime, consume_options_events=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api.test"
        ) as http:
            yield http


async def _token(runtime: Runtime) -> str:
    async with runtime.sessionmaker.begin() as session:
        user = await create_user(
            session, email="cached@example.test", password="long enough password"
        )
        _, token = await create_api_token(session, user_id=user.id, name="test")
    return token


async def test_read_after_a_failed_request_of_the_same_caller_is_not_a_500(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    headers = {"Authorization": f"Bearer {await _token(runtime)}"}

    failed = await client.get("/api/v1/tenants/999999/members", headers=headers)
    again = await client.get("/api/v1/auth/me", headers=headers)

    assert failed.status_code == 404
    assert again.status_code == 200, again.text
    assert again.json()["user"]["email"] == "cached@example.test"
