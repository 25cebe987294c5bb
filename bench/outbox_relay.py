"""Rows per second from the outbox table to Kafka through one ``OutboxRelay``.

Writes N outbox rows spread over B bindings (keys) in a fresh MariaDB database, then times the
relay until the table is drained. One binding shows the strictly sequential case (each row waits
for the previous acknowledgement); many bindings show keys published concurrently.

    .venv/bin/python bench/outbox_relay.py [--rows 2000] [--bindings 1 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

from support import database_server_url, scratch_database

from gmv_common.bus import topics
from gmv_common.bus.base import TopicSpec
from gmv_common.bus.kafka import KafkaBus
from gmv_common.db.session import create_engine, create_sessionmaker
from gmv_common.events.schemas import MetaSyncRequested
from gmv_common.messaging.outbox import OutboxRelay, enqueue
from gmv_common.settings import Settings


async def run_once(server_url: str, bootstrap: str, rows: int, bindings: int) -> float:
    async with scratch_database(server_url) as url:
        return await _drain(url, bootstrap, rows, bindings)


async def _drain(url: str, bootstrap: str, rows: int, bindings: int) -> float:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    bus = KafkaBus(bootstrap, client_id="gmv-bench", replication_factor=1)
    name = topics.topic_name(prefix, topics.META_SYNC_COMMANDS)
    await bus.ensure_topics([TopicSpec(name, partitions=12)])
    engine = create_engine(Settings(_env_file=None, database_url=url))
    sessionmaker = create_sessionmaker(engine)
    try:
        for start in range(0, rows, 100):
            async with sessionmaker.begin() as session:
                for run_id in range(start, min(rows, start + 100)):
                    command = MetaSyncRequested(
                        workspace_id=1, auth_id=run_id % bindings, run_id=run_id
                    )
                    enqueue(session, command, topic_prefix=prefix)
        relay = OutboxRelay(sessionmaker, bus, batch_size=200)
        await bus.publish(name, "warm", b"{}", {"ce_id": "warm"})
        started = time.perf_counter()
        published = 0
        while published < rows:
            published += await relay.publish_pending()
        return rows / (time.perf_counter() - started)
    finally:
        await engine.dispose()
        await bus.delete_topics([name])
        await bus.stop()


async def main(arguments: argparse.Namespace) -> None:
    for bindings in arguments.bindings:
        rate = await run_once(
            arguments.database, arguments.bootstrap, arguments.rows, bindings
        )
        print(f"{arguments.rows} rows over {bindings} binding(s): {rate:,.0f} rows/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database",
        default=database_server_url(),
    )
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("GMV_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
    )
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--bindings", type=int, nargs="+", default=[1, 50])
    asyncio.run(main(parser.parse_args()))
