"""The bus on Apache Kafka, through aiokafka.

- Publishing uses one idempotent producer per process (``acks="all"``), started on first use.
  ``publish`` returns once the broker acknowledged the message. While the broker is away the
  producer keeps retrying; ``publish`` gives up after ``delivery_timeout`` seconds with
  ``KafkaUnavailableError`` so its caller (the outbox relay) can try again later.
- A message whose acknowledgement timed out is still queued in the producer and is delivered when
  the broker returns. Until it is settled, no other message is sent (so nothing overtakes it), and
  a retry of that very message is answered by the pending delivery instead of a second copy.
- Topics are created explicitly with their partition count (``ensure_topics``); the broker's
  automatic topic creation is never relied on.
- Consumers never auto-commit: ``commit(message)`` stores ``offset + 1`` for its partition after
  the caller has processed it. A commit for a partition this member no longer holds is dropped;
  the partition's new owner reads the message again (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    NoError,
    TopicAlreadyExistsError,
    for_code,
)
from aiokafka.structs import ConsumerRecord
from prometheus_client import Gauge

from gmv_common.bus.base import Bus, Consumer, Message, TopicSpec
from gmv_common.errors import ConflictError, UnavailableError
from gmv_common.logging import get_logger

log = get_logger(__name__)

CONSUMER_LAG = Gauge(
    "gmv_consumer_lag",
    "Messages of a partition not yet committed by the group (highwater - offset)",
    ["group", "topic", "partition"],
)

_Fingerprint = tuple[str, str, bytes, tuple[tuple[str, str], ...]]
_DELIVERED_AFTER_DOUBT_LIMIT = 10_000


class KafkaUnavailableError(UnavailableError):
    """The broker did not answer in time; retriable."""


class ConsumerGroupActiveError(ConflictError):
    """Offsets of a group with running members cannot be reset from outside."""

    default_code = "CONSUMER_GROUP_ACTIVE"


class KafkaBus(Bus):
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str,
        replication_factor: int = 1,
        delivery_timeout: float = 30.0,
        request_timeout: float = 10.0,
        ping_timeout: float = 2.0,
        close_timeout: float = 5.0,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.replication_factor = replication_factor
        self.delivery_timeout = delivery_timeout
        self._request_timeout_ms = int(request_timeout * 1000)
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock: asyncio.Lock | None = None
        self._in_doubt: dict[_Fingerprint, asyncio.Future[Any]] = {}
        # Acknowledged after their publish gave up; a retry of one of them sends nothing.
        self._delivered_after_doubt: dict[_Fingerprint, None] = {}
        self._probe: AIOKafkaClient | None = None
        self._probe_lock: asyncio.Lock | None = None

    async def start(self) -> None:
        """Nothing to do: the producer starts on the first publish, consumers on their own."""
        return None

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await self._close_producer(producer)
        self._in_doubt.clear()
        self._delivered_after_doubt.clear()
        probe, self._probe = self._probe, None
        if probe is not None:
            await probe.close()

    async def ping(self) -> bool:
        if self._probe_lock is None:
            self._probe_lock = asyncio.Lock()
        try:
            async with asyncio.timeout(self._ping_timeout), self._probe_lock:
                if self._probe is None:
                    self._probe = await self._bootstrapped_probe()
                await self._probe.fetch_all_metadata()
        except (TimeoutError, KafkaError, OSError) as exc:
            log.info("kafka.ping_failed", error=repr(exc)[:200])
            return False
        return True

    async def _bootstrapped_probe(self) -> AIOKafkaClient:
        probe = AIOKafkaClient(
            bootstrap_servers=self.bootstrap_servers,
            client_id=f"{self.client_id}-probe",
            request_timeout_ms=int(self._ping_timeout * 1000),
        )
        try:
            await probe.bootstrap()
        except BaseException:
            await probe.close()
            raise
        return probe

    # Topics

    async def ensure_topics(self, topics: Sequence[TopicSpec]) -> None:
        """Create the missing topics with their partition count; existing ones stay as they are."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers,
            client_id=f"{self.client_id}-admin",
            request_timeout_ms=self._request_timeout_ms,
        )
        await admin.start()
        try:
            existing = {
                description["topic"]: len(description["partitions"])
                for description in await admin.describe_topics()
            }
            missing = [spec for spec in topics if spec.name not in existing]
            for spec in topics:
                have = existing.get(spec.name)
                if have is not None and have < spec.partitions:
                    log.warning(
                        "kafka.topic_has_fewer_partitions",
                        topic=spec.name,
                        partitions=have,
                        wanted=spec.partitions,
                    )
            if missing:
                await self._create_topics(admin, missing)
            await _wait_for_leaders(admin, [spec.name for spec in topics])
        finally:
            await admin.close()

    async def _create_topics(
        self, admin: AIOKafkaAdminClient, specs: list[TopicSpec]
    ) -> None:
        response = await admin.create_topics(
            [
                NewTopic(
                    spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=self.replication_factor,
                    topic_configs=(
                        {"retention.ms": str(spec.retention_ms)}
                        if spec.retention_ms is not None
                        else {}
                    ),
                )
                for spec in specs
            ]
        )
        for topic, error_code, *rest in response.topic_errors:
            error = for_code(error_code)
            if error is NoError or error is TopicAlreadyExistsError:
                continue
            raise KafkaUnavailableError(
                f"creating topic {topic} failed: {error.__name__} {rest[:1]}",
                code="TOPIC_CREATION_FAILED",
                retriable=error.retriable,
            )
        log.info("kafka.topics_created", topics=[spec.name for spec in specs])

    async def delete_topics(self, names: Sequence[str]) -> None:
        """Delete topics (tests and tooling; services never delete)."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers,
            client_id=f"{self.client_id}-admin",
            request_timeout_ms=self._request_timeout_ms,
        )
        await admin.start()
        try:
            await admin.delete_topics(list(names))
        finally:
            await admin.close()

    # Publishing

    async def publish(
        self, topic: str, key: str, value: bytes, headers: dict[str, str]
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.delivery_timeout
        fingerprint = _fingerprint(topic, key, value, headers)

        if await self._settle_in_doubt(fingerprint, deadline):
            return
        producer = await self._started_producer(deadline)
        try:
            acknowledgement = await asyncio.wait_for(
                producer.send(
                    topic,
                    value,
                    key=key.encode(),
                    headers=[(name, text.encode()) for name, text in headers.items()],
                ),
                _remaining(deadline),
            )
        except (TimeoutError, KafkaError) as exc:
            # Cancelling send() itself withdraws the record: nothing is left behind.
            raise _unavailable("queueing", topic, exc) from exc
        try:
            await asyncio.wait_for(
                asyncio.shield(acknowledgement), _remaining(deadline)
            )
        except TimeoutError as exc:
            self._in_doubt[fingerprint] = acknowledgement
            raise _unavailable("acknowledgement", topic, exc) from exc
        except KafkaError as exc:
            raise _unavailable("delivery", topic, exc) from exc

    async def _settle_in_doubt(
        self, fingerprint: _Fingerprint, deadline: float
    ) -> bool:
        """Wait for earlier unacknowledged messages; True when ``fingerprint`` was one of them.

        Several callers may wait at once (the relay publishes keys concurrently), so a delivered
        message is remembered until its own retry comes by, whoever saw the acknowledgement.
        """
        if self._in_doubt:
            pending = dict(self._in_doubt)
            await asyncio.wait(pending.values(), timeout=_remaining(deadline))
            for earlier, acknowledgement in pending.items():
                if not acknowledgement.done():
                    continue
                if self._in_doubt.get(earlier) is acknowledgement:
                    del self._in_doubt[earlier]
                if acknowledgement.cancelled() or acknowledgement.exception():
                    continue
                self._delivered_after_doubt[earlier] = None
                if len(self._delivered_after_doubt) > _DELIVERED_AFTER_DOUBT_LIMIT:
                    del self._delivered_after_doubt[
                        next(iter(self._delivered_after_doubt))
                    ]
            if not all(acknowledgement.done() for acknowledgement in pending.values()):
                raise KafkaUnavailableError(
                    "earlier messages are still waiting for the broker's acknowledgement"
                )
        if fingerprint in self._delivered_after_doubt:
            del self._delivered_after_doubt[fingerprint]
            return True
        return False

    async def _started_producer(self, deadline: float) -> AIOKafkaProducer:
        if self._producer is not None and _sender_alive(self._producer):
            return self._producer
        if self._producer_lock is None:
            self._producer_lock = asyncio.Lock()
        async with self._producer_lock:
            if self._producer is not None and not _sender_alive(self._producer):
                await self._replace_dead_producer(self._producer)
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=self._request_timeout_ms,
            )
            try:
                await asyncio.wait_for(producer.start(), _remaining(deadline))
            except (TimeoutError, KafkaError, OSError) as exc:
                await self._close_producer(producer)
                raise _unavailable("producer start", "-", exc) from exc
            log.info("kafka.producer_started", client_id=self.client_id)
            self._producer = producer
            return producer

    async def _replace_dead_producer(self, producer: AIOKafkaProducer) -> None:
        """A fatal producer error (e.g. a lost sequence) ends its sender; start afresh.

        Messages it still held are never acknowledged; they stay unpublished in the outbox and
        go out again through the new producer.
        """
        sender_task = _sender_task(producer)
        error = None
        if sender_task is not None and not sender_task.cancelled():
            error = sender_task.exception()
        log.error("kafka.producer_died", error=repr(error)[:300])
        self._producer = None
        self._in_doubt.clear()
        await self._close_producer(producer)

    async def _close_producer(self, producer: AIOKafkaProducer) -> None:
        """Flush and close; if the broker is away, drop what is queued (the outbox resends it)."""
        stopping = asyncio.ensure_future(producer.stop())
        done, _ = await asyncio.wait([stopping], timeout=self._close_timeout)
        if not done:
            log.warning("kafka.producer_close_timeout", in_doubt=len(self._in_doubt))
            # aiokafka's stop() waits until every queued batch is delivered or its sender task
            # ends; ending that task is the only way to abandon them while the broker is gone.
            sender_task = _sender_task(producer)
            if sender_task is not None:
                sender_task.cancel()
        with contextlib.suppress(KafkaError, OSError, asyncio.CancelledError):
            await stopping

    # Consuming

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaConsumer:
        return KafkaConsumer(self, group, list(topics))

    async def reset_group(
        self, group: str, topic: str, offset: int = 0, *, wait_seconds: float = 15.0
    ) -> None:
        """Set the group's committed offset of every partition of ``topic`` (for replays).

        Like the Kafka CLI, this needs a group without running members; a member that is still
        leaving is waited for up to ``wait_seconds``, then ``ConsumerGroupActiveError``.
        """
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers,
            client_id=f"{self.client_id}-admin",
            request_timeout_ms=self._request_timeout_ms,
        )
        await admin.start()
        try:
            (description,) = await admin.describe_topics([topic])
        finally:
            await admin.close()
        offsets = {
            TopicPartition(topic, partition["partition"]): offset
            for partition in description["partitions"]
        }
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while True:
            try:
                await self._commit_as_outsider(group, offsets)
                break
            except CommitFailedError as exc:
                # The broker refuses commits from outside the group while it has members.
                if _remaining(deadline) <= 0:
                    raise ConsumerGroupActiveError(
                        f"consumer group {group} still has members; stop them first",
                        details={"group": group, "topic": topic},
                    ) from exc
                await asyncio.sleep(0.5)
        log.info("kafka.group_reset", group=group, topic=topic, offset=offset)

    async def _commit_as_outsider(
        self, group: str, offsets: dict[TopicPartition, int]
    ) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=f"{self.client_id}-reset",
            group_id=group,
            enable_auto_commit=False,
            request_timeout_ms=self._request_timeout_ms,
        )
        await consumer.start()
        try:
            consumer.assign(list(offsets))
            await consumer.commit(offsets)
        finally:
            await consumer.stop()


class KafkaConsumer(Consumer):
    def __init__(self, bus: KafkaBus, group: str, topics: list[str]) -> None:
        self.bus = bus
        self.group = group
        self.topics = topics
        self._consumer: AIOKafkaConsumer | None = None
        self._lag_labels: set[tuple[str, str, str]] = set()

    async def start(self) -> None:
        if self._consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.bus.bootstrap_servers,
            client_id=self.bus.client_id,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=self.bus._request_timeout_ms,
        )
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        log.info("kafka.consumer_started", group=self.group, topics=self.topics)

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        await consumer.stop()
        for labels in self._lag_labels:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(*labels)
        self._lag_labels.clear()

    def assigned(self) -> frozenset[tuple[str, int]]:
        if self._consumer is None:
            return frozenset()
        return frozenset((tp.topic, tp.partition) for tp in self._consumer.assignment())

    async def getmany(
        self, timeout: float = 1.0, max_records: int = 100
    ) -> list[Message]:
        consumer = self._running()
        batches = await consumer.getmany(
            timeout_ms=int(timeout * 1000), max_records=max_records
        )
        messages: list[Message] = []
        for tp, records in batches.items():
            if not records:
                continue
            messages.extend(_message(record) for record in records)
            self._record_lag(tp, records[0].offset)
        return messages

    async def commit(self, message: Message) -> None:
        consumer = self._running()
        tp = TopicPartition(message.topic, message.partition)
        if tp not in consumer.assignment():
            log.info(
                "kafka.commit_skipped_revoked",
                group=self.group,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            )
            return
        try:
            await consumer.commit({tp: message.offset + 1})
        except (CommitFailedError, IllegalStateError):
            if tp not in consumer.assignment():
                return
            raise
        self._record_lag(tp, message.offset + 1)

    def _running(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the consumer is not started")
        return self._consumer

    def _record_lag(self, tp: TopicPartition, offset: int) -> None:
        highwater = self._running().highwater(tp)
        if highwater is None:
            return
        labels = (self.group, tp.topic, str(tp.partition))
        self._lag_labels.add(labels)
        CONSUMER_LAG.labels(*labels).set(max(0, highwater - offset))


def _message(record: ConsumerRecord[bytes, bytes]) -> Message:
    return Message(
        topic=record.topic,
        key=record.key.decode(errors="replace") if record.key is not None else "",
        value=record.value if record.value is not None else b"",
        headers={
            name: value.decode(errors="replace") if value is not None else ""
            for name, value in record.headers
        },
        partition=record.partition,
        offset=record.offset,
    )


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, names: list[str], attempts: int = 50
) -> None:
    """New topics answer produce and fetch requests only once each partition has a leader."""
    for _ in range(attempts):
        descriptions = await admin.describe_topics(names)
        ready = all(
            description["error_code"] == 0
            and description["partitions"]
            and all(partition["leader"] >= 0 for partition in description["partitions"])
            for description in descriptions
        )
        if ready:
            return
        await asyncio.sleep(0.1)
    raise KafkaUnavailableError(f"topics {names} have no leader yet")


def _fingerprint(
    topic: str, key: str, value: bytes, headers: dict[str, str]
) -> _Fingerprint:
    return (topic, key, value, tuple(sorted(headers.items())))


def _sender_task(producer: AIOKafkaProducer) -> asyncio.Task[None] | None:
    # aiokafka keeps its background sender private; its end is the only sign of a fatal error.
    task: asyncio.Task[None] | None = getattr(
        getattr(producer, "_sender", None), "sender_task", None
    )
    return task


def _sender_alive(producer: AIOKafkaProducer) -> bool:
    task = _sender_task(producer)
    return task is None or not task.done()


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - asyncio.get_running_loop().time())


def _unavailable(stage: str, topic: str, exc: BaseException) -> KafkaUnavailableError:
    return KafkaUnavailableError(
        f"Kafka {stage} failed for topic {topic}: {type(exc).__name__}",
        details={"topic": topic, "stage": stage},
    )
