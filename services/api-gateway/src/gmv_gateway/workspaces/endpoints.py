"""``/api/v1/tenants/{workspace_id}/members``: members read, owners manage."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gmv_common.db.models import Membership, User
from gmv_gateway.dependencies import CachesDep, MemberDep, OwnerDep, SessionDep
from gmv_gateway.errors import error_responses
from gmv_gateway.workspaces import service
from gmv_gateway.workspaces.schemas import MemberIn, MemberListOut, MemberOut

router = APIRouter(prefix="/api/v1/tenants/{workspace_id}/members", tags=["members"])


def _out(membership: Membership, user: User) -> MemberOut:
    return MemberOut(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=membership.role,
        since=membership.created_at,
    )


@router.get(
    "",
    response_model=MemberListOut,
    responses=error_responses(401, 404),
    summary="Members of the workspace",
)
async def list_members(access: MemberDep, session: SessionDep) -> MemberListOut:
    rows = await service.list_members(session, access.workspace_id)
    return MemberListOut(items=[_out(m, u) for m, u in rows])


@router.post(
    "",
    status_code=201,
    response_model=MemberOut,
    responses=error_responses(400, 401, 403, 404, 409, 422),
    summary="Add a registered user to the workspace, or change their role (owner)",
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
    return _out(membership, user)


@router.delete(
    "/{user_id}",
    status_code=204,
    responses=error_responses(401, 403, 404, 409),
    summary="Remove a member (owner); the last owner cannot be removed",
)
async def remove_member(
    user_id: int, access: OwnerDep, session: SessionDep, caches: CachesDep
) -> Response:
    await service.remove_member(
        session, workspace_id=access.workspace_id, user_id=user_id, actor=access.actor
    )
    caches.forget_role(access.workspace_id, user_id)
    return Response(status_code=204)
