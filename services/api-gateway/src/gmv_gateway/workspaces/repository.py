"""SQL of workspaces and memberships."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import Membership, User, Workspace


async def workspace_by_id(session: AsyncSession, workspace_id: int) -> Workspace | None:
    return await session.get(Workspace, workspace_id)


async def membership(
    session: AsyncSession, workspace_id: int, user_id: int
) -> Membership | None:
    result: Membership | None = await session.scalar(
        select(Membership).where(
            Membership.workspace_id == workspace_id, Membership.user_id == user_id
        )
    )
    return result


async def members(
    session: AsyncSession, workspace_id: int
) -> list[tuple[Membership, User]]:
    rows = await session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(Membership.id)
    )
    return [(row[0], row[1]) for row in rows]


async def owner_count(session: AsyncSession, workspace_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.workspace_id == workspace_id, Membership.role == "owner")
    )
    return int(count or 0)
