"""What only the Kafka implementation has to show: readiness, timeouts, topics, headers, lag."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from bus_support import drain
from prometheus_client import REGISTRY

from gmv_common.bus import topics
from gmv_common.bus.base import TopicSpec
from gmv_common.bus.kafka import (
    ConsumerGroupActiveError,
    KafkaBus,
    KafkaUnavailableError,
    _fingerprint,
)
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def silent_broker() -> AsyncIterator[str]:
    """An address that accepts connections and never answers a request."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> AsyncIterator[KafkaBus]:
    bus = KafkaBus(kafka_bootstrap, client_id="gmv-tests", replication_factor=1)
    yield bus
    await bus.stop()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {
            description["topic"]: len(description["partitions"])
            for description in await admin.describe_topics(names)
        }
    finally:
        await admin.close()


@pytest.mark.kafka
async def test_ping_is_true_while_the_broker_runs(kafka: KafkaBus) -> None:
    assert await kafka.ping()
    assert await kafka.ping()


async def test_ping_is_false_at_once_when_nothing_listens() -> None:
    bus = KafkaBus(f"127.0.0.1:{unused_port()}", client_id="gmv-tests")
    loop = asyncio.get_running_loop()
    started = loop.time()

    answer = await bus.ping()

    assert answer is False
    assert loop.time() - started < 1.5
    await bus.stop()


