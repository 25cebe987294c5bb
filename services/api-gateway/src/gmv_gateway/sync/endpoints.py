"""``…/accounts/{auth_id}/sync`` and ``…/sync-runs``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query

from gmv_gateway.bindings.endpoints import ACCOUNTS, check_provider
from gmv_gateway.dependencies import AdminDep, MemberDep, SessionDep, SettingsDep
from gmv_gateway.errors import error_responses
from gmv_gateway.pagination import Page, RunsPage
from gmv_gateway.sync import service
from gmv_gateway.sync.schemas import RunOut, SyncAcceptedOut, SyncRequestIn

router = APIRouter(
    prefix=ACCOUNTS + "/{auth_id}",
    tags=["sync"],
    dependencies=[Depends(check_provider)],
)


@router.post(
    "/sync",
    status_code=202,
    response_model=SyncAcceptedOut,
    responses=error_responses(400, 401, 403, 404, 409, 422, 429),
    summary="Request a metadata or product sync; joins one already in progress",
)
async def request_sync(
    auth_id: int,
    body: SyncRequestIn,
    access: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", min_length=1, max_length=128),
    ] = None,
) -> SyncAcceptedOut:
    result = await service.request_sync(
        session, settings, access, auth_id, body, idempotency_key=idempotency_key
    )
    return SyncAcceptedOut(
        run=RunOut.model_validate(result.run),
        created=result.created,
        joined=result.reason,  # type: ignore[arg-type]
    )


@router.get(
    "/sync-runs",
    response_model=Page[RunOut],
    responses=error_responses(400, 401, 404, 422),
    summary="Sync runs of the account, newest first",
)
async def list_runs(
    auth_id: int,
    access: MemberDep,
    session: SessionDep,
    paging: RunsPage,
    scope: Literal["meta", "products"] | None = None,
    status: Annotated[
        Literal["queued", "running", "succeeded", "partial", "failed"] | None,
        Query(),
    ] = None,
    trigger: Annotated[
        Literal["manual", "refresh", "schedule", "auto", "oauth", "repair"] | None,
        Query(),
    ] = None,
) -> Page[RunOut]:
    rows, total = await service.list_runs(
        session,
        access.workspace_id,
        auth_id,
        scope=scope,
        status=status,
        trigger=trigger,
        paging=paging,
    )
    return Page(
        items=[RunOut.model_validate(row) for row in rows],
        page=paging.page,
        page_size=paging.page_size,
        total=total,
    )


@router.get(
    "/sync-runs/{run_id}",
    response_model=RunOut,
    responses=error_responses(401, 404),
    summary="One sync run",
)
async def get_run(
    auth_id: int, run_id: int, access: MemberDep, session: SessionDep
) -> RunOut:
    run = await service.get_run(session, access.workspace_id, auth_id, run_id)
    return RunOut.model_validate(run)
