"""The ``gmv`` command line: services, the embedded mode, migrations, admin and repair tools."""

from __future__ import annotations

import asyncio
import importlib
import json
from pathlib import Path
from typing import Annotated

import typer

from gmv_cli.runner import (
    SERVICES,
    install_stop_signals,
    run_server_loop,
    serve_service,
)
from gmv_common.db import migrate
from gmv_common.logging import configure_logging
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings, UnsafeProductionSettingsError

app = typer.Typer(
    help="GMV Backend: TikTok GMV Max bindings, sync services and tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
events_app = typer.Typer(help="Event contracts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(events_app, name="events")


def _mount(module: str, attribute: str, name: str, help_text: str) -> None:
    """Mount a service's own typer sub-app (its commands live beside its code)."""
    sub_app = getattr(importlib.import_module(module), attribute)
    app.add_typer(sub_app, name=name, help=help_text)


def load_settings(**overrides: object) -> Settings:
    settings = Settings(**overrides)  # type: ignore[arg-type]
    try:
        settings.check_production()
    except UnsafeProductionSettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(
        level=settings.log_level, fmt=settings.log_format, service=settings.service_name
    )
    return settings


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(Settings().app_version)


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICES)}")],
    # All interfaces: the service runs in a container or pod behind its own network.
    host: Annotated[str, typer.Option(help="Address of the HTTP surface.")] = "0.0.0.0",  # noqa: S104
    port: Annotated[
        int, typer.Option(help="Port of the API or of /healthz, /metrics.")
    ] = 8000,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Upgrade the schema first.")
    ] = False,
) -> None:
    """Run one service in this process (the production shape)."""
    if service not in SERVICES:
        typer.echo(
            f"error: unknown service {service!r}; choose from {SERVICES}", err=True
        )
        raise typer.Exit(2)
    settings = load_settings(service_name=service)

    async def main() -> None:
        if migrate_first:
            await migrate.upgrade(settings.database_url)
        runtime = Runtime.create(settings)
        stop = asyncio.Event()
        install_stop_signals(stop)
        try:
            await runtime.start()
            await serve_service(runtime, service, host=host, port=port, stop=stop)
        finally:
            await runtime.close()

    run_server_loop(main())


@app.command()
def dev(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the API.")] = 8000,
    sandbox_port: Annotated[
        int, typer.Option(help="Port of the TikTok sandbox.")
    ] = 8765,
) -> None:
    """Run everything in one process: SQLite, in-memory bus, TikTok sandbox, demo data."""
    from gmv_cli.dev import run_dev

    settings = load_settings(service_name="dev", bus_backend="memory")

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await run_dev(
            settings, host=host, port=port, sandbox_port=sandbox_port, stop=stop
        )

    run_server_loop(main())


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Upgrade the database schema (DATABASE_URL) to REVISION."""
    settings = load_settings()
    asyncio.run(migrate.upgrade(settings.database_url, revision))
    typer.echo(
        f"database at {asyncio.run(migrate.current_revision(settings.database_url))}"
    )


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()]) -> None:
    """Downgrade the database schema to REVISION (``base`` drops every table)."""
    settings = load_settings()
    asyncio.run(migrate.downgrade(settings.database_url, revision))
    typer.echo(
        f"database at {asyncio.run(migrate.current_revision(settings.database_url))}"
    )


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database."""
    settings = load_settings()
    typer.echo(asyncio.run(migrate.current_revision(settings.database_url)) or "empty")


@events_app.command("schemas")
def events_schemas(
    out: Annotated[
        Path, typer.Option(help="Folder for one JSON Schema file per type.")
    ] = Path("docs/events"),
) -> None:
    """Write the JSON Schema of every event type (generated from the code)."""
    from gmv_common.events.schemas import json_schemas

    out.mkdir(parents=True, exist_ok=True)
    for event_type, schema in json_schemas().items():
        path = out / f"{event_type}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        typer.echo(str(path))


_mount(
    "gmv_sandbox.cli", "app", "sandbox", "Run the TikTok sandbox (a local simulator)."
)
_mount("gmv_metadata_sync.cli", "repair_app", "repair", "Repair tools.")
_mount("gmv_options_cache.cli", "app", "options", "GMV Max options documents.")
_mount("gmv_cli.admin", "users_app", "users", "Users and their API tokens.")
_mount("gmv_cli.admin", "keys_app", "keys", "Encryption keys of stored secrets.")
_mount("gmv_product_sync.cli", "app", "products", "Product catalog syncs.")
