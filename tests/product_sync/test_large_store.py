"""A 100,000-product store on the real MariaDB, synced in full and then after 1% changed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import orjson
import pytest
from product_sync_support import (
    expected_items,
    make_runtime,
    product_rows,
    request,
    run_to_end,
    sandbox_executor,
    seed_pair,
    world,
)
from sqlalchemy import select

from gmv_common.db.models import OutboxMessage
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings

pytestmark = pytest.mark.mariadb

PRODUCTS = 100_000


@pytest.fixture
async def runtime(
    mariadb_url: str, make_settings: Callable[..., Settings], topic_prefix: str
) -> AsyncIterator[Runtime]:
    runtime = make_runtime(
        make_settings(database_url=mariadb_url, kafka_topic_prefix=topic_prefix)
    )
    yield runtime
    await runtime.close()


# Two syncs of 100,000 products on a shared 2-core machine: more than the default 300 s.
@pytest.mark.timeout(900)
async def test_hundred_thousand_products_sync_then_one_percent_change_rewrites_only_those(
    runtime: Runtime,
) -> None:
    state = world(products=PRODUCTS, gmv_max_eligible_share=1.0)
    pair = await seed_pair(runtime.sessionmaker, runtime.keyring, state, qps=0)
    prefix = runtime.settings.kafka_topic_prefix
    executor = sandbox_executor(runtime, state)

    first = await request(runtime.sessionmaker, pair, topic_prefix=prefix)
    first_run = await run_to_end(executor, first.run.id, timeout=600)

    expected = expected_items(state, pair)
    rows = await product_rows(runtime.sessionmaker, pair)
    assert state.world.product_count(state.world.stores[pair.store_id]) == PRODUCTS
    assert first_run.status == "succeeded", first_run.error_message
    assert first_run.stats["reads"]["gmv_max"]["complete"] is True
    assert first_run.stats["added"] == len(expected) == len(rows)
    for item_group_id, item in expected.items():
        row = rows[item_group_id]
        assert (row.title, row.min_price, row.max_price, row.status) == (
            item["title"],
            Decimal(item["min_price"]),
            Decimal(item["max_price"]),
            item["status"],
        )
    before = {ig: (r.content_hash, r.last_seen_at) for ig, r in rows.items()}

    changed = sorted(expected)[::100][: len(expected) // 100]
    for number, item_group_id in enumerate(changed):
        state.update_product(
            pair.store_id, item_group_id, title=f"Restocked bundle {number}"
        )
    second = await request(runtime.sessionmaker, pair, topic_prefix=prefix)
    second_run = await run_to_end(executor, second.run.id, timeout=600)

    after_rows = await product_rows(runtime.sessionmaker, pair)
    after = {ig: (r.content_hash, r.last_seen_at) for ig, r in after_rows.items()}
    rewritten = sorted(ig for ig in after if after[ig] != before.get(ig))
    assert second_run.status == "succeeded"
    assert rewritten == changed
    assert (second_run.stats["added"], second_run.stats["removed"]) == (0, 0)
    assert second_run.stats["updated"] == len(changed)
    assert second_run.stats["unchanged"] == len(expected) - len(changed)
    assert all(after_rows[ig].title.startswith("Restocked bundle") for ig in changed)
    async with runtime.sessionmaker() as session:
        payloads = [
            orjson.loads(row.payload)
            for row in await session.scalars(
                select(OutboxMessage).order_by(OutboxMessage.id)
            )
            if row.headers["ce_type"] == "gmv.sync.completed.v1"
        ]
    assert payloads[-1]["run_id"] == second_run.id
    assert payloads[-1]["changes"]["products"]["updated"] == changed
    print(
        "first sync:",
        first_run.stats["products_per_second"],
        "products/s, db share",
        first_run.stats["db_share"],
        "; second sync:",
        second_run.stats["phases_ms"]["total"],
        "ms",
    )
