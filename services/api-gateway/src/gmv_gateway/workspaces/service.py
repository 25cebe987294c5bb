"""Create, list and rename workspaces; add and remove members (the CLI creates too)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import ROLES, Membership, User, Workspace
from gmv_common.errors import ConflictError, NotFoundError, ValidationFailedError
from gmv_common.logging import get_logger
from gmv_gateway import audit
from gmv_gateway.audit import Actor
from gmv_gateway.auth import repository as auth_repository
from gmv_gateway.auth.repository import MembershipRow
from gmv_gateway.auth.service import normalize_email
from gmv_gateway.workspaces import repository

log = get_logger(__name__)


async def create_workspace(
    session: AsyncSession,
    *,
    name: str,
    owner_user_id: int | None = None,
    company_code: str | None = None,
    actor: Actor | None = None,
) -> Workspace:
    """A new workspace; with ``owner_user_id`` that user becomes its owner."""
    actor = actor or Actor(user_id=None)
    workspace = Workspace(name=name, company_code=company_code)
    session.add(workspace)
    await session.flush()
    audit.record(
        session,
        action="workspace.created",
        actor=actor,
        workspace_id=workspace.id,
        target_type="workspace",
        target_id=workspace.id,
        details={"name": name},
    )
    if owner_user_id is not None:
        await add_member(
            session,
            workspace_id=workspace.id,
            user_id=owner_user_id,
            role="owner",
            actor=actor,
        )
    log.info("workspace.created", workspace_id=workspace.id)
    return workspace


async def list_workspaces(session: AsyncSession, user_id: int) -> list[MembershipRow]:
    """The user's workspaces with their role (the same rows as ``/auth/me``)."""
    return await auth_repository.memberships_of(session, user_id)


async def rename_workspace(
    session: AsyncSession, *, workspace_id: int, name: str, actor: Actor
) -> Workspace:
    workspace = await repository.workspace_by_id(session, workspace_id)
    if workspace is None:
        raise NotFoundError("workspace not found", details={"resource": "workspace"})
    if workspace.name != name:
        audit.record(
            session,
            action="workspace.renamed",
            actor=actor,
            workspace_id=workspace_id,
            target_type="workspace",
            target_id=workspace_id,
            details={"from": workspace.name, "to": name},
        )
        workspace.name = name
        await session.flush()
        log.info("workspace.renamed", workspace_id=workspace_id)
    return workspace


async def add_member(
    session: AsyncSession,
    *,
    workspace_id: int,
    user_id: int,
    role: str,
    actor: Actor | None = None,
) -> Membership:
    """Make the user a member with ``role``, or change the role of an existing member."""
    if role not in ROLES:
        raise ValidationFailedError(
            f"role must be one of {', '.join(ROLES)}", code="ROLE_INVALID"
        )
    existing = await repository.membership(session, workspace_id, user_id)
    if existing is not None:
        if existing.role == "owner" and role != "owner":
            await _keep_an_owner(session, workspace_id)
        existing.role = role
        row = existing
    else:
        row = Membership(workspace_id=workspace_id, user_id=user_id, role=role)
        session.add(row)
    await session.flush()
    audit.record(
        session,
        action="workspace.member_set",
        actor=actor or Actor(user_id=None),
        workspace_id=workspace_id,
        target_type="user",
        target_id=user_id,
        details={"role": role},
    )
    return row


async def add_member_by_email(
    session: AsyncSession, *, workspace_id: int, email: str, role: str, actor: Actor
) -> tuple[Membership, User]:
    user = await auth_repository.user_by_email(session, normalize_email(email))
    if user is None:
        raise NotFoundError(
            "no user with this e-mail", code="USER_NOT_FOUND", details={"email": email}
        )
    row = await add_member(
        session, workspace_id=workspace_id, user_id=user.id, role=role, actor=actor
    )
    return row, user


async def remove_member(
    session: AsyncSession, *, workspace_id: int, user_id: int, actor: Actor
) -> None:
    existing = await repository.membership(session, workspace_id, user_id)
    if existing is None:
        raise NotFoundError("member not found", details={"resource": "member"})
    if existing.role == "owner":
        await _keep_an_owner(session, workspace_id)
    await session.delete(existing)
    audit.record(
        session,
        action="workspace.member_removed",
        actor=actor,
        workspace_id=workspace_id,
        target_type="user",
        target_id=user_id,
    )
    await session.flush()


async def list_members(
    session: AsyncSession, workspace_id: int
) -> list[tuple[Membership, User]]:
    return await repository.members(session, workspace_id)


async def _keep_an_owner(session: AsyncSession, workspace_id: int) -> None:
    if await repository.owner_count(session, workspace_id) <= 1:
        raise ConflictError(
            "a workspace keeps at least one owner", code="LAST_OWNER_REQUIRED"
        )
