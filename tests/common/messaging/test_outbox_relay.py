"""The outbox relay: order, marking, failures, concurrent relays and dead writers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import orjson
import pytest
from outbox_support import (
    CountingBus,
    order_per_key,
    unpublished_rows,
    until_published,
    write_events,
)
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.bus import topics
from gmv_common.bus.memory import InMemoryBus
from gmv_common.db.base import utcnow
from gmv_common.db.models import OutboxMessage
from gmv_common.db.session import create_engine, create_sessionmaker
from gmv_common.messaging.outbox import PROCESS_ID, OutboxRelay
from gmv_common.settings import Settings

PREFIX = "gmv"
COMMANDS = topics.topic_name(PREFIX, topics.META_SYNC_COMMANDS)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated database of the test's own: a SQLite file, or one on the real MariaDB."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
async def sessionmaker(
    database_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(make_settings(database_url=database_url))
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def release_writer_claims(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Make every row claimable by any relay, as if its writer had no relay of its own."""
    async with sessionmaker.begin() as session:
        await session.execute(
            update(OutboxMessage).values(claimed_by=None, claimed_until=None)
        )


async def read_all(bus: InMemoryBus, expected: int) -> list[str]:
    consumer = bus.consumer("reader", [COMMANDS])
    await consumer.start()
    ids: list[str] = []
    async with asyncio.timeout(10):
        while len(ids) < expected:
            ids.extend(m.headers["ce_id"] for m in await consumer.getmany(timeout=0.2))
    await consumer.stop()
    return ids


async def test_relay_publishes_each_binding_s_rows_in_write_order_and_marks_them(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    bus = InMemoryBus(default_partitions=4)
    written = await write_events(sessionmaker, topic_prefix=PREFIX, count=45)
    written_ids = [envelope.id for envelope in written]
    counting = CountingBus(bus, name="relay")
    relay = OutboxRelay(sessionmaker, counting, batch_size=20)

    passes = [await relay.publish_pending() for _ in range(3)]

    assert passes == [20, 20, 5]
    assert sorted(counting.published) == sorted(written_ids)
    assert order_per_key(counting.published, written) == order_per_key(
        written_ids, written
    )
    async with sessionmaker() as session:
        rows = list(
            await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        )
    assert [row.event_id for row in rows] == written_ids
    assert all(row.published_at is not None and row.attempts == 1 for row in rows)
    consumer = bus.consumer("reader", [COMMANDS])
    await consumer.start()
    (first, *_) = await consumer.getmany(timeout=0)
    original = next(e for e in written if e.id == first.headers["ce_id"])
    assert first.headers == original.headers()
    assert orjson.loads(first.value) == original.data
    assert first.key == f"1:{original.data['auth_id']}"


async def test_a_failed_publish_holds_back_its_binding_and_not_the_others(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    written = await write_events(sessionmaker, topic_prefix=PREFIX, count=10)
    flaky = CountingBus(InMemoryBus(), name="relay")
    stuck = written[2]
    flaky.failing = {stuck.id}
    relay = OutboxRelay(sessionmaker, flaky)

    with pytest.raises(ConnectionError):
        await relay.publish_pending()
    published_despite_failure = list(flaky.published)
    left_after_failure = await unpublished_rows(sessionmaker)
    flaky.failing = set()
    await relay.publish_pending()

    same_binding = [e.id for e in written if e.data["auth_id"] == stuck.data["auth_id"]]
    assert sorted(published_despite_failure) == sorted(
        e.id for e in written if e.id not in same_binding
    )
    assert left_after_failure == len(same_binding) == 2
    assert await unpublished_rows(sessionmaker) == 0
    assert flaky.published[-2:] == same_binding


async def test_two_relays_at_once_publish_every_row_with_rare_duplicates(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    bus = InMemoryBus(default_partitions=4)
    written = await write_events(
        sessionmaker, topic_prefix=PREFIX, count=400, per_transaction=50
    )
    await release_writer_claims(sessionmaker)
    relays = [CountingBus(bus, name=name, publish_delay=0.001) for name in ("a", "b")]
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            OutboxRelay(
                sessionmaker, relay_bus, batch_size=25, owner=f"relay-{relay_bus.name}"
            ).run(stop)
        )
        for relay_bus in relays
    ]
    try:
        await until_published(sessionmaker)
    finally:
        stop.set()
        await asyncio.gather(*tasks)

    publications = Counter(relays[0].published + relays[1].published)
    duplicates = sum(publications.values()) - len(publications)
    # Which relay wins which batch is up to the scheduler; the guarantee is that together they
    # publish every row, with duplicates rare.
    assert set(publications) == {envelope.id for envelope in written}
    assert duplicates <= 4, f"{duplicates} duplicates out of 400"
    assert sorted(await read_all(bus, 400 + duplicates)) == sorted(
        publications.elements()
    )


async def test_rows_of_a_dead_writer_are_published_once_its_claim_expired(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    orphaned = await write_events(sessionmaker, topic_prefix=PREFIX, count=3)
    busy = await write_events(
        sessionmaker, topic_prefix=PREFIX, count=2, first_run_id=100
    )
    now = utcnow()
    async with sessionmaker.begin() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.event_id.in_([e.id for e in orphaned]))
            .values(
                claimed_by="dead-host:4242:0bad",
                claimed_until=now - timedelta(seconds=1),
            )
        )
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.event_id.in_([e.id for e in busy]))
            .values(
                claimed_by="busy-host:7:cafe", claimed_until=now + timedelta(minutes=5)
            )
        )
    bus = CountingBus(InMemoryBus(), name="survivor")

    await OutboxRelay(sessionmaker, bus, owner="survivor-host:1:beef").publish_pending()

    assert bus.published == [envelope.id for envelope in orphaned]
    assert await unpublished_rows(sessionmaker) == 2


