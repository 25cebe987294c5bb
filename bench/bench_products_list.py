"""The products list on MariaDB: pages of one 100,000-product store, as the gateway reads them.

Creates a database of its own on the MariaDB of ``GMV_BENCH_DATABASE_URL`` (else
``GMV_TEST_DATABASE_URL``, else the local test server) and seeds one store of 100,000 live
products with raw upstream JSON the size TikTok sends, half of them ``ACTIVE``, half of them
eligible for GMV Max for one advertiser; then, after ``ANALYZE TABLE`` (what the server's own
statistics reach soon after a sync), times ``gmv_gateway.catalog.repository.products_page``,
the query behind ``GET …/products``, total included, for each order the SPA's table offers,
on the first page and on page 200 (offset 9,950), with no filter, by status and by an
advertiser's eligibility. Each figure is the median of a few reads in fresh sessions.

The figures have no goal of an issue's; they show what a demanding user's table costs at the
largest store size the product sync benchmark writes. Writes ``bench/results/products_list.json``.

    .venv/bin/python bench/bench_products_list.py [--products 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, text
from support import (
    DeveloperApp,
    bench_runtime,
    database_server_url,
    machine,
    scratch_database,
    seed_binding,
    write_results,
)

from gmv_common.db.models import Product, ProductEligibility
from gmv_common.runtime import Runtime
from gmv_gateway.catalog import repository

PAGE_SIZE = 50
DEEP_PAGE = 200
SORTS = ("title", "-sales", "-updated", "item_group_id")
FILTERS: dict[str, dict[str, str]] = {
    "none": {},
    "status": {"status": "ACTIVE"},
    "eligibility": {"advertiser_id": "adv-bench", "eligibility": "gmv_max"},
}
STORE_ID = "store-bench"
INSERT_CHUNK = 1_000


async def seed_store(
    runtime: Runtime, workspace_id: int, auth_id: int, products: int
) -> None:
    rng = random.Random(7)
    owner = {"workspace_id": workspace_id, "auth_id": auth_id, "store_id": STORE_ID}
    async with runtime.sessionmaker.begin() as session:
        for start in range(0, products, INSERT_CHUNK):
            rows = []
            eligible = []
            for index in range(start, min(start + INSERT_CHUNK, products)):
                item_group_id = str(1_729_000_000_000_000_000 + index)
                price = round(rng.uniform(1, 200), 2)
                rows.append(
                    {
                        **owner,
                        "item_group_id": item_group_id,
                        "title": f"Product {rng.random():.10f}",
                        "min_price": price,
                        "max_price": price + 10,
                        "currency": "USD",
                        "historical_sales": rng.randrange(100_000),
                        "status": "ACTIVE" if index % 2 == 0 else "INACTIVE",
                        # About the size of a product as store/product/get returns it.
                        "raw_json": {
                            "item_group_id": item_group_id,
                            "title": "x" * 400,
                            "skus": [
                                {"sku_id": f"{index}-{n}", "price": "9.99"}
                                for n in range(4)
                            ],
                        },
                    }
                )
                if index % 2 == 1:
                    eligible.append(
                        {
                            **owner,
                            "advertiser_id": "adv-bench",
                            "eligibility": "gmv_max",
                            "item_group_id": item_group_id,
                        }
                    )
            await session.execute(insert(Product), rows)
            await session.execute(insert(ProductEligibility), eligible)
    async with runtime.sessionmaker() as session:
        await session.execute(
            text("ANALYZE TABLE ttb_products, ttb_product_eligibility")
        )


async def read_page(
    runtime: Runtime,
    workspace_id: int,
    auth_id: int,
    sort: str,
    page: int,
    filters: dict[str, str],
) -> tuple[float, int, int]:
    started = time.perf_counter()
    async with runtime.sessionmaker() as session:
        items, total = await repository.products_page(
            session,
            workspace_id,
            auth_id,
            store_id=STORE_ID,
            advertiser_id=filters.get("advertiser_id"),
            eligibility=filters.get("eligibility"),
            status=filters.get("status"),
            sort=sort,
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )
    return (time.perf_counter() - started) * 1000, len(items), total


async def run(server_url: str, products: int, repeat: int) -> dict[str, Any]:
    async with scratch_database(server_url) as url, bench_runtime(url) as runtime:
        binding = await seed_binding(
            runtime,
            DeveloperApp("bench-app", "secret", "token", 10.0),
            workspace_name="Bench",
        )
        seeded = time.perf_counter()
        await seed_store(runtime, binding.workspace_id, binding.auth_id, products)
        seed_seconds = time.perf_counter() - seeded
        shapes: list[dict[str, Any]] = []
        for filter_name, filters in FILTERS.items():
            for sort in SORTS:
                for page in (1, DEEP_PAGE):
                    samples = []
                    for _ in range(repeat):
                        ms, count, total = await read_page(
                            runtime,
                            binding.workspace_id,
                            binding.auth_id,
                            sort,
                            page,
                            filters,
                        )
                        samples.append(ms)
                    assert count == PAGE_SIZE, (filter_name, sort, page, count)
                    shapes.append(
                        {
                            "filter": filter_name,
                            "sort": sort,
                            "page": page,
                            "total": total,
                            "median_ms": round(statistics.median(samples), 1),
                            "max_ms": round(max(samples), 1),
                        }
                    )
    return {
        "benchmark": "products_list",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "products": products,
        "page_size": PAGE_SIZE,
        "seed_seconds": round(seed_seconds, 1),
        "shapes": shapes,
        "headline": headline(shapes),
    }


def headline(shapes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per filter, the slowest order's median on the first page and on page 200."""
    entries = []
    for filter_name in FILTERS:
        for page in (1, DEEP_PAGE):
            worst = max(
                shape["median_ms"]
                for shape in shapes
                if shape["filter"] == filter_name and shape["page"] == page
            )
            entries.append(
                {
                    "metric": f"products page {page}, filter {filter_name}, slowest order (median)",
                    "value": worst,
                    "unit": "ms",
                }
            )
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results = asyncio.run(run(database_server_url(), args.products, args.repeat))
    write_results("products_list", results)
    for shape in results["shapes"]:
        print(
            f"{shape['filter']:12} {shape['sort']:14} page {shape['page']:4} "
            f"total {shape['total']:7}  median {shape['median_ms']:7.1f} ms"
        )


if __name__ == "__main__":
    main()
