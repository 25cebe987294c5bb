"""Administration commands: users, API tokens, key rotation."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from sqlalchemy import select

from gmv_common.db.models import User
from gmv_common.key_rotation import rotate_secrets
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings

users_app = typer.Typer(help="Users and their API tokens.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys of stored secrets.", no_args_is_help=True)


def _settings() -> Settings:
    from gmv_cli.main import load_settings

    return load_settings()


@users_app.command("create")
def create_user_command(
    email: Annotated[str, typer.Option(help="Login e-mail.")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ],
    workspace: Annotated[
        str | None, typer.Option(help="Also create this workspace, owned by the user.")
    ] = None,
    platform_admin: Annotated[
        bool, typer.Option(help="May manage provider apps.")
    ] = False,
) -> None:
    """Create a user (and optionally a workspace they own)."""
    from gmv_gateway.auth.service import create_user
    from gmv_gateway.workspaces.service import create_workspace

    async def main() -> None:
        runtime = Runtime.create(_settings())
        try:
            async with runtime.sessionmaker.begin() as session:
                user = await create_user(
                    session,
                    email=email,
                    password=password,
                    is_platform_admin=platform_admin,
                )
                line = f"user {user.id} {user.email}"
                if workspace:
                    created = await create_workspace(
                        session, name=workspace, owner_user_id=user.id
                    )
                    line += f", owner of workspace {created.id} {created.name!r}"
            typer.echo(line)
        finally:
            await runtime.engine.dispose()

    asyncio.run(main())


@users_app.command("token")
def create_token_command(
    email: Annotated[str, typer.Option(help="The user the token acts as.")],
    name: Annotated[
        str, typer.Option(help="A label to recognise the token by.")
    ] = "cli",
) -> None:
    """Create a personal API token; it is printed once and stored only as a hash."""
    from gmv_gateway.auth.service import create_api_token

    async def main() -> None:
        runtime = Runtime.create(_settings())
        try:
            async with runtime.sessionmaker.begin() as session:
                user = await session.scalar(
                    select(User).where(User.email == email.lower())
                )
                if user is None:
                    typer.echo(f"error: no user {email}", err=True)
                    raise typer.Exit(1)
                _, plaintext = await create_api_token(
                    session, user_id=user.id, name=name
                )
            typer.echo(plaintext)
        finally:
            await runtime.engine.dispose()

    asyncio.run(main())


@keys_app.command("rotate")
def rotate_keys_command(
    dry_run: Annotated[
        bool, typer.Option(help="Count what would change; write nothing.")
    ] = False,
) -> None:
    """Re-encrypt app secrets and binding tokens under CRYPTO_ACTIVE_KEY_VERSION."""

    async def main() -> None:
        runtime = Runtime.create(_settings())
        try:
            async with runtime.sessionmaker.begin() as session:
                result = await rotate_secrets(session, runtime.keyring, dry_run=dry_run)
                if dry_run:
                    await session.rollback()
            verb = "would re-encrypt" if dry_run else "re-encrypted"
            typer.echo(
                f"{verb} {result.provider_apps} provider app secret(s) and "
                f"{result.bindings} binding token(s) under key version {result.active_version}"
            )
        finally:
            await runtime.engine.dispose()

    asyncio.run(main())
