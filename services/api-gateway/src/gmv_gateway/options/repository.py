"""SQL of the options endpoint: the ETag alone (for a 304 without reading the document)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import GmvMaxOptions, SyncRun


async def options_etag(
    session: AsyncSession, workspace_id: int, auth_id: int
) -> str | None:
    result: str | None = await session.scalar(
        select(GmvMaxOptions.etag).where(
            GmvMaxOptions.workspace_id == workspace_id,
            GmvMaxOptions.auth_id == auth_id,
        )
    )
    return result


async def run_state(
    session: AsyncSession, run_id: int
) -> tuple[str, str | None] | None:
    row = (
        await session.execute(
            select(SyncRun.status, SyncRun.error_code).where(SyncRun.id == run_id)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])