async def test_the_writing_process_relay_publishes_its_own_rows_at_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    written = await write_events(sessionmaker, topic_prefix=PREFIX, count=4)
    other_process = CountingBus(InMemoryBus(), name="other")
    this_process = CountingBus(InMemoryBus(), name="this")

    await OutboxRelay(
        sessionmaker, other_process, owner="other-host:9:feed"
    ).publish_pending()
    await OutboxRelay(sessionmaker, this_process, owner=PROCESS_ID).publish_pending()

    assert other_process.published == []
    assert this_process.published == [envelope.id for envelope in written]


async def test_a_running_relay_is_woken_by_the_commit_of_an_outbox_row(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    bus = CountingBus(InMemoryBus(), name="relay")
    relay = OutboxRelay(sessionmaker, bus, poll_seconds=30)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        (envelope,) = await write_events(sessionmaker, topic_prefix=PREFIX, count=1)
        await until_published(sessionmaker, timeout=5)
        latency = loop.time() - started
    finally:
        stop.set()
        await task

    assert bus.published == [envelope.id]
    assert latency < 2


async def _claims(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> dict[str, tuple[str | None, object]]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(
                OutboxMessage.event_id,
                OutboxMessage.claimed_by,
                OutboxMessage.claimed_until,
            )
        )
        return {event_id: (owner, until) for event_id, owner, until in rows}


async def test_own_fresh_rows_are_published_without_claiming_them_again(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    fresh = await write_events(sessionmaker, topic_prefix=PREFIX, count=3)
    (expiring,) = await write_events(
        sessionmaker, topic_prefix=PREFIX, count=1, first_run_id=100
    )
    async with sessionmaker.begin() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.event_id == expiring.id)
            .values(claimed_until=utcnow() + timedelta(seconds=1))
        )
    before = await _claims(sessionmaker)
    bus = CountingBus(InMemoryBus(), name="this")

    await OutboxRelay(sessionmaker, bus, owner=PROCESS_ID).publish_pending()

    after = await _claims(sessionmaker)
    assert sorted(bus.published) == sorted(e.id for e in [*fresh, expiring])
    # The writer's claims still hold: no statement was spent on claiming them again.
    assert {e.id: after[e.id] for e in fresh} == {e.id: before[e.id] for e in fresh}
    # The claim about to run out was extended before publishing.
    assert after[expiring.id] != before[expiring.id]
    assert await unpublished_rows(sessionmaker) == 0
