"""Re-encrypt every stored secret under the keyring's active key version.

Run after adding a new key to ``CRYPTO_KEYS`` and making it ``CRYPTO_ACTIVE_KEY_VERSION``; once it
reports nothing left on old versions, the old key can be removed from the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.crypto import Keyring, app_secret_context, binding_token_context
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
        context = app_secret_context(app.app_id)
        secret = keyring.decrypt(app.secret_cipher, associated_data=context)
        if not dry_run:
            app.secret_cipher, app.key_version = keyring.encrypt(
                secret, associated_data=context
            )
    bindings = list(
        await session.scalars(
            select(Binding).where(Binding.key_version != keyring.active_version)
        )
    )
    for binding in bindings:
        context = binding_token_context(binding.workspace_id, binding.provider_app_id)
        token = keyring.decrypt(binding.access_token_cipher, associated_data=context)
        if not dry_run:
            binding.access_token_cipher, binding.key_version = keyring.encrypt(
                token, associated_data=context
            )
    await session.flush()
    return RotationResult(
        provider_apps=len(apps),
        bindings=len(bindings),
        active_version=keyring.active_version,
    )
