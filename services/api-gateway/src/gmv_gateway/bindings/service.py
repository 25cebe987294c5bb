"""Bindings of a workspace to TikTok: OAuth, rename, revoke, delete; provider apps.

OAuth: ``start_authorization`` stores a single-use state (only its hash) that expires after
ten minutes and signs it for the URL; the callback checks signature, expiry and single use,
exchanges the ``auth_code`` through the TikTok client, stores the token encrypted (associated
data binds it to the workspace and app), upserts the binding, schedules and starts its first
metadata sync, and sends the browser back only to an allowed origin.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.bindings import (
    STATUS_REVOKED,
    load_binding_credentials,
    open_app_secret,
    seal_access_token,
    seal_app_secret,
)
from gmv_common.crypto import fingerprint
from gmv_common.db.base import utcnow
from gmv_common.db.models import Binding, OAuthState, ProviderApp
from gmv_common.errors import GMVError, NotFoundError, ValidationFailedError
from gmv_common.events.schemas import BindingChanged
from gmv_common.logging import get_logger
from gmv_common.messaging.outbox import enqueue
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_common.sync.runs import request_meta_sync
from gmv_common.tiktok import AccessToken, TikTokAuthError, TikTokError
from gmv_gateway import audit
from gmv_gateway.audit import Actor
from gmv_gateway.auth.service import sha256_hex
from gmv_gateway.bindings import repository
from gmv_gateway.bindings.schemas import (
    AccountOut,
    AuthorizeOut,
    ProviderAppIn,
    ProviderBindingOut,
)
from gmv_gateway.dependencies import WorkspaceAccess
from gmv_gateway.tiktok import TikTokAccess
from gmv_metadata_sync.service import ensure_meta_schedule

log = get_logger(__name__)

STATE_TTL = timedelta(minutes=10)
STATE_SALT = "gmv.oauth-state"


class RedirectNotAllowedError(GMVError):
    status_code = 400
    default_code = "REDIRECT_NOT_ALLOWED"


class OAuthStateInvalidError(GMVError):
    status_code = 400
    default_code = "OAUTH_STATE_INVALID"


Release = Callable[[], Awaitable[None]]


async def _keep_transaction() -> None:
    return None


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    """What the callback did; ``error`` is set when TikTok refused the code."""

    return_to: str | None
    binding: Binding | None = None
    run_id: int | None = None
    error: GMVError | None = None


def label_of(binding: Binding) -> str:
    return binding.alias or binding.created_at.isoformat()


def account_out(binding: Binding) -> AccountOut:
    return AccountOut(
        auth_id=binding.id,
        label=label_of(binding),
        alias=binding.alias,
        status=binding.status,  # type: ignore[arg-type]
        status_reason=binding.status_reason,
        provider_app_id=binding.provider_app_id,
        created_at=binding.created_at,
        revoked_at=binding.revoked_at,
        last_meta_sync_at=binding.last_meta_sync_at,
    )


async def require_binding(
    session: AsyncSession, workspace_id: int, auth_id: int
) -> Binding:
    """The binding of this workspace; another workspace's is a 404 like a missing one."""
    binding = await repository.binding_in(session, workspace_id, auth_id)
    if binding is None:
        raise NotFoundError(
            "TikTok account not found",
            details={"resource": "binding", "auth_id": auth_id},
        )
    return binding


async def list_provider_bindings(
    session: AsyncSession, workspace_id: int, *, offset: int, limit: int
) -> tuple[list[ProviderBindingOut], int]:
    rows, total = await repository.bindings_page(
        session, workspace_id, offset=offset, limit=limit
    )
    items = [
        ProviderBindingOut(auth_id=row.id, label=label_of(row), status=row.status)
        for row in rows
    ]
    return items, total


async def list_accounts(
    session: AsyncSession,
    workspace_id: int,
    *,
    offset: int,
    limit: int,
    status: str | None,
) -> tuple[list[AccountOut], int]:
    rows, total = await repository.bindings_page(
        session, workspace_id, offset=offset, limit=limit, status=status
    )
    return [account_out(row) for row in rows], total


