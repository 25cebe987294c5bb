"""All SQL of the product sync. Nothing here commits; the caller owns the transaction.

Bulk writes: new rows go in as one multi-row ``INSERT`` per chunk; changed rows are
rewritten by primary key, on MySQL/MariaDB as one ``INSERT ... ON DUPLICATE KEY UPDATE``
per chunk (a single round trip), elsewhere as an ``executemany`` ``UPDATE``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table, and_, bindparam, func, insert, select, update
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import (
    AdvertiserStoreLink,
    GmvMaxBindingConfig,
    Product,
    ProductEligibility,
    Schedule,
    Store,
)
from gmv_product_sync.records import StoredEligibility, StoredProduct

# Rows per statement. Each statement's parameters are escaped, and its result rows
# parsed, in one stretch of the event loop; small statements keep those pauses short, so
# the rate limiter's send slots (a few ms of tolerance) are not missed while writing.
CHUNK = 200
PRODUCT_TABLE = cast(Table, Product.__table__)
ELIGIBILITY_TABLE = cast(Table, ProductEligibility.__table__)
PRODUCT_UPDATE_COLUMNS = (
    "title",
    "image_url",
    "min_price",
    "max_price",
    "currency",
    "historical_sales",
    "category",
    "quantity",
    "status",
    "gmv_max_ads_status",
    "is_running_custom_shop_ads",
    "raw_json",
    "content_hash",
    "last_seen_at",
    "deleted_at",
)
ELIGIBILITY_UPDATE_COLUMNS = (
    "gmv_max_ads_status",
    "is_running_custom_shop_ads",
    "last_seen_at",
    "deleted_at",
)

T = TypeVar("T")


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def store_authorized_bc_id(
    session: AsyncSession,
    *,
    workspace_id: int,
    auth_id: int,
    advertiser_id: str,
    store_id: str,
) -> str | None:
    """The center that authorized the store: the advertiser's link first, then the store."""
    from_link = await session.scalar(
        select(AdvertiserStoreLink.store_authorized_bc_id).where(
            AdvertiserStoreLink.workspace_id == workspace_id,
            AdvertiserStoreLink.auth_id == auth_id,
            AdvertiserStoreLink.advertiser_id == advertiser_id,
            AdvertiserStoreLink.store_id == store_id,
        )
    )
    if from_link:
        return str(from_link)
    from_store = await session.scalar(
        select(Store.store_authorized_bc_id).where(
            Store.workspace_id == workspace_id,
            Store.auth_id == auth_id,
            Store.store_id == store_id,
        )
    )
    return str(from_store) if from_store else None


async def load_products(
    session: AsyncSession,
    *,
    workspace_id: int,
    auth_id: int,
    store_id: str,
    item_group_ids: Sequence[str],
) -> dict[str, StoredProduct]:
    found: dict[str, StoredProduct] = {}
    for chunk in chunked(item_group_ids):
        rows = await session.execute(
            select(
                Product.item_group_id,
                Product.id,
                Product.content_hash,
                Product.gmv_max_ads_status,
                Product.is_running_custom_shop_ads,
                Product.deleted_at,
            ).where(
                Product.workspace_id == workspace_id,
                Product.auth_id == auth_id,
                Product.store_id == store_id,
                Product.item_group_id.in_(chunk),
            )
        )
        for item_group_id, row_id, digest, status, running, deleted_at in rows:
            found[item_group_id] = StoredProduct(
                row_id, digest, status, running, deleted_at
            )
    return found


async def load_eligibility(
    session: AsyncSession,
    *,
    workspace_id: int,
    auth_id: int,
    store_id: str,
    advertiser_id: str,
    eligibility: str,
    item_group_ids: Sequence[str],
) -> dict[str, StoredEligibility]:
    found: dict[str, StoredEligibility] = {}
    for chunk in chunked(item_group_ids):
        rows = await session.execute(
            select(
                ProductEligibility.item_group_id,
                ProductEligibility.id,
                ProductEligibility.gmv_max_ads_status,
                ProductEligibility.is_running_custom_shop_ads,
                ProductEligibility.deleted_at,
            ).where(
                ProductEligibility.workspace_id == workspace_id,
                ProductEligibility.auth_id == auth_id,
                ProductEligibility.store_id == store_id,
                ProductEligibility.advertiser_id == advertiser_id,
                ProductEligibility.eligibility == eligibility,
                ProductEligibility.item_group_id.in_(chunk),
            )
        )
        for item_group_id, row_id, status, running, deleted_at in rows:
            found[item_group_id] = StoredEligibility(
                row_id, status, running, deleted_at
            )
    return found


async def insert_rows(
    session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    for chunk in chunked(rows):
        await session.execute(insert(table), list(chunk))


async def update_rows_by_id(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    columns: Sequence[str],
) -> None:
    """Rewrite ``columns`` of existing rows; each row dict holds every column and ``id``."""
    if not rows:
        return
    if session.get_bind().dialect.name == "mysql":
        upsert = mysql.insert(table)
        upsert = upsert.on_duplicate_key_update(
            {name: upsert.inserted[name] for name in columns}
        )
        for chunk in chunked(rows):
            await session.execute(upsert, list(chunk))
        return
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values({name: bindparam(name) for name in columns})
    )
    for chunk in chunked(rows):
        params = [
            {"row_id": row["id"], **{name: row[name] for name in columns}}
            for row in chunk
        ]
        await session.execute(statement, params)


async def tombstone(
    session: AsyncSession, table: Table, row_ids: Sequence[int], *, now: datetime
) -> None:
    for chunk in chunked(row_ids):
        await session.execute(
            update(table)
            .where(table.c.id.in_(chunk), table.c.deleted_at.is_(None))
            .values(deleted_at=now)
        )


