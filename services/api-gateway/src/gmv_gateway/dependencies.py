"""Request dependencies: the database session, the caller, and their workspace role.

The edge owns the transaction: ``get_session`` commits when the endpoint returned and rolls
back when it raised, before the response is sent (``scope="function"``), so a 2xx always means
the writes are durable. Services and repositories only flush.

Tenancy: a workspace the caller is not a member of answers 404 ``NOT_FOUND`` whether it exists
or not, so ids cannot be probed. A member lacking the role answers 403 ``FORBIDDEN``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import Membership
from gmv_common.errors import AuthError, ForbiddenError, NotFoundError
from gmv_common.logging import bind_context
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_gateway.audit import Actor
from gmv_gateway.auth import service as auth_service
from gmv_gateway.auth.cache import TTLCache
from gmv_gateway.auth.service import Principal

ROLE_RANK = {"member": 1, "admin": 2, "owner": 3}


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def caches_of(request: Request) -> AccessCaches:
    caches: AccessCaches = request.app.access_caches
    return caches


# Dependencies are ``async def`` even when they do no I/O: FastAPI runs a plain ``def``
# dependency in a worker thread, which costs more than the work itself.
async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


async def get_settings(request: Request) -> Settings:
    return runtime_of(request).settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session that connects on first use; a request that never queries costs nothing."""
    session = runtime_of(request).sessionmaker()
    try:
        yield session
    except BaseException:
        if session.in_transaction():
            await session.rollback()
        raise
    else:
        if session.in_transaction():
            await session.commit()
    finally:
        if session.in_transaction() or session.identity_map:
            await session.close()


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def client_ip(request: Request) -> str | None:
    # The socket peer only: forwarded headers are trusted by the ASGI server's proxy
    # settings (uvicorn --forwarded-allow-ips), never blindly here.
    return request.client.host if request.client else None


@dataclass
class AccessCaches:
    """Per-app caches of callers and roles, used by reads only (see ``auth.cache``)."""

    principals: TTLCache[str, Principal] = field(default_factory=TTLCache)
    roles: TTLCache[tuple[int, int], str] = field(default_factory=TTLCache)
    # Bumped whenever entries are dropped: a refresh that read before must not store.
    generation: int = 0

    def forget_session(self, session_row_id: int | None) -> None:
        self.generation += 1
        self.principals.discard_where(
            lambda _, principal: principal.session_row_id == session_row_id
        )

    def forget_token(self, token_id: int) -> None:
        self.generation += 1
        self.principals.discard_where(
            lambda _, principal: principal.token_id == token_id
        )

    def forget_role(self, workspace_id: int, user_id: int) -> None:
        self.generation += 1
        self.roles.discard_where(lambda key, _: key == (user_id, workspace_id))

    def due(self, credential_key: str, access: WorkspaceAccess, within: float) -> bool:
        """Whether the caller's or their role's entry expires within ``within`` seconds."""
        return self.principals.due(credential_key, within) or self.roles.due(
            (access.user_id, access.workspace_id), within
        )

    def member_access(
        self, credential_key: str, workspace_id: int
    ) -> WorkspaceAccess | None:
        """The cached caller as a member of the workspace, when both are cached."""
        principal = self.principals.get(credential_key)
        if principal is None:
            return None
        role = self.roles.get((principal.user.id, workspace_id))
        if role is None or ROLE_RANK.get(role, 0) < ROLE_RANK["member"]:
            return None
        return WorkspaceAccess(
            principal=principal, workspace_id=workspace_id, role=role
        )


def token_cache_key(token: str) -> str:
    return "token:" + auth_service.sha256_hex(token)


def session_cache_key(cookie: str) -> str:
    return "session:" + auth_service.sha256_hex(cookie)


@dataclass(frozen=True, slots=True)
class Credential:
    """What a request authenticates with: an API token, else a session cookie's value."""

    token: str | None = None
    cookie: str | None = None

    @property
    def cache_key(self) -> str:
        if self.token is not None:
            return token_cache_key(self.token)
        return session_cache_key(self.cookie or "")


async def load_principal(
    session: AsyncSession, settings: Settings, credential: Credential, *, ip: str | None
) -> Principal:
    if credential.token is not None:
        return await auth_service.principal_from_token(session, credential.token, ip=ip)
    return await auth_service.principal_from_cookie(
        session, settings, credential.cookie or "", ip=ip
    )


async def member_role(
    session: AsyncSession, workspace_id: int, user_id: int
) -> str | None:
    role: str | None = await session.scalar(
        select(Membership.role).where(
            Membership.workspace_id == workspace_id,
            Membership.user_id == user_id,
        )
    )
    return role


