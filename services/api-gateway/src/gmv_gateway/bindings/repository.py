"""SQL of bindings, provider apps, OAuth states and binding schedules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import Binding, OAuthState, ProviderApp, Schedule


async def binding_in(
    session: AsyncSession, workspace_id: int, auth_id: int
) -> Binding | None:
    result: Binding | None = await session.scalar(
        select(Binding).where(
            Binding.id == auth_id, Binding.workspace_id == workspace_id
        )
    )
    return result


async def bindings_page(
    session: AsyncSession,
    workspace_id: int,
    *,
    offset: int,
    limit: int,
    status: str | None = None,
) -> tuple[Sequence[Binding], int]:
    where: list[Any] = [Binding.workspace_id == workspace_id]
    if status is not None:
        where.append(Binding.status == status)
    total = await session.scalar(
        select(func.count()).select_from(Binding).where(*where)
    )
    rows = await session.scalars(
        select(Binding).where(*where).order_by(Binding.id).offset(offset).limit(limit)
    )
    return rows.all(), int(total or 0)


async def binding_by_fingerprint(
    session: AsyncSession, workspace_id: int, provider_app_id: int, fingerprint: str
) -> Binding | None:
    result: Binding | None = await session.scalar(
        select(Binding).where(
            Binding.workspace_id == workspace_id,
            Binding.provider_app_id == provider_app_id,
            Binding.token_fingerprint == fingerprint,
        )
    )
    return result


async def provider_app(session: AsyncSession, app_row_id: int) -> ProviderApp | None:
    return await session.get(ProviderApp, app_row_id)


async def provider_app_by_app_id(
    session: AsyncSession, app_id: str
) -> ProviderApp | None:
    result: ProviderApp | None = await session.scalar(
        select(ProviderApp).where(ProviderApp.app_id == app_id)
    )
    return result


async def provider_apps(session: AsyncSession) -> Sequence[ProviderApp]:
    rows = await session.scalars(select(ProviderApp).order_by(ProviderApp.id))
    return rows.all()


async def clear_default_apps(session: AsyncSession, keep_id: int) -> None:
    await session.execute(
        update(ProviderApp)
        .where(ProviderApp.id != keep_id, ProviderApp.is_default.is_(True))
        .values(is_default=False)
    )


async def oauth_state(session: AsyncSession, state_hash: str) -> OAuthState | None:
    result: OAuthState | None = await session.scalar(
        select(OAuthState).where(OAuthState.state_hash == state_hash)
    )
    return result


async def consume_oauth_state(
    session: AsyncSession, state_id: int, now: datetime
) -> bool:
    """Mark the state used; False when another request used it first."""
    result: Any = await session.execute(
        update(OAuthState)
        .where(OAuthState.id == state_id, OAuthState.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)


async def disable_schedules(
    session: AsyncSession, workspace_id: int, auth_id: int
) -> None:
    await session.execute(
        update(Schedule)
        .where(Schedule.workspace_id == workspace_id, Schedule.auth_id == auth_id)
        .values(enabled=False)
    )


async def delete_schedules(
    session: AsyncSession, workspace_id: int, auth_id: int
) -> None:
    await session.execute(
        delete(Schedule).where(
            Schedule.workspace_id == workspace_id, Schedule.auth_id == auth_id
        )
    )
