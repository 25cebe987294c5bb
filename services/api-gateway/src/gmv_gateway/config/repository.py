"""SQL of binding configurations."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import GmvMaxBindingConfig


async def config_of(
    session: AsyncSession, workspace_id: int, auth_id: int
) -> GmvMaxBindingConfig | None:
    result: GmvMaxBindingConfig | None = await session.scalar(
        select(GmvMaxBindingConfig).where(
            GmvMaxBindingConfig.workspace_id == workspace_id,
            GmvMaxBindingConfig.auth_id == auth_id,
        )
    )
    return result
