"""The bus contract shared by the Kafka and in-memory implementations.

- A topic has a fixed number of partitions; a message's key picks its partition, so messages with
  one key keep their order.
- Consumers join a group; each partition is read by one member of a group at a time.
- Delivery is at least once: a consumer commits a message after it has processed it, and whatever
  was not committed is delivered again to the next member that reads that partition.
"""

from __future__ import annotations

import abc
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    key: str
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)
    partition: int = 0
    offset: int = -1


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int = 12
    retention_ms: int | None = None


def partition_for(key: str, partitions: int) -> int:
    """Stable key → partition mapping for the in-memory bus (Kafka uses its own murmur2)."""
    return zlib.crc32(key.encode()) % partitions


class Consumer(abc.ABC):
    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def getmany(
        self, timeout: float = 1.0, max_records: int = 100
    ) -> list[Message]:
        """Next messages of the partitions this member holds, in offset order per partition."""

    @abc.abstractmethod
    async def commit(self, message: Message) -> None:
        """Mark ``message`` and everything before it in its partition as processed."""

    @abc.abstractmethod
    def assigned(self) -> frozenset[tuple[str, int]]:
        """The ``(topic, partition)`` pairs this member holds right now."""


class Bus(abc.ABC):
    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def ensure_topics(self, topics: Sequence[TopicSpec]) -> None: ...

    @abc.abstractmethod
    async def publish(
        self, topic: str, key: str, value: bytes, headers: dict[str, str]
    ) -> None:
        """Publish and wait until the broker has acknowledged the message."""

    @abc.abstractmethod
    def consumer(self, group: str, topics: Sequence[str]) -> Consumer: ...

    @abc.abstractmethod
    async def ping(self) -> bool:
        """Whether the broker answers (readiness)."""
