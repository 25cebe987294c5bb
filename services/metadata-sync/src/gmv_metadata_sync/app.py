"""The metadata sync service: the command consumer, the scheduler and the redispatcher.

``run(runtime, stop)`` runs until ``stop`` is set. It does not start an outbox relay (the
process runner does). Several instances may run side by side: runs are claimed with
leases, schedule firings with conditional updates.
"""

from __future__ import annotations

import asyncio

from gmv_common.bindings import build_rate_limiter
from gmv_common.bus import topics
from gmv_common.logging import get_logger
from gmv_common.messaging.consumer import ConsumerRunner
from gmv_common.runtime import Runtime
from gmv_metadata_sync.handlers import MetaSyncCommandHandler
from gmv_metadata_sync.scheduler import run_redispatcher, run_scheduler
from gmv_metadata_sync.worker import MetaSyncWorker, WorkerConfig

log = get_logger(__name__)

DRAIN_SECONDS = 10.0


def build_worker(runtime: Runtime) -> MetaSyncWorker:
    return MetaSyncWorker(
        sessionmaker=runtime.sessionmaker,
        keyring=runtime.keyring,
        settings=runtime.settings,
        limiter=build_rate_limiter(runtime.sessionmaker, runtime.settings),
        config=WorkerConfig.from_settings(runtime.settings),
    )


async def run(
    runtime: Runtime,
    stop: asyncio.Event,
    *,
    worker: MetaSyncWorker | None = None,
    group: str | None = None,
) -> None:
    """Consume meta-sync commands, fire schedules and redispatch stale runs until ``stop``.

    ``group`` is the consumer group, by default ``{KAFKA_TOPIC_PREFIX}.metadata-sync``
    (``gmv.metadata-sync``).
    """
    settings = runtime.settings
    group = group or topics.consumer_group(settings.kafka_topic_prefix, "metadata-sync")
    worker = worker or build_worker(runtime)
    consumer = ConsumerRunner(
        runtime.bus,
        group=group,
        topics=[runtime.topic(topics.META_SYNC_COMMANDS)],
        handler=MetaSyncCommandHandler(worker),
        dlq_topic=runtime.topic(topics.DEAD_LETTERS),
        max_attempts=settings.consumer_max_attempts,
    )
    log.info("meta_sync.service_started", owner=worker.owner)
    try:
        await asyncio.gather(
            consumer.run(stop),
            run_scheduler(
                runtime.sessionmaker,
                stop,
                topic_prefix=settings.kafka_topic_prefix,
                interval_seconds=settings.meta_sync_interval_seconds,
                tick_seconds=settings.scheduler_tick_seconds,
            ),
            run_redispatcher(
                runtime.sessionmaker,
                stop,
                topic_prefix=settings.kafka_topic_prefix,
                every_seconds=max(1.0, settings.sync_lease_seconds / 2),
            ),
        )
    finally:
        await worker.drain(DRAIN_SECONDS)
        log.info("meta_sync.service_stopped")
