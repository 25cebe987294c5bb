"""Binding credentials, status transitions and the client factory shared by the services."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.bindings import (
    build_tiktok_client,
    load_binding_credentials,
    mark_active,
    mark_needs_reauth,
    open_access_token,
    open_app_secret,
    seal_access_token,
    seal_app_secret,
)
from gmv_common.crypto import (
    DecryptionError,
    Keyring,
    app_secret_context,
    binding_token_context,
    fingerprint,
)
from gmv_common.db.models import Binding, OutboxMessage, ProviderApp, Workspace
from gmv_common.errors import NotFoundError
from gmv_common.settings import Settings
from gmv_common.tiktok import InMemoryRateLimiter

TOKEN = "token-value-never-logged"
SECRET = "app-secret-never-logged"


@pytest.fixture
def keyring() -> Keyring:
    return Keyring({1: b"k" * 32}, 1)


async def _binding(
    sqlite_sessions: async_sessionmaker[AsyncSession], keyring: Keyring
) -> tuple[int, int, int]:
    async with sqlite_sessions.begin() as session:
        own, other = Workspace(name="Own"), Workspace(name="Other")
        secret_cipher, version = keyring.encrypt(
            SECRET, associated_data=app_secret_context("app-1")
        )
        app = ProviderApp(
            app_id="app-1",
            name="App",
            secret_cipher=secret_cipher,
            key_version=version,
            redirect_uri="http://127.0.0.1/cb",
            api_base_url="http://tiktok.example/open_api/v1.3/",
        )
        session.add_all([own, other, app])
        await session.flush()
        cipher, version = keyring.encrypt(
            TOKEN, associated_data=binding_token_context(own.id, app.id)
        )
        binding = Binding(
            workspace_id=own.id,
            provider_app_id=app.id,
            access_token_cipher=cipher,
            key_version=version,
            token_fingerprint="f" * 64,
        )
        session.add(binding)
        await session.flush()
        return own.id, other.id, binding.id


async def _status_events(
    sqlite_sessions: async_sessionmaker[AsyncSession],
) -> list[str]:
    async with sqlite_sessions() as session:
        rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [
            orjson.loads(row.payload)["status"]
            for row in rows
            if row.headers["ce_type"] == "gmv.binding.changed.v1"
        ]


async def test_credentials_are_decrypted_and_never_shown(
    sqlite_sessions: async_sessionmaker[AsyncSession], keyring: Keyring
) -> None:
    workspace_id, _, auth_id = await _binding(sqlite_sessions, keyring)

    async with sqlite_sessions() as session:
        credentials = await load_binding_credentials(
            session, keyring, workspace_id=workspace_id, auth_id=auth_id
        )

    assert credentials.tiktok.access_token.get_secret_value() == TOKEN
    assert credentials.tiktok.app_secret is not None
    assert credentials.tiktok.app_secret.get_secret_value() == SECRET
    assert TOKEN not in repr(credentials)
    assert SECRET not in repr(credentials.tiktok)


def test_sealed_secrets_open_only_on_their_own_rows(keyring: Keyring) -> None:
    binding = Binding(workspace_id=3, provider_app_id=9)
    seal_access_token(binding, keyring, TOKEN)
    app = ProviderApp(app_id="app-1")
    seal_app_secret(app, keyring, SECRET)
    copied = Binding(
        workspace_id=4,
        provider_app_id=9,
        access_token_cipher=binding.access_token_cipher,
    )
    renamed = ProviderApp(app_id="app-2", secret_cipher=app.secret_cipher)

    assert TOKEN.encode() not in binding.access_token_cipher
    assert binding.token_fingerprint == fingerprint(TOKEN)
    assert (binding.key_version, app.key_version) == (1, 1)
    assert open_access_token(binding, keyring) == TOKEN
    assert open_app_secret(app, keyring) == SECRET
    with pytest.raises(DecryptionError):
        open_access_token(copied, keyring)
    with pytest.raises(DecryptionError):
        open_app_secret(renamed, keyring)


async def test_binding_of_another_workspace_is_not_found(
    sqlite_sessions: async_sessionmaker[AsyncSession], keyring: Keyring
) -> None:
    _, other_workspace, auth_id = await _binding(sqlite_sessions, keyring)

    async with sqlite_sessions() as session:
        with pytest.raises(NotFoundError) as raised:
            await load_binding_credentials(
                session, keyring, workspace_id=other_workspace, auth_id=auth_id
            )
        with pytest.raises(NotFoundError):
            await load_binding_credentials(
                session, keyring, workspace_id=other_workspace, auth_id=auth_id + 99
            )

    assert raised.value.code == "BINDING_NOT_FOUND"


async def test_needs_reauth_then_active_emit_one_event_each(
    sqlite_sessions: async_sessionmaker[AsyncSession], keyring: Keyring
) -> None:
    _, _, auth_id = await _binding(sqlite_sessions, keyring)

    async with sqlite_sessions.begin() as session:
        binding = await session.get(Binding, auth_id)
        assert binding is not None
        first = await mark_needs_reauth(
            session, binding, reason="TOKEN_INVALID", topic_prefix="t"
        )
        again = await mark_needs_reauth(
            session, binding, reason="TOKEN_INVALID", topic_prefix="t"
        )
        back = await mark_active(session, binding, topic_prefix="t")
        still = await mark_active(session, binding, topic_prefix="t")

    assert (first, again, back, still) == (True, False, True, False)
    assert await _status_events(sqlite_sessions) == ["needs_reauth", "active"]


async def test_revoked_binding_stays_revoked(
    sqlite_sessions: async_sessionmaker[AsyncSession], keyring: Keyring
) -> None:
    _, _, auth_id = await _binding(sqlite_sessions, keyring)

    async with sqlite_sessions.begin() as session:
        binding = await session.get(Binding, auth_id)
        assert binding is not None
        binding.status = "revoked"
        changed = [
            await mark_needs_reauth(session, binding, reason="x", topic_prefix="t"),
            await mark_active(session, binding, topic_prefix="t"),
        ]

    assert changed == [False, False]
    assert await _status_events(sqlite_sessions) == []


async def test_client_uses_the_app_base_url(
    sqlite_sessions: async_sessionmaker[AsyncSession], keyring: Keyring
) -> None:
    workspace_id, _, auth_id = await _binding(sqlite_sessions, keyring)
    async with sqlite_sessions() as session:
        credentials = await load_binding_credentials(
            session, keyring, workspace_id=workspace_id, auth_id=auth_id
        )

    client = build_tiktok_client(
        Settings(_env_file=None), limiter=InMemoryRateLimiter(), app=credentials.app
    )
    try:
        assert client.base_url == "http://tiktok.example/open_api/v1.3/"
    finally:
        await client.aclose()
