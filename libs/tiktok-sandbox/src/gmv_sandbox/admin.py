"""The admin API under ``/_sandbox/``: not TikTok, the sandbox's own controls.

Every route calls one ``SandboxState`` method; errors come back as
``{"error": {"code", "message", "details"}}`` with 400 or 404.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from fastapi import APIRouter, Body

from gmv_sandbox.auth import AccessToken, AuthCode, DeveloperApp
from gmv_sandbox.schemas import (
    AdvertiserCreate,
    AdvertiserMove,
    AppCreate,
    AppUpdate,
    AuthCodeCreate,
    EligibilityChange,
    FaultRuleBody,
    FaultSet,
    PartnerCenters,
    StoreCreate,
    TokenCreate,
    TokenRevoke,
    grant,
)
from gmv_sandbox.state import SandboxState
from gmv_sandbox.views import product_item
from gmv_sandbox.world import GMV_MAX, Advertiser, Product, Store

Changes = dict[str, Any]


def app_out(app: DeveloperApp) -> dict[str, Any]:
    """An app with its credentials (sandbox credentials are test data)."""
    return {
        "app_id": app.app_id,
        "secret": app.secret,
        "name": app.name,
        "qps": app.qps,
    }


def auth_code_out(code: AuthCode) -> dict[str, Any]:
    """An auth code and what it grants."""
    return {
        "auth_code": code.auth_code,
        "app_id": code.app_id,
        "advertiser_ids": _grant_out(code.advertiser_ids),
        "expires_at": code.expires_at,
    }


def token_out(token: AccessToken) -> dict[str, Any]:
    """A token and what it grants."""
    return {
        "access_token": token.access_token,
        "app_id": token.app_id,
        "advertiser_ids": _grant_out(token.advertiser_ids),
        "revoked": token.revoked,
        "revoked_advertisers": sorted(token.revoked_advertisers),
    }


def advertiser_out(advertiser: Advertiser) -> dict[str, Any]:
    """An advertiser with its business centers and stores."""
    return {**asdict(advertiser), "bc_ids": advertiser.bc_ids}


def store_out(state: SandboxState, store: Store) -> dict[str, Any]:
    """A store without its products, with their count."""
    item = {
        f.name: getattr(store, f.name) for f in fields(store) if f.name != "products"
    }
    item["advertiser_ids"] = list(store.advertiser_ids)
    item["product_count"] = state.world.product_count(store)
    item["materialized"] = store.materialized
    return item


def product_out(product: Product) -> dict[str, Any]:
    """A product with every conditional field and its eligibility overrides."""
    return {
        **product_item(product, GMV_MAX),
        "eligibility_overrides": [
            {
                "advertiser_id": advertiser_id,
                "ad_creation_eligible": kind,
                "eligible": ok,
            }
            for (advertiser_id, kind), ok in product.eligibility.items()
        ],
    }


def _grant_out(advertiser_ids: frozenset[str] | None) -> list[str] | str:
    return "all" if advertiser_ids is None else sorted(advertiser_ids)


def admin_router(state: SandboxState) -> APIRouter:
    """Routes bound to one state."""
    router = APIRouter(prefix="/_sandbox", tags=["sandbox admin"])
    _auth_routes(router, state)
    _world_routes(router, state)
    _store_routes(router, state)
    _control_routes(router, state)
    return router


def _auth_routes(router: APIRouter, state: SandboxState) -> None:
    @router.get("/apps")
    async def list_apps() -> list[dict[str, Any]]:
        return [app_out(app) for app in state.auths.apps.values()]

    @router.post("/apps", status_code=201)
    async def create_app(body: AppCreate) -> dict[str, Any]:
        return app_out(state.create_app(**body.model_dump()))

    @router.patch("/apps/{app_id}")
    async def update_app(app_id: str, body: AppUpdate) -> dict[str, Any]:
        return app_out(state.set_app_qps(app_id, body.qps))

    @router.post("/auth_codes", status_code=201)
    async def mint_auth_code(body: AuthCodeCreate) -> dict[str, Any]:
        code = state.mint_auth_code(
            body.app_id, grant(body.advertiser_ids), ttl_seconds=body.ttl_seconds
        )
        return auth_code_out(code)

    @router.post("/tokens", status_code=201)
    async def issue_token(body: TokenCreate) -> dict[str, Any]:
        return token_out(state.issue_token(body.app_id, grant(body.advertiser_ids)))

    @router.post("/tokens/revoke")
    async def revoke_token(body: TokenRevoke) -> dict[str, Any]:
        if body.advertiser_id is None:
            return token_out(state.revoke_token(body.access_token))
        return token_out(state.revoke_advertiser(body.access_token, body.advertiser_id))


def _world_routes(router: APIRouter, state: SandboxState) -> None:
    @router.get("/world")
    async def world_stats() -> dict[str, Any]:
        return {"spec": asdict(state.world.spec), "stats": state.world_stats()}

    @router.get("/business_centers")
    async def list_business_centers() -> list[dict[str, Any]]:
        with state.lock:
            return [asdict(c) for c in state.world.business_centers.values()]

    @router.post("/business_centers", status_code=201)
    async def add_business_center(
        body: Changes = Body(default_factory=dict),
    ) -> Changes:
        return asdict(state.add_business_center(**body))

    @router.patch("/business_centers/{bc_id}")
    async def update_business_center(bc_id: str, body: Changes = Body()) -> Changes:
        return asdict(state.update_business_center(bc_id, **body))

    @router.delete("/business_centers/{bc_id}", status_code=204)
    async def remove_business_center(bc_id: str) -> None:
        state.remove_business_center(bc_id)

    @router.get("/advertisers")
    async def list_advertisers() -> list[dict[str, Any]]:
        with state.lock:
            return [advertiser_out(a) for a in state.world.advertisers.values()]

    @router.post("/advertisers", status_code=201)
    async def add_advertiser(body: AdvertiserCreate) -> dict[str, Any]:
        advertiser = state.add_advertiser(
            owner_bc_id=body.owner_bc_id,
            partner_bc_ids=body.partner_bc_ids,
            stores=body.stores,
            products_per_store=body.products_per_store,
            **body.fields,
        )
        return advertiser_out(advertiser)

    @router.patch("/advertisers/{advertiser_id}")
    async def update_advertiser(advertiser_id: str, body: Changes = Body()) -> Changes:
        return advertiser_out(state.update_advertiser(advertiser_id, **body))

    @router.delete("/advertisers/{advertiser_id}", status_code=204)
    async def remove_advertiser(advertiser_id: str) -> None:
        state.remove_advertiser(advertiser_id)

    @router.post("/advertisers/{advertiser_id}/move")
    async def move_advertiser(advertiser_id: str, body: AdvertiserMove) -> Changes:
        moved = state.move_advertiser(
            advertiser_id, body.to_bc_id, keep_old_as_partner=body.keep_old_as_partner
        )
        return advertiser_out(moved)

    @router.put("/advertisers/{advertiser_id}/partner_bcs")
    async def set_partners(advertiser_id: str, body: PartnerCenters) -> Changes:
        return advertiser_out(
            state.set_partner_business_centers(advertiser_id, body.bc_ids)
        )


def _store_routes(router: APIRouter, state: SandboxState) -> None:
    @router.get("/stores/{store_id}")
    async def get_store(store_id: str) -> dict[str, Any]:
        with state.lock:
            return store_out(state, state.world.store(store_id))

    @router.post("/stores", status_code=201)
    async def add_store(body: StoreCreate) -> dict[str, Any]:
        store = state.add_store(
            body.advertiser_id,
            store_authorized_bc_id=body.store_authorized_bc_id,
            products=body.products,
            **body.fields,
        )
        return store_out(state, store)

    @router.patch("/stores/{store_id}")
    async def update_store(store_id: str, body: Changes = Body()) -> Changes:
        return store_out(state, state.update_store(store_id, **body))

    @router.delete("/stores/{store_id}", status_code=204)
    async def remove_store(store_id: str) -> None:
        state.remove_store(store_id)

    @router.put("/stores/{store_id}/advertisers/{advertiser_id}")
    async def link_store(store_id: str, advertiser_id: str) -> dict[str, Any]:
        return store_out(state, state.link_store(store_id, advertiser_id))

    @router.delete("/stores/{store_id}/advertisers/{advertiser_id}")
    async def unlink_store(store_id: str, advertiser_id: str) -> dict[str, Any]:
        return store_out(state, state.unlink_store(store_id, advertiser_id))

    @router.get("/stores/{store_id}/expected_products")
    async def expected_products(
        store_id: str,
        advertiser_id: str | None = None,
        ad_creation_eligible: str | None = None,
    ) -> list[dict[str, Any]]:
        return state.expected_products(
            store_id,
            advertiser_id=advertiser_id,
            ad_creation_eligible=ad_creation_eligible,
        )

    @router.post("/stores/{store_id}/products", status_code=201)
    async def add_product(
        store_id: str, body: Changes = Body(default_factory=dict)
    ) -> Changes:
        return product_out(state.add_product(store_id, **body))

    @router.patch("/stores/{store_id}/products/{item_group_id}")
    async def update_product(
        store_id: str, item_group_id: str, body: Changes = Body()
    ) -> Changes:
        return product_out(state.update_product(store_id, item_group_id, **body))

    @router.delete("/stores/{store_id}/products/{item_group_id}", status_code=204)
    async def remove_product(store_id: str, item_group_id: str) -> None:
        state.remove_product(store_id, item_group_id)

    @router.put("/stores/{store_id}/products/{item_group_id}/eligibility")
    async def set_eligibility(
        store_id: str, item_group_id: str, body: EligibilityChange
    ) -> dict[str, Any]:
        product = state.set_eligibility(
            store_id,
            item_group_id,
            ad_creation_eligible=body.ad_creation_eligible,
            eligible=body.eligible,
            advertiser_id=body.advertiser_id,
        )
        return product_out(product)


def _control_routes(router: APIRouter, state: SandboxState) -> None:
    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/faults")
    async def list_faults() -> list[dict[str, Any]]:
        return state.fault_rules()

    @router.put("/faults")
    async def set_faults(body: FaultSet) -> list[dict[str, Any]]:
        state.set_faults([rule.to_rule() for rule in body.rules], seed=body.seed)
        return state.fault_rules()

    @router.post("/faults", status_code=201)
    async def add_fault(body: FaultRuleBody) -> list[dict[str, Any]]:
        state.add_fault(body.to_rule())
        return state.fault_rules()

    @router.delete("/faults", status_code=204)
    async def clear_faults() -> None:
        state.clear_faults()

    @router.get("/counters")
    async def counters() -> dict[str, Any]:
        return state.counters()

    @router.post("/counters/reset", status_code=204)
    async def reset_counters() -> None:
        state.reset_counters()

    @router.get("/snapshot")
    async def snapshot(
        access_token: str | None = None,
        app_id: str | None = None,
        include_products: bool = False,
        ad_creation_eligible: str | None = None,
    ) -> dict[str, Any]:
        return state.snapshot(
            access_token=access_token,
            app_id=app_id,
            include_products=include_products,
            ad_creation_eligible=ad_creation_eligible,
        )
