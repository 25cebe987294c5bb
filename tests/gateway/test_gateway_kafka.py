"""The options waiter on the real Kafka: an ``OptionsUpdated`` published wakes the request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from event_support import publish_event

from gmv_common.events import OptionsUpdated
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_gateway.options.cache import CachedDocument, DocumentCache
from gmv_gateway.options.waiter import OptionsWaiter, build_options_consumer

pytestmark = pytest.mark.kafka


async def test_options_updated_on_kafka_wakes_waiter_and_drops_cached_document(
    make_settings: Callable[..., Settings],
    sqlite_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    settings = make_settings(
        database_url=sqlite_url,
        bus_backend="kafka",
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        kafka_partitions=2,
    )
    runtime = Runtime.create(settings)
    await runtime.start()
    waiter = OptionsWaiter()
    cache = DocumentCache(ttl=60)
    cache.put(4, 8, CachedDocument(etag='"old"', body=b"{}", gzip_body=b""))
    stop = asyncio.Event()
    consumer = asyncio.create_task(
        build_options_consumer(runtime, waiter, cache).run(stop)
    )
    event = OptionsUpdated(workspace_id=4, auth_id=8, etag='"new"', version=2)
    try:
        with waiter.subscribe(4, 8) as woken:
            await publish_event(runtime, event)
            await asyncio.wait_for(woken.wait(), timeout=30)
    finally:
        stop.set()
        await consumer
        await runtime.close()

    assert cache.get(4, 8) is None
