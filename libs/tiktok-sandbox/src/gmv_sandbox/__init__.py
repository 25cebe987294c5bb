"""gmv_sandbox: a local simulator of the TikTok API for Business endpoints GMV calls.

A test and demo double, never used in production. It serves, under
``/open_api/v1.3/``, the real paths, parameters (JSON-encoded list and object query
parameters), envelope ``{code, message, request_id, data}`` (HTTP 200 for business
errors), page sizes, error codes and app-wide QPS limit of:

    POST oauth2/access_token/     POST oauth2/revoke_token/   GET oauth2/advertiser/get/
    GET  bc/get/                  GET  advertiser/info/       GET store/list/
    GET  store/product/get/       GET  gmv_max/store/list/

Public API (stable):

World and data
    ``WorldSpec(seed, business_centers, advertisers, stores_per_advertiser,
    products_per_store, product_count_jitter, multi_bc_advertiser_share,
    orphan_advertiser_share, shared_store_share, gmv_max_eligible_share,
    custom_shop_ads_eligible_share, image_base_url)``; ``World.generate(spec)``;
    ``BusinessCenter``, ``Advertiser``, ``Store``, ``Product``; ``GMV_MAX``,
    ``CUSTOM_SHOP_ADS``.

State (one running sandbox; every method is thread-safe)
    ``SandboxState(world, *, fault_seed=0, product_page_size_max=100)`` or
    ``SandboxState.generate(spec)``. Apps and auth: ``create_app``,
    ``set_app_qps``, ``mint_auth_code``, ``issue_token``, ``revoke_token``,
    ``revoke_advertiser``. World: ``add_/update_/remove_business_center``,
    ``add_/update_/remove_advertiser``, ``move_advertiser``,
    ``set_partner_business_centers``, ``add_/update_/remove_store``,
    ``link_store``, ``unlink_store``, ``add_/update_/remove_product``,
    ``set_eligibility``, ``world_stats``. Faults: ``set_faults``, ``add_fault``,
    ``clear_faults``, ``fault_rules`` with ``FaultRule``. Counters: ``counters``,
    ``reset_counters``. Expectations: ``snapshot``, ``expected_products``.

HTTP
    ``create_app(state) -> FastAPI`` (TikTok surface, ``/portal/auth`` consent
    stand-in, admin API under ``/_sandbox/``); ``DroppedConnection`` (what an
    injected dropped connection raises through ``httpx.ASGITransport``).

Running
    ``SandboxServer(state).start()`` / ``with SandboxServer(state) as server`` and
    ``serve_in_thread(state)``: uvicorn on a free port in a background thread,
    ``server.base_url`` / ``server.api_base_url``. ``gmv_sandbox.cli.app``: the
    typer ``sandbox`` command. ``build_demo()`` / ``build_demo_state()``: the fixed
    demo world with one app and token.
"""

from gmv_sandbox.app import DroppedConnection, create_app
from gmv_sandbox.auth import AccessToken, AuthCode, DeveloperApp
from gmv_sandbox.demo import DemoSandbox, build_demo, build_demo_state
from gmv_sandbox.errors import (
    InvalidChange,
    SandboxAdminError,
    TikTokCode,
    TikTokError,
    UnknownObject,
)
from gmv_sandbox.faults import FaultRule
from gmv_sandbox.server import SandboxServer, serve_in_thread
from gmv_sandbox.state import SandboxState
from gmv_sandbox.world import (
    CUSTOM_SHOP_ADS,
    GMV_MAX,
    Advertiser,
    BusinessCenter,
    Product,
    Store,
    World,
    WorldSpec,
)

__all__ = [
    "CUSTOM_SHOP_ADS",
    "GMV_MAX",
    "AccessToken",
    "Advertiser",
    "AuthCode",
    "BusinessCenter",
    "DemoSandbox",
    "DeveloperApp",
    "DroppedConnection",
    "FaultRule",
    "InvalidChange",
    "Product",
    "SandboxAdminError",
    "SandboxServer",
    "SandboxState",
    "Store",
    "TikTokCode",
    "TikTokError",
    "UnknownObject",
    "World",
    "WorldSpec",
    "build_demo",
    "build_demo_state",
    "create_app",
    "serve_in_thread",
]
