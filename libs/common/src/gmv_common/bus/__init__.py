"""Message bus: one contract, a Kafka and an in-memory implementation."""

from gmv_common.bus.base import Bus, Consumer, Message, TopicSpec
from gmv_common.bus.memory import InMemoryBus

__all__ = ["Bus", "Consumer", "InMemoryBus", "Message", "TopicSpec"]
