"""The Kafka CLI recipes of docs/operations.md, run as written on the local broker.

The block creates a topic, produces two keyed messages with headers, reads them back as a
group, shows end offsets and the group's lag, and moves the group back three ways. Only the
names change: ``demo`` and ``demo-reader`` become a topic and a group of this run.
docs/events.md uses the same tools and flags on the service topics; its commands are checked
against each tool's ``--help`` by test_doc_commands.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from doc_commands import ROOT

KAFKA_BOOTSTRAP = os.environ.get("GMV_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
OPERATIONS = ROOT / "docs" / "operations.md"


def recipe_block() -> str:
    """The ``sh`` block of the guide's "Kafka command-line tools" section."""
    section = OPERATIONS.read_text().split("### Kafka command-line tools", 1)[1]
    block: str = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return block


async def delete_topic(topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


def offsets_table(output: str, group: str, topic: str) -> list[dict[int, int]]:
    """Each NEW-OFFSET table the resets printed, as partition → offset."""
    tables = []
    for table in output.split("NEW-OFFSET")[1:]:
        rows = re.findall(
            rf"(?m)^{group}[ \t]+{topic}[ \t]+(\d+)[ \t]+(\d+)[ \t]*$", table
        )
        tables.append({int(partition): int(offset) for partition, offset in rows})
    return tables


@pytest.mark.kafka
def test_kafka_cli_recipes_of_the_operations_guide_run_on_the_local_broker() -> None:
    suffix = uuid.uuid4().hex[:10]
    topic, group = f"docs-recipe-{suffix}", f"docs-recipe-reader-{suffix}"
    script = re.sub(
        r"\bdemo(-reader)?\b",
        lambda match: group if match[1] else topic,
        recipe_block(),
    )
    environment = {**os.environ, "GMV_KAFKA_PORT": KAFKA_BOOTSTRAP.rsplit(":", 1)[1]}

    try:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    finally:
        asyncio.run(delete_topic(topic))

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"Created topic {topic}." in output
    assert 'event_type:store.synced,tenant:w1\tw1\t{"n":1}' in output
    assert 'event_type:store.synced,tenant:w2\tw2\t{"n":2}' in output
    lags = re.findall(
        rf"(?m)^{group}[ \t]+{topic}(?:[ \t]+\d+){{3}}[ \t]+(\d+)[ \t]", output
    )
    assert lags == ["0", "0", "0"], output
    earliest, _, one_partition = offsets_table(output, group, topic)
    assert earliest == {0: 0, 1: 0, 2: 0}
    assert one_partition == {2: 1}