async def count_live_products(
    session: AsyncSession, *, workspace_id: int, auth_id: int, store_id: str
) -> int:
    total = await session.scalar(
        select(func.count())
        .select_from(Product)
        .where(
            Product.workspace_id == workspace_id,
            Product.auth_id == auth_id,
            Product.store_id == store_id,
            Product.deleted_at.is_(None),
        )
    )
    return int(total or 0)


async def has_products(
    session: AsyncSession, *, workspace_id: int, auth_id: int, store_id: str
) -> bool:
    """Whether the store has any product row at all (live or tombstoned)."""
    found = await session.scalar(
        select(Product.id)
        .where(
            Product.workspace_id == workspace_id,
            Product.auth_id == auth_id,
            Product.store_id == store_id,
        )
        .limit(1)
    )
    return found is not None


async def count_live_eligibility(
    session: AsyncSession,
    *,
    workspace_id: int,
    auth_id: int,
    store_id: str,
    advertiser_id: str,
    eligibility: str,
) -> int:
    total = await session.scalar(
        select(func.count())
        .select_from(ProductEligibility)
        .where(
            ProductEligibility.workspace_id == workspace_id,
            ProductEligibility.auth_id == auth_id,
            ProductEligibility.store_id == store_id,
            ProductEligibility.advertiser_id == advertiser_id,
            ProductEligibility.eligibility == eligibility,
            ProductEligibility.deleted_at.is_(None),
        )
    )
    return int(total or 0)


async def live_products(
    session: AsyncSession, *, workspace_id: int, auth_id: int, store_id: str
) -> dict[str, int]:
    """item_group_id → row id of the store's products that are not tombstoned."""
    rows = await session.execute(
        select(Product.item_group_id, Product.id).where(
            Product.workspace_id == workspace_id,
            Product.auth_id == auth_id,
            Product.store_id == store_id,
            Product.deleted_at.is_(None),
        )
    )
    return {item_group_id: row_id for item_group_id, row_id in rows}


async def live_eligibility(
    session: AsyncSession,
    *,
    workspace_id: int,
    auth_id: int,
    store_id: str,
    advertiser_id: str,
    eligibility: str,
) -> dict[str, int]:
    rows = await session.execute(
        select(ProductEligibility.item_group_id, ProductEligibility.id).where(
            ProductEligibility.workspace_id == workspace_id,
            ProductEligibility.auth_id == auth_id,
            ProductEligibility.store_id == store_id,
            ProductEligibility.advertiser_id == advertiser_id,
            ProductEligibility.eligibility == eligibility,
            ProductEligibility.deleted_at.is_(None),
        )
    )
    return {item_group_id: row_id for item_group_id, row_id in rows}


async def still_eligible_anywhere(
    session: AsyncSession,
    *,
    workspace_id: int,
    auth_id: int,
    store_id: str,
    item_group_ids: Sequence[str],
) -> set[str]:
    """Which of these products some advertiser of the binding may still use."""
    eligible: set[str] = set()
    for chunk in chunked(item_group_ids):
        rows = await session.scalars(
            select(ProductEligibility.item_group_id)
            .where(
                ProductEligibility.workspace_id == workspace_id,
                ProductEligibility.auth_id == auth_id,
                ProductEligibility.store_id == store_id,
                ProductEligibility.deleted_at.is_(None),
                ProductEligibility.item_group_id.in_(chunk),
            )
            .distinct()
        )
        eligible.update(rows)
    return eligible


async def binding_config(
    session: AsyncSession, *, workspace_id: int, auth_id: int
) -> GmvMaxBindingConfig | None:
    config: GmvMaxBindingConfig | None = await session.scalar(
        select(GmvMaxBindingConfig).where(
            GmvMaxBindingConfig.workspace_id == workspace_id,
            GmvMaxBindingConfig.auth_id == auth_id,
        )
    )
    return config


async def schedule_of(
    session: AsyncSession, *, workspace_id: int, auth_id: int, task_kind: str
) -> Schedule | None:
    schedule: Schedule | None = await session.scalar(
        select(Schedule).where(
            Schedule.workspace_id == workspace_id,
            Schedule.auth_id == auth_id,
            Schedule.task_kind == task_kind,
        )
    )
    return schedule


async def due_schedules(
    session: AsyncSession, *, task_kind: str, now: datetime, limit: int
) -> list[Schedule]:
    rows = await session.scalars(
        select(Schedule)
        .where(
            Schedule.enabled.is_(True),
            Schedule.task_kind == task_kind,
            Schedule.next_fire_at <= now,
        )
        .order_by(Schedule.next_fire_at, Schedule.id)
        .limit(limit)
    )
    return list(rows)


async def claim_fire(
    session: AsyncSession,
    schedule_id: int,
    *,
    due_at: datetime,
    next_fire_at: datetime,
    now: datetime,
) -> bool:
    """Move the schedule past ``due_at``; only one caller per due time gets True."""
    result: Any = await session.execute(
        update(Schedule)
        .where(
            and_(
                Schedule.id == schedule_id,
                Schedule.enabled.is_(True),
                Schedule.next_fire_at == due_at,
            )
        )
        .values(next_fire_at=next_fire_at, last_fired_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)


async def record_schedule_run(
    session: AsyncSession, schedule_id: int, run_id: int
) -> None:
    await session.execute(
        update(Schedule)
        .where(Schedule.id == schedule_id)
        .values(last_run_id=run_id)
        .execution_options(synchronize_session=False)
    )
