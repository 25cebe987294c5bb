"""Helpers of the sandbox tests: a hand-moved clock and a client-side sync walk."""

from __future__ import annotations

import json
from typing import Any

import httpx

from gmv_sandbox import DeveloperApp, WorldSpec

API = "/open_api/v1.3/"

SMALL_SPEC = WorldSpec(
    seed=11,
    business_centers=3,
    advertisers=10,
    stores_per_advertiser=2,
    products_per_store=23,
    product_count_jitter=0.5,
    multi_bc_advertiser_share=0.3,
    orphan_advertiser_share=0.2,
    shared_store_share=0.3,
)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def tiktok_get(
    client: httpx.AsyncClient, path: str, **params: Any
) -> dict[str, Any]:
    """GET with lists and dicts JSON-encoded, as TikTok wants; returns the envelope."""
    encoded = {
        name: json.dumps(value) if isinstance(value, list | dict) else value
        for name, value in params.items()
    }
    response = await client.get(path, params=encoded)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def all_pages(
    client: httpx.AsyncClient, path: str, list_key: str, **params: Any
) -> tuple[list[dict[str, Any]], list[dict[str, int]]]:
    """Every item of a paged endpoint, walking ``page`` until ``total_page``."""
    items: list[dict[str, Any]] = []
    infos: list[dict[str, int]] = []
    page = 1
    while True:
        body = await tiktok_get(client, path, page=page, **params)
        assert body["code"] == 0, body
        items.extend(body["data"][list_key])
        infos.append(body["data"]["page_info"])
        if page >= body["data"]["page_info"]["total_page"]:
            return items, infos
        page += 1


async def walk_sync(
    client: httpx.AsyncClient,
    app: DeveloperApp,
    *,
    ad_creation_eligible: str | None = None,
) -> dict[str, Any]:
    """What a complete metadata + product sync collects, shaped like ``snapshot``."""
    centers, _ = await all_pages(client, "bc/get/", "list", page_size=50)
    listed = await tiktok_get(
        client, "oauth2/advertiser/get/", app_id=app.app_id, secret=app.secret
    )
    advertisers = listed["data"]["list"]
    ids = [a["advertiser_id"] for a in advertisers]
    info: list[dict[str, Any]] = []
    for start in range(0, len(ids), 100):
        body = await tiktok_get(
            client, "advertiser/info/", advertiser_ids=ids[start : start + 100]
        )
        info.extend(body["data"]["list"])
    stores: dict[str, Any] = {}
    gmv_max_stores: dict[str, Any] = {}
    products: list[dict[str, Any]] = []
    filtering = (
        {"ad_creation_eligible": ad_creation_eligible} if ad_creation_eligible else None
    )
    for advertiser_id in ids:
        body = await tiktok_get(client, "store/list/", advertiser_id=advertiser_id)
        stores[advertiser_id] = body["data"]["stores"]
        body = await tiktok_get(
            client, "gmv_max/store/list/", advertiser_id=advertiser_id
        )
        gmv_max_stores[advertiser_id] = body["data"]["store_list"]
        for store in stores[advertiser_id]:
            extra = {"filtering": filtering} if filtering else {}
            items, _ = await all_pages(
                client,
                "store/product/get/",
                "store_products",
                bc_id=store["store_authorized_bc_id"],
                store_id=store["store_id"],
                advertiser_id=advertiser_id,
                page_size=100,
                **extra,
            )
            products.append(
                {
                    "advertiser_id": advertiser_id,
                    "store_id": store["store_id"],
                    "bc_id": store["store_authorized_bc_id"],
                    "ad_creation_eligible": ad_creation_eligible,
                    "store_products": items,
                }
            )
    return {
        "business_centers": centers,
        "advertisers": advertisers,
        "advertiser_info": info,
        "stores": stores,
        "gmv_max_stores": gmv_max_stores,
        "products": products,
    }
