"""SQL of the ops endpoints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import SyncRun


async def count_runs_since(
    session: AsyncSession, since: datetime
) -> list[tuple[str, str, int]]:
    rows = await session.execute(
        select(SyncRun.scope, SyncRun.status, func.count())
        .where(SyncRun.created_at >= since)
        .group_by(SyncRun.scope, SyncRun.status)
    )
    return [(scope, status, int(count)) for scope, status, count in rows.all()]
