"""Topic names and keys.

Topics are named ``{prefix}.{logical name}``; the prefix (``KAFKA_TOPIC_PREFIX``, default ``gmv``)
lets tests and staging share one cluster. Keys are ``{workspace_id}:{auth_id}`` so one binding's
messages stay in order on one partition.
"""

from __future__ import annotations

from gmv_common.bus.base import TopicSpec

META_SYNC_COMMANDS = "commands.meta-sync"
PRODUCT_SYNC_COMMANDS = "commands.product-sync"
SYNC_EVENTS = "events.sync"
OPTIONS_EVENTS = "events.options"
BINDING_EVENTS = "events.bindings"
DEAD_LETTERS = "dlq"

ALL_TOPICS = (
    META_SYNC_COMMANDS,
    PRODUCT_SYNC_COMMANDS,
    SYNC_EVENTS,
    OPTIONS_EVENTS,
    BINDING_EVENTS,
    DEAD_LETTERS,
)


def topic_name(prefix: str, logical: str) -> str:
    return f"{prefix}.{logical}"


def consumer_group(prefix: str, service: str) -> str:
    """A service's consumer group: ``gmv.metadata-sync`` under the default prefix.

    Groups are global to a Kafka cluster; deployments (and tests) sharing one through different
    topic prefixes get groups of their own instead of rebalancing each other.
    """
    return f"{prefix}.{service}"


def binding_key(workspace_id: int, auth_id: int) -> str:
    return f"{workspace_id}:{auth_id}"


def topic_specs(prefix: str, partitions: int) -> list[TopicSpec]:
    return [
        TopicSpec(topic_name(prefix, logical), partitions=partitions)
        for logical in ALL_TOPICS
    ]
