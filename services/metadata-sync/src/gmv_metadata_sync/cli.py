"""``gmv repair ...``: the metadata repair tools (mounted by the ``gmv`` CLI).

    gmv repair advertiser-info --workspace-id 2 --auth-id 1 --qps 3.0 [--dry-run] [--json]

Reads ``DATABASE_URL``, ``CRYPTO_KEYS`` etc. from the settings. Exit code 0 when every
binding was repaired, 1 when any could not be (its error is printed), 2 on bad input.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from tqdm import tqdm

from gmv_common.bindings import build_rate_limiter, build_tiktok_client
from gmv_common.logging import configure_logging
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_common.tiktok import RateLimiter, TikTokClient
from gmv_metadata_sync.repair import (
    CappedRateLimiter,
    RepairReport,
    repair_advertiser_info,
)

repair_app = typer.Typer(help="Repair synced TikTok metadata.", no_args_is_help=True)

ClientFactoryBuilder = Callable[
    [Settings, RateLimiter], Callable[[str | None], TikTokClient]
]


def _default_clients(
    settings: Settings, limiter: RateLimiter
) -> Callable[[str | None], TikTokClient]:
    def factory(base_url: str | None) -> TikTokClient:
        return build_tiktok_client(settings, limiter=limiter, base_url=base_url)

    return factory


async def run_repair(
    settings: Settings,
    *,
    workspace_id: int | None,
    auth_id: int | None,
    qps: float,
    dry_run: bool,
    show_progress: bool,
    clients: ClientFactoryBuilder = _default_clients,
    shared_limiter: RateLimiter | None = None,
) -> RepairReport:
    """The ``advertiser-info`` repair with its own runtime (no bus needed).

    ``shared_limiter`` defaults to the app-wide database limiter every service uses.
    """
    runtime = Runtime.create(settings)
    shared = shared_limiter or build_rate_limiter(runtime.sessionmaker, settings)
    limiter = CappedRateLimiter(shared, cap_qps=qps)
    bars: list[tqdm[Any]] = []

    def set_total(total: int) -> None:
        if show_progress and total:
            bars.append(tqdm(total=total, unit="adv", desc="advertiser/info"))

    def advance(count: int) -> None:
        for bar in bars:
            bar.update(count)

    try:
        return await repair_advertiser_info(
            runtime.sessionmaker,
            runtime.keyring,
            client_factory=clients(settings, limiter),
            limiter=limiter,
            topic_prefix=settings.kafka_topic_prefix,
            workspace_id=workspace_id,
            auth_id=auth_id,
            dry_run=dry_run,
            on_total=set_total,
            progress=advance,
        )
    finally:
        for bar in bars:
            bar.close()
        await runtime.engine.dispose()


def render_text(report: RepairReport) -> str:
    if not report.bindings:
        return "No advertisers require repair."
    lines = [f"Found {len(report.bindings)} binding(s) with advertisers to repair."]
    for binding in report.bindings:
        status = "OK" if binding.ok else "ERROR"
        line = (
            f"[{status}] workspace={binding.workspace_id} auth_id={binding.auth_id}: "
            f"candidates={binding.candidates} batches={binding.batches} "
            f"updated={binding.updated} bc_backfilled={binding.bc_backfilled}"
        )
        if binding.errors:
            line += " errors=" + "; ".join(binding.errors)
        lines.append(line)
    totals = report.totals()
    prefix = "Dry run, nothing written: " if report.dry_run else "Completed: "
    lines.append(
        f"{prefix}{totals['bindings']} binding(s), {totals['batches']} API batch(es), "
        f"{totals['updated']} advertiser(s) updated, {totals['bc_backfilled']} bc_id(s) "
        f"inferred, {totals['failed_bindings']} binding(s) failed."
    )
    return "\n".join(lines)


@repair_app.command("advertiser-info")
def advertiser_info(
    workspace_id: Annotated[
        int | None, typer.Option("--workspace-id", help="Only this workspace.")
    ] = None,
    auth_id: Annotated[
        int | None, typer.Option("--auth-id", help="Only this binding.")
    ] = None,
    qps: Annotated[
        float,
        typer.Option(help="Cap on calls per second (the app budget still applies)."),
    ] = 3.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and report, write nothing.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON.")
    ] = False,
) -> None:
    """Rehydrate advertisers missing name, timezone or business center."""
    if qps <= 0:
        typer.echo("error: --qps must be positive", err=True)
        raise typer.Exit(2)
    settings = Settings()
    configure_logging(level="WARNING", fmt=settings.log_format, service="gmv-repair")
    report = asyncio.run(
        run_repair(
            settings,
            workspace_id=workspace_id,
            auth_id=auth_id,
            qps=qps,
            dry_run=dry_run,
            show_progress=not json_output,
        )
    )
    if json_output:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        typer.echo(render_text(report))
    raise typer.Exit(0 if report.ok else 1)
