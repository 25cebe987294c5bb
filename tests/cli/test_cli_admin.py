"""`gmv users` and `gmv keys rotate` against the real MariaDB."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from gmv_common.crypto import Keyring, binding_token_context
from gmv_common.db.models import (
    ApiToken,
    Binding,
    Membership,
    ProviderApp,
    User,
    Workspace,
)
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings

pytestmark = pytest.mark.mariadb

KEY_1 = base64.urlsafe_b64encode(os.urandom(32)).decode()
KEY_2 = base64.urlsafe_b64encode(os.urandom(32)).decode()


@dataclass(frozen=True)
class Completed:
    returncode: int
    output: str


async def gmv(env: dict[str, str], *args: str, stdin: str = "") -> Completed:
    """Run the installed ``gmv`` command as a user would."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("gmv")),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **env},
    )
    output, _ = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    return Completed(returncode=process.returncode or 0, output=output.decode())


def _env(database_url: str, keys: dict[int, str], active: int) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "CRYPTO_KEYS": json.dumps(keys),
        "CRYPTO_ACTIVE_KEY_VERSION": str(active),
        "LOG_FORMAT": "json",
    }


async def test_users_create_makes_an_owner_and_token_prints_a_working_secret(
    mariadb_url: str,
) -> None:
    env = _env(mariadb_url, {1: KEY_1}, 1)

    created = await gmv(
        env,
        "users",
        "create",
        "--email",
        "Ops@Example.com",
        "--workspace",
        "Ops",
        stdin="correct-horse-battery\ncorrect-horse-battery\n",
    )
    token = await gmv(env, "users", "token", "--email", "ops@example.com")

    assert created.returncode == 0, created.output
    assert "owner of workspace" in created.output
    assert token.returncode == 0, token.output
    plaintext = token.output.strip().splitlines()[-1]
    runtime = Runtime.create(Settings(_env_file=None, database_url=mariadb_url))
    try:
        async with runtime.sessionmaker() as session:
            user = await session.scalar(
                select(User).where(User.email == "ops@example.com")
            )
            assert user is not None
            membership = await session.scalar(
                select(Membership).where(Membership.user_id == user.id)
            )
            tokens = list(await session.scalars(select(ApiToken)))
    finally:
        await runtime.engine.dispose()
    assert membership is not None
    assert membership.role == "owner"
    assert len(tokens) == 1
    assert plaintext not in {tokens[0].token_hash, tokens[0].token_prefix}


async def test_keys_rotate_moves_every_secret_to_the_active_version(
    mariadb_url: str,
) -> None:
    old = Keyring({1: base64.urlsafe_b64decode(KEY_1)}, 1)
    runtime = Runtime.create(Settings(_env_file=None, database_url=mariadb_url))
    try:
        async with runtime.sessionmaker.begin() as session:
            user = User(email="o@example.com", password_hash="x")
            session.add(user)
            await session.flush()
            workspace = Workspace(name="W")
            session.add(workspace)
            await session.flush()
            secret_cipher, _ = old.encrypt(
                "app-secret", associated_data="provider_app:42"
            )
            provider_app = ProviderApp(
                app_id="42",
                name="app",
                secret_cipher=secret_cipher,
                key_version=1,
                redirect_uri="http://127.0.0.1/cb",
            )
            session.add(provider_app)
            await session.flush()
            context = binding_token_context(workspace.id, provider_app.id)
            token_cipher, _ = old.encrypt("tiktok-token", associated_data=context)
            session.add(
                Binding(
                    workspace_id=workspace.id,
                    provider_app_id=provider_app.id,
                    access_token_cipher=token_cipher,
                    key_version=1,
                    token_fingerprint="f" * 64,
                )
            )

        result = await gmv(_env(mariadb_url, {1: KEY_1, 2: KEY_2}, 2), "keys", "rotate")

        assert result.returncode == 0, result.output
        assert "1 provider app secret(s) and 1 binding token(s)" in result.output
        only_new = Keyring({2: base64.urlsafe_b64decode(KEY_2)}, 2)
        async with runtime.sessionmaker() as session:
            stored_app = await session.scalar(select(ProviderApp))
            binding = await session.scalar(select(Binding))
        assert stored_app is not None
        assert binding is not None
        assert (stored_app.key_version, binding.key_version) == (2, 2)
        assert (
            only_new.decrypt(
                stored_app.secret_cipher, associated_data="provider_app:42"
            )
            == "app-secret"
        )
        assert (
            only_new.decrypt(binding.access_token_cipher, associated_data=context)
            == "tiktok-token"
        )
    finally:
        await runtime.engine.dispose()
