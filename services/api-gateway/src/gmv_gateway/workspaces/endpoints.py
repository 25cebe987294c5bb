"""``/api/v1/workspaces`` (the caller's own) and ``/api/v1/tenants/{workspace_id}``.

Any authenticated user creates a workspace and becomes its owner; owners rename it and
manage its members, members read them.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from gmv_common.db.models import Membership, User, Workspace
from gmv_gateway.dependencies import (
    CachesDep,
    MemberDep,
    OwnerDep,
    PrincipalDep,
    SessionDep,
)
from gmv_gateway.errors import error_responses
from gmv_gateway.workspaces import service
from gmv_gateway.workspaces.schemas import (
    MemberIn,
    MemberListOut,
    MemberOut,
    WorkspaceIn,
    WorkspaceListOut,
    WorkspaceOut,
)

WORKSPACES = "/api/v1/workspaces"
TENANT = "/api/v1/tenants/{workspace_id}"
MEMBERS = TENANT + "/members"

router = APIRouter()


@router.get(
    WORKSPACES,
    response_model=WorkspaceListOut,
    responses=error_responses(401),
    summary="The caller's workspaces, with their role in each",
    tags=["workspaces"],
)
async def list_workspaces(
    principal: PrincipalDep, session: SessionDep
) -> WorkspaceListOut:
    rows = await service.list_workspaces(session, principal.user.id)
    return WorkspaceListOut(
        items=[
            WorkspaceOut(
                id=row.workspace_id,
                name=row.workspace_name,
                role=row.role,
                created_at=row.workspace_created_at,
            )
            for row in rows
        ]
    )


@router.post(
    WORKSPACES,
    status_code=201,
    response_model=WorkspaceOut,
    responses=error_responses(401, 403, 422),
    summary="Create a workspace; the caller becomes its owner",
    tags=["workspaces"],
)
async def create_workspace(
    body: WorkspaceIn, principal: PrincipalDep, session: SessionDep
) -> WorkspaceOut:
    workspace = await service.create_workspace(
        session,
        name=body.name,
        owner_user_id=principal.user.id,
        actor=principal.actor,
    )
    return _workspace_out(workspace, "owner")


@router.patch(
    TENANT,
    response_model=WorkspaceOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Rename the workspace (owner)",
    tags=["workspaces"],
)
async def rename_workspace(
    body: WorkspaceIn, access: OwnerDep, session: SessionDep
) -> WorkspaceOut:
    workspace = await service.rename_workspace(
        session,
        workspace_id=access.workspace_id,
        name=body.name,
        actor=access.actor,
    )
    return _workspace_out(workspace, access.role)


def _workspace_out(workspace: Workspace, role: str) -> WorkspaceOut:
    return WorkspaceOut(
        id=workspace.id,
        name=workspace.name,
        role=role,
        created_at=workspace.created_at,
    )


def _member_out(membership: Membership, user: User) -> MemberOut:
    return MemberOut(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=membership.role,
        since=membership.created_at,
    )


@router.get(
    MEMBERS,
    response_model=MemberListOut,
    responses=error_responses(401, 404),
    summary="Members of the workspace",
    tags=["members"],
)
async def list_members(access: MemberDep, session: SessionDep) -> MemberListOut:
    rows = await service.list_members(session, access.workspace_id)
    return MemberListOut(items=[_member_out(m, u) for m, u in rows])


@router.post(
    MEMBERS,
    status_code=201,
    response_model=MemberOut,
    responses=error_responses(400, 401, 403, 404, 409, 422),
    summary="Add a registered user to the workspace, or change their role (owner)",
    tags=["members"],
)
async def add_member(
    body: MemberIn, access: OwnerDep, session: SessionDep, caches: CachesDep
) -> MemberOut:
    membership, user = await service.add_member_by_email(
        session,
        workspace_id=access.workspace_id,
        email=body.email,
        role=body.role,
        actor=access.actor,
    )
    caches.forget_role(access.workspace_id, user.id)
    return _member_out(membership, user)


@router.delete(
    MEMBERS + "/{user_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 409),
    summary="Remove a member (owner); the last owner cannot be removed",
    tags=["members"],
)
async def remove_member(
    user_id: int, access: OwnerDep, session: SessionDep, caches: CachesDep
) -> Response:
    await service.remove_member(
        session, workspace_id=access.workspace_id, user_id=user_id, actor=access.actor
    )
    caches.forget_role(access.workspace_id, user_id)
    return Response(status_code=204)
