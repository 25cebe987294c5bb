"""The options-cache consumer: sync and binding events in, documents out, replays harmless."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pytest
from event_support import publish_event
from options_support import (
    binding_changed,
    envelope_of,
    make_binding,
    meta_sync_completed,
    options_updated_count,
    seed_small_graph,
)
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.bus import topics
from gmv_common.bus.base import Message
from gmv_common.bus.kafka import KafkaBus
from gmv_common.bus.memory import InMemoryBus
from gmv_common.db.models import Advertiser, Binding, GmvMaxOptions, InboxMessage
from gmv_common.events.envelope import Envelope
from gmv_common.events.schemas import (
    EventModel,
    OptionsUpdated,
    SyncCompleted,
    SyncFailed,
)
from gmv_common.messaging.outbox import OutboxRelay
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_options_cache import app, load_options
from gmv_options_cache.handlers import OptionsEventHandler

Sessions = async_sessionmaker[AsyncSession]

WAIT_SECONDS = 60.0


@dataclass
class Harness:
    runtime: Runtime

    @property
    def sessionmaker(self) -> Sessions:
        return self.runtime.sessionmaker

    async def publish(self, event: EventModel) -> str:
        return await publish_event(self.runtime, event)

    async def reset_group(self, group: str) -> None:
        """Rewind ``group`` to the start of both topics, as the Kafka CLI would."""
        bus = self.runtime.bus
        for logical in (topics.SYNC_EVENTS, topics.BINDING_EVENTS):
            topic = self.runtime.topic(logical)
            if isinstance(bus, KafkaBus):
                # The last member may still be leaving; the reset waits for it.
                await bus.reset_group(group, topic, wait_seconds=WAIT_SECONDS)
            else:
                assert isinstance(bus, InMemoryBus)
                bus.reset_group(group, topic)


async def inbox_ids(sessionmaker: Sessions, group: str) -> set[str]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(InboxMessage.message_id).where(InboxMessage.consumer_group == group)
        )
        return set(rows)


def service_group(harness: Harness) -> str:
    """The group ``app.run`` consumes with: ``{prefix}.options-cache``."""
    return topics.consumer_group(
        harness.runtime.settings.kafka_topic_prefix, "options-cache"
    )


async def consume_until_processed(
    harness: Harness, *, group: str, message_ids: set[str]
) -> None:
    """Run the service's consumer (as ``app.run`` does) until ``message_ids`` are in the inbox."""
    stop = asyncio.Event()
    runner = (
        app.run(harness.runtime, stop)
        if group == service_group(harness)
        else app.consumer_for(harness.runtime, group=group).run(stop)
    )
    task = asyncio.create_task(runner)
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            while not message_ids <= await inbox_ids(harness.sessionmaker, group):
                assert not task.done(), "the consumer stopped early"
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task


@dataclass(frozen=True)
class Snapshot:
    documents: dict[int, tuple[bytes, str, int]]
    options_updated: int


async def snapshot(sessionmaker: Sessions, *bindings: Binding) -> Snapshot:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(
                GmvMaxOptions.auth_id,
                GmvMaxOptions.document,
                GmvMaxOptions.etag,
                GmvMaxOptions.version,
            )
        )
        documents = {row.auth_id: (row.document, row.etag, row.version) for row in rows}
        updates = 0
        for binding in bindings:
            updates += await options_updated_count(session, auth_id=binding.id)
    return Snapshot(documents, updates)


@asynccontextmanager
async def running(
    settings: Settings, *, bus: InMemoryBus | None = None
) -> AsyncIterator[Harness]:
    runtime = Runtime.create(settings, bus=bus)
    await runtime.start()
    try:
        yield Harness(runtime)
    finally:
        if isinstance(runtime.bus, KafkaBus):
            await runtime.bus.delete_topics(
                [runtime.topic(logical) for logical in topics.ALL_TOPICS]
            )
        await runtime.close()


