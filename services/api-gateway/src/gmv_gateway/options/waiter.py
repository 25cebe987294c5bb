"""Wake requests waiting for a binding's new options document, without holding a connection.

One ``OptionsWaiter`` per process. A ``?refresh=1`` request subscribes to its binding and
sleeps on an ``asyncio.Event``; the gateway's background consumer reads ``OptionsUpdated``
events (a consumer group of its own per process, so every gateway replica hears every event)
and sets the events of that binding. Waiters also poll the database with fresh short sessions,
so a lost or late event costs latency, never correctness.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from gmv_common.bus import topics
from gmv_common.bus.base import Message
from gmv_common.events import EVENT_TYPES, Envelope, OptionsUpdated
from gmv_common.logging import get_logger
from gmv_common.messaging.consumer import ConsumerRunner
from gmv_common.runtime import Runtime
from gmv_gateway.options.cache import DocumentCache

log = get_logger(__name__)

BindingKey = tuple[int, int]


class OptionsWaiter:
    def __init__(self) -> None:
        self._waiting: dict[BindingKey, set[asyncio.Event]] = defaultdict(set)

    @contextmanager
    def subscribe(self, workspace_id: int, auth_id: int) -> Iterator[asyncio.Event]:
        key = (workspace_id, auth_id)
        event = asyncio.Event()
        self._waiting[key].add(event)
        try:
            yield event
        finally:
            waiting = self._waiting.get(key)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiting[key]

    def notify(self, workspace_id: int, auth_id: int) -> int:
        waiting = self._waiting.get((workspace_id, auth_id), set())
        for event in waiting:
            event.set()
        return len(waiting)

    def waiting_count(self) -> int:
        return sum(len(events) for events in self._waiting.values())


def consumer_group() -> str:
    return f"gmv.api-gateway.options.{uuid.uuid4().hex[:12]}"


def build_options_consumer(
    runtime: Runtime, waiter: OptionsWaiter, cache: DocumentCache | None = None
) -> ConsumerRunner:
    async def handle(envelope: Envelope, _: Message) -> None:
        if EVENT_TYPES.get(envelope.type) is not OptionsUpdated:
            return
        event = OptionsUpdated.model_validate(envelope.data)
        if cache is not None:
            cache.invalidate(event.workspace_id, event.auth_id)
        woken = waiter.notify(event.workspace_id, event.auth_id)
        if woken:
            log.debug(
                "options.waiters_woken",
                workspace_id=event.workspace_id,
                auth_id=event.auth_id,
                woken=woken,
            )

    return ConsumerRunner(
        runtime.bus,
        group=consumer_group(),
        topics=[runtime.topic(topics.OPTIONS_EVENTS)],
        handler=handle,
        dlq_topic=runtime.topic(topics.DEAD_LETTERS),
    )
