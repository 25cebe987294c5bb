"""``gmv options …``: rebuild or inspect options documents by hand (after a restore, in tests).

Mounted by the ``gmv`` CLI as the ``options`` sub-app. Reads ``DATABASE_URL`` and
``KAFKA_TOPIC_PREFIX`` like every process. ``OptionsUpdated`` events of changed documents are
written to the outbox; the relay of any running service publishes them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.db.session import create_engine, create_sessionmaker
from gmv_common.errors import NotFoundError
from gmv_common.logging import bound_context, configure_logging
from gmv_common.settings import Settings
from gmv_options_cache import repository, service

app = typer.Typer(help="GMV Max options documents.", no_args_is_help=True)


@app.callback()
def options() -> None:
    """GMV Max options documents: one per binding, with a strong ETag."""


@dataclass(frozen=True, slots=True)
class RebuildOutcome:
    workspace_id: int
    auth_id: int
    outcome: str  # changed / unchanged / not_found
    version: int | None = None
    etag: str | None = None

    def line(self) -> str:
        head = f"workspace_id={self.workspace_id} auth_id={self.auth_id} {self.outcome}"
        if self.version is None:
            return head
        return f"{head} version={self.version} etag={self.etag}"


async def rebuild_bindings(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    targets: list[tuple[int, int]] | None,
    topic_prefix: str,
) -> list[RebuildOutcome]:
    """Rebuild the given ``(workspace_id, auth_id)`` bindings, or all when ``None``.

    "All" leaves out bindings that never synced and have no document: their first document
    comes from their first sync. Each binding is rebuilt in its own transaction.
    """
    if targets is None:
        async with sessionmaker() as session:
            targets = await repository.list_bindings(session)
    return [
        await _rebuild_one(sessionmaker, workspace_id, auth_id, topic_prefix)
        for workspace_id, auth_id in targets
    ]


async def _rebuild_one(
    sessionmaker: async_sessionmaker[AsyncSession],
    workspace_id: int,
    auth_id: int,
    topic_prefix: str,
) -> RebuildOutcome:
    with bound_context(workspace_id=workspace_id, auth_id=auth_id):
        async with sessionmaker.begin() as session:
            try:
                result = await service.rebuild_options(
                    session,
                    workspace_id=workspace_id,
                    auth_id=auth_id,
                    topic_prefix=topic_prefix,
                )
            except NotFoundError:
                await service.remove_options(
                    session, workspace_id=workspace_id, auth_id=auth_id
                )
                return RebuildOutcome(workspace_id, auth_id, "not_found")
    return RebuildOutcome(
        workspace_id,
        auth_id,
        "changed" if result.changed else "unchanged",
        result.version,
        result.etag,
    )


@app.command()
def rebuild(
    workspace_id: Annotated[
        int | None, typer.Option(help="Workspace of the binding to rebuild.")
    ] = None,
    auth_id: Annotated[
        int | None, typer.Option(help="The binding (auth_id) to rebuild.")
    ] = None,
    all_bindings: Annotated[
        bool,
        typer.Option(
            "--all", help="Rebuild every binding that has synced, in every workspace."
        ),
    ] = False,
) -> None:
    """Rebuild options documents from the database and print what changed."""
    if all_bindings == (workspace_id is not None or auth_id is not None):
        raise typer.BadParameter("give --workspace-id and --auth-id, or --all")
    if not all_bindings and (workspace_id is None or auth_id is None):
        raise typer.BadParameter("--workspace-id and --auth-id go together")
    settings = Settings()
    configure_logging(
        level=settings.log_level, fmt=settings.log_format, service="options-cache"
    )
    targets = None if all_bindings else [(workspace_id or 0, auth_id or 0)]

    async def main() -> list[RebuildOutcome]:
        engine = create_engine(settings)
        try:
            return await rebuild_bindings(
                create_sessionmaker(engine),
                targets=targets,
                topic_prefix=settings.kafka_topic_prefix,
            )
        finally:
            await engine.dispose()

    outcomes = asyncio.run(main())
    for outcome in outcomes:
        typer.echo(outcome.line())
    changed = sum(outcome.outcome == "changed" for outcome in outcomes)
    missing = sum(outcome.outcome == "not_found" for outcome in outcomes)
    typer.echo(
        f"rebuilt {len(outcomes) - missing} binding(s): {changed} changed, "
        f"{len(outcomes) - missing - changed} unchanged, {missing} not found"
    )
    if not all_bindings and missing:
        raise typer.Exit(1)
