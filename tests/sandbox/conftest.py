"""Fixtures of the sandbox tests: a small world, an app, a token and clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sandbox_support import API, SMALL_SPEC, FakeClock

from gmv_sandbox import AccessToken, DeveloperApp, SandboxState, create_app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> SandboxState:
    return SandboxState.generate(SMALL_SPEC, clock=clock)


@pytest.fixture
def developer_app(state: SandboxState) -> DeveloperApp:
    return state.create_app(qps=0)


@pytest.fixture
def token(state: SandboxState, developer_app: DeveloperApp) -> AccessToken:
    return state.issue_token(developer_app.app_id)


@pytest.fixture
async def raw_client(state: SandboxState) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client without credentials."""
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as c:
        yield c


@pytest.fixture
async def client(
    state: SandboxState, token: AccessToken
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client on the TikTok base URL with the all-advertiser token."""
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(
        transport=transport,
        base_url=f"http://sandbox{API}",
        headers={"Access-Token": token.access_token},
    ) as c:
        yield c
