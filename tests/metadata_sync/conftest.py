"""Fixtures of the metadata-sync tests: a runtime on a given database, with an in-memory bus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gmv_common.bus.memory import InMemoryBus
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings


@pytest.fixture
async def sqlite_runtime(
    sqlite_url: str, make_settings: Callable[..., Settings], topic_prefix: str
) -> AsyncIterator[Runtime]:
    settings = make_settings(database_url=sqlite_url, kafka_topic_prefix=topic_prefix)
    runtime = Runtime.create(settings, bus=InMemoryBus(default_partitions=2))
    yield runtime
    await runtime.engine.dispose()


@pytest.fixture
async def mariadb_runtime_factory(
    mariadb_url: str, make_settings: Callable[..., Settings], topic_prefix: str
) -> AsyncIterator[Callable[..., Runtime]]:
    """Runtimes on one fresh MariaDB database (several may share it, like processes).

    Keyword arguments override settings, e.g. ``bus_backend="kafka"``.
    """
    created: list[Runtime] = []

    def factory(**overrides: Any) -> Runtime:
        values: dict[str, Any] = {
            "database_url": mariadb_url,
            "kafka_topic_prefix": topic_prefix,
        }
        values.update(overrides)
        runtime = Runtime.create(make_settings(**values))
        created.append(runtime)
        return runtime

    yield factory
    for runtime in created:
        await runtime.engine.dispose()
