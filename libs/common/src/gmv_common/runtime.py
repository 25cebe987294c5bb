"""What every process builds from its settings: database, bus and topic names."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gmv_common.bus import topics
from gmv_common.bus.base import Bus
from gmv_common.bus.memory import InMemoryBus
from gmv_common.crypto import Keyring
from gmv_common.db.session import create_engine, create_sessionmaker
from gmv_common.settings import Settings


def create_bus(settings: Settings) -> Bus:
    if settings.bus_backend == "memory":
        return InMemoryBus(default_partitions=settings.kafka_partitions)
    from gmv_common.bus.kafka import KafkaBus

    return KafkaBus(
        settings.kafka_bootstrap_servers,
        client_id=settings.kafka_client_id,
        replication_factor=settings.kafka_replication_factor,
        delivery_timeout=settings.kafka_delivery_timeout_seconds,
    )


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    bus: Bus
    keyring: Keyring

    @classmethod
    def create(cls, settings: Settings, *, bus: Bus | None = None) -> Runtime:
        engine = create_engine(settings)
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            bus=bus or create_bus(settings),
            keyring=Keyring.from_settings(settings),
        )

    def topic(self, logical: str) -> str:
        return topics.topic_name(self.settings.kafka_topic_prefix, logical)

    async def start(self) -> None:
        await self.bus.start()
        await self.bus.ensure_topics(
            topics.topic_specs(
                self.settings.kafka_topic_prefix, self.settings.kafka_partitions
            )
        )

    async def close(self) -> None:
        await self.bus.stop()
        await self.engine.dispose()
