"""Fixtures of the TikTok client and rate limiter tests.

The limiter's table is created with ``create_all`` on a database of the test's own: a
SQLite file, or a fresh database on the real MariaDB (dropped afterwards).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from tiktok_support import (
    SANDBOX_SPEC,
    Sandbox,
    Sessions,
    create_limiter_table,
    create_mariadb_database,
    drop_mariadb_database,
)

from gmv_common.tiktok import TikTokCredentials
from gmv_sandbox.state import SandboxState


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
async def limiter_db_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    """The limiter table on SQLite, then on the real MariaDB."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'limiter.db'}"
        await create_limiter_table(url)
        yield url
        return
    url = await create_mariadb_database()
    await create_limiter_table(url)
    yield url
    await drop_mariadb_database(url)


@pytest.fixture
async def sessions() -> AsyncIterator[Sessions]:
    opened = Sessions()
    yield opened
    await opened.close()


@pytest.fixture
def sandbox() -> Sandbox:
    state = SandboxState.generate(SANDBOX_SPEC)
    developer_app = state.create_app(qps=0)
    token = state.issue_token(developer_app.app_id)
    return Sandbox(
        state=state,
        app_id=developer_app.app_id,
        app_secret=developer_app.secret,
        access_token=token.access_token,
        credentials=TikTokCredentials(
            app_id=developer_app.app_id,
            access_token=SecretStr(token.access_token),
            app_secret=SecretStr(developer_app.secret),
        ),
    )
