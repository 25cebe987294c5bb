"""SQL of sync runs as the API reads them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import SyncRun


async def run_of(
    session: AsyncSession, workspace_id: int, auth_id: int, run_id: int
) -> SyncRun | None:
    result: SyncRun | None = await session.scalar(
        select(SyncRun).where(
            SyncRun.id == run_id,
            SyncRun.workspace_id == workspace_id,
            SyncRun.auth_id == auth_id,
        )
    )
    return result


async def runs_page(
    session: AsyncSession,
    workspace_id: int,
    auth_id: int,
    *,
    scope: str | None,
    status: str | None,
    trigger: str | None,
    offset: int,
    limit: int,
) -> tuple[Sequence[SyncRun], int]:
    where: list[Any] = [
        SyncRun.workspace_id == workspace_id,
        SyncRun.auth_id == auth_id,
    ]
    if scope is not None:
        where.append(SyncRun.scope == scope)
    if status is not None:
        where.append(SyncRun.status == status)
    if trigger is not None:
        where.append(SyncRun.trigger == trigger)
    total = await session.scalar(
        select(func.count()).select_from(SyncRun).where(*where)
    )
    rows = await session.scalars(
        select(SyncRun)
        .where(*where)
        .order_by(SyncRun.created_at.desc(), SyncRun.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return rows.all(), int(total or 0)