async def refresh_access(
    runtime: Runtime,
    caches: AccessCaches,
    credential: Credential,
    workspace_id: int,
    *,
    ip: str | None,
) -> None:
    """Read a cached caller and their role again, before their entries expire.

    What the endpoint's dependencies would do on a miss, done ahead of it by the options hot
    path (``options.edge``): a page polled by many clients never meets an expired entry. A
    credential or membership found gone is dropped, so the next request is refused.
    """
    key = credential.cache_key
    generation = caches.generation
    try:
        async with runtime.sessionmaker.begin() as session:
            principal = await load_principal(
                session, runtime.settings, credential, ip=ip
            )
            role = await member_role(session, workspace_id, principal.user.id)
            session.expunge(principal.user)
    except AuthError:
        caches.principals.discard(key)
        return
    if caches.generation != generation:
        return
    caches.principals.put(key, principal)
    role_key = (principal.user.id, workspace_id)
    if role is None:
        caches.roles.discard(role_key)
    else:
        caches.roles.put(role_key, role)


async def get_caches(request: Request) -> AccessCaches:
    return caches_of(request)


CachesDep = Annotated[AccessCaches, Depends(get_caches)]


def _cacheable(session: AsyncSession, principal: Principal) -> Principal:
    """The principal with its user out of the request's session.

    A rollback expires every object of the session; a cached user still attached to it
    could not be read by the next request (``DetachedInstanceError``, a 500).
    """
    session.expunge(principal.user)
    return principal


async def get_principal(request: Request, session: SessionDep) -> Principal:
    settings = runtime_of(request).settings
    caches = caches_of(request)
    reading = request.method in auth_service.SAFE_METHODS
    ip = client_ip(request)
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("use 'Authorization: Bearer gmv_…'", code="TOKEN_INVALID")
        credential = Credential(token=token.strip())
    else:
        cookie = request.cookies.get(settings.cookie_name)
        if not cookie:
            raise AuthError("log in or send an API token", code="UNAUTHENTICATED")
        credential = Credential(cookie=cookie)
    key = credential.cache_key
    principal = caches.principals.get(key) if reading else None
    if principal is None:
        principal = await load_principal(session, settings, credential, ip=ip)
        caches.principals.put(key, _cacheable(session, principal))
    auth_service.check_csrf(
        principal, request.method, request.headers.get(auth_service.CSRF_HEADER)
    )
    bind_context(user_id=principal.user.id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@dataclass(frozen=True, slots=True)
class WorkspaceAccess:
    """The caller inside one workspace, with their role there."""

    principal: Principal
    workspace_id: int
    role: str

    @property
    def user_id(self) -> int:
        return self.principal.user.id

    @property
    def actor(self) -> Actor:
        return self.principal.actor


async def _workspace_access(
    request: Request,
    workspace_id: int,
    principal: Principal,
    session: AsyncSession,
    minimum: str,
) -> WorkspaceAccess:
    roles = caches_of(request).roles
    key = (principal.user.id, workspace_id)
    role = roles.get(key) if request.method in auth_service.SAFE_METHODS else None
    if role is None:
        role = await member_role(session, workspace_id, principal.user.id)
        if role is not None:
            roles.put(key, role)
    if role is None:
        raise NotFoundError("workspace not found", details={"resource": "workspace"})
    if ROLE_RANK.get(role, 0) < ROLE_RANK[minimum]:
        raise ForbiddenError(
            f"this needs the {minimum} role in the workspace",
            details={"required_role": minimum, "role": role},
        )
    bind_context(workspace_id=workspace_id)
    return WorkspaceAccess(principal=principal, workspace_id=workspace_id, role=role)


async def require_member(
    request: Request, workspace_id: int, principal: PrincipalDep, session: SessionDep
) -> WorkspaceAccess:
    return await _workspace_access(request, workspace_id, principal, session, "member")


async def require_admin(
    request: Request, workspace_id: int, principal: PrincipalDep, session: SessionDep
) -> WorkspaceAccess:
    return await _workspace_access(request, workspace_id, principal, session, "admin")


async def require_owner(
    request: Request, workspace_id: int, principal: PrincipalDep, session: SessionDep
) -> WorkspaceAccess:
    return await _workspace_access(request, workspace_id, principal, session, "owner")


async def require_platform_admin(principal: PrincipalDep) -> Principal:
    if not principal.user.is_platform_admin:
        raise ForbiddenError("this needs a platform administrator")
    return principal


MemberDep = Annotated[WorkspaceAccess, Depends(require_member)]
AdminDep = Annotated[WorkspaceAccess, Depends(require_admin)]
OwnerDep = Annotated[WorkspaceAccess, Depends(require_owner)]
PlatformAdminDep = Annotated[Principal, Depends(require_platform_admin)]
