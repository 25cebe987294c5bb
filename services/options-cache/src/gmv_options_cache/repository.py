"""All SQL of the options cache. Nothing here commits; the caller owns the transaction.

A rebuild reads one binding in a fixed number of statements whatever its size: the binding
(locked, so rebuilds of one binding never interleave), three entity lists, two link lists and
the stored document. Each list statement rides the ``(workspace_id, auth_id, …)`` unique index
of its table, filters tombstoned rows, and has the database render the rows as JSON and
aggregate them (``JSON_ARRAYAGG`` on MariaDB/MySQL, ``json_group_array`` on SQLite) in chunks
of ``CHUNK_ROWS``: a few result rows instead of thousands, because reading rows one by one
through the async driver costs tens of microseconds each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    delete,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import (
    Advertiser,
    AdvertiserStoreLink,
    BcAdvertiserLink,
    Binding,
    BusinessCenter,
    GmvMaxOptions,
    Store,
)
from gmv_common.db.session import is_mysql

# Rows per aggregated result: at a few hundred bytes per row, a chunk stays well inside
# MariaDB's default group_concat_max_len (1 MB) and any max_allowed_packet.
CHUNK_ROWS = 1000


@dataclass(frozen=True, slots=True)
class BindingState:
    workspace_id: int
    auth_id: int
    alias: str | None
    status: str
    last_meta_sync_at: datetime | None


@dataclass(frozen=True, slots=True)
class BindingSnapshot:
    """The live (not tombstoned) rows of one binding, as JSON-ready values.

    Entities are dicts keyed by the document's field names; links are ``[from, to]`` pairs.
    """

    business_centers: list[dict[str, Any]]
    advertisers: list[dict[str, Any]]
    stores: list[dict[str, Any]]
    bc_advertiser_links: list[list[str]]
    advertiser_store_links: list[list[str]]


async def lock_binding(
    session: AsyncSession, *, workspace_id: int, auth_id: int
) -> BindingState | None:
    """The binding, row-locked until the transaction ends (``None`` if it does not exist)."""
    row = (
        await session.execute(
            select(
                Binding.workspace_id,
                Binding.id,
                Binding.alias,
                Binding.status,
                Binding.last_meta_sync_at,
            )
            .where(Binding.id == auth_id, Binding.workspace_id == workspace_id)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        return None
    return BindingState(
        workspace_id=row.workspace_id,
        auth_id=row.id,
        alias=row.alias,
        status=row.status,
        last_meta_sync_at=row.last_meta_sync_at,
    )


async def load_snapshot(
    session: AsyncSession, *, workspace_id: int, auth_id: int
) -> BindingSnapshot:
    mysql = is_mysql(session)
    if mysql:
        # MariaDB caps JSON_ARRAYAGG at group_concat_max_len; chunks stay far below it, and
        # this lifts a server configured lower than the 1 MB default.
        await session.execute(text("SET SESSION group_concat_max_len = 16777216"))

    async def fetch(model: Any, element: ColumnElement[Any]) -> list[Any]:
        aggregate = func.json_arrayagg if mysql else func.json_group_array
        chunks = await session.scalars(
            select(aggregate(element))
            .where(
                model.workspace_id == workspace_id,
                model.auth_id == auth_id,
                model.deleted_at.is_(None),
            )
            .group_by(model.id // CHUNK_ROWS)
        )
        return [item for chunk in chunks for item in orjson.loads(chunk)]

    return BindingSnapshot(
        business_centers=await fetch(
            BusinessCenter,
            _json_object(
                bc_id=BusinessCenter.bc_id,
                name=BusinessCenter.name,
                timezone=BusinessCenter.timezone,
                country_code=BusinessCenter.country_code,
                status=BusinessCenter.status,
            ),
        ),
        advertisers=await fetch(
            Advertiser,
            _json_object(
                advertiser_id=Advertiser.advertiser_id,
                name=Advertiser.name,
                display_name=Advertiser.display_name,
                status=Advertiser.status,
                industry=Advertiser.industry,
                currency=Advertiser.currency,
                timezone=Advertiser.timezone,
                display_timezone=Advertiser.display_timezone,
                country_code=Advertiser.country_code,
                bc_id=func.coalesce(Advertiser.bc_id, Advertiser.owner_bc_id),
            ),
        ),
        stores=await fetch(
            Store,
            _json_object(
                store_id=Store.store_id,
                name=Store.name,
                store_type=Store.store_type,
                store_code=Store.store_code,
                status=Store.status,
                store_authorized_bc_id=Store.store_authorized_bc_id,
                bc_id=Store.bc_id,
                gmv_max_available=Store.gmv_max_available,
            ),
        ),
        bc_advertiser_links=await fetch(
            BcAdvertiserLink,
            func.json_array(BcAdvertiserLink.bc_id, BcAdvertiserLink.advertiser_id),
        ),
        advertiser_store_links=await fetch(
            AdvertiserStoreLink,
            func.json_array(
                AdvertiserStoreLink.advertiser_id, AdvertiserStoreLink.store_id
            ),
        ),
    )


def _json_object(**fields: SQLColumnExpression[Any]) -> ColumnElement[Any]:
    pairs = [
        part for name, column in fields.items() for part in (literal(name), column)
    ]
    return func.json_object(*pairs)


async def get_options(
    session: AsyncSession, *, workspace_id: int, auth_id: int
) -> GmvMaxOptions | None:
    result: GmvMaxOptions | None = await session.scalar(
        select(GmvMaxOptions).where(
            GmvMaxOptions.workspace_id == workspace_id,
            GmvMaxOptions.auth_id == auth_id,
        )
    )
    return result


async def options_exist(
    session: AsyncSession, *, workspace_id: int, auth_id: int
) -> bool:
    found = await session.scalar(
        select(GmvMaxOptions.id).where(
            GmvMaxOptions.workspace_id == workspace_id,
            GmvMaxOptions.auth_id == auth_id,
        )
    )
    return found is not None


async def save_options(
    session: AsyncSession,
    existing: GmvMaxOptions | None,
    *,
    workspace_id: int,
    auth_id: int,
    document: bytes,
    etag: str,
    version: int,
    run_id: int | None,
    synced_at: datetime | None,
    built_at: datetime,
) -> GmvMaxOptions:
    row = existing or GmvMaxOptions(workspace_id=workspace_id, auth_id=auth_id)
    row.document = document
    row.etag = etag
    row.version = version
    row.run_id = run_id
    row.synced_at = synced_at
    row.built_at = built_at
    if existing is None:
        session.add(row)
    await session.flush()
    return row


async def delete_options(
    session: AsyncSession, *, workspace_id: int, auth_id: int
) -> bool:
    result: Any = await session.execute(
        delete(GmvMaxOptions).where(
            GmvMaxOptions.workspace_id == workspace_id,
            GmvMaxOptions.auth_id == auth_id,
        )
    )
    return bool(result.rowcount)


async def list_bindings(session: AsyncSession) -> list[tuple[int, int]]:
    """``(workspace_id, auth_id)`` of every binding that has synced or has a document."""
    has_document = (
        select(GmvMaxOptions.id)
        .where(
            GmvMaxOptions.workspace_id == Binding.workspace_id,
            GmvMaxOptions.auth_id == Binding.id,
        )
        .exists()
    )
    result = await session.execute(
        select(Binding.workspace_id, Binding.id)
        .where(or_(Binding.last_meta_sync_at.is_not(None), has_document))
        .order_by(Binding.workspace_id, Binding.id)
    )
    return [(row.workspace_id, row.id) for row in result]
