"""Messages per second through ``KafkaBus.publish`` on the local broker.

Sequential publishes (one awaited acknowledgement at a time, as the outbox relay sends) and
concurrent ones (many publishes in flight, which the producer batches per partition).

    .venv/bin/python bench/kafka_publish.py [--messages 5000] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

from gmv_common.bus.base import TopicSpec
from gmv_common.bus.kafka import KafkaBus
from gmv_common.events.envelope import Envelope


def sample(n: int) -> Envelope:
    return Envelope(
        type="gmv.command.meta_sync.v1",
        source="/bench",
        subject=f"workspaces/1/bindings/{n % 50}",
        data={"workspace_id": 1, "auth_id": n % 50, "run_id": n, "mode": "full"},
    )


async def measure(bootstrap: str, messages: int, concurrency: int) -> None:
    bus = KafkaBus(bootstrap, client_id="gmv-bench", replication_factor=1)
    topic = f"bench{uuid.uuid4().hex[:8]}.commands"
    await bus.ensure_topics([TopicSpec(topic, partitions=12)])
    envelopes = [sample(n) for n in range(messages)]
    try:
        await bus.publish(topic, "warm", b"{}", {"ce_id": "warm"})

        started = time.perf_counter()
        for n, envelope in enumerate(envelopes):
            await bus.publish(topic, f"1:{n % 50}", envelope.body(), envelope.headers())
        sequential = messages / (time.perf_counter() - started)

        semaphore = asyncio.Semaphore(concurrency)

        async def publish(n: int, envelope: Envelope) -> None:
            async with semaphore:
                await bus.publish(
                    topic, f"1:{n % 50}", envelope.body(), envelope.headers()
                )

        started = time.perf_counter()
        await asyncio.gather(*(publish(n, e) for n, e in enumerate(envelopes)))
        concurrent = messages / (time.perf_counter() - started)
    finally:
        await bus.delete_topics([topic])
        await bus.stop()
    size = len(envelopes[0].body())
    print(f"{messages} messages of ~{size} bytes, 12 partitions, acks=all, idempotent")
    print(f"sequential (one ack awaited at a time): {sequential:,.0f} msg/s")
    print(f"concurrent ({concurrency} in flight): {concurrent:,.0f} msg/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("GMV_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=200)
    arguments = parser.parse_args()
    asyncio.run(measure(arguments.bootstrap, arguments.messages, arguments.concurrency))


if __name__ == "__main__":
    main()
