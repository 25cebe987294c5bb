"""Accepted work survives a Kafka outage: the outbox keeps it and delivers it once Kafka is back.

This test stops and restarts the shared local broker (``deploy/local/kafka``); other tests that use
Kafka at that moment see the outage too.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import orjson
import pytest
from outbox_support import (
    CountingBus,
    order_per_key,
    unpublished_rows,
    until_published,
    write_events,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.bus import topics
from gmv_common.bus.base import Message, TopicSpec
from gmv_common.bus.kafka import KafkaBus
from gmv_common.db.session import create_engine, create_sessionmaker
from gmv_common.events.envelope import Envelope
from gmv_common.messaging.consumer import ConsumerRunner
from gmv_common.messaging.outbox import OutboxRelay
from gmv_common.settings import Settings

KAFKA_SCRIPT = Path(__file__).resolve().parents[3] / "deploy" / "local" / "kafka"
WRITTEN_DURING_OUTAGE = 300
DELIVERY_TIMEOUT = 3.0


class Broker:
    """Stops and starts the local broker; remembers to start it again whatever happens."""

    def __init__(self) -> None:
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True
        returncode, output = await self._run("stop")
        assert returncode == 0, output

    async def start(self) -> None:
        # Other suites restart the shared broker too; a start that races with their stop
        # sees the new broker exit, and a second start settles it.
        tries = 3
        for _ in range(tries):
            returncode, output = await self._run("start")
            if returncode == 0:
                self.stopped = False
                return
        raise AssertionError(f"the broker did not start after {tries} tries:\n{output}")

    async def _run(self, command: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            str(KAFKA_SCRIPT),
            command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 150)
        return process.returncode or 0, output.decode()


@pytest.fixture
def broker() -> Iterator[Broker]:
    control = Broker()
    yield control
    if control.stopped:
        # The test ended between stop and start (failure, timeout, interrupt).
        subprocess.run([str(KAFKA_SCRIPT), "start"], check=True, timeout=150)


@pytest.fixture
async def sessionmaker(
    mariadb_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(make_settings(database_url=mariadb_url))
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def until_failed(bus: CountingBus, *, times: int, timeout: float) -> None:
    """Wait until the relay's publishing failed ``times`` times (it runs in a task)."""
    async with asyncio.timeout(timeout):
        while True:
            if bus.failures.total() >= times:
                return
            await asyncio.sleep(0.2)


async def until_received(
    received: list[str], expected: set[str], *, timeout: float = 60
) -> None:
    """Wait until a running consumer has handled every expected event id."""
    async with asyncio.timeout(timeout):
        while True:
            if expected <= set(received):
                return
            await asyncio.sleep(0.2)


async def read_distinct(
    bus: KafkaBus, topic: str, event_ids: set[str], *, timeout: float = 60
) -> tuple[list[Message], int]:
    """Every message of ``topic`` until all ``event_ids`` were seen; also the duplicate count."""
    consumer = bus.consumer(f"{topic}.check", [topic])
    await consumer.start()
    received: list[Message] = []
    try:
        async with asyncio.timeout(timeout):
            while not event_ids <= {m.headers["ce_id"] for m in received}:
                received.extend(await consumer.getmany(timeout=0.5))
        received.extend(await consumer.getmany(timeout=1.0))
    finally:
        await consumer.stop()
    seen: set[str] = set()
    distinct = []
    for message in received:
        if message.headers["ce_id"] not in seen:
            seen.add(message.headers["ce_id"])
            distinct.append(message)
    return distinct, len(received) - len(distinct)


@pytest.mark.kafka
@pytest.mark.mariadb
async def test_outbox_delivers_everything_written_while_the_broker_is_stopped(
    sessionmaker: async_sessionmaker[AsyncSession],
    broker: Broker,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    loop = asyncio.get_running_loop()
    commands = topics.topic_name(topic_prefix, topics.META_SYNC_COMMANDS)
    kafka = KafkaBus(
        kafka_bootstrap,
        client_id="gmv-outage-test",
        delivery_timeout=DELIVERY_TIMEOUT,
        ping_timeout=1.0,
    )
    await kafka.ensure_topics([TopicSpec(commands, partitions=4)])
    bus = CountingBus(kafka, name="relay")
    live_ids: list[str] = []

    async def collect(envelope: Envelope, message: Message) -> None:
        live_ids.append(envelope.id)

    live_consumer = ConsumerRunner(
        kafka,
        group=f"{topic_prefix}.live",
        topics=[commands],
        handler=collect,
        dlq_topic=f"{topic_prefix}.dlq",
    )
    stop = asyncio.Event()
    relay = asyncio.create_task(
        OutboxRelay(sessionmaker, bus, poll_seconds=0.2).run(stop)
    )
    consuming = asyncio.create_task(live_consumer.run(stop))
    try:
        before = await write_events(sessionmaker, topic_prefix=topic_prefix, count=10)
        await until_published(sessionmaker, timeout=30)

        outage_started = loop.time()
        await broker.stop()
        broker_stopped = loop.time()
        try:
            ping_while_down = await kafka.ping()
            during = await write_events(
                sessionmaker,
                topic_prefix=topic_prefix,
                count=WRITTEN_DURING_OUTAGE,
                per_transaction=25,
                first_run_id=1000,
            )
            writes_done = loop.time()
            await until_failed(bus, times=2, timeout=4 * DELIVERY_TIMEOUT + 5)
            held_back = await unpublished_rows(sessionmaker)
        finally:
            await broker.start()
        broker_back = loop.time()
        await until_published(sessionmaker, timeout=120)
        delivered = loop.time()
        ping_after = await kafka.ping()
        written = before + during
        await until_received(live_ids, {envelope.id for envelope in written})
    finally:
        stop.set()
        await relay
        await consuming

    try:
        distinct, duplicates = await read_distinct(
            kafka, commands, {envelope.id for envelope in written}
        )
    finally:
        await kafka.delete_topics([commands])
        await kafka.stop()

    print(  # the figures of the outage, shown with pytest -s
        f"outage: stop {broker_stopped - outage_started:.1f}s, "
        f"{WRITTEN_DURING_OUTAGE} writes {writes_done - broker_stopped:.2f}s, "
        f"restart {broker_back - writes_done:.1f}s, "
        f"backlog delivered {delivered - broker_back:.1f}s after restart; "
        f"publish failures {dict(bus.failures)}; duplicates on the topic {duplicates}"
    )
    assert not ping_while_down
    assert ping_after
    assert held_back >= WRITTEN_DURING_OUTAGE
    assert len(distinct) == len(written)
    by_id = {envelope.id: envelope for envelope in written}
    for message in distinct:
        envelope = by_id[message.headers["ce_id"]]
        assert message.headers == envelope.headers()
        assert orjson.loads(message.value) == envelope.data
        assert message.key == f"1:{envelope.data['auth_id']}"
    received_order: dict[str, list[str]] = defaultdict(list)
    written_order: dict[str, list[str]] = defaultdict(list)
    for message in distinct:
        received_order[message.key].append(message.headers["ce_id"])
    for envelope in written:
        written_order[f"1:{envelope.data['auth_id']}"].append(envelope.id)
    assert received_order == written_order
    first_seen = list(dict.fromkeys(live_ids))
    assert order_per_key(first_seen, written) == order_per_key(
        [envelope.id for envelope in written], written
    )
    assert duplicates == 0