async def test_replayed_sync_events_leave_documents_and_versions_unchanged(
    sqlite_url: str, topic_prefix: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(database_url=sqlite_url, kafka_topic_prefix=topic_prefix)
    async with running(settings, bus=InMemoryBus(default_partitions=4)) as harness:
        await replay_scenario(harness)


@pytest.mark.mariadb
@pytest.mark.kafka
async def test_replayed_kafka_events_leave_mariadb_documents_and_versions_unchanged(
    mariadb_url: str, topic_prefix: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        database_url=mariadb_url, kafka_topic_prefix=topic_prefix, bus_backend="kafka"
    )
    async with running(settings) as harness:
        await replay_scenario(harness)


async def replay_scenario(harness: Harness) -> None:
    """Consume, rewind the group and replay, then replay again under a new group."""
    sessionmaker = harness.sessionmaker
    async with sessionmaker.begin() as session:
        first = await make_binding(session)
        await seed_small_graph(session, first)
        second = await make_binding(session, workspace_id=first.workspace_id)
        await seed_small_graph(session, second)
    published = {
        await harness.publish(meta_sync_completed(first, run_id=1)),
        await harness.publish(meta_sync_completed(second, run_id=2)),
    }
    await consume_until_processed(
        harness, group=service_group(harness), message_ids=published
    )
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Advertiser)
            .where(Advertiser.auth_id == first.id, Advertiser.advertiser_id == "6001")
            .values(name="Renamed by a later sync")
        )
        await session.execute(
            update(Binding).where(Binding.id == second.id).values(alias="Second")
        )
    published |= {
        await harness.publish(meta_sync_completed(first, run_id=3)),
        await harness.publish(
            binding_changed(second, change="alias_changed", alias="Second")
        ),
    }
    await consume_until_processed(
        harness, group=service_group(harness), message_ids=published
    )
    before = await snapshot(sessionmaker, first, second)
    assert {auth_id: doc[2] for auth_id, doc in before.documents.items()} == {
        first.id: 2,
        second.id: 2,
    }
    assert before.options_updated == 4

    # The same group, rewound to the start: the inbox skips every replayed message. One new
    # message behind the replayed ones on each of their partitions (same topic, same key)
    # shows when the replay is through.
    await harness.reset_group(service_group(harness))
    published |= {
        await harness.publish(meta_sync_completed(first, run_id=4)),
        await harness.publish(meta_sync_completed(second, run_id=5)),
        await harness.publish(binding_changed(second, change="status_changed")),
    }
    await consume_until_processed(
        harness, group=service_group(harness), message_ids=published
    )
    assert await snapshot(sessionmaker, first, second) == before

    # A brand-new group reads everything from the start and rebuilds: same content, same bytes.
    fresh_group = f"{service_group(harness)}.replay"
    await consume_until_processed(harness, group=fresh_group, message_ids=published)
    assert await snapshot(sessionmaker, first, second) == before
    async with sessionmaker() as session:
        options = await load_options(session, first.workspace_id, first.id)
    assert options is not None
    assert (options.version, options.run_id) == (2, 3)
    await check_options_updated_on_the_bus(harness, before)


async def check_options_updated_on_the_bus(harness: Harness, state: Snapshot) -> None:
    """The relay publishes one OptionsUpdated per new ETag, the last one per binding current."""
    relay = OutboxRelay(harness.sessionmaker, harness.runtime.bus)
    while await relay.publish_pending():
        pass
    topic = harness.runtime.topic(topics.OPTIONS_EVENTS)
    consumer = harness.runtime.bus.consumer(f"reader-{uuid.uuid4().hex[:8]}", [topic])
    await consumer.start()
    received: list[Message] = []
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            while len(received) < state.options_updated:
                received.extend(await consumer.getmany(timeout=0.5))
    finally:
        await consumer.stop()

    events = [Envelope.from_message(message) for message in received]
    assert {event.type for event in events} == {OptionsUpdated.event_type}
    assert len({event.data["etag"] for event in events}) == state.options_updated
    latest = {event.data["auth_id"]: event.data for event in events}
    for auth_id, (_, etag, version) in state.documents.items():
        assert (latest[auth_id]["etag"], latest[auth_id]["version"]) == (etag, version)


@pytest.fixture
async def handler(sessionmaker: Sessions) -> OptionsEventHandler:
    return OptionsEventHandler(sessionmaker, topic_prefix="gmv")


