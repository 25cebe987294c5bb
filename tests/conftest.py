"""Fixtures shared by the whole suite.

Real servers: MariaDB and Kafka are started by ``make test`` (``deploy/local/up``); tests reach
them through ``GMV_TEST_DATABASE_URL`` and ``GMV_TEST_KAFKA_BOOTSTRAP``. A test that needs one and
cannot reach it fails; nothing is skipped for a missing server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.db import migrate
from gmv_common.db.session import (
    create_engine,
    create_null_pool_engine,
    create_sessionmaker,
)
from gmv_common.settings import Settings

MARIADB_URL = os.environ.get(
    "GMV_TEST_DATABASE_URL", "mysql+aiomysql://gmv:gmv@127.0.0.1:13306/gmv"
)
KAFKA_BOOTSTRAP = os.environ.get("GMV_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092")

_server_counts = {"mariadb": 0, "kafka": 0, "e2e": 0}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        for marker in _server_counts:
            if marker in report.keywords:
                _server_counts[marker] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(
        "real servers: {mariadb} passed against MariaDB, {kafka} against Kafka, "
        "{e2e} end-to-end with services as processes".format(**_server_counts)
    )


async def create_mariadb_database(*, migrate_schema: bool = True) -> str:
    """A fresh, empty database on the test MariaDB; returns its URL."""
    base = make_url(MARIADB_URL)
    name = f"gmv_t_{uuid.uuid4().hex[:12]}"
    engine = create_null_pool_engine(base.render_as_string(hide_password=False))
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
    except Exception as exc:
        pytest.fail(
            f"MariaDB at {base.host}:{base.port} is not reachable ({exc}); run `make up`"
        )
    finally:
        await engine.dispose()
    url = base.set(database=name).render_as_string(hide_password=False)
    if migrate_schema:
        await migrate.upgrade(url)
    return url


async def drop_mariadb_database(url: str) -> None:
    target = make_url(url)
    engine = create_null_pool_engine(
        make_url(MARIADB_URL).render_as_string(hide_password=False)
    )
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                f"DROP DATABASE IF EXISTS `{target.database}`"
            )
    finally:
        await engine.dispose()


@pytest.fixture
async def mariadb_url() -> AsyncIterator[str]:
    """A migrated database of its own on the real MariaDB, dropped afterwards."""
    url = await create_mariadb_database()
    yield url
    await drop_mariadb_database(url)


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite file database."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'gmv.db'}"
    await migrate.upgrade(url)
    return url


@pytest.fixture
async def sqlite_sessions(
    sqlite_url: str,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on ``sqlite_url`` through the services' own engine settings."""
    engine = create_engine(Settings(_env_file=None, database_url=sqlite_url))
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def kafka_bootstrap() -> str:
    return KAFKA_BOOTSTRAP


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of its own, so tests sharing the broker never see each other's messages."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "log_format": "console",
            "bus_backend": "memory",
            "kafka_bootstrap_servers": KAFKA_BOOTSTRAP,
            "kafka_partitions": 4,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return factory
