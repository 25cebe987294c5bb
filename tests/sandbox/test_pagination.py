"""Paging through every endpoint, and a full sync against the snapshot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sandbox_support import all_pages, tiktok_get, walk_sync

from gmv_sandbox import (
    AccessToken,
    DeveloperApp,
    SandboxState,
    World,
    WorldSpec,
    create_app,
)


def _largest_store(state: SandboxState) -> tuple[str, str]:
    store = max(state.world.stores.values(), key=state.world.product_count)
    return store.store_id, store.store_authorized_bc_id


async def test_bc_get_pages_through_every_center(
    client: httpx.AsyncClient, state: SandboxState, token: AccessToken
) -> None:
    for _ in range(4):
        state.add_business_center()

    items, infos = await all_pages(client, "bc/get/", "list", page_size=2)

    expected = state.snapshot(access_token=token.access_token)["business_centers"]
    assert items == expected
    assert len(infos) == infos[0]["total_page"] == 4
    assert {info["total_number"] for info in infos} == {7}
    assert [info["page"] for info in infos] == [1, 2, 3, 4]


async def test_bc_get_page_size_limits(client: httpx.AsyncClient) -> None:
    at_limit = await tiktok_get(client, "bc/get/", page_size=50)
    over = await tiktok_get(client, "bc/get/", page_size=51)
    zero = await tiktok_get(client, "bc/get/", page_size=0)
    page_zero = await tiktok_get(client, "bc/get/", page=0)
    not_number = await tiktok_get(client, "bc/get/", page="two")

    assert at_limit["code"] == 0
    assert [over["code"], zero["code"], page_zero["code"], not_number["code"]] == [
        40002
    ] * 4


async def test_bc_get_defaults_to_page_size_10(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    for _ in range(9):
        state.add_business_center()

    body = await tiktok_get(client, "bc/get/")

    assert len(body["data"]["list"]) == 10
    assert body["data"]["page_info"] == {
        "page": 1,
        "page_size": 10,
        "total_number": 12,
        "total_page": 2,
    }


async def test_page_past_the_end_is_empty(client: httpx.AsyncClient) -> None:
    body = await tiktok_get(client, "bc/get/", page=9)

    assert body["code"] == 0
    assert body["data"]["list"] == []
    assert body["data"]["page_info"]["page"] == 9


async def test_products_page_through_to_the_expected_list(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    store_id, bc_id = _largest_store(state)

    items, infos = await all_pages(
        client,
        "store/product/get/",
        "store_products",
        bc_id=bc_id,
        store_id=store_id,
        page_size=7,
    )

    expected = state.expected_products(store_id)
    total = len(expected)
    assert items == expected
    assert infos[0]["total_number"] == total
    assert infos[0]["total_page"] == -(-total // 7)
    assert len({i["item_group_id"] for i in items}) == total


async def test_eligibility_filter_pages_match_the_expectation(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    store = next(s for s in state.world.stores.values() if len(s.advertiser_ids) > 1)
    advertiser_id = store.advertiser_ids[1]

    items, infos = await all_pages(
        client,
        "store/product/get/",
        "store_products",
        bc_id=store.store_authorized_bc_id,
        store_id=store.store_id,
        advertiser_id=advertiser_id,
        filtering={"ad_creation_eligible": "GMV_MAX"},
        page_size=5,
    )

    expected = state.expected_products(
        store.store_id, advertiser_id=advertiser_id, ad_creation_eligible="GMV_MAX"
    )
    assert items == expected
    assert infos[0]["total_number"] < state.world.product_count(store)
    assert all(item["status"] == "AVAILABLE" for item in items)


async def test_product_page_size_maximum_is_configurable() -> None:
    state = SandboxState(World.generate(WorldSpec(seed=2)), product_page_size_max=20)
    narrow = state.create_app(qps=0)
    access = state.issue_token(narrow.app_id)
    store = next(iter(state.world.stores.values()))
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://sandbox/open_api/v1.3/",
        headers={"Access-Token": access.access_token},
    ) as client:
        base = {"bc_id": store.store_authorized_bc_id, "store_id": store.store_id}
        ok = await tiktok_get(client, "store/product/get/", page_size=20, **base)
        over = await tiktok_get(client, "store/product/get/", page_size=21, **base)

    assert ok["code"] == 0
    assert over["code"] == 40002


async def test_product_name_and_ids_filters(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    store_id, bc_id = _largest_store(state)
    products = state.expected_products(store_id)
    word = products[0]["title"].split(" ")[1]
    picked = [p["item_group_id"] for p in products[:3]]

    by_name = await tiktok_get(
        client,
        "store/product/get/",
        bc_id=bc_id,
        store_id=store_id,
        page_size=100,
        filtering={"product_name": word.lower()},
    )
    by_ids = await tiktok_get(
        client,
        "store/product/get/",
        bc_id=bc_id,
        store_id=store_id,
        filtering={"item_group_ids": picked},
    )

    names = [p["title"] for p in by_name["data"]["store_products"]]
    assert names
    assert all(word.lower() in name.lower() for name in names)
    assert [p["item_group_id"] for p in by_ids["data"]["store_products"]] == picked


@pytest.mark.parametrize(
    ("sort_field", "sort_type", "key"),
    [
        ("min_price", "ASC", lambda p: float(p["min_price"])),
        ("historical_sales", "DESC", lambda p: -p["historical_sales"]),
    ],
)
async def test_products_sort(
    client: httpx.AsyncClient,
    state: SandboxState,
    sort_field: str,
    sort_type: str,
    key: Callable[[dict[str, Any]], float],
) -> None:
    store_id, bc_id = _largest_store(state)

    items, _ = await all_pages(
        client,
        "store/product/get/",
        "store_products",
        bc_id=bc_id,
        store_id=store_id,
        sort_field=sort_field,
        sort_type=sort_type,
        page_size=9,
    )

    assert items == sorted(items, key=key)


async def test_store_list_pages_when_asked(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    advertiser = next(a for a in state.world.advertisers.values() if a.store_ids)
    for _ in range(3):
        state.add_store(advertiser.advertiser_id, products=1)

    everything = await tiktok_get(
        client, "store/list/", advertiser_id=advertiser.advertiser_id
    )
    paged, infos = await all_pages(
        client,
        "store/list/",
        "stores",
        advertiser_id=advertiser.advertiser_id,
        page_size=2,
    )

    assert paged == everything["data"]["stores"]
    assert everything["data"]["page_info"]["total_page"] == 1
    assert infos[0]["total_number"] == len(advertiser.store_ids)


@pytest.mark.parametrize("ad_creation_eligible", [None, "GMV_MAX", "CUSTOM_SHOP_ADS"])
async def test_a_full_sync_sees_exactly_the_snapshot(
    client: httpx.AsyncClient,
    state: SandboxState,
    developer_app: DeveloperApp,
    token: AccessToken,
    ad_creation_eligible: str | None,
) -> None:
    synced = await walk_sync(
        client, developer_app, ad_creation_eligible=ad_creation_eligible
    )

    expected = state.snapshot(
        access_token=token.access_token,
        include_products=True,
        ad_creation_eligible=ad_creation_eligible,
    )
    expected.pop("revision")
    assert synced == expected


async def test_a_narrow_token_syncs_only_its_advertisers(
    state: SandboxState, developer_app: DeveloperApp
) -> None:
    multi = next(a for a in state.world.advertisers.values() if a.partner_bc_ids)
    narrow = state.issue_token(developer_app.app_id, [multi.advertiser_id])
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://sandbox/open_api/v1.3/",
        headers={"Access-Token": narrow.access_token},
    ) as client:
        synced = await walk_sync(client, developer_app)

    expected = state.snapshot(access_token=narrow.access_token, include_products=True)
    expected.pop("revision")
    assert synced == expected
    assert [a["advertiser_id"] for a in synced["advertisers"]] == [multi.advertiser_id]
    assert {c["bc_info"]["bc_id"] for c in synced["business_centers"]} == set(
        multi.bc_ids
    )
