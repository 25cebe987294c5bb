"""Helpers of the outbox tests: writing events, a bus that counts, reading the outbox table."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.bus.base import Bus, Consumer, TopicSpec
from gmv_common.db.models import OutboxMessage
from gmv_common.events.envelope import Envelope
from gmv_common.events.schemas import MetaSyncRequested
from gmv_common.messaging.outbox import enqueue


async def write_events(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    topic_prefix: str,
    count: int,
    per_transaction: int = 10,
    bindings: int = 5,
    first_run_id: int = 1,
) -> list[Envelope]:
    """Enqueue ``count`` meta-sync commands over ``bindings`` keys, in several transactions."""
    written: list[Envelope] = []
    for start in range(0, count, per_transaction):
        async with sessionmaker.begin() as session:
            for run_id in range(start, min(count, start + per_transaction)):
                command = MetaSyncRequested(
                    workspace_id=1,
                    auth_id=run_id % bindings,
                    run_id=first_run_id + run_id,
                )
                written.append(enqueue(session, command, topic_prefix=topic_prefix))
    return written


async def unpublished_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        count = await session.scalar(
            select(func.count(OutboxMessage.id)).where(
                OutboxMessage.published_at.is_(None)
            )
        )
    return int(count or 0)


class CountingBus(Bus):
    """Delegates to a real bus and records who published which event id."""

    def __init__(self, inner: Bus, *, name: str, publish_delay: float = 0.0) -> None:
        self.inner = inner
        self.name = name
        self.publish_delay = publish_delay
        self.published: list[str] = []
        self.failures: Counter[str] = Counter()
        self.failing: set[str] = set()

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def ensure_topics(self, topics: Sequence[TopicSpec]) -> None:
        await self.inner.ensure_topics(topics)

    async def publish(
        self, topic: str, key: str, value: bytes, headers: dict[str, str]
    ) -> None:
        if headers["ce_id"] in self.failing:
            self.failures["injected"] += 1
            raise ConnectionError("broker unreachable (injected)")
        if self.publish_delay:
            await asyncio.sleep(self.publish_delay)
        try:
            await self.inner.publish(topic, key, value, headers)
        except Exception as exc:
            self.failures[type(exc).__name__] += 1
            raise
        self.published.append(headers["ce_id"])

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        return self.inner.consumer(group, topics)

    async def ping(self) -> bool:
        return await self.inner.ping()


async def until_published(
    sessionmaker: async_sessionmaker[AsyncSession], *, timeout: float = 60
) -> None:
    """Wait until the outbox has no unpublished row (relays run in background tasks)."""
    async with asyncio.timeout(timeout):
        while True:
            if await unpublished_rows(sessionmaker) == 0:
                return
            await asyncio.sleep(0.1)


def order_per_key(
    event_ids: list[str], written: list[Envelope]
) -> dict[str, list[str]]:
    """Event ids grouped by message key (binding), in the order given."""
    key_of = {
        envelope.id: f"{envelope.data['workspace_id']}:{envelope.data['auth_id']}"
        for envelope in written
    }
    ordered: dict[str, list[str]] = {}
    for event_id in event_ids:
        ordered.setdefault(key_of[event_id], []).append(event_id)
    return ordered
