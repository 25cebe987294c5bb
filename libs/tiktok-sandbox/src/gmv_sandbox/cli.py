"""``sandbox``: serve a generated TikTok world over HTTP.

``app`` is a typer app whose callback runs the server, so the project CLI mounts it
with ``gmv_app.add_typer(gmv_sandbox.cli.app, name="sandbox")`` and gets
``gmv sandbox --port 8765 --advertisers 1000``. ``python -m gmv_sandbox`` runs it
directly.
"""

from __future__ import annotations

import time

import typer

from gmv_sandbox.server import serve_forever
from gmv_sandbox.state import SandboxState
from gmv_sandbox.world import World, WorldSpec

app = typer.Typer(
    help="Run the TikTok API sandbox (a local simulator; never production).",
    add_completion=False,
)

_DEFAULTS = WorldSpec()


@app.callback(invoke_without_command=True)
def sandbox(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8765, help="Port to listen on."),
    seed: int = typer.Option(_DEFAULTS.seed, help="World seed: same seed, same world."),
    business_centers: int = typer.Option(_DEFAULTS.business_centers, min=1),
    advertisers: int = typer.Option(_DEFAULTS.advertisers, min=0),
    stores_per_advertiser: int = typer.Option(_DEFAULTS.stores_per_advertiser, min=0),
    products_per_store: int = typer.Option(_DEFAULTS.products_per_store, min=0),
    product_count_jitter: float = typer.Option(0.0, min=0.0, max=1.0),
    multi_bc_share: float = typer.Option(
        _DEFAULTS.multi_bc_advertiser_share, min=0.0, max=1.0
    ),
    orphan_share: float = typer.Option(
        _DEFAULTS.orphan_advertiser_share, min=0.0, max=1.0
    ),
    qps: int = typer.Option(10, min=0, help="App-wide QPS limit (0: unlimited)."),
    app_id: str | None = typer.Option(None, help="Developer app id to register."),
    secret: str | None = typer.Option(None, help="Its secret (generated if omitted)."),
    product_page_size_max: int = typer.Option(100, min=1),
    fault_seed: int = typer.Option(0, help="Seed of the fault-injection RNG."),
    log_level: str = typer.Option("info"),
) -> None:
    """Generate a world, register one app with an all-advertiser token, and serve."""
    spec = WorldSpec(
        seed=seed,
        business_centers=business_centers,
        advertisers=advertisers,
        stores_per_advertiser=stores_per_advertiser,
        products_per_store=products_per_store,
        product_count_jitter=product_count_jitter,
        multi_bc_advertiser_share=multi_bc_share,
        orphan_advertiser_share=orphan_share,
    )
    started = time.perf_counter()
    state = SandboxState(
        World.generate(spec),
        fault_seed=fault_seed,
        product_page_size_max=product_page_size_max,
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    developer_app = state.create_app(app_id=app_id, secret=secret, qps=qps)
    token = state.issue_token(developer_app.app_id)
    base = f"http://{host}:{port}"
    stats = state.world_stats()
    typer.echo(
        f"sandbox world: {stats['business_centers']} business centers, "
        f"{stats['advertisers']} advertisers, {stats['stores']} stores, "
        f"{stats['products']} products (built in {elapsed_ms:.0f} ms)"
    )
    typer.echo(f"TikTok base URL: {base}/open_api/v1.3/")
    typer.echo(f"sandbox app_id={developer_app.app_id} secret={developer_app.secret}")
    typer.echo(f"sandbox access token (all advertisers): {token.access_token}")
    typer.echo(
        f"consent page: {base}/portal/auth?app_id={developer_app.app_id}"
        "&redirect_uri=<your callback>&state=<state>"
    )
    typer.echo(f"admin API: {base}/_sandbox/  (OpenAPI at {base}/docs)")
    serve_forever(state, host=host, port=port, log_level=log_level)
