"""``…/accounts/{auth_id}/gmvmax/options`` (also ``/gmv-max/``): the dropdown document."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from gmv_gateway.bindings.endpoints import ACCOUNTS, check_provider
from gmv_gateway.dependencies import MemberDep, RuntimeDep, SessionDep
from gmv_gateway.errors import error_responses
from gmv_gateway.options import service
from gmv_gateway.options.service import OptionsReply
from gmv_options_cache.schemas import OptionsDocument

router = APIRouter(
    prefix=ACCOUNTS + "/{auth_id}",
    tags=["options"],
    dependencies=[Depends(check_provider)],
)

JSON = "application/json"


def options_response(reply: OptionsReply) -> Response:
    headers: dict[str, str] = {
        "Cache-Control": "private, no-cache",
        "Vary": "Accept-Encoding",
    }
    if reply.etag is not None:
        headers["ETag"] = reply.etag
    if reply.refresh is not None:
        headers["X-Options-Refresh"] = reply.refresh
    if reply.run_id is not None:
        headers["X-Sync-Run-Id"] = str(reply.run_id)
    if reply.not_modified:
        return Response(status_code=304, headers=headers)
    if reply.gzip:
        headers["Content-Encoding"] = "gzip"
    return Response(reply.body, media_type=JSON, headers=headers)


async def get_options(
    auth_id: int,
    request: Request,
    access: MemberDep,
    session: SessionDep,
    runtime: RuntimeDep,
    refresh: Annotated[
        bool, Query(description="Join or start a metadata sync")
    ] = False,
    if_none_match: Annotated[str | None, Header()] = None,
    accept_encoding: Annotated[str | None, Header()] = None,
) -> Response:
    gzip_ok = service.accepts_gzip(accept_encoding)
    if refresh:
        # End the request's transaction so the wait holds no connection; the refresh
        # opens its own short sessions.
        await session.commit()
        reply = await service.refresh_options(
            runtime,
            request.app.state.options_waiter,
            access,
            auth_id,
            if_none_match=if_none_match,
            gzip_ok=gzip_ok,
            cache=request.app.options_cache,
        )
    else:
        reply = await service.read_options(
            session,
            access.workspace_id,
            auth_id,
            if_none_match=if_none_match,
            gzip_ok=gzip_ok,
            cache=request.app.options_cache,
        )
    return options_response(reply)


for _spelling in ("gmvmax", "gmv-max"):
    router.add_api_route(
        f"/{_spelling}/options",
        get_options,
        methods=["GET"],
        response_class=Response,
        responses={
            200: {
                "model": OptionsDocument,
                "description": "The stored document (strong ETag), or an empty one "
                "with pending=true before the first sync",
            },
            304: {"description": "If-None-Match names the current document"},
            **error_responses(401, 404, 409),
        },
        summary="GMV Max dropdown sources and their links, with a strong ETag",
        operation_id=f"get_options_{_spelling.replace('-', '_')}",
        include_in_schema=_spelling == "gmvmax",
    )
