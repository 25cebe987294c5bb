"""Cached lists: business centers, advertisers, stores and products of one account."""

from __future__ import annotations

import httpx
from gateway_support import API_BASE, Seed, Tenant, bearer

from gmv_common.db.models import Binding


async def _account(seed: Seed, *, status: str = "active") -> tuple[Tenant, Binding]:
    tenant = await seed.tenant()
    app = await seed.provider_app()
    binding = await seed.binding(workspace_id=tenant.id, app=app, status=status)
    await seed.catalog(binding=binding)
    return tenant, binding


def _path(tenant: Tenant, binding: Binding, tail: str) -> str:
    return (
        f"{API_BASE}/{tenant.id}/providers/tiktok-business/accounts/{binding.id}/{tail}"
    )


async def test_business_centers_leave_out_tombstones_and_raw(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)

    response = await client.get(
        _path(tenant, binding, "business-centers"), headers=bearer(tenant.member_token)
    )

    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["bc_id"] for item in items] == ["bc-1", "bc-2"]
    assert all(item["raw"] is None for item in items)


async def test_advertisers_filter_by_owner_and_linked_center(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)
    headers = bearer(tenant.member_token)

    owned = await client.get(
        _path(tenant, binding, "advertisers"),
        params={"owner_bc_id": "bc-2"},
        headers=headers,
    )
    linked = await client.get(
        _path(tenant, binding, "advertisers"), params={"bc_id": "bc-1"}, headers=headers
    )
    with_raw = await client.get(
        _path(tenant, binding, "advertisers"),
        params={"include_raw": 1},
        headers=headers,
    )

    assert [item["advertiser_id"] for item in owned.json()["items"]] == ["adv-3"]
    assert [item["advertiser_id"] for item in linked.json()["items"]] == [
        "adv-1",
        "adv-2",
    ]
    assert with_raw.json()["items"][0]["raw"] == {"advertiser_id": "adv-1"}


async def test_stores_of_an_advertiser_follow_links(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)
    headers = bearer(tenant.member_token)

    filtered = await client.get(
        _path(tenant, binding, "stores"),
        params={"advertiser_id": "adv-3"},
        headers=headers,
    )
    older_path = await client.get(
        _path(tenant, binding, "advertisers/adv-1/stores"), headers=headers
    )
    everything = await client.get(_path(tenant, binding, "stores"), headers=headers)

    assert [item["store_id"] for item in filtered.json()["items"]] == ["store-2"]
    assert filtered.json()["items"][0]["advertiser_id"] == "adv-3"
    assert [item["store_id"] for item in older_path.json()["items"]] == ["store-1"]
    assert len(everything.json()["items"]) == 2


async def test_products_are_paged_sorted_and_exclude_tombstones(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)

    response = await client.get(
        _path(tenant, binding, "products"),
        params={"store_id": "store-1", "sort": "-price", "page": 1, "page_size": 3},
        headers=bearer(tenant.member_token),
    )

    body = response.json()
    assert response.status_code == 200
    assert body["total"] == 4
    assert [item["item_group_id"] for item in body["items"]] == ["p-3", "p-2", "p-1"]
    assert body["items"][0]["price_range"] == "USD 13.00 - 23.00"
    assert "raw" in body["items"][0]
    assert body["items"][0]["raw"] is None


async def test_products_filter_by_advertiser_eligibility_and_status(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)
    headers = bearer(tenant.member_token)

    eligible = await client.get(
        _path(tenant, binding, "products"),
        params={"advertiser_id": "adv-1", "eligibility": "gmv_max"},
        headers=headers,
    )
    in_store_pages = [
        await client.get(
            _path(tenant, binding, "products"),
            params={
                "advertiser_id": "adv-1",
                "eligibility": "gmv_max",
                "store_id": "store-1",
                "sort": "title",
                "page": page,
                "page_size": 1,
            },
            headers=headers,
        )
        for page in (1, 2, 3)
    ]
    available = await client.get(
        _path(tenant, binding, "products"),
        params={"status": "AVAILABLE", "sort": "item_group_id"},
        headers=headers,
    )
    missing_advertiser = await client.get(
        _path(tenant, binding, "products"),
        params={"eligibility": "gmv_max"},
        headers=headers,
    )

    assert sorted(i["item_group_id"] for i in eligible.json()["items"]) == [
        "p-0",
        "p-1",
    ]
    # Product D (p-1) sorts before Product E (p-0); the third page is past the end.
    assert [
        [i["item_group_id"] for i in page.json()["items"]] for page in in_store_pages
    ] == [["p-1"], ["p-0"], []]
    assert {page.json()["total"] for page in in_store_pages} == {2}
    assert [i["item_group_id"] for i in available.json()["items"]] == ["p-0", "p-2"]
    assert missing_advertiser.status_code == 400
    assert missing_advertiser.json()["error"]["code"] == (
        "ADVERTISER_REQUIRED_FOR_GMV_MAX"
    )


async def test_products_page_size_above_200_is_400(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)

    response = await client.get(
        _path(tenant, binding, "products"),
        params={"page_size": 201},
        headers=bearer(tenant.member_token),
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "PAGE_SIZE_TOO_LARGE"


async def test_unknown_sort_is_422(client: httpx.AsyncClient, seed: Seed) -> None:
    tenant, binding = await _account(seed)

    response = await client.get(
        _path(tenant, binding, "products"),
        params={"sort": "raw_json"},
        headers=bearer(tenant.member_token),
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_FAILED"


async def test_revoked_account_stays_readable(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed, status="revoked")

    response = await client.get(
        _path(tenant, binding, "advertisers"), headers=bearer(tenant.member_token)
    )

    assert response.status_code == 200
    assert len(response.json()["items"]) == 3


async def test_missing_account_is_404(client: httpx.AsyncClient, seed: Seed) -> None:
    tenant = await seed.tenant()

    response = await client.get(
        f"{API_BASE}/{tenant.id}/providers/tiktok-business/accounts/424242/stores",
        headers=bearer(tenant.member_token),
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