async def handle(handler: OptionsEventHandler, event: EventModel) -> None:
    envelope = envelope_of(event)
    message = Message(
        f"gmv.{event.topic}", event.key, envelope.body(), envelope.headers(), 0, 0
    )
    await handler(Envelope.from_message(message), message)


async def seeded(sessionmaker: Sessions) -> Binding:
    async with sessionmaker.begin() as session:
        binding = await make_binding(session)
        await seed_small_graph(session, binding)
    return binding


async def test_meta_sync_completed_builds_with_its_run_and_finish_time(
    sessionmaker: Sessions, handler: OptionsEventHandler
) -> None:
    binding = await seeded(sessionmaker)
    finished = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)

    await handle(handler, meta_sync_completed(binding, run_id=12, finished_at=finished))

    async with sessionmaker() as session:
        options = await load_options(session, binding.workspace_id, binding.id)
    assert options is not None
    assert (options.version, options.run_id, options.synced_at) == (1, 12, finished)
    document = orjson.loads(options.body)
    assert datetime.fromisoformat(document["synced_at"]) == finished


async def test_product_sync_events_do_not_touch_documents(
    sessionmaker: Sessions, handler: OptionsEventHandler
) -> None:
    binding = await seeded(sessionmaker)
    products_done = meta_sync_completed(binding, run_id=3).model_copy(
        update={"scope": "products"}
    )

    await handle(handler, products_done)

    async with sessionmaker() as session:
        assert await load_options(session, binding.workspace_id, binding.id) is None
        assert await session.scalar(select(func.count(InboxMessage.id))) == 0


async def test_failed_meta_sync_rebuilds_what_its_finished_phases_wrote(
    sessionmaker: Sessions, handler: OptionsEventHandler
) -> None:
    binding = await seeded(sessionmaker)
    failed = SyncFailed(
        workspace_id=binding.workspace_id,
        auth_id=binding.id,
        run_id=4,
        scope="meta",
        mode="full",
        trigger="schedule",
        error_code="TOKEN_INVALID",
        error_message="token revoked",
        finished_at=datetime(2026, 12, 1, tzinfo=UTC),
    )

    await handle(handler, failed)

    async with sessionmaker() as session:
        options = await load_options(session, binding.workspace_id, binding.id)
    assert options is not None
    assert options.run_id == 4


async def test_alias_edit_rebuilds_and_deletion_removes_the_document(
    sessionmaker: Sessions, handler: OptionsEventHandler
) -> None:
    binding = await seeded(sessionmaker)
    await handle(handler, meta_sync_completed(binding, run_id=1))
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Binding).where(Binding.id == binding.id).values(alias="Shop EU")
        )

    await handle(handler, binding_changed(binding, change="alias_changed"))

    async with sessionmaker() as session:
        options = await load_options(session, binding.workspace_id, binding.id)
    assert options is not None
    assert options.version == 2
    assert orjson.loads(options.body)["alias"] == "Shop EU"

    await handle(handler, binding_changed(binding, change="deleted"))

    async with sessionmaker() as session:
        assert await load_options(session, binding.workspace_id, binding.id) is None


async def test_sync_event_of_a_vanished_binding_leaves_no_document(
    sessionmaker: Sessions, handler: OptionsEventHandler
) -> None:
    binding = await seeded(sessionmaker)
    foreign: SyncCompleted = meta_sync_completed(binding, run_id=1).model_copy(
        update={"workspace_id": binding.workspace_id + 1000}
    )

    await handle(handler, foreign)

    async with sessionmaker() as session:
        assert await session.scalar(select(func.count(GmvMaxOptions.id))) == 0
        assert await session.scalar(select(func.count(InboxMessage.id))) == 1


async def test_binding_changes_before_the_first_sync_build_no_document(
    sessionmaker: Sessions, handler: OptionsEventHandler
) -> None:
    # No document lets the gateway answer "pending" until the first sync has run.
    binding = await seeded(sessionmaker)

    await handle(handler, binding_changed(binding, change="created"))
    await handle(handler, binding_changed(binding, change="alias_changed"))

    async with sessionmaker() as session:
        assert await load_options(session, binding.workspace_id, binding.id) is None
