"""An in-process bus with Kafka's contract: partitions, keys, consumer groups, at-least-once.

Used by the embedded mode (``gmv dev``) and by unit tests. Messages live in memory only.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from gmv_common.bus.base import Bus, Consumer, Message, TopicSpec, partition_for


@dataclass
class _Group:
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    members: list[InMemoryConsumer] = field(default_factory=list)


class InMemoryBus(Bus):
    def __init__(self, default_partitions: int = 12) -> None:
        self._default_partitions = default_partitions
        self._logs: dict[str, list[list[Message]]] = {}
        self._groups: dict[str, _Group] = defaultdict(_Group)
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for group in self._groups.values():
            group.members.clear()

    async def ping(self) -> bool:
        return True

    async def ensure_topics(self, topics: Sequence[TopicSpec]) -> None:
        for spec in topics:
            self._logs.setdefault(spec.name, [[] for _ in range(spec.partitions)])

    def partitions(self, topic: str) -> int:
        return len(self._topic(topic))

    def _topic(self, topic: str) -> list[list[Message]]:
        if topic not in self._logs:
            self._logs[topic] = [[] for _ in range(self._default_partitions)]
        return self._logs[topic]

    async def publish(
        self, topic: str, key: str, value: bytes, headers: dict[str, str]
    ) -> None:
        log = self._topic(topic)
        partition = partition_for(key, len(log))
        offset = len(log[partition])
        log[partition].append(
            Message(topic, key, value, dict(headers), partition, offset)
        )
        async with self._changed:
            self._changed.notify_all()

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        return InMemoryConsumer(self, group, list(topics))

    def reset_group(self, group: str, topic: str, offset: int = 0) -> None:
        """Move a group's committed offsets of ``topic`` (all partitions), like the Kafka CLI."""
        state = self._groups[group]
        for partition in range(len(self._topic(topic))):
            state.committed[(topic, partition)] = offset
        for member in state.members:
            member.positions.clear()

    # Group coordination: partitions are dealt round-robin among the live members.
    def _join(self, member: InMemoryConsumer) -> None:
        self._groups[member.group].members.append(member)
        self._rebalance(member.group)

    def _leave(self, member: InMemoryConsumer) -> None:
        group = self._groups[member.group]
        if member in group.members:
            group.members.remove(member)
        self._rebalance(member.group)

    def _rebalance(self, group_name: str) -> None:
        group = self._groups[group_name]
        for member in group.members:
            member.assignment.clear()
            member.positions.clear()
        if not group.members:
            return
        topics = sorted({t for m in group.members for t in m.topics})
        dealer = itertools.cycle(group.members)
        for topic in topics:
            for partition in range(len(self._topic(topic))):
                for _ in range(len(group.members)):
                    member = next(dealer)
                    if topic in member.topics:
                        member.assignment.add((topic, partition))
                        break

    def _committed(self, group: str, tp: tuple[str, int]) -> int:
        return self._groups[group].committed.get(tp, 0)

    def _commit(self, group: str, tp: tuple[str, int], offset: int) -> None:
        committed = self._groups[group].committed
        committed[tp] = max(committed.get(tp, 0), offset)


class InMemoryConsumer(Consumer):
    def __init__(self, bus: InMemoryBus, group: str, topics: list[str]) -> None:
        self.bus = bus
        self.group = group
        self.topics = topics
        self.assignment: set[tuple[str, int]] = set()
        self.positions: dict[tuple[str, int], int] = {}
        self._started = False

    async def start(self) -> None:
        if not self._started:
            self._started = True
            self.bus._join(self)

    async def stop(self) -> None:
        if self._started:
            self._started = False
            self.bus._leave(self)

    def assigned(self) -> frozenset[tuple[str, int]]:
        return frozenset(self.assignment)

    def _ready(self, max_records: int) -> list[Message]:
        batch: list[Message] = []
        for tp in sorted(self.assignment):
            topic, partition = tp
            position = self.positions.get(tp)
            if position is None:
                position = self.bus._committed(self.group, tp)
            log = self.bus._topic(topic)[partition]
            taken = log[position : position + max_records - len(batch)]
            batch.extend(taken)
            self.positions[tp] = position + len(taken)
            if len(batch) >= max_records:
                break
        return batch

    async def getmany(
        self, timeout: float = 1.0, max_records: int = 100
    ) -> list[Message]:
        batch = self._ready(max_records)
        if batch or timeout <= 0:
            return batch
        async with self.bus._changed:
            try:
                await asyncio.wait_for(self.bus._changed.wait(), timeout)
            except TimeoutError:
                return []
        return self._ready(max_records)

    async def commit(self, message: Message) -> None:
        tp = (message.topic, message.partition)
        if tp in self.assignment:
            self.bus._commit(self.group, tp, message.offset + 1)
