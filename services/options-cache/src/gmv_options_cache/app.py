"""Entry point of the options-cache service: one consumer of sync and binding events."""

from __future__ import annotations

import asyncio

from gmv_common.bus import topics
from gmv_common.messaging.consumer import ConsumerRunner
from gmv_common.runtime import Runtime
from gmv_options_cache.handlers import OptionsEventHandler


def consumer_for(runtime: Runtime, *, group: str | None = None) -> ConsumerRunner:
    """The service's consumer; the group defaults to ``{KAFKA_TOPIC_PREFIX}.options-cache``."""
    group = group or topics.consumer_group(
        runtime.settings.kafka_topic_prefix, "options-cache"
    )
    handler = OptionsEventHandler(
        runtime.sessionmaker,
        topic_prefix=runtime.settings.kafka_topic_prefix,
        group=group,
    )
    return ConsumerRunner(
        runtime.bus,
        group=group,
        topics=[
            runtime.topic(topics.SYNC_EVENTS),
            runtime.topic(topics.BINDING_EVENTS),
        ],
        handler=handler,
        dlq_topic=runtime.topic(topics.DEAD_LETTERS),
        max_attempts=runtime.settings.consumer_max_attempts,
    )


async def run(runtime: Runtime, stop: asyncio.Event) -> None:
    """Rebuild options documents from sync and binding events until ``stop`` is set."""
    await consumer_for(runtime).run(stop)
