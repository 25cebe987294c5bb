"""``/api/v1/auth``: login, logout, who am I, login sessions, personal API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gmv_common.db.models import UserSession
from gmv_common.errors import AuthError
from gmv_common.settings import Settings
from gmv_gateway.auth import repository, service
from gmv_gateway.auth.schemas import (
    LoginOut,
    LoginRequest,
    MembershipOut,
    MeOut,
    SessionListOut,
    SessionOut,
    SessionsRevokedOut,
    TokenCreatedOut,
    TokenCreateRequest,
    TokenListOut,
    TokenOut,
    UserOut,
)
from gmv_gateway.auth.service import Principal
from gmv_gateway.dependencies import (
    CachesDep,
    PrincipalDep,
    RuntimeDep,
    SessionDep,
    SettingsDep,
    client_ip,
)
from gmv_gateway.errors import error_responses

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


async def _me(session: SessionDep, principal: Principal) -> MeOut:
    memberships = await repository.memberships_of(session, principal.user.id)
    return MeOut(
        user=UserOut.model_validate(principal.user),
        workspaces=[
            MembershipOut(
                workspace_id=row.workspace_id,
                workspace_name=row.workspace_name,
                role=row.role,
            )
            for row in memberships
        ],
        auth_method=principal.via,
    )


@router.post(
    "/login",
    response_model=LoginOut,
    responses=error_responses(401, 422, 429),
    summary="Log in with e-mail and password; sets the session and CSRF cookies",
)
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
) -> LoginOut:
    ip = client_ip(request)
    try:
        result = await service.login(
            session,
            settings,
            email=body.email,
            password=body.password,
            client_ip=ip,
            user_agent=request.headers.get("user-agent"),
        )
    except AuthError:
        # The request's transaction is dropped first (on SQLite it holds the write lock);
        # the failure is counted in a transaction of its own, which commits.
        await session.rollback()
        async with runtime.sessionmaker.begin() as failure_session:
            await service.record_login_failure(
                failure_session, email=body.email, client_ip=ip
            )
        raise
    response.set_cookie(
        settings.cookie_name,
        result.cookie_value,
        max_age=settings.cookie_max_age,
        httponly=True,
        secure=settings.cookie_secure,
        samesite=settings.cookie_samesite,
        path="/",
    )
    response.set_cookie(
        service.CSRF_COOKIE_NAME,
        result.csrf_token,
        max_age=settings.cookie_max_age,
        httponly=False,
        secure=settings.cookie_secure,
        samesite=settings.cookie_samesite,
        path="/",
    )
    principal = Principal(user=result.user, via="session", ip=ip)
    me = await _me(session, principal)
    return LoginOut(
        **me.model_dump(), csrf_token=result.csrf_token, expires_at=result.expires_at
    )


@router.post(
    "/logout",
    status_code=204,
    responses=error_responses(401, 403),
    summary="End the current session (server-side) and clear its cookies",
)
async def logout(
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    caches: CachesDep,
) -> Response:
    await service.logout(session, principal)
    caches.forget_session(principal.session_row_id)
    return _cookies_cleared(settings)


def _cookies_cleared(settings: Settings) -> Response:
    response = Response(status_code=204)
    response.delete_cookie(settings.cookie_name, path="/")
    response.delete_cookie(service.CSRF_COOKIE_NAME, path="/")
    return response


@router.get(
    "/me",
    response_model=MeOut,
    responses=error_responses(401),
    summary="The current user and their workspaces",
)
async def me(principal: PrincipalDep, session: SessionDep) -> MeOut:
    return await _me(session, principal)


def _session_out(row: UserSession, principal: Principal) -> SessionOut:
    return SessionOut(
        id=row.id,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        ip=row.ip,
        user_agent=row.user_agent,
        current=row.id == principal.session_row_id,
    )


@router.get(
    "/sessions",
    response_model=SessionListOut,
    responses=error_responses(401),
    summary="The caller's active login sessions, newest first",
)
async def list_sessions(principal: PrincipalDep, session: SessionDep) -> SessionListOut:
    rows = await service.list_sessions(session, principal.user.id)
    return SessionListOut(items=[_session_out(row, principal) for row in rows])


@router.post(
    "/sessions/revoke-others",
    response_model=SessionsRevokedOut,
    responses=error_responses(401, 403),
    summary="End every other session of the caller (all of them with an API token)",
)
async def revoke_other_sessions(
    principal: PrincipalDep, session: SessionDep, caches: CachesDep
) -> SessionsRevokedOut:
    revoked = await service.revoke_other_sessions(session, principal)
    for session_row_id in revoked:
        caches.forget_session(session_row_id)
    return SessionsRevokedOut(revoked=len(revoked))


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    responses=error_responses(401, 403, 404),
    summary="End one of the caller's sessions; ending the current one also logs out",
)
async def revoke_session(
    session_id: int,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    caches: CachesDep,
) -> Response:
    await service.revoke_session(session, principal, session_id)
    caches.forget_session(session_id)
    if session_id == principal.session_row_id:
        return _cookies_cleared(settings)
    return Response(status_code=204)


@router.get(
    "/tokens",
    response_model=TokenListOut,
    responses=error_responses(401),
    summary="The caller's personal API tokens (never the secrets)",
)
async def list_tokens(principal: PrincipalDep, session: SessionDep) -> TokenListOut:
    rows = await service.list_api_tokens(session, principal.user.id)
    return TokenListOut(items=[TokenOut.model_validate(row) for row in rows])


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenCreatedOut,
    responses=error_responses(401, 403, 422),
    summary="Create a personal API token; the token is shown once",
)
async def create_token(
    body: TokenCreateRequest, principal: PrincipalDep, session: SessionDep
) -> TokenCreatedOut:
    row, plaintext = await service.create_api_token(
        session,
        user_id=principal.user.id,
        name=body.name,
        expires_at=body.expires_at,
        actor=principal.actor,
    )
    return TokenCreatedOut(**TokenOut.model_validate(row).model_dump(), token=plaintext)


@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    responses=error_responses(401, 403, 404),
    summary="Revoke one of the caller's API tokens",
)
async def revoke_token(
    token_id: int, principal: PrincipalDep, session: SessionDep, caches: CachesDep
) -> Response:
    await service.revoke_api_token(session, principal, token_id)
    caches.forget_token(token_id)
    return Response(status_code=204)