# Redirects


def allowed_origins(settings: Settings) -> set[str]:
    origins = {_origin(origin) for origin in settings.cors_origins}
    origins.add(_origin(settings.public_base_url))
    origins.discard(None)
    return {origin for origin in origins if origin}


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def resolve_return_to(settings: Settings, return_to: str | None) -> str | None:
    """An absolute URL on an allowed origin, or None; anything else is refused."""
    if not return_to:
        return None
    if return_to.startswith("/") and not return_to.startswith(("//", "/\\")):
        return settings.public_base_url.rstrip("/") + return_to
    if _origin(return_to) in allowed_origins(settings) and "\\" not in return_to:
        return return_to
    raise RedirectNotAllowedError(
        "return_to must be a path or a URL on an allowed origin",
        details={"allowed_origins": sorted(allowed_origins(settings))},
    )


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


# OAuth


def _state_serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=STATE_SALT)


async def _choose_app(
    session: AsyncSession, provider_app_id: int | None
) -> ProviderApp:
    if provider_app_id is not None:
        app = await repository.provider_app(session, provider_app_id)
        if app is None:
            raise NotFoundError("provider app not found", code="PROVIDER_APP_NOT_FOUND")
        return app
    apps = list(await repository.provider_apps(session))
    defaults = [app for app in apps if app.is_default]
    if defaults:
        return defaults[0]
    if len(apps) == 1:
        return apps[0]
    raise ValidationFailedError(
        "choose a provider app (provider_app_id); no default app is configured",
        code="PROVIDER_APP_REQUIRED",
        details={"provider_app_ids": [app.id for app in apps]},
    )


async def start_authorization(
    session: AsyncSession,
    settings: Settings,
    access: WorkspaceAccess,
    *,
    alias: str | None,
    return_to: str | None,
    provider_app_id: int | None,
) -> AuthorizeOut:
    resolved = resolve_return_to(settings, return_to)
    app = await _choose_app(session, provider_app_id)
    nonce = secrets.token_urlsafe(32)
    now = utcnow()
    expires_at = now + STATE_TTL
    session.add(
        OAuthState(
            state_hash=sha256_hex(nonce),
            workspace_id=access.workspace_id,
            user_id=access.user_id,
            provider_app_id=app.id,
            alias=alias,
            return_to=resolved,
            created_at=now,
            expires_at=expires_at,
        )
    )
    state = _state_serializer(settings).dumps(nonce)
    query = urlencode(
        {"app_id": app.app_id, "state": state, "redirect_uri": app.redirect_uri}
    )
    base = app.authorize_url or settings.tiktok_authorize_url
    audit.record(
        session,
        action="binding.authorize_started",
        actor=access.actor,
        workspace_id=access.workspace_id,
        target_type="provider_app",
        target_id=app.id,
    )
    await session.flush()
    return AuthorizeOut(
        authorize_url=f"{base}?{query}", state=state, expires_at=expires_at
    )


async def _take_state(
    session: AsyncSession, settings: Settings, state: str
) -> OAuthState:
    try:
        nonce = _state_serializer(settings).loads(
            state, max_age=int(STATE_TTL.total_seconds())
        )
    except BadSignature as exc:
        raise OAuthStateInvalidError("the OAuth state is invalid or expired") from exc
    row = await repository.oauth_state(session, sha256_hex(str(nonce)))
    now = utcnow()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise OAuthStateInvalidError("the OAuth state is invalid, used or expired")
    if not await repository.consume_oauth_state(session, row.id, now):
        raise OAuthStateInvalidError("the OAuth state was already used")
    return row


