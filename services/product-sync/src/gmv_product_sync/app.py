"""Entry point of the product-sync worker: commands, auto-sync scheduler, redispatcher."""

from __future__ import annotations

import asyncio

from gmv_common.bindings import build_rate_limiter
from gmv_common.bus import topics
from gmv_common.logging import get_logger
from gmv_common.messaging.consumer import ConsumerRunner
from gmv_common.runtime import Runtime
from gmv_common.sync.runs import redispatch_stale_runs
from gmv_common.tiktok import RateLimiter
from gmv_product_sync.executor import RunExecutor
from gmv_product_sync.handlers import ProductSyncCommandHandler, consumer_group
from gmv_product_sync.scheduler import AutoSyncScheduler
from gmv_product_sync.service import ClientFactory, ProductSyncService

log = get_logger(__name__)


def build_executor(
    runtime: Runtime,
    *,
    limiter: RateLimiter | None = None,
    client_factory: ClientFactory | None = None,
    owner: str | None = None,
) -> RunExecutor:
    settings = runtime.settings
    service = ProductSyncService(
        sessionmaker=runtime.sessionmaker,
        keyring=runtime.keyring,
        settings=settings,
        limiter=limiter or build_rate_limiter(runtime.sessionmaker, settings),
        client_factory=client_factory,
    )
    return RunExecutor(
        sessionmaker=runtime.sessionmaker,
        service=service,
        settings=settings,
        owner=owner,
    )


def build_consumer(runtime: Runtime, executor: RunExecutor) -> ConsumerRunner:
    group = consumer_group(runtime.settings.kafka_topic_prefix)
    handler = ProductSyncCommandHandler(
        sessionmaker=runtime.sessionmaker, executor=executor, group=group
    )
    return ConsumerRunner(
        runtime.bus,
        group=group,
        topics=[runtime.topic(topics.PRODUCT_SYNC_COMMANDS)],
        handler=handler,
        dlq_topic=runtime.topic(topics.DEAD_LETTERS),
        max_attempts=runtime.settings.consumer_max_attempts,
    )


async def redispatch_loop(runtime: Runtime, stop: asyncio.Event) -> None:
    """Re-send the commands of runs whose worker died or whose command went missing."""
    interval = runtime.settings.product_sync_redispatch_seconds
    while not stop.is_set():
        try:
            async with runtime.sessionmaker.begin() as session:
                run_ids = await redispatch_stale_runs(
                    session, topic_prefix=runtime.settings.kafka_topic_prefix
                )
            if run_ids:
                log.info("product_sync.redispatched", run_ids=run_ids)
        except Exception as exc:
            log.warning("product_sync.redispatch_failed", error=repr(exc)[:300])
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            continue


async def run(
    runtime: Runtime,
    stop: asyncio.Event,
    *,
    executor: RunExecutor | None = None,
) -> None:
    """Consume product-sync commands, fire auto-syncs and redispatch until ``stop``."""
    executor = executor or build_executor(runtime)
    consumer = build_consumer(runtime, executor)
    scheduler = AutoSyncScheduler(runtime.sessionmaker, runtime.settings)
    log.info("product_sync.service_started", worker=executor.owner)
    try:
        await asyncio.gather(
            consumer.run(stop),
            scheduler.run(stop),
            redispatch_loop(runtime, stop),
        )
    finally:
        await executor.close()
        log.info("product_sync.service_stopped", worker=executor.owner)
