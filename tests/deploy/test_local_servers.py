"""The servers that ``make up`` (deploy/local/up) starts, seen from a client.

These talk to the running MariaDB and Kafka and never start them: a failure here means
the local servers are missing or misconfigured, not that application code is wrong.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord, RecordMetadata
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

DATABASE_URL = os.environ.get(
    "GMV_TEST_DATABASE_URL", "mysql+aiomysql://gmv:gmv@127.0.0.1:13306/gmv"
)
KAFKA_BOOTSTRAP = os.environ.get("GMV_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092")

# Four-byte UTF-8 (emoji, a CJK extension-B ideograph) is what utf8mb3 cannot store.
FOUR_BYTE_TEXT = "Shop 🛍️ GMV 📈 𠀋 Café"


@pytest.fixture
async def fresh_database_url() -> AsyncIterator[str]:
    """An empty database of its own on the local MariaDB, created with the server's
    defaults only, so the test sees what the server itself is configured to do."""
    base = make_url(DATABASE_URL)
    name = f"gmv_t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(base, poolclass=NullPool)
    async with admin.begin() as connection:
        await connection.exec_driver_sql(f"CREATE DATABASE `{name}`")

    yield base.set(database=name).render_as_string(hide_password=False)

    async with admin.begin() as connection:
        await connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    await admin.dispose()


@pytest.mark.mariadb
async def test_mariadb_round_trips_four_byte_text_with_server_defaults(
    fresh_database_url: str,
) -> None:
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(100))")
            )
            await connection.execute(
                text("INSERT INTO notes (id, body) VALUES (1, :body)"),
                {"body": FOUR_BYTE_TEXT},
            )

        async with engine.connect() as connection:
            stored = await connection.scalar(
                text("SELECT body FROM notes WHERE id = 1")
            )
            column = (
                await connection.execute(
                    text(
                        "SELECT character_set_name, collation_name"
                        " FROM information_schema.columns"
                        " WHERE table_schema = DATABASE()"
                        " AND table_name = 'notes' AND column_name = 'body'"
                    )
                )
            ).one()
    finally:
        await engine.dispose()

    assert stored == FOUR_BYTE_TEXT
    assert tuple(column) == ("utf8mb4", "utf8mb4_unicode_ci")


@pytest.mark.kafka
async def test_kafka_round_trips_keyed_message_with_headers() -> None:
    topic = f"local-servers-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=3, replication_factor=1)]
        )
        sent, received = await _produce_then_consume_one(topic)
    finally:
        await admin.delete_topics([topic])
        await admin.close()

    assert received.key == b"workspace-42"
    assert received.value == FOUR_BYTE_TEXT.encode()
    assert list(received.headers) == [
        ("event_type", b"store.synced"),
        ("correlation_id", b"c-1"),
    ]
    assert (received.partition, received.offset) == (sent.partition, sent.offset)


async def _produce_then_consume_one(
    topic: str,
) -> tuple[RecordMetadata, ConsumerRecord[bytes, bytes]]:
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA_BOOTSTRAP, enable_idempotence=True
    )
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            topic,
            FOUR_BYTE_TEXT.encode(),
            key=b"workspace-42",
            headers=[("event_type", b"store.synced"), ("correlation_id", b"c-1")],
        )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=KAFKA_BOOTSTRAP,
        group_id=f"{topic}-reader",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            received = await consumer.getone()
    finally:
        await consumer.stop()
    return sent, received