async def complete_authorization(
    session: AsyncSession,
    runtime: Runtime,
    tiktok: TikTokAccess,
    *,
    auth_code: str,
    state: str,
    release: Release = _keep_transaction,
) -> CallbackOutcome:
    """Trade the code for a token and store the binding; the state is spent either way.

    ``release`` ends the caller's transaction before TikTok is called (the edge passes its
    commit), so no connection or row lock is held while TikTok answers.
    """
    settings = runtime.settings
    oauth = await _take_state(session, settings, state)
    app = await repository.provider_app(session, oauth.provider_app_id)
    if app is None:
        raise OAuthStateInvalidError("the provider app of this state is gone")
    app_secret = open_app_secret(app, runtime.keyring)
    await release()
    try:
        async with await tiktok.client_for(app) as client:
            token = await client.exchange_auth_code(
                app_id=app.app_id,
                app_secret=SecretStr(app_secret),
                auth_code=SecretStr(auth_code),
            )
    except TikTokError as exc:
        log.warning(
            "oauth.exchange_failed", workspace_id=oauth.workspace_id, code=exc.code
        )
        return CallbackOutcome(return_to=oauth.return_to, error=exc)

    binding = await _upsert_binding(session, runtime, oauth, app, token)
    await ensure_meta_schedule(
        session, binding, interval_seconds=settings.meta_sync_interval_seconds
    )
    run = await request_meta_sync(
        session,
        workspace_id=binding.workspace_id,
        auth_id=binding.id,
        trigger="oauth",
        topic_prefix=settings.kafka_topic_prefix,
        user_id=oauth.user_id,
    )
    audit.record(
        session,
        action="binding.authorized",
        actor=Actor(user_id=oauth.user_id),
        workspace_id=binding.workspace_id,
        target_type="binding",
        target_id=binding.id,
        details={"provider_app_id": app.id, "run_id": run.run.id},
    )
    log.info(
        "oauth.binding_authorized",
        workspace_id=binding.workspace_id,
        auth_id=binding.id,
        run_id=run.run.id,
    )
    return CallbackOutcome(
        return_to=oauth.return_to, binding=binding, run_id=run.run.id
    )


async def _upsert_binding(
    session: AsyncSession,
    runtime: Runtime,
    oauth: OAuthState,
    app: ProviderApp,
    token: AccessToken,
) -> Binding:
    access_token = token.access_token.get_secret_value()
    binding = await repository.binding_by_fingerprint(
        session, oauth.workspace_id, app.id, fingerprint(access_token)
    )
    change = "status_changed"
    if binding is None:
        change = "created"
        binding = Binding(
            workspace_id=oauth.workspace_id,
            provider_app_id=app.id,
            created_by_user_id=oauth.user_id,
        )
        session.add(binding)
    seal_access_token(binding, runtime.keyring, access_token)
    binding.status = "active"
    binding.status_reason = None
    binding.revoked_at = None
    binding.scope = list(token.scope)
    binding.authorized_advertiser_ids = list(token.advertiser_ids)
    if oauth.alias:
        binding.alias = oauth.alias
    await session.flush()
    _emit(session, runtime, binding, change)
    return binding


def _emit(
    session: AsyncSession, runtime: Runtime, binding: Binding, change: str
) -> None:
    enqueue(
        session,
        BindingChanged(
            workspace_id=binding.workspace_id,
            auth_id=binding.id,
            change=change,  # type: ignore[arg-type]
            status=binding.status,
            alias=binding.alias,
        ),
        topic_prefix=runtime.settings.kafka_topic_prefix,
    )


async def rename(
    session: AsyncSession,
    runtime: Runtime,
    access: WorkspaceAccess,
    auth_id: int,
    alias: str | None,
) -> Binding:
    binding = await require_binding(session, access.workspace_id, auth_id)
    alias = (alias or "").strip() or None
    if binding.alias != alias:
        previous = binding.alias
        binding.alias = alias
        await session.flush()
        _emit(session, runtime, binding, "alias_changed")
        audit.record(
            session,
            action="binding.alias_changed",
            actor=access.actor,
            workspace_id=access.workspace_id,
            target_type="binding",
            target_id=binding.id,
            details={"from": previous, "to": alias},
        )
    return binding


async def _revoke_remote(
    session: AsyncSession,
    runtime: Runtime,
    tiktok: TikTokAccess,
    binding: Binding,
    release: Release,
) -> bool:
    """Revoke the token at TikTok; False when TikTok says it is already invalid."""
    credentials = await load_binding_credentials(
        session,
        runtime.keyring,
        workspace_id=binding.workspace_id,
        auth_id=binding.id,
    )
    await release()
    try:
        async with await tiktok.client_for(credentials.app) as client:
            await client.revoke_token(credentials.tiktok)
    except TikTokAuthError:
        return False
    return True


