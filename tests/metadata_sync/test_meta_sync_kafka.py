"""The metadata-sync service on real Kafka and MariaDB: commands in, events out, replays."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from meta_sync_support import (
    SandboxBinding,
    add_binding,
    assert_matches_sandbox,
    make_sandbox,
    make_worker,
    request_run,
    stored_graph,
)
from sqlalchemy import text

from gmv_common.bus import topics
from gmv_common.bus.kafka import KafkaBus
from gmv_common.db.models import SyncRun
from gmv_common.messaging.outbox import OutboxRelay
from gmv_common.runtime import Runtime
from gmv_common.tiktok import InMemoryRateLimiter
from gmv_metadata_sync.app import run
from gmv_metadata_sync.worker import MetaSyncWorker

pytestmark = [pytest.mark.mariadb, pytest.mark.kafka]

SNAPSHOT_TABLES = (
    "ttb_business_centers",
    "ttb_advertisers",
    "ttb_stores",
    "ttb_bc_advertiser_links",
    "ttb_advertiser_store_links",
    "ttb_bindings",
    "sync_runs",
    "schedules",
    "inbox",
)


class ServiceUnderTest:
    """The service's ``run`` plus an outbox relay, started and stopped on demand."""

    def __init__(self, runtime: Runtime, worker: MetaSyncWorker) -> None:
        self.runtime = runtime
        self.worker = worker
        # The broker is shared: a group of its own, not gmv.metadata-sync.
        self.group = f"{runtime.settings.kafka_topic_prefix}.metadata-sync"
        self.submitted: list[int] = []
        self._progress = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        submit = worker.submit

        async def counted(run_id: int) -> Any:
            self.submitted.append(run_id)
            self._progress.set()
            return await submit(run_id)

        worker.submit = counted  # type: ignore[method-assign]

    def start(self) -> None:
        self._stop = asyncio.Event()
        relay = OutboxRelay(
            self.runtime.sessionmaker, self.runtime.bus, poll_seconds=0.1
        )
        self._tasks = [
            asyncio.create_task(relay.run(self._stop)),
            asyncio.create_task(
                run(self.runtime, self._stop, worker=self.worker, group=self.group)
            ),
        ]

    async def wait_submitted(self, count: int, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(self.submitted) < count:
                    self._progress.clear()
                    await self._progress.wait()

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


@pytest.fixture
async def kafka_runtime(
    mariadb_runtime_factory: Callable[..., Runtime], kafka_bootstrap: str
) -> AsyncIterator[Runtime]:
    runtime = mariadb_runtime_factory(
        bus_backend="kafka", kafka_partitions=2, scheduler_tick_seconds=0.5
    )
    await runtime.start()
    yield runtime
    await runtime.bus.stop()


async def _binding(runtime: Runtime, **spec: Any) -> SandboxBinding:
    state, app_id, token = make_sandbox(**spec)
    return await add_binding(
        runtime.sessionmaker, runtime.keyring, state, app_id=app_id, access_token=token
    )


def _service(runtime: Runtime, binding: SandboxBinding) -> ServiceUnderTest:
    worker = make_worker(
        runtime.sessionmaker,
        runtime.keyring,
        runtime.settings,
        InMemoryRateLimiter(),
        binding.state,
    )
    return ServiceUnderTest(runtime, worker)


async def _wait_finished(runtime: Runtime, run_id: int, timeout: float = 60) -> SyncRun:
    async with asyncio.timeout(timeout):
        while True:
            async with runtime.sessionmaker() as session:
                run_row = await session.get(SyncRun, run_id)
            if run_row is not None and run_row.status not in ("queued", "running"):
                return run_row
            await asyncio.sleep(0.2)


async def _database_state(runtime: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    async with runtime.sessionmaker() as session:
        return {
            table: [
                tuple(row)
                for row in (
                    await session.execute(text(f"SELECT * FROM {table} ORDER BY id"))
                ).all()
            ]
            for table in SNAPSHOT_TABLES
        }


async def _read_topic(bus: KafkaBus, topic: str, expected: int) -> list[Any]:
    consumer = bus.consumer(f"replay-reader-{topic}", [topic])
    await consumer.start()
    messages: list[Any] = []
    try:
        async with asyncio.timeout(30):
            while len(messages) < expected:
                messages += await consumer.getmany(timeout=0.5)
    finally:
        await consumer.stop()
    return messages


async def test_sync_through_kafka_then_replaying_commands_and_events_changes_nothing(
    kafka_runtime: Runtime,
) -> None:
    runtime = kafka_runtime
    binding = await _binding(runtime, business_centers=3, advertisers=15)
    service = _service(runtime, binding)
    prefix = runtime.settings.kafka_topic_prefix
    run_id = await request_run(runtime.sessionmaker, binding, topic_prefix=prefix)

    service.start()
    finished = await _wait_finished(runtime, run_id)
    await asyncio.sleep(1.0)  # let the relay publish the run's events
    await service.stop()

    assert finished.status == "succeeded", finished.error_message
    scope = {"workspace_id": binding.workspace_id, "auth_id": binding.auth_id}
    assert_matches_sandbox(
        await stored_graph(runtime.sessionmaker, **scope), binding.expected()
    )
    before = await _database_state(runtime)
    bus = runtime.bus
    assert isinstance(bus, KafkaBus)
    commands_topic = runtime.topic(topics.META_SYNC_COMMANDS)
    events_topic = runtime.topic(topics.SYNC_EVENTS)
    commands = await _read_topic(bus, commands_topic, 1)
    events = await _read_topic(bus, events_topic, 1)
    assert {m.headers["ce_type"] for m in events} == {"gmv.sync.completed.v1"}

    await bus.reset_group(service.group, commands_topic, offset=0)
    for message in events:
        await bus.publish(events_topic, message.key, message.value, message.headers)
    service.submitted.clear()
    service.start()
    await service.wait_submitted(len(commands), timeout=30)
    await asyncio.sleep(0.5)
    await service.stop()

    assert sorted(service.submitted) == sorted(
        orjson.loads(m.value)["run_id"] for m in commands
    )
    assert await _database_state(runtime) == before


async def test_revoked_token_fails_the_run_and_publishes_the_events(
    kafka_runtime: Runtime,
) -> None:
    runtime = kafka_runtime
    binding = await _binding(runtime, business_centers=2, advertisers=4)
    binding.state.revoke_token(binding.access_token)
    service = _service(runtime, binding)
    run_id = await request_run(
        runtime.sessionmaker, binding, topic_prefix=runtime.settings.kafka_topic_prefix
    )

    service.start()
    finished = await _wait_finished(runtime, run_id)
    bus = runtime.bus
    assert isinstance(bus, KafkaBus)
    sync_events = await _read_topic(bus, runtime.topic(topics.SYNC_EVENTS), 1)
    binding_events = await _read_topic(bus, runtime.topic(topics.BINDING_EVENTS), 1)
    await service.stop()

    assert (finished.status, finished.error_code) == ("failed", "TOKEN_INVALID")
    failed = orjson.loads(sync_events[0].value)
    assert sync_events[0].headers["ce_type"] == "gmv.sync.failed.v1"
    assert (failed["run_id"], failed["error_code"]) == (run_id, "TOKEN_INVALID")
    changed = orjson.loads(binding_events[0].value)
    assert (changed["auth_id"], changed["status"]) == (binding.auth_id, "needs_reauth")
