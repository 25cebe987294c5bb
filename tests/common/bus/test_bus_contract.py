"""The bus contract, proven the same way on the in-memory bus and on Kafka."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable
from pathlib import Path

import orjson
import pytest
from bus_support import BusUnderTest, drain, drain_together, until
from sqlalchemy import func, select

from gmv_common.bus.base import Bus, Message
from gmv_common.db import migrate
from gmv_common.db.models import AuditLogEntry
from gmv_common.db.session import create_null_pool_engine, create_sessionmaker
from gmv_common.events.envelope import Envelope
from gmv_common.messaging.consumer import ConsumerRunner
from gmv_common.messaging.inbox import already_processed


def event(n: int, **data: object) -> Envelope:
    return Envelope(type="gmv.test.counted.v1", source="/tests", data={"n": n, **data})


async def publish_event(bus: Bus, topic: str, key: str, envelope: Envelope) -> None:
    await bus.publish(topic, key, envelope.body(), envelope.headers())


def numbers(messages: list[Message]) -> list[int]:
    return [orjson.loads(message.value)["n"] for message in messages]


async def run_in_background(
    runner: ConsumerRunner,
) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(runner.run(stop))


async def stop_runner(stop: asyncio.Event, task: Awaitable[None]) -> None:
    stop.set()
    async with asyncio.timeout(30):
        await task


async def test_messages_of_one_key_arrive_in_publish_order(
    under_test: BusUnderTest,
) -> None:
    topic = await under_test.topic()
    keys = [f"1:{auth_id}" for auth_id in range(6)]
    for n in range(120):
        await publish_event(under_test.bus, topic, keys[n % len(keys)], event(n))

    consumer = under_test.bus.consumer(under_test.group(), [topic])
    await consumer.start()
    try:
        received = await drain(consumer, 120)
    finally:
        await consumer.stop()

    assert sorted(numbers(received)) == list(range(120))
    by_key: dict[str, list[int]] = defaultdict(list)
    partitions_of_key: dict[str, set[int]] = defaultdict(set)
    for message in received:
        by_key[message.key].append(orjson.loads(message.value)["n"])
        partitions_of_key[message.key].add(message.partition)
    for index, key in enumerate(keys):
        assert by_key[key] == list(range(index, 120, len(keys)))
        assert len(partitions_of_key[key]) == 1


async def test_members_of_a_group_split_partitions_and_each_message_reaches_one(
    under_test: BusUnderTest,
) -> None:
    topic = await under_test.topic(partitions=4)
    group = under_test.group()
    first = under_test.bus.consumer(group, [topic])
    second = under_test.bus.consumer(group, [topic])
    await first.start()
    await second.start()
    try:
        await under_test.wait_assigned(
            [first, second], {(topic, partition) for partition in range(4)}
        )
        for n in range(80):
            await publish_event(under_test.bus, topic, f"1:{n % 20}", event(n))
        first_got, second_got = await drain_together([first, second], 80)
    finally:
        await first.stop()
        await second.stop()

    assert sorted(numbers(first_got) + numbers(second_got)) == list(range(80))
    assert first_got
    assert second_got
    assert {m.partition for m in first_got}.isdisjoint(
        {m.partition for m in second_got}
    )
    assert {m.key for m in first_got}.isdisjoint({m.key for m in second_got})


async def test_every_group_receives_every_message(under_test: BusUnderTest) -> None:
    topic = await under_test.topic()
    for n in range(30):
        await publish_event(under_test.bus, topic, f"2:{n % 7}", event(n))

    received = {}
    for name in ("options-cache", "gateway"):
        consumer = under_test.bus.consumer(under_test.group(name), [topic])
        await consumer.start()
        try:
            received[name] = await drain(consumer, 30)
        finally:
            await consumer.stop()

    assert sorted(numbers(received["options-cache"])) == list(range(30))
    assert sorted(numbers(received["gateway"])) == list(range(30))


async def test_uncommitted_messages_go_to_the_next_member_after_a_crash(
    under_test: BusUnderTest,
) -> None:
    topic = await under_test.topic(partitions=1)
    group = under_test.group()
    for n in range(10):
        await publish_event(under_test.bus, topic, "3:1", event(n))

    crashed = under_test.bus.consumer(group, [topic])
    await crashed.start()
    try:
        first_reading = await drain(crashed, 10)
        await crashed.commit(first_reading[3])
    finally:
        await crashed.stop()

    successor = under_test.bus.consumer(group, [topic])
    await successor.start()
    try:
        second_reading = await drain(successor, 6)
    finally:
        await successor.stop()

    assert numbers(first_reading) == list(range(10))
    assert numbers(second_reading) == list(range(4, 10))
    assert [m.offset for m in second_reading] == [m.offset for m in first_reading[4:]]


async def test_a_message_that_keeps_failing_is_dead_lettered_and_the_next_is_processed(
    under_test: BusUnderTest,
) -> None:
    topic = await under_test.topic(partitions=1)
    dlq = await under_test.topic("dlq", partitions=1)
    poison, healthy = event(1, poison=True), event(2)
    await publish_event(under_test.bus, topic, "4:1", poison)
    await publish_event(under_test.bus, topic, "4:1", healthy)
    attempts: Counter[str] = Counter()
    processed: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        attempts[envelope.id] += 1
        if envelope.data.get("poison"):
            raise ValueError("advertiser payload has no advertiser_id")
        processed.append(envelope.id)

    runner = ConsumerRunner(
        under_test.bus,
        group=under_test.group(),
        topics=[topic],
        handler=handle,
        dlq_topic=dlq,
        max_attempts=3,
        retry_backoff=0.01,
    )
    stop, task = await run_in_background(runner)
    try:
        await until(lambda: processed == [healthy.id])
    finally:
        await stop_runner(stop, task)

    dead = under_test.bus.consumer(under_test.group("dlq-reader"), [dlq])
    await dead.start()
    try:
        (dead_letter,) = await drain(dead, 1)
    finally:
        await dead.stop()
    assert attempts == {poison.id: 3, healthy.id: 1}
    assert dead_letter.headers["ce_id"] == poison.id
    assert dead_letter.headers["dlq_error"].startswith("ValueError: advertiser payload")
    assert dead_letter.headers["dlq_attempts"] == "3"
    assert dead_letter.headers["dlq_original_topic"] == topic
    assert dead_letter.value == poison.body()


async def test_malformed_messages_are_dead_lettered_without_calling_the_handler(
    under_test: BusUnderTest,
) -> None:
    topic = await under_test.topic(partitions=1)
    dlq = await under_test.topic("dlq", partitions=1)
    healthy = event(3)
    await under_test.bus.publish(topic, "5:1", b"{not json", healthy.headers())
    await under_test.bus.publish(topic, "5:1", b'{"n": 1}', {"content-type": "json"})
    await publish_event(under_test.bus, topic, "5:1", healthy)
    handled: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        handled.append(envelope.id)

    runner = ConsumerRunner(
        under_test.bus,
        group=under_test.group(),
        topics=[topic],
        handler=handle,
        dlq_topic=dlq,
        retry_backoff=0.01,
    )
    stop, task = await run_in_background(runner)
    try:
        await until(lambda: handled == [healthy.id])
    finally:
        await stop_runner(stop, task)

    dead = under_test.bus.consumer(under_test.group("dlq-reader"), [dlq])
    await dead.start()
    try:
        dead_letters = await drain(dead, 2)
    finally:
        await dead.stop()
    assert [m.headers["dlq_attempts"] for m in dead_letters] == ["1", "1"]
    assert "not JSON" in dead_letters[0].headers["dlq_error"]
    assert "ce_id is missing" in dead_letters[1].headers["dlq_error"]
    assert [m.value for m in dead_letters] == [b"{not json", b'{"n": 1}']


async def test_replaying_a_topic_through_the_inbox_leaves_the_state_unchanged(
    under_test: BusUnderTest, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'replay.db'}"
    await migrate.upgrade(database_url)
    engine = create_null_pool_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    topic = await under_test.topic()
    dlq = await under_test.topic("dlq")
    group = under_test.group("audit")
    for n in range(12):
        await publish_event(under_test.bus, topic, f"6:{n % 3}", event(n))
    deliveries: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        async with sessionmaker.begin() as session:
            deliveries.append(envelope.id)
            if await already_processed(
                session, group=group, message_id=envelope.id, topic=message.topic
            ):
                return
            session.add(AuditLogEntry(action="test.counted", target_id=envelope.id))

    async def audit_rows() -> int:
        async with sessionmaker() as session:
            return int(await session.scalar(select(func.count(AuditLogEntry.id))) or 0)

    async def consume_everything(expected_deliveries: int) -> None:
        runner = ConsumerRunner(
            under_test.bus, group=group, topics=[topic], handler=handle, dlq_topic=dlq
        )
        stop, task = await run_in_background(runner)
        try:
            await until(lambda: len(deliveries) >= expected_deliveries)
        finally:
            await stop_runner(stop, task)

    try:
        await consume_everything(12)
        rows_after_first_pass = await audit_rows()
        await under_test.reset_group(group, topic)
        await consume_everything(24)
        rows_after_replay = await audit_rows()
    finally:
        await engine.dispose()

    assert rows_after_first_pass == 12
    assert rows_after_replay == 12
    assert sorted(deliveries[12:]) == sorted(deliveries[:12])


@pytest.mark.parametrize("partitions", [1, 4])
async def test_a_commit_covers_only_its_own_partition(
    under_test: BusUnderTest, partitions: int
) -> None:
    topic = await under_test.topic(partitions=partitions)
    group = under_test.group()
    for n in range(8):
        await publish_event(under_test.bus, topic, f"7:{n}", event(n))

    reader = under_test.bus.consumer(group, [topic])
    await reader.start()
    try:
        first_reading = await drain(reader, 8)
        last_of_first_partition = [
            m for m in first_reading if m.partition == first_reading[0].partition
        ][-1]
        await reader.commit(last_of_first_partition)
    finally:
        await reader.stop()

    rereader = under_test.bus.consumer(group, [topic])
    await rereader.start()
    try:
        expected_again = [
            m for m in first_reading if m.partition != last_of_first_partition.partition
        ]
        second_reading = await drain(rereader, len(expected_again))
    finally:
        await rereader.stop()

    assert sorted(numbers(second_reading)) == sorted(numbers(expected_again))


async def test_a_runner_stopped_during_an_outage_leaves_the_message_for_later(
    under_test: BusUnderTest,
) -> None:
    topic = await under_test.topic(partitions=1)
    dlq = await under_test.topic("dlq", partitions=1)
    group = under_test.group()
    pending = event(1)
    await publish_event(under_test.bus, topic, "8:1", pending)
    calls: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        calls.append(envelope.id)
        raise ConnectionError("database unreachable")

    runner = ConsumerRunner(
        under_test.bus,
        group=group,
        topics=[topic],
        handler=handle,
        dlq_topic=dlq,
        max_attempts=2,
        retry_backoff=0.05,
        max_backoff=30,
    )
    stop, task = await run_in_background(runner)
    await until(lambda: len(calls) >= 3)
    loop = asyncio.get_running_loop()
    stopping = loop.time()
    await stop_runner(stop, task)
    stop_took = loop.time() - stopping

    successor = under_test.bus.consumer(group, [topic])
    dead = under_test.bus.consumer(under_test.group("dlq-reader"), [dlq])
    await successor.start()
    await dead.start()
    try:
        (again,) = await drain(successor, 1)
        dead_letters = await dead.getmany(timeout=1.0)
    finally:
        await successor.stop()
        await dead.stop()
    assert again.headers["ce_id"] == pending.id
    assert dead_letters == []
    assert stop_took < 5
