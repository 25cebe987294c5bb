"""The bus under test: the in-memory bus, or KafkaBus on the real broker (marker ``kafka``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bus_support import BusUnderTest

from gmv_common.bus.kafka import KafkaBus
from gmv_common.bus.memory import InMemoryBus


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
async def under_test(
    request: pytest.FixtureRequest, kafka_bootstrap: str
) -> AsyncIterator[BusUnderTest]:
    if request.param == "memory":
        yield BusUnderTest(InMemoryBus(default_partitions=4), "memory")
        return
    bus = KafkaBus(
        kafka_bootstrap,
        client_id="gmv-tests",
        replication_factor=1,
        delivery_timeout=15,
    )
    harness = BusUnderTest(bus, "kafka")
    await bus.start()
    try:
        yield harness
    finally:
        await bus.stop()
        if harness.topics:
            await bus.delete_topics(harness.topics)
