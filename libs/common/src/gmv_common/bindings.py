"""A binding's credentials, its status transitions, and a TikTok client to call it with.

Shared by the metadata sync, the product sync and the gateway:

- ``load_binding_credentials`` reads the binding and its provider app, scoped by workspace
  (another workspace's binding is a 404, like an unknown one), and decrypts the access token
  and the app secret. Neither ever reaches a log line or a repr.
- ``seal_access_token`` / ``open_access_token`` and ``seal_app_secret`` / ``open_app_secret``
  are the one place each secret is encrypted and decrypted, bound to its row's context (a
  token's ciphertext copied to another workspace's binding does not decrypt).
- ``mark_needs_reauth`` / ``mark_active`` move the binding's status and emit a
  ``BindingChanged`` event through the outbox, in the caller's transaction.
- ``build_rate_limiter`` / ``build_tiktok_client`` make the client every TikTok call goes
  through, paced on the app-wide budget shared by every process.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import httpx
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.crypto import (
    Keyring,
    app_secret_context,
    binding_token_context,
    fingerprint,
)
from gmv_common.db.models import Binding, ProviderApp
from gmv_common.errors import NotFoundError
from gmv_common.events.schemas import BindingChanged
from gmv_common.logging import get_logger
from gmv_common.messaging.outbox import enqueue
from gmv_common.settings import Settings
from gmv_common.tiktok import (
    DatabaseRateLimiter,
    InMemoryRateLimiter,
    PacerConfig,
    RateLimiter,
    RetryPolicy,
    TikTokClient,
    TikTokCredentials,
)

log = get_logger(__name__)

STATUS_ACTIVE = "active"
STATUS_NEEDS_REAUTH = "needs_reauth"
STATUS_REVOKED = "revoked"
REASON_LIMIT = 512


@dataclass(frozen=True, slots=True)
class BindingCredentials:
    """A binding, its provider app, and the decrypted secrets to call TikTok with."""

    binding: Binding
    app: ProviderApp
    access_token: SecretStr
    app_secret: SecretStr

    @property
    def tiktok(self) -> TikTokCredentials:
        return TikTokCredentials(
            app_id=self.app.app_id,
            access_token=self.access_token,
            app_secret=self.app_secret,
        )

    def __repr__(self) -> str:
        return (
            f"BindingCredentials(auth_id={self.binding.id}, "
            f"workspace_id={self.binding.workspace_id}, app_id={self.app.app_id!r})"
        )


async def load_binding_credentials(
    session: AsyncSession,
    keyring: Keyring,
    *,
    workspace_id: int,
    auth_id: int,
) -> BindingCredentials:
    """The binding ``auth_id`` of ``workspace_id`` with its decrypted token and app secret.

    Raises ``NotFoundError`` (``BINDING_NOT_FOUND``) for an unknown binding or one that
    belongs to another workspace: tenants never learn that the other exists.
    """
    row = (
        await session.execute(
            select(Binding, ProviderApp)
            .join(ProviderApp, ProviderApp.id == Binding.provider_app_id)
            .where(Binding.id == auth_id, Binding.workspace_id == workspace_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError(
            "TikTok binding not found",
            code="BINDING_NOT_FOUND",
            details={"auth_id": auth_id},
        )
    binding, app = row
    return BindingCredentials(
        binding=binding,
        app=app,
        access_token=SecretStr(open_access_token(binding, keyring)),
        app_secret=SecretStr(open_app_secret(app, keyring)),
    )


def seal_access_token(binding: Binding, keyring: Keyring, access_token: str) -> None:
    """Store ``access_token`` on the binding, encrypted, with its fingerprint.

    The binding's ``workspace_id`` and ``provider_app_id`` must be set: they are the
    ciphertext's context.
    """
    context = binding_token_context(binding.workspace_id, binding.provider_app_id)
    cipher, version = keyring.encrypt(access_token, associated_data=context)
    binding.access_token_cipher = cipher
    binding.key_version = version
    binding.token_fingerprint = fingerprint(access_token)


def open_access_token(binding: Binding, keyring: Keyring) -> str:
    context = binding_token_context(binding.workspace_id, binding.provider_app_id)
    return keyring.decrypt(binding.access_token_cipher, associated_data=context)


def seal_app_secret(app: ProviderApp, keyring: Keyring, secret: str) -> None:
    """Store the app's ``secret``, encrypted; ``app_id`` must be set (the context)."""
    cipher, version = keyring.encrypt(
        secret, associated_data=app_secret_context(app.app_id)
    )
    app.secret_cipher = cipher
    app.key_version = version


