"""``gmv products ...``: request a product sync from a shell (mounted by the ``gmv`` CLI).

    gmv products sync --workspace-id 2 --auth-id 1 --advertiser-id 7... --store-id 7... \
        [--eligibility gmv_max|ads|all] [--mode full|incremental] [--wait 120]

The request goes through the same guards as the API (joins a run already queued or
running for the pair) and is written to the outbox; a running product-sync service picks
it up. With ``--wait`` the command polls the run and prints its final stats. Exit code 0
when the run was accepted (and, with ``--wait``, did not fail), 1 otherwise.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from gmv_common.db.models import SyncRun
from gmv_common.logging import configure_logging
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_common.sync.runs import request_product_sync

app = typer.Typer(help="Product catalog syncs.", no_args_is_help=True)

FINAL_STATUSES = ("succeeded", "partial", "failed")


async def request_and_wait(
    settings: Settings,
    *,
    workspace_id: int,
    auth_id: int,
    advertiser_id: str,
    store_id: str,
    eligibility: str,
    mode: str,
    wait_seconds: float,
) -> dict[str, Any]:
    """Request (or join) the pair's sync; with ``wait_seconds`` wait for its outcome."""
    runtime = Runtime.create(settings)
    try:
        async with runtime.sessionmaker.begin() as session:
            requested = await request_product_sync(
                session,
                workspace_id=workspace_id,
                auth_id=auth_id,
                advertiser_id=advertiser_id,
                store_id=store_id,
                bc_id=None,
                eligibility=eligibility,
                trigger="manual",
                topic_prefix=settings.kafka_topic_prefix,
                mode=mode,
            )
        run_id = requested.run.id
        outcome: dict[str, Any] = {"run_id": run_id, "created": requested.created}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while loop.time() < deadline:
            async with runtime.sessionmaker() as session:
                run = await session.get(SyncRun, run_id)
            if run is not None and run.status in FINAL_STATUSES:
                outcome.update(
                    status=run.status, error_code=run.error_code, stats=run.stats
                )
                break
            await asyncio.sleep(1.0)
        return outcome
    finally:
        await runtime.close()


@app.command("sync")
def sync_command(
    workspace_id: Annotated[int, typer.Option(help="Workspace of the binding.")],
    auth_id: Annotated[int, typer.Option(help="The binding (auth_id).")],
    advertiser_id: Annotated[str, typer.Option(help="TikTok advertiser_id.")],
    store_id: Annotated[str, typer.Option(help="TikTok Shop store_id.")],
    eligibility: Annotated[
        str, typer.Option(help="gmv_max, ads (custom shop ads) or all.")
    ] = "gmv_max",
    mode: Annotated[str, typer.Option(help="full or incremental.")] = "full",
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for the run to finish (0: don't).")
    ] = 0.0,
) -> None:
    """Sync the products of one advertiser/store pair."""
    if eligibility not in ("gmv_max", "ads", "all") or mode not in (
        "full",
        "incremental",
    ):
        raise typer.BadParameter("eligibility: gmv_max|ads|all; mode: full|incremental")
    configure_logging(level="WARNING", fmt="console", service="cli")
    outcome = asyncio.run(
        request_and_wait(
            Settings(),
            workspace_id=workspace_id,
            auth_id=auth_id,
            advertiser_id=advertiser_id,
            store_id=store_id,
            eligibility=eligibility,
            mode=mode,
            wait_seconds=wait,
        )
    )
    typer.echo(json.dumps(outcome, indent=2, default=str))
    if outcome.get("status") == "failed":
        raise typer.Exit(1)
