"""A small, fixed demo sandbox for the embedded development mode.

``build_demo()`` returns the same world, app credentials and access token on every
start (all derived from the seed), so a development database that stored the token
keeps working after a restart. It prints nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from gmv_sandbox.auth import DeveloperApp
from gmv_sandbox.state import SandboxState
from gmv_sandbox.world import WorldSpec

DEMO_SEED = 7
DEMO_SPEC = WorldSpec(
    seed=DEMO_SEED,
    business_centers=2,
    advertisers=6,
    stores_per_advertiser=2,
    products_per_store=30,
    product_count_jitter=0.6,
    multi_bc_advertiser_share=0.3,
    orphan_advertiser_share=0.2,
    shared_store_share=0.2,
)


@dataclass(frozen=True, slots=True)
class DemoSandbox:
    """The demo state, its one developer app and a token for every advertiser."""

    state: SandboxState
    app: DeveloperApp
    access_token: str


def _derived_hex(seed: int, label: str) -> str:
    return hashlib.blake2b(f"{seed}:{label}".encode(), digest_size=20).hexdigest()


def build_demo(*, seed: int = DEMO_SEED, qps: int = 10) -> DemoSandbox:
    """The demo world (2 business centers, 6 advertisers, 12 stores) and one app."""
    state = SandboxState.generate(replace(DEMO_SPEC, seed=seed), fault_seed=seed)
    app = state.create_app(
        app_id=str(7_300_000_000_000_000_000 + seed),
        secret=_derived_hex(seed, "secret"),
        name="GMV demo app",
        qps=qps,
    )
    token = state.issue_token(
        app.app_id, None, access_token=_derived_hex(seed, "access_token")
    )
    return DemoSandbox(state=state, app=app, access_token=token.access_token)


def build_demo_state(*, seed: int = DEMO_SEED, qps: int = 10) -> SandboxState:
    """Only the state of ``build_demo``."""
    return build_demo(seed=seed, qps=qps).state
