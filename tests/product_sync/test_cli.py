"""``gmv products sync``: a shell request joins the pair's active run, like the API."""

from __future__ import annotations

from collections.abc import Callable

from product_sync_support import make_runtime, seed_pair, world
from typer.testing import CliRunner

from gmv_common.settings import Settings
from gmv_product_sync.cli import app, request_and_wait


async def test_cli_request_starts_a_run_then_joins_it(
    sqlite_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(database_url=sqlite_url)
    runtime = make_runtime(settings)
    pair = await seed_pair(runtime.sessionmaker, runtime.keyring, world(products=5))
    await runtime.close()
    options = {
        "workspace_id": pair.workspace_id,
        "auth_id": pair.auth_id,
        "advertiser_id": pair.advertiser_id,
        "store_id": pair.store_id,
        "eligibility": "gmv_max",
        "mode": "full",
        "wait_seconds": 0.0,
    }

    first = await request_and_wait(settings, **options)
    second = await request_and_wait(settings, **options)

    assert first["created"] is True
    assert second == {"run_id": first["run_id"], "created": False}


def test_cli_refuses_an_unknown_eligibility() -> None:
    result = CliRunner().invoke(
        app,
        [
            "sync",
            "--workspace-id=1",
            "--auth-id=1",
            "--advertiser-id=1",
            "--store-id=2",
            "--eligibility=video",
        ],
    )

    assert result.exit_code == 2
