"""SQL of users, sessions, API tokens and login attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import (
    ApiToken,
    LoginAttempt,
    Membership,
    User,
    UserSession,
    Workspace,
)


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    result: User | None = await session.scalar(select(User).where(User.email == email))
    return result


async def user_by_id(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def session_with_user(
    session: AsyncSession, session_hash: str
) -> tuple[UserSession, User] | None:
    row = (
        await session.execute(
            select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.session_hash == session_hash)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def token_with_user(
    session: AsyncSession, token_hash: str
) -> tuple[ApiToken, User] | None:
    row = (
        await session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == token_hash)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def tokens_of(session: AsyncSession, user_id: int) -> Sequence[ApiToken]:
    result = await session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
    )
    return result.all()


async def token_of(
    session: AsyncSession, user_id: int, token_id: int
) -> ApiToken | None:
    result: ApiToken | None = await session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id)
    )
    return result


async def revoke_sessions_of(
    session: AsyncSession, user_id: int, now: datetime
) -> None:
    await session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def active_sessions_of(
    session: AsyncSession, user_id: int, now: datetime
) -> Sequence[UserSession]:
    """The user's sessions that are neither revoked nor expired, newest first."""
    result = await session.scalars(
        select(UserSession)
        .where(
            UserSession.user_id == user_id,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > now,
        )
        .order_by(UserSession.created_at.desc(), UserSession.id.desc())
    )
    return result.all()


async def session_of(
    session: AsyncSession, user_id: int, session_id: int
) -> UserSession | None:
    result: UserSession | None = await session.scalar(
        select(UserSession).where(
            UserSession.id == session_id, UserSession.user_id == user_id
        )
    )
    return result


async def revoke_active_sessions(
    session: AsyncSession, user_id: int, now: datetime, *, keep_id: int | None
) -> list[int]:
    """Revoke the user's active sessions except ``keep_id``; the ids revoked."""
    query = select(UserSession.id).where(
        UserSession.user_id == user_id,
        UserSession.revoked_at.is_(None),
        UserSession.expires_at > now,
    )
    if keep_id is not None:
        query = query.where(UserSession.id != keep_id)
    ids = list((await session.scalars(query)).all())
    if ids:
        await session.execute(
            update(UserSession)
            .where(UserSession.id.in_(ids), UserSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    return ids


async def login_attempts(
    session: AsyncSession, keys: Sequence[str]
) -> dict[str, LoginAttempt]:
    result = await session.scalars(
        select(LoginAttempt).where(LoginAttempt.throttle_key.in_(keys))
    )
    return {row.throttle_key: row for row in result}


class MembershipRow(NamedTuple):
    workspace_id: int
    workspace_name: str
    role: str
    workspace_created_at: datetime


async def memberships_of(session: AsyncSession, user_id: int) -> list[MembershipRow]:
    rows = await session.execute(
        select(
            Membership.workspace_id,
            Workspace.name,
            Membership.role,
            Workspace.created_at,
        )
        .join(Workspace, Workspace.id == Membership.workspace_id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.workspace_id)
    )
    return [MembershipRow(*row) for row in rows.all()]
