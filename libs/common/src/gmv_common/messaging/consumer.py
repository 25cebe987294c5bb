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
import functools
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
            if stop.is_set() or not await self._settle(message, stop):
                return
            committed = await _retry_until_stopped(
                functools.partial(commit, message), stop, "consumer.commit_failed"
            )
            if not committed:
                return

    async def process(self, message: Message) -> None:
        """Handle one message to a final outcome: done, skipped, or dead-lettered."""
        await self._settle(message, None)

    async def _settle(self, message: Message, stop: asyncio.Event | None) -> bool:
        """Bring ``message`` to a final outcome; False when ``stop`` came first.

        A message left unsettled is not committed, so the group reads it again after a restart.
        """
        try:
            envelope = Envelope.from_message(message)
        except MalformedMessageError as exc:
            return await self._dead_letter(message, exc, attempts=1, stop=stop)
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
                        if await _stopped_within(stop, delay):
                            return False
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
                    return await self._dead_letter(
                        message, exc, attempts=attempt, stop=stop
                    )
                MESSAGES_PROCESSED.labels(self.group, message.topic, "ok").inc()
                return True

    async def _dead_letter(
        self,
        message: Message,
        exc: BaseException,
        *,
        attempts: int,
        stop: asyncio.Event | None,
    ) -> bool:
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
        published = await _retry_until_stopped(
            functools.partial(
                self.bus.publish, self.dlq_topic, message.key, message.value, headers
            ),
            stop,
            "consumer.dlq_publish_failed",
        )
        if not published:
            return False
        MESSAGES_PROCESSED.labels(self.group, message.topic, "dead_lettered").inc()
        log.error(
            "consumer.dead_lettered",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            attempts=attempts,
            error=headers["dlq_error"],
        )
        return True


async def _retry_until_stopped(
    action: Callable[[], Awaitable[object]], stop: asyncio.Event | None, event: str
) -> bool:
    """Run ``action`` until it succeeds (True) or ``stop`` is set (False)."""
    delay = 0.2
    while True:
        try:
            await action()
            return True
        except Exception as exc:
            log.warning(event, error=repr(exc)[:300], delay=delay)
            if await _stopped_within(stop, delay):
                return False
            delay = min(delay * 2, 5.0)


async def _stopped_within(stop: asyncio.Event | None, seconds: float) -> bool:
    """Sleep ``seconds``; True as soon as ``stop`` is set."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    await _sleep_or_stop(stop, seconds)
    return stop.is_set()


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
