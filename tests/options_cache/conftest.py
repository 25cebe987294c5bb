"""Fixtures of the options-cache tests: a migrated database and its sessionmaker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.db.session import create_engine, create_sessionmaker
from gmv_common.settings import Settings


@pytest.fixture
async def sessionmaker(
    sqlite_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a migrated SQLite file (the embedded mode's database)."""
    engine = create_engine(make_settings(database_url=sqlite_url))
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def mariadb_sessionmaker(
    mariadb_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a fresh database of the real MariaDB, as the services open them."""
    engine = create_engine(make_settings(database_url=mariadb_url))
    yield create_sessionmaker(engine)
    await engine.dispose()
