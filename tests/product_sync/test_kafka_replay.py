"""The product-sync service on real Kafka and MariaDB: a command in, a replay changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from product_sync_support import (
    client_factory,
    dump_tables,
    expected_items,
    product_rows,
    request,
    seed_pair,
    world,
)

from gmv_common.bus import topics
from gmv_common.bus.base import Message
from gmv_common.bus.kafka import KafkaBus
from gmv_common.db.models import SyncRun
from gmv_common.messaging.outbox import OutboxRelay
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_common.tiktok import InMemoryRateLimiter
from gmv_product_sync.app import build_executor, run
from gmv_product_sync.executor import RunExecutor
from gmv_product_sync.handlers import consumer_group

pytestmark = [pytest.mark.mariadb, pytest.mark.kafka]


@pytest.fixture
async def runtime(
    mariadb_url: str,
    make_settings: Callable[..., Settings],
    topic_prefix: str,
) -> AsyncIterator[Runtime]:
    runtime = Runtime.create(
        make_settings(
            database_url=mariadb_url,
            kafka_topic_prefix=topic_prefix,
            bus_backend="kafka",
            kafka_partitions=2,
            scheduler_tick_seconds=0.5,
        )
    )
    await runtime.start()
    yield runtime
    await runtime.close()


class Service:
    """``app.run`` plus an outbox relay, started and stopped on demand."""

    def __init__(self, runtime: Runtime, executor: RunExecutor) -> None:
        self.runtime = runtime
        self.executor = executor
        self.slots_taken = 0
        self.progress = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        slot = executor.slot

        @contextlib.asynccontextmanager
        async def counted() -> AsyncIterator[Any]:
            self.slots_taken += 1
            self.progress.set()
            async with slot() as taken:
                yield taken

        executor.slot = counted  # type: ignore[method-assign]

    def start(self) -> None:
        self._stop = asyncio.Event()
        relay = OutboxRelay(
            self.runtime.sessionmaker, self.runtime.bus, poll_seconds=0.1
        )
        self._tasks = [
            asyncio.create_task(relay.run(self._stop)),
            asyncio.create_task(run(self.runtime, self._stop, executor=self.executor)),
        ]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def wait_finished(runtime: Runtime, run_id: int, timeout: float = 120) -> SyncRun:
    async with asyncio.timeout(timeout):
        while True:
            async with runtime.sessionmaker() as session:
                row = await session.get(SyncRun, run_id)
            if row is not None and row.status not in ("queued", "running"):
                return row
            await asyncio.sleep(0.2)


async def read_topic(bus: KafkaBus, topic: str, expected: int) -> list[Message]:
    reader = bus.consumer(f"{topic}.reader", [topic])
    await reader.start()
    messages: list[Message] = []
    try:
        async with asyncio.timeout(30):
            while len(messages) < expected:
                messages += await reader.getmany(timeout=0.5)
    finally:
        await reader.stop()
    return messages


async def test_command_through_kafka_syncs_and_replaying_the_topic_changes_nothing(
    runtime: Runtime,
) -> None:
    state = world(products=450)
    pair = await seed_pair(runtime.sessionmaker, runtime.keyring, state)
    limiter = InMemoryRateLimiter(default_qps=10_000)
    executor = build_executor(
        runtime,
        limiter=limiter,
        client_factory=client_factory(state, runtime.settings, limiter),
    )
    service = Service(runtime, executor)
    requested = await request(
        runtime.sessionmaker, pair, topic_prefix=runtime.settings.kafka_topic_prefix
    )

    service.start()
    finished = await wait_finished(runtime, requested.run.id)
    await asyncio.sleep(1.0)
    await service.stop()

    assert finished.status == "succeeded", finished.error_message
    assert set(await product_rows(runtime.sessionmaker, pair)) == set(
        expected_items(state, pair)
    )
    before = await dump_tables(runtime.sessionmaker)
    bus = runtime.bus
    assert isinstance(bus, KafkaBus)
    commands_topic = runtime.topic(topics.PRODUCT_SYNC_COMMANDS)
    commands = await read_topic(bus, commands_topic, 1)
    events = await read_topic(bus, runtime.topic(topics.SYNC_EVENTS), 1)
    assert [m.headers["ce_type"] for m in events] == ["gmv.sync.completed.v1"]

    group = consumer_group(runtime.settings.kafka_topic_prefix)
    await bus.reset_group(group, commands_topic, 0)
    for message in commands:
        await bus.publish(commands_topic, message.key, message.value, message.headers)
    service.slots_taken = 0
    service.start()
    async with asyncio.timeout(90):
        while service.slots_taken < 2 * len(commands):
            service.progress.clear()
            await service.progress.wait()
    await asyncio.sleep(0.5)
    await service.stop()

    assert await dump_tables(runtime.sessionmaker) == before
