"""Re-encrypt every stored secret under the keyring's active key version.

Run after adding a new key to ``CRYPTO_KEYS`` and making it ``CRYPTO_ACTIVE_KEY_VERSION``; once it
reports nothing left on old versions, the old key can be removed from the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.bindings import (
    open_access_token,
    open_app_secret,
    seal_access_token,
    seal_app_secret,
)
from gmv_common.crypto import Keyring
from gmv_common.db.models import Binding, ProviderApp


@dataclass(frozen=True)
class RotationResult:
    provider_apps: int
    bindings: int
    active_version: int


async def rotate_secrets(
    session: AsyncSession, keyring: Keyring, *, dry_run: bool = False
) -> RotationResult:
    """Re-encrypt app secrets and binding tokens not on the active key (in the caller's txn)."""
    apps = list(
        await session.scalars(
            select(ProviderApp).where(ProviderApp.key_version != keyring.active_version)
        )
    )
    for app in apps:
        secret = open_app_secret(app, keyring)
        if not dry_run:
            seal_app_secret(app, keyring, secret)
    bindings = list(
        await session.scalars(
            select(Binding).where(Binding.key_version != keyring.active_version)
        )
    )
    for binding in bindings:
        token = open_access_token(binding, keyring)
        if not dry_run:
            seal_access_token(binding, keyring, token)
    await session.flush()
    return RotationResult(
        provider_apps=len(apps),
        bindings=len(bindings),
        active_version=keyring.active_version,
    )
