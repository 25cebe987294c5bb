"""``…/accounts/{auth_id}/gmvmax/config`` (also the older ``/gmv-max/`` spelling)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from gmv_gateway.bindings.endpoints import ACCOUNTS, check_provider
from gmv_gateway.config import service
from gmv_gateway.config.schemas import ConfigIn, ConfigOut
from gmv_gateway.dependencies import AdminDep, MemberDep, SessionDep, SettingsDep
from gmv_gateway.errors import error_responses

router = APIRouter(
    prefix=ACCOUNTS + "/{auth_id}",
    tags=["config"],
    dependencies=[Depends(check_provider)],
)


async def get_config(auth_id: int, access: MemberDep, session: SessionDep) -> ConfigOut:
    return await service.get_config(session, access.workspace_id, auth_id)


async def put_config(
    auth_id: int,
    body: ConfigIn,
    access: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
) -> ConfigOut:
    return await service.save_config(session, settings, access, auth_id, body)


for _spelling in ("gmvmax", "gmv-max"):
    router.add_api_route(
        f"/{_spelling}/config",
        get_config,
        methods=["GET"],
        response_model=ConfigOut,
        responses=error_responses(401, 404),
        summary="The account's GMV Max selection and auto-sync, with last syncs",
        operation_id=f"get_config_{_spelling.replace('-', '_')}",
        include_in_schema=_spelling == "gmvmax",
    )
    router.add_api_route(
        f"/{_spelling}/config",
        put_config,
        methods=["PUT"],
        response_model=ConfigOut,
        responses=error_responses(400, 401, 403, 404, 409, 422),
        summary="Save the selection; turns the product auto-sync on or off",
        operation_id=f"put_config_{_spelling.replace('-', '_')}",
        include_in_schema=_spelling == "gmvmax",
    )