async def test_ping_gives_up_on_a_broker_that_never_answers(silent_broker: str) -> None:
    bus = KafkaBus(silent_broker, client_id="gmv-tests", ping_timeout=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()

    answer = await bus.ping()

    assert answer is False
    assert loop.time() - started < 1.5
    await bus.stop()


async def test_publish_gives_up_after_the_delivery_timeout(silent_broker: str) -> None:
    bus = KafkaBus(silent_broker, client_id="gmv-tests", delivery_timeout=1.0)
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(KafkaUnavailableError) as raised:
        await bus.publish("gmv.events.sync", "1:2", b"{}", {"ce_id": "x"})

    assert loop.time() - started < 2.5
    assert raised.value.retriable
    assert raised.value.code == "SERVICE_UNAVAILABLE"
    await bus.stop()


@pytest.mark.kafka
async def test_ensure_topics_creates_missing_topics_with_their_partitions(
    kafka: KafkaBus, kafka_bootstrap: str, prefix: str
) -> None:
    specs = [
        TopicSpec(f"{prefix}.commands", partitions=3),
        TopicSpec(f"{prefix}.events", partitions=5, retention_ms=3_600_000),
    ]
    try:
        await kafka.ensure_topics(specs)
        await kafka.ensure_topics([*specs, TopicSpec(f"{prefix}.dlq", partitions=1)])
        counts = await partition_counts(kafka_bootstrap, [s.name for s in specs])
    finally:
        await kafka.delete_topics(
            [f"{prefix}.commands", f"{prefix}.events", f"{prefix}.dlq"]
        )

    assert counts == {f"{prefix}.commands": 3, f"{prefix}.events": 5}


@pytest.mark.kafka
async def test_keys_and_headers_travel_as_text(kafka: KafkaBus, prefix: str) -> None:
    topic = f"{prefix}.events"
    await kafka.ensure_topics([TopicSpec(topic, partitions=2)])
    headers = {
        "ce_id": "abc",
        "ce_subject": "workspaces/1/bindings/7 Café ✓",
        "empty": "",
    }
    consumer = kafka.consumer(f"{prefix}.reader", [topic])
    try:
        await kafka.publish(topic, "1:7", b'{"a": 1}', headers)
        await consumer.start()
        (message,) = await drain(consumer, 1)
    finally:
        await consumer.stop()
        await kafka.delete_topics([topic])

    assert message.key == "1:7"
    assert message.headers == headers
    assert message.value == b'{"a": 1}'
    assert message.offset == 0


@pytest.mark.kafka
async def test_consumer_lag_gauge_follows_fetches_and_commits(
    kafka: KafkaBus, prefix: str
) -> None:
    topic, group = f"{prefix}.events", f"{prefix}.lagging"
    await kafka.ensure_topics([TopicSpec(topic, partitions=1)])
    labels = {"group": group, "topic": topic, "partition": "0"}
    consumer = kafka.consumer(group, [topic])
    try:
        for n in range(10):
            await kafka.publish(topic, "1:1", b"{}", {"ce_id": str(n)})
        await consumer.start()
        received = await drain(consumer, 10)
        lag_after_fetch = REGISTRY.get_sample_value("gmv_consumer_lag", labels)
        await consumer.commit(received[3])
        lag_after_commit = REGISTRY.get_sample_value("gmv_consumer_lag", labels)
        await consumer.commit(received[9])
        lag_at_the_end = REGISTRY.get_sample_value("gmv_consumer_lag", labels)
    finally:
        await consumer.stop()
        await kafka.delete_topics([topic])

    assert (lag_after_fetch, lag_after_commit, lag_at_the_end) == (10, 6, 0)
    assert REGISTRY.get_sample_value("gmv_consumer_lag", labels) is None


@pytest.mark.kafka
async def test_a_kafka_runtime_creates_every_topic_of_its_prefix(
    make_settings: Callable[..., Settings], topic_prefix: str, kafka_bootstrap: str
) -> None:
    settings = make_settings(
        bus_backend="kafka",
        kafka_topic_prefix=topic_prefix,
        kafka_partitions=3,
        kafka_delivery_timeout_seconds=7.5,
        database_url="sqlite+aiosqlite:///:memory:",
    )
    runtime = Runtime.create(settings)
    names = [runtime.topic(logical) for logical in topics.ALL_TOPICS]
    try:
        await runtime.start()
        counts = await partition_counts(kafka_bootstrap, names)
        ready = await runtime.bus.ping()
    finally:
        assert isinstance(runtime.bus, KafkaBus)
        await runtime.bus.delete_topics(names)
        await runtime.close()

    assert runtime.bus.delivery_timeout == 7.5
    assert counts == dict.fromkeys(names, 3)
    assert ready


@pytest.mark.kafka
async def test_resetting_a_group_with_a_running_member_is_refused_clearly(
    kafka: KafkaBus, prefix: str
) -> None:
    topic, group = f"{prefix}.events", f"{prefix}.busy"
    await kafka.ensure_topics([TopicSpec(topic, partitions=2)])
    member = kafka.consumer(group, [topic])
    await member.start()
    try:
        async with asyncio.timeout(30):
            while not member.assigned():
                await member.getmany(timeout=0.1)
        with pytest.raises(ConsumerGroupActiveError, match="still has members"):
            await kafka.reset_group(group, topic, wait_seconds=1.0)
    finally:
        await member.stop()
    try:
        await kafka.reset_group(group, topic, wait_seconds=10.0)
    finally:
        await kafka.delete_topics([topic])


@pytest.mark.kafka
async def test_a_producer_whose_sender_died_is_replaced_on_the_next_publish(
    kafka: KafkaBus, prefix: str
) -> None:
    topic = f"{prefix}.events"
    await kafka.ensure_topics([TopicSpec(topic, partitions=1)])
    reader = kafka.consumer(f"{prefix}.reader", [topic])
    try:
        await kafka.publish(topic, "1:1", b"{}", {"ce_id": "before"})
        first_producer = kafka._producer
        assert first_producer is not None
        # What a fatal error (e.g. OutOfOrderSequenceNumber) does: aiokafka's sender task ends.
        first_producer._sender.sender_task.cancel()
        await asyncio.sleep(0.1)

        await kafka.publish(topic, "1:1", b"{}", {"ce_id": "after"})

        await reader.start()
        received = await drain(reader, 2)
    finally:
        await reader.stop()
        await kafka.delete_topics([topic])

    assert kafka._producer is not first_producer
    assert [m.headers["ce_id"] for m in received] == ["before", "after"]


async def test_retries_of_messages_acknowledged_late_send_nothing_whoever_waited() -> (
    None
):
    bus = KafkaBus(
        f"127.0.0.1:{unused_port()}", client_id="gmv-tests", delivery_timeout=1
    )
    first = ("gmv.events.sync", "1:1", b'{"n": 1}', {"ce_id": "first"})
    second = ("gmv.events.sync", "1:2", b'{"n": 2}', {"ce_id": "second"})
    loop = asyncio.get_running_loop()
    for message in (first, second):
        # Two publishes that gave up waiting; the broker acknowledged them afterwards.
        acknowledgement = loop.create_future()
        acknowledgement.set_result(None)
        bus._in_doubt[_fingerprint(*message)] = acknowledgement

    await bus.publish(*second)
    await bus.publish(*first)

    with pytest.raises(KafkaUnavailableError):
        await bus.publish(*first)
    await bus.stop()
