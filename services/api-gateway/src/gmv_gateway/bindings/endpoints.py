"""Bindings: providers and accounts lists, OAuth authorize and callback, rename, revoke, delete.

Paths keep the older API's shape: ``/api/v1/tenants/{workspace_id}/providers/{provider}/
accounts/{auth_id}``, with ``{provider}`` spelled ``tiktok-business`` or ``tiktok_business``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from gmv_common.errors import GMVError, NotFoundError
from gmv_gateway.bindings import service
from gmv_gateway.bindings.schemas import (
    AccountOut,
    AliasIn,
    AuthorizeIn,
    AuthorizeOut,
    CallbackOut,
    ProviderAppIn,
    ProviderAppOut,
    ProviderBindingOut,
    RevokeOut,
)
from gmv_gateway.dependencies import (
    AdminDep,
    MemberDep,
    PlatformAdminDep,
    RuntimeDep,
    SessionDep,
    SettingsDep,
)
from gmv_gateway.errors import error_json, error_responses
from gmv_gateway.pagination import AccountsPage, Page
from gmv_gateway.tiktok import TikTokAccess

PROVIDER_SPELLINGS = frozenset({"tiktok-business", "tiktok_business"})


async def check_provider(provider: str) -> str:
    if provider not in PROVIDER_SPELLINGS:
        raise NotFoundError(
            "provider not supported",
            code="PROVIDER_NOT_SUPPORTED",
            details={"provider": provider, "supported": ["tiktok-business"]},
        )
    return "tiktok-business"


async def get_tiktok(request: Request) -> TikTokAccess:
    tiktok: TikTokAccess = request.app.state.tiktok
    return tiktok


TikTokDep = Annotated[TikTokAccess, Depends(get_tiktok)]
ProviderDep = Depends(check_provider)

TENANT = "/api/v1/tenants/{workspace_id}"
ACCOUNTS = TENANT + "/providers/{provider}/accounts"

router = APIRouter(tags=["bindings"])
accounts = APIRouter(prefix=ACCOUNTS, tags=["bindings"], dependencies=[ProviderDep])


@router.get(
    TENANT + "/providers",
    response_model=Page[ProviderBindingOut],
    responses=error_responses(401, 404),
    summary="Every binding of the workspace, with its provider",
)
async def list_providers(
    access: MemberDep, session: SessionDep, paging: AccountsPage
) -> Page[ProviderBindingOut]:
    items, total = await service.list_provider_bindings(
        session, access.workspace_id, offset=paging.offset, limit=paging.page_size
    )
    return Page(items=items, page=paging.page, page_size=paging.page_size, total=total)


@accounts.get(
    "",
    response_model=Page[AccountOut],
    responses=error_responses(400, 401, 404),
    summary="TikTok accounts (bindings) of the workspace",
)
async def list_accounts(
    access: MemberDep,
    session: SessionDep,
    paging: AccountsPage,
    status: Annotated[
        Literal["active", "needs_reauth", "revoked"] | None, Query()
    ] = None,
) -> Page[AccountOut]:
    items, total = await service.list_accounts(
        session,
        access.workspace_id,
        offset=paging.offset,
        limit=paging.page_size,
        status=status,
    )
    return Page(items=items, page=paging.page, page_size=paging.page_size, total=total)


@accounts.get(
    "/{auth_id}",
    response_model=AccountOut,
    responses=error_responses(401, 404),
    summary="One TikTok account",
)
async def get_account(
    auth_id: int, access: MemberDep, session: SessionDep
) -> AccountOut:
    binding = await service.require_binding(session, access.workspace_id, auth_id)
    return service.account_out(binding)


@accounts.patch(
    "/{auth_id}",
    response_model=AccountOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Rename the account (alias)",
)
async def rename_account(
    auth_id: int,
    body: AliasIn,
    access: AdminDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> AccountOut:
    binding = await service.rename(session, runtime, access, auth_id, body.alias)
    return service.account_out(binding)


@accounts.post(
    "/{auth_id}/revoke",
    response_model=RevokeOut,
    responses=error_responses(401, 403, 404, 502),
    summary="Revoke the authorization at TikTok, then mark the account revoked",
)
async def revoke_account(
    auth_id: int,
    access: AdminDep,
    session: SessionDep,
    runtime: RuntimeDep,
    tiktok: TikTokDep,
) -> RevokeOut:
    binding, remote = await service.revoke(
        session, runtime, tiktok, access, auth_id, release=session.commit
    )
    return RevokeOut(account=service.account_out(binding), remote_revoked=remote)


@accounts.delete(
    "/{auth_id}",
    status_code=204,
    responses=error_responses(401, 403, 404),
    summary="Delete the account, its schedules and its synced data",
)
async def delete_account(
    auth_id: int,
    request: Request,
    access: AdminDep,
    session: SessionDep,
    runtime: RuntimeDep,
    tiktok: TikTokDep,
) -> Response:
    await service.delete(
        session, runtime, tiktok, access, auth_id, release=session.commit
    )
    # This process stops serving the document at once; others within their cache's TTL.
    request.app.options_cache.invalidate(access.workspace_id, auth_id)
    return Response(status_code=204)


@router.get(
    TENANT + "/oauth/tiktok-business/provider-apps",
    response_model=list[ProviderAppOut],
    responses=error_responses(401, 403, 404),
    summary="Provider apps a workspace admin can authorize with",
)
async def tenant_provider_apps(
    access: AdminDep, session: SessionDep
) -> list[ProviderAppOut]:
    apps = await service.list_provider_apps(session)
    return [ProviderAppOut.model_validate(app, from_attributes=True) for app in apps]


@router.post(
    TENANT + "/oauth/tiktok-business/authorize",
    response_model=AuthorizeOut,
    responses=error_responses(400, 401, 403, 404, 422),
    summary="Start connecting a TikTok account: the URL to send the browser to",
)
async def authorize(
    body: AuthorizeIn, access: AdminDep, session: SessionDep, settings: SettingsDep
) -> AuthorizeOut:
    return await service.start_authorization(
        session,
        settings,
        access,
        alias=body.alias,
        return_to=body.return_to,
        provider_app_id=body.provider_app_id,
    )


@router.get(
    "/api/oauth/tiktok-business/callback",
    response_model=CallbackOut,
    responses={
        303: {"description": "Back to return_to with ok=1&auth_id= or ok=0&error="},
        **error_responses(400, 502),
    },
    summary="TikTok sends the browser here with auth_code and state",
)
async def oauth_callback(
    session: SessionDep,
    runtime: RuntimeDep,
    tiktok: TikTokDep,
    state: Annotated[str, Query(min_length=1, max_length=1024)],
    auth_code: Annotated[str | None, Query(max_length=2048)] = None,
    code: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    given_code = auth_code or code
    if not given_code:
        raise GMVError(
            "the callback needs auth_code and state",
            code="OAUTH_CALLBACK_INVALID",
            status_code=400,
        )
    outcome = await service.complete_authorization(
        session,
        runtime,
        tiktok,
        auth_code=given_code,
        state=state,
        release=session.commit,
    )
    if outcome.error is not None:
        if outcome.return_to:
            target = service.with_query(
                outcome.return_to, {"ok": "0", "error": outcome.error.code}
            )
            return RedirectResponse(target, status_code=303)
        return error_json(
            outcome.error.status_code,
            outcome.error.code,
            outcome.error.message,
            outcome.error.details,
        )
    assert outcome.binding is not None
    if outcome.return_to:
        target = service.with_query(
            outcome.return_to, {"ok": "1", "auth_id": str(outcome.binding.id)}
        )
        return RedirectResponse(target, status_code=303)
    body = CallbackOut(ok=True, auth_id=outcome.binding.id, run_id=outcome.run_id)
    return Response(body.model_dump_json(), media_type="application/json")


@router.get(
    "/api/v1/platform/provider-apps",
    response_model=list[ProviderAppOut],
    responses=error_responses(401, 403),
    summary="TikTok developer apps (platform administrators; never the secrets)",
)
async def list_provider_apps(
    _: PlatformAdminDep, session: SessionDep
) -> list[ProviderAppOut]:
    apps = await service.list_provider_apps(session)
    return [ProviderAppOut.model_validate(app, from_attributes=True) for app in apps]


@router.post(
    "/api/v1/platform/provider-apps",
    status_code=201,
    response_model=ProviderAppOut,
    responses={200: {"description": "Updated"}, **error_responses(401, 403, 422)},
    summary="Create or replace a TikTok developer app; the secret is stored encrypted",
)
async def save_provider_app(
    body: ProviderAppIn,
    principal: PlatformAdminDep,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> ProviderAppOut:
    app, created = await service.save_provider_app(
        session, runtime, body, principal.actor
    )
    response.status_code = 201 if created else 200
    return ProviderAppOut.model_validate(app, from_attributes=True)


router.include_router(accounts)
