"""The consumer runner: read a group's messages, run the handler, commit, dead-letter poison.

- Offsets are committed only after the handler returned, i.e. after its database commit.
- Partitions are processed concurrently; messages of one partition strictly in order.
- An infrastructure failure (database or broker unreachable) is retried until it heals: the
  message is never dropped for it. Any other failure is retried ``max_attempts`` times, then the
  message goes to the dead-letter topic with its error, and the consumer moves on.
- A message that is not a valid CloudEvent is dead-lettered at once.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import Counter
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from gmv_common.bus.base import Bus, Message
from gmv_common.errors import GMVError
from gmv_common.events.envelope import Envelope, MalformedMessageError
from gmv_common.logging import bound_context, get_logger

log = get_logger(__name__)

Handler = Callable[[Envelope, Message], Awaitable[None]]

MESSAGES_PROCESSED = Counter(
    "gmv_consumer_messages_total",
    "Messages handled by consumers",
    ["group", "topic", "outcome"],
)


def is_infrastructure_error(exc: BaseException) -> bool:
    if isinstance(exc, GMVError):
        return exc.code == "SERVICE_UNAVAILABLE"
    if isinstance(exc, OperationalError | PoolTimeoutError | ConnectionError | OSError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class ConsumerRunner:
    def __init__(
        self,
        bus: Bus,
        *,
        group: str,
        topics: Sequence[str],
        handler: Handler,
        dlq_topic: str,
        max_attempts: int = 5,
        retry_backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self.bus = bus
        self.group = group
        self.topics = list(topics)
        self.handler = handler
        self.dlq_topic = dlq_topic
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.max_backoff = max_backoff

    async def run(self, stop: asyncio.Event) -> None:
        consumer = self.bus.consumer(self.group, self.topics)
        await _until_started(consumer.start, stop)
        log.info("consumer.started", group=self.group, topics=self.topics)
        try:
            while not stop.is_set():
                try:
                    batch = await consumer.getmany(timeout=0.5)
                except Exception as exc:
                    log.warning(
                        "consumer.fetch_failed", group=self.group, error=repr(exc)
                    )
                    await _sleep_or_stop(stop, 1.0)
                    continue
                by_partition: dict[tuple[str, int], list[Message]] = defaultdict(list)
                for message in batch:
                    by_partition[(message.topic, message.partition)].append(message)
                await asyncio.gather(
                    *(
                        self._process_partition(messages, consumer.commit, stop)
                        for messages in by_partition.values()
                    )
                )
        finally:
            await consumer.stop()
            log.info("consumer.stopped", group=self.group)

    async def _process_partition(
        self,
        messages: list[Message],
        commit: Callable[[Message], Awaitable[None]],
        stop: asyncio.Event,
    ) -> None:
        for message in messages:
            if stop.is_set():
                return
            await self.process(message)
            await _retry_forever(
                lambda m=message: commit(m), stop, "consumer.commit_failed"
            )

    async def process(self, message: Message) -> None:
        """Handle one message to a final outcome: done, skipped, or dead-lettered."""
        try:
            envelope = Envelope.from_message(message)
        except MalformedMessageError as exc:
            await self._dead_letter(message, exc, attempts=1)
            return
        context = {
            "message_id": envelope.id,
            "event_type": envelope.type,
            "correlation_id": envelope.correlation_id or envelope.id,
            "consumer_group": self.group,
        }
        if envelope.traceparent:
            context["traceparent"] = envelope.traceparent
        with bound_context(**context):
            attempt = 0
            while True:
                attempt += 1
                try:
                    await self.handler(envelope, message)
                except Exception as exc:
                    if is_infrastructure_error(exc):
                        delay = min(self.max_backoff, self.retry_backoff * 2**attempt)
                        log.warning(
                            "consumer.infrastructure_retry",
                            attempt=attempt,
                            error=repr(exc)[:300],
                            delay=delay,
                        )
                        await asyncio.sleep(delay)
                        attempt = min(attempt, 5)
                        continue
                    if attempt < self.max_attempts:
                        log.warning(
                            "consumer.handler_retry",
                            attempt=attempt,
                            error=repr(exc)[:300],
                        )
                        await asyncio.sleep(self.retry_backoff * attempt)
                        continue
                    await self._dead_letter(message, exc, attempts=attempt)
                    return
                MESSAGES_PROCESSED.labels(self.group, message.topic, "ok").inc()
                return

    async def _dead_letter(
        self, message: Message, exc: BaseException, attempts: int
    ) -> None:
        headers = dict(message.headers)
        headers.update(
            {
                "dlq_original_topic": message.topic,
                "dlq_partition": str(message.partition),
                "dlq_offset": str(message.offset),
                "dlq_group": self.group,
                "dlq_attempts": str(attempts),
                "dlq_error": f"{type(exc).__name__}: {exc}"[:1000],
            }
        )
        await _retry_forever(
            lambda: self.bus.publish(
                self.dlq_topic, message.key, message.value, headers
            ),
            None,
            "consumer.dlq_publish_failed",
        )
        MESSAGES_PROCESSED.labels(self.group, message.topic, "dead_lettered").inc()
        log.error(
            "consumer.dead_lettered",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            attempts=attempts,
            error=headers["dlq_error"],
        )


async def _retry_forever(
    action: Callable[[], Awaitable[object]], stop: asyncio.Event | None, event: str
) -> None:
    delay = 0.2
    while True:
        try:
            await action()
            return
        except Exception as exc:
            if stop is not None and stop.is_set():
                raise
            log.warning(event, error=repr(exc)[:300], delay=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _until_started(
    start: Callable[[], Awaitable[None]], stop: asyncio.Event
) -> None:
    delay = 0.5
    while not stop.is_set():
        try:
            await start()
            return
        except Exception as exc:
            log.warning("consumer.start_failed", error=repr(exc)[:300], delay=delay)
            await _sleep_or_stop(stop, delay)
            delay = min(delay * 2, 10.0)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return
