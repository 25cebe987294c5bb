"""All SQL of the options cache. Nothing here commits; the caller owns the transaction.

A rebuild reads one binding in seven statements whatever its size: the binding (locked, so
rebuilds of one binding never interleave), three entity lists, two link lists and the stored
document. Each statement selects only the columns the document uses and rides the
``(workspace_id, auth_id, …)`` unique index of its table; tombstoned rows are filtered in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select
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


@dataclass(frozen=True, slots=True)
class BindingState:
    workspace_id: int
    auth_id: int
    alias: str | None
    status: str
    last_meta_sync_at: datetime | None


@dataclass(frozen=True, slots=True)
class BindingSnapshot:
    """The live (not tombstoned) rows of one binding that the document is built from."""

    business_centers: Sequence[Row[Any]]
    advertisers: Sequence[Row[Any]]
    stores: Sequence[Row[Any]]
    bc_advertiser_links: Sequence[Row[Any]]
    advertiser_store_links: Sequence[Row[Any]]


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
    async def rows(*columns: Any, model: Any) -> Sequence[Row[Any]]:
        result = await session.execute(
            select(*columns).where(
                model.workspace_id == workspace_id,
                model.auth_id == auth_id,
                model.deleted_at.is_(None),
            )
        )
        return result.all()

    return BindingSnapshot(
        business_centers=await rows(
            BusinessCenter.bc_id,
            BusinessCenter.name,
            BusinessCenter.timezone,
            BusinessCenter.country_code,
            BusinessCenter.status,
            model=BusinessCenter,
        ),
        advertisers=await rows(
            Advertiser.advertiser_id,
            Advertiser.name,
            Advertiser.display_name,
            Advertiser.status,
            Advertiser.industry,
            Advertiser.currency,
            Advertiser.timezone,
            Advertiser.display_timezone,
            Advertiser.country_code,
            Advertiser.bc_id,
            Advertiser.owner_bc_id,
            model=Advertiser,
        ),
        stores=await rows(
            Store.store_id,
            Store.name,
            Store.store_type,
            Store.store_code,
            Store.status,
            Store.store_authorized_bc_id,
            Store.bc_id,
            Store.gmv_max_available,
            model=Store,
        ),
        bc_advertiser_links=await rows(
            BcAdvertiserLink.bc_id,
            BcAdvertiserLink.advertiser_id,
            model=BcAdvertiserLink,
        ),
        advertiser_store_links=await rows(
            AdvertiserStoreLink.advertiser_id,
            AdvertiserStoreLink.store_id,
            model=AdvertiserStoreLink,
        ),
    )


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
    """``(workspace_id, auth_id)`` of every binding, in a stable order."""
    result = await session.execute(
        select(Binding.workspace_id, Binding.id).order_by(
            Binding.workspace_id, Binding.id
        )
    )
    return [(row.workspace_id, row.id) for row in result]