async def revoke(
    session: AsyncSession,
    runtime: Runtime,
    tiktok: TikTokAccess,
    access: WorkspaceAccess,
    auth_id: int,
    release: Release = _keep_transaction,
) -> tuple[Binding, bool]:
    """Revoke at TikTok, then locally; a revoked binding stays readable."""
    binding = await require_binding(session, access.workspace_id, auth_id)
    if binding.status == STATUS_REVOKED:
        return binding, False
    try:
        remote = await _revoke_remote(session, runtime, tiktok, binding, release)
    except TikTokError as exc:
        raise GMVError(
            "TikTok did not revoke the authorization; nothing was changed",
            code="REVOKE_FAILED",
            status_code=502,
            details={"tiktok_error": exc.code, "tiktok_code": exc.tiktok_code},
        ) from exc
    # Read again: the transaction may have been released during the call.
    binding = await require_binding(session, access.workspace_id, auth_id)
    binding.status = STATUS_REVOKED
    binding.status_reason = "revoked by a workspace administrator"
    binding.revoked_at = utcnow()
    await repository.disable_schedules(session, binding.workspace_id, binding.id)
    await session.flush()
    _emit(session, runtime, binding, "revoked")
    audit.record(
        session,
        action="binding.revoked",
        actor=access.actor,
        workspace_id=access.workspace_id,
        target_type="binding",
        target_id=binding.id,
        details={"remote_revoked": remote},
    )
    return binding, remote


async def delete(
    session: AsyncSession,
    runtime: Runtime,
    tiktok: TikTokAccess,
    access: WorkspaceAccess,
    auth_id: int,
    release: Release = _keep_transaction,
) -> None:
    """Revoke upstream (best effort), stop its schedules and delete it with its data."""
    binding = await require_binding(session, access.workspace_id, auth_id)
    remote = False
    if binding.status != STATUS_REVOKED:
        try:
            remote = await _revoke_remote(session, runtime, tiktok, binding, release)
        except (TikTokError, GMVError) as exc:
            log.warning("binding.delete_revoke_failed", auth_id=auth_id, code=exc.code)
        binding = await require_binding(session, access.workspace_id, auth_id)
    _emit(session, runtime, binding, "deleted")
    await repository.delete_schedules(session, binding.workspace_id, binding.id)
    await session.delete(binding)
    audit.record(
        session,
        action="binding.deleted",
        actor=access.actor,
        workspace_id=access.workspace_id,
        target_type="binding",
        target_id=auth_id,
        details={"remote_revoked": remote},
    )
    await session.flush()


# Provider apps (platform administrators)


async def list_provider_apps(session: AsyncSession) -> Sequence[ProviderApp]:
    return await repository.provider_apps(session)


async def save_provider_app(
    session: AsyncSession, runtime: Runtime, body: ProviderAppIn, actor: Actor
) -> tuple[ProviderApp, bool]:
    """Create the app or replace its settings and secret; True when created."""
    app = await repository.provider_app_by_app_id(session, body.app_id)
    created = app is None
    if app is None:
        app = ProviderApp(app_id=body.app_id)
        session.add(app)
    app.name = body.name
    seal_app_secret(app, runtime.keyring, body.secret)
    app.redirect_uri = str(body.redirect_uri)
    app.qps_limit = body.qps_limit
    app.is_default = body.is_default
    app.api_base_url = str(body.api_base_url) if body.api_base_url else None
    app.authorize_url = str(body.authorize_url) if body.authorize_url else None
    await session.flush()
    if body.is_default:
        await repository.clear_default_apps(session, app.id)
    audit.record(
        session,
        action="provider_app.created" if created else "provider_app.updated",
        actor=actor,
        target_type="provider_app",
        target_id=app.id,
        details={"app_id": app.app_id},
    )
    return app, created
