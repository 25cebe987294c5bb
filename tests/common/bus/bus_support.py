"""Helpers of the bus tests: a bus with topics and groups of its own, reading until done."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gmv_common.bus.base import Bus, Consumer, Message, TopicSpec
from gmv_common.bus.kafka import KafkaBus
from gmv_common.bus.memory import InMemoryBus


@dataclass
class BusUnderTest:
    bus: Bus
    kind: str
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    topics: list[str] = field(default_factory=list)

    async def topic(self, name: str = "events", *, partitions: int = 4) -> str:
        full_name = f"{self.prefix}.{name}"
        await self.bus.ensure_topics([TopicSpec(full_name, partitions=partitions)])
        self.topics.append(full_name)
        return full_name

    def group(self, name: str = "group") -> str:
        return f"{self.prefix}.{name}"

    async def reset_group(self, group: str, topic: str) -> None:
        if isinstance(self.bus, KafkaBus):
            await self.bus.reset_group(group, topic, 0)
        elif isinstance(self.bus, InMemoryBus):
            self.bus.reset_group(group, topic, 0)
        else:
            raise TypeError(type(self.bus))

    async def wait_assigned(
        self, consumers: Iterable[Consumer], partitions: set[tuple[str, int]]
    ) -> None:
        """Poll every member until they hold ``partitions`` between them, with no overlap."""
        members = list(consumers)
        async with asyncio.timeout(30):
            while True:
                held = [member.assigned() for member in members]
                union = frozenset().union(*held)
                disjoint = sum(len(h) for h in held) == len(union)
                if union == partitions and disjoint and all(held):
                    return
                for member in members:
                    assert await member.getmany(timeout=0.1) == []


async def drain(
    consumer: Consumer, expected: int, *, settle: float = 0.5, timeout: float = 30
) -> list[Message]:
    """Read until ``expected`` messages arrived, then a little longer to catch extra ones."""
    received: list[Message] = []
    async with asyncio.timeout(timeout):
        while len(received) < expected:
            received.extend(await consumer.getmany(timeout=0.2))
    loop = asyncio.get_running_loop()
    settle_until = loop.time() + settle
    while loop.time() < settle_until:
        received.extend(await consumer.getmany(timeout=0.1))
    return received


async def drain_together(
    consumers: list[Consumer], expected: int, *, settle: float = 1.0
) -> list[list[Message]]:
    """Read from every member at once until they received ``expected`` messages in total."""
    received: list[list[Message]] = [[] for _ in consumers]
    loop = asyncio.get_running_loop()
    settle_until: float | None = None
    async with asyncio.timeout(30 + settle):
        while settle_until is None or loop.time() < settle_until:
            batches = await asyncio.gather(
                *(member.getmany(timeout=0.1) for member in consumers)
            )
            for bucket, batch in zip(received, batches, strict=True):
                bucket.extend(batch)
            if settle_until is None and sum(map(len, received)) >= expected:
                settle_until = loop.time() + settle
    return received


async def until(condition: Callable[[], bool], *, timeout: float = 30) -> None:
    """Wait until ``condition()`` holds (state changed by tasks this test runs)."""
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)