def open_app_secret(app: ProviderApp, keyring: Keyring) -> str:
    return keyring.decrypt(
        app.secret_cipher, associated_data=app_secret_context(app.app_id)
    )


async def mark_needs_reauth(
    session: AsyncSession, binding: Binding, *, reason: str, topic_prefix: str
) -> bool:
    """Flag the binding for re-authorization; emit ``BindingChanged`` if that is news.

    Returns whether the status changed. A revoked binding stays revoked.
    """
    if binding.status == STATUS_REVOKED:
        return False
    changed = binding.status != STATUS_NEEDS_REAUTH
    binding.status = STATUS_NEEDS_REAUTH
    binding.status_reason = reason[:REASON_LIMIT]
    if changed:
        _emit_status_changed(session, binding, topic_prefix=topic_prefix)
        log.warning(
            "binding.needs_reauth",
            workspace_id=binding.workspace_id,
            auth_id=binding.id,
            reason=binding.status_reason,
        )
    await session.flush()
    return changed


async def mark_active(
    session: AsyncSession, binding: Binding, *, topic_prefix: str
) -> bool:
    """Return the binding to ``active`` after a successful call; event only on a change.

    Returns whether the status changed. A revoked binding stays revoked.
    """
    if binding.status in (STATUS_ACTIVE, STATUS_REVOKED):
        return False
    binding.status = STATUS_ACTIVE
    binding.status_reason = None
    _emit_status_changed(session, binding, topic_prefix=topic_prefix)
    log.info(
        "binding.reactivated", workspace_id=binding.workspace_id, auth_id=binding.id
    )
    await session.flush()
    return True


def _emit_status_changed(
    session: AsyncSession, binding: Binding, *, topic_prefix: str
) -> None:
    enqueue(
        session,
        BindingChanged(
            workspace_id=binding.workspace_id,
            auth_id=binding.id,
            change="status_changed",
            status=binding.status,
            alias=binding.alias,
        ),
        topic_prefix=topic_prefix,
    )


_process_limiters: weakref.WeakKeyDictionary[
    async_sessionmaker[AsyncSession], RateLimiter
] = weakref.WeakKeyDictionary()


def build_rate_limiter(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    config: PacerConfig | None = None,
) -> RateLimiter:
    """The app-wide limiter, one per process and database, shared by every service in it.

    On MySQL/MariaDB the budget lives in the database, so every process shares it. The embedded
    mode (SQLite) is one process by definition; there the pacer is kept in memory, because a
    SQLite write per TikTok call would contend with the services' own transactions.
    """
    limiter = _process_limiters.get(sessionmaker)
    if limiter is None:
        if settings.is_sqlite:
            limiter = InMemoryRateLimiter(
                default_qps=settings.tiktok_default_qps, config=config
            )
        else:
            limiter = DatabaseRateLimiter(
                sessionmaker, default_qps=settings.tiktok_default_qps, config=config
            )
        _process_limiters[sessionmaker] = limiter
    return limiter


def build_tiktok_client(
    settings: Settings,
    *,
    limiter: RateLimiter,
    app: ProviderApp | None = None,
    base_url: str | None = None,
    retry: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> TikTokClient:
    """A TikTok client paced on ``limiter``.

    The base URL is ``base_url``, else ``app.api_base_url``, else the settings' one.

    Close it with ``aclose()`` or use it as an async context manager. Pass the app's tier
    to the limiter once with ``await limiter.set_qps(app.app_id, app.qps_limit)``.
    """
    if base_url is None and app is not None:
        base_url = app.api_base_url or None
    return TikTokClient(
        limiter=limiter,
        settings=settings,
        base_url=base_url,
        retry=retry,
        transport=transport,
    )


__all__ = [
    "BindingCredentials",
    "build_rate_limiter",
    "build_tiktok_client",
    "load_binding_credentials",
    "mark_active",
    "mark_needs_reauth",
]
