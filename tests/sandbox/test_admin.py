"""The admin API under /_sandbox/: apps, auth, world changes, faults, counters."""

from __future__ import annotations

from typing import Any

import httpx
from sandbox_support import API

from gmv_sandbox import SandboxState


async def _tiktok(
    client: httpx.AsyncClient, token: str, path: str, **params: str
) -> dict[str, Any]:
    response = await client.get(
        f"{API}{path}", params=params, headers={"Access-Token": token}
    )
    body: dict[str, Any] = response.json()
    return body


async def _admin_token(
    client: httpx.AsyncClient, **grant: Any
) -> tuple[dict[str, Any], str]:
    app = (await client.post("/_sandbox/apps", json={"qps": 0})).json()
    token = (
        await client.post("/_sandbox/tokens", json={"app_id": app["app_id"], **grant})
    ).json()
    return app, token["access_token"]


async def test_app_and_auth_code_through_the_admin_api(
    raw_client: httpx.AsyncClient,
) -> None:
    created = await raw_client.post(
        "/_sandbox/apps",
        json={"app_id": "7300000000000000777", "secret": "s3", "qps": 7},
    )
    minted = await raw_client.post(
        "/_sandbox/auth_codes", json={"app_id": "7300000000000000777"}
    )
    exchanged = await raw_client.post(
        f"{API}oauth2/access_token/",
        json={
            "app_id": "7300000000000000777",
            "secret": "s3",
            "auth_code": minted.json()["auth_code"],
        },
    )

    assert created.status_code == 201
    assert created.json()["qps"] == 7
    assert minted.json()["advertiser_ids"] == "all"
    assert exchanged.json()["code"] == 0


async def test_renaming_an_advertiser_shows_in_advertiser_info(
    raw_client: httpx.AsyncClient, state: SandboxState
) -> None:
    _, token = await _admin_token(raw_client)
    advertiser_id = next(iter(state.world.advertisers))

    patched = await raw_client.patch(
        f"/_sandbox/advertisers/{advertiser_id}",
        json={"name": "Renamed Ads", "status": "STATUS_DISABLE"},
    )
    info = await _tiktok(
        raw_client, token, "advertiser/info/", advertiser_ids=f'["{advertiser_id}"]'
    )

    assert patched.status_code == 200
    assert info["data"]["list"][0]["name"] == "Renamed Ads"
    assert info["data"]["list"][0]["status"] == "STATUS_DISABLE"


async def test_a_new_advertiser_with_stores_appears_for_all_tokens(
    raw_client: httpx.AsyncClient, state: SandboxState
) -> None:
    app, token = await _admin_token(raw_client)
    bc_id = next(iter(state.world.business_centers))

    created = (
        await raw_client.post(
            "/_sandbox/advertisers",
            json={
                "owner_bc_id": bc_id,
                "stores": 2,
                "products_per_store": 5,
                "fields": {"name": "Fresh Ads", "country": "GB"},
            },
        )
    ).json()
    listed = await _tiktok(
        raw_client,
        token,
        "oauth2/advertiser/get/",
        app_id=app["app_id"],
        secret=app["secret"],
    )
    stores = await _tiktok(
        raw_client, token, "store/list/", advertiser_id=created["advertiser_id"]
    )

    assert {
        "advertiser_id": created["advertiser_id"],
        "advertiser_name": "Fresh Ads",
    } in (listed["data"]["list"])
    assert created["currency"] == "GBP"
    assert len(stores["data"]["stores"]) == 2


async def test_moving_an_advertiser_changes_owner_bc_id(
    raw_client: httpx.AsyncClient, state: SandboxState
) -> None:
    _, token = await _admin_token(raw_client)
    advertiser = next(a for a in state.world.advertisers.values() if a.owner_bc_id)
    target = next(
        bc for bc in state.world.business_centers if bc != advertiser.owner_bc_id
    )

    moved = await raw_client.post(
        f"/_sandbox/advertisers/{advertiser.advertiser_id}/move",
        json={"to_bc_id": target},
    )
    orphaned = await raw_client.post(
        f"/_sandbox/advertisers/{advertiser.advertiser_id}/move",
        json={"to_bc_id": None},
    )
    info = await _tiktok(
        raw_client,
        token,
        "advertiser/info/",
        advertiser_ids=f'["{advertiser.advertiser_id}"]',
    )

    assert moved.json()["owner_bc_id"] == target
    assert orphaned.json()["owner_bc_id"] is None
    assert "owner_bc_id" not in info["data"]["list"][0]


async def test_product_changes_show_in_store_product_get(
    raw_client: httpx.AsyncClient, state: SandboxState
) -> None:
    _, token = await _admin_token(raw_client)
    store = next(s for s in state.world.stores.values() if s.generated_products > 2)
    first, second = state.expected_products(store.store_id)[:2]
    base = f"/_sandbox/stores/{store.store_id}/products"

    await raw_client.patch(
        f"{base}/{first['item_group_id']}",
        json={"min_price": "1.00", "max_price": "2.00", "status": "NOT_AVAILABLE"},
    )
    removed = await raw_client.delete(f"{base}/{second['item_group_id']}")
    added = (await raw_client.post(base, json={"title": "Brand New Thing"})).json()
    products = await _tiktok(
        raw_client,
        token,
        "store/product/get/",
        bc_id=store.store_authorized_bc_id,
        store_id=store.store_id,
        page_size="100",
    )

    by_id = {p["item_group_id"]: p for p in products["data"]["store_products"]}
    assert removed.status_code == 204
    assert by_id[first["item_group_id"]]["min_price"] == "1.00"
    assert by_id[first["item_group_id"]]["status"] == "NOT_AVAILABLE"
    assert second["item_group_id"] not in by_id
    assert by_id[added["item_group_id"]]["title"] == "Brand New Thing"
    assert products["data"]["page_info"]["total_number"] == store.generated_products


async def test_flipping_eligibility_for_one_advertiser(
    raw_client: httpx.AsyncClient, state: SandboxState
) -> None:
    _, token = await _admin_token(raw_client)
    store = next(s for s in state.world.stores.values() if len(s.advertiser_ids) > 1)
    first, second = store.advertiser_ids[:2]
    product = next(
        p
        for p in state.expected_products(
            store.store_id, advertiser_id=first, ad_creation_eligible="GMV_MAX"
        )
    )

    flipped = await raw_client.put(
        f"/_sandbox/stores/{store.store_id}/products/{product['item_group_id']}/eligibility",
        json={
            "ad_creation_eligible": "GMV_MAX",
            "eligible": False,
            "advertiser_id": first,
        },
    )

    async def eligible_ids(advertiser_id: str) -> set[str]:
        body = await _tiktok(
            raw_client,
            token,
            "store/product/get/",
            bc_id=store.store_authorized_bc_id,
            store_id=store.store_id,
            advertiser_id=advertiser_id,
            filtering='{"ad_creation_eligible": "GMV_MAX"}',
            page_size="100",
        )
        return {p["item_group_id"] for p in body["data"]["store_products"]}

    assert flipped.status_code == 200
    assert product["item_group_id"] not in await eligible_ids(first)
    expected_second = {
        p["item_group_id"]
        for p in state.expected_products(
            store.store_id, advertiser_id=second, ad_creation_eligible="GMV_MAX"
        )
    }
    assert await eligible_ids(second) == expected_second


async def test_revoking_a_token_through_the_admin_api(
    raw_client: httpx.AsyncClient,
) -> None:
    _, token = await _admin_token(raw_client)

    revoked = await raw_client.post(
        "/_sandbox/tokens/revoke", json={"access_token": token}
    )
    after = await _tiktok(raw_client, token, "bc/get/")

    assert revoked.json()["revoked"] is True
    assert after["code"] == 40105


async def test_faults_and_counters_through_the_admin_api(
    raw_client: httpx.AsyncClient,
) -> None:
    _, token = await _admin_token(raw_client)

    put = await raw_client.put(
        "/_sandbox/faults",
        json={
            "seed": 3,
            "rules": [{"endpoint": "bc/get", "error_code": 50000, "error_rate": 1.0}],
        },
    )
    failed = await _tiktok(raw_client, token, "bc/get/")
    counters = (await raw_client.get("/_sandbox/counters")).json()
    cleared = await raw_client.delete("/_sandbox/faults")
    reset = await raw_client.post("/_sandbox/counters/reset")
    after = (await raw_client.get("/_sandbox/counters")).json()

    assert put.json()[0]["error_code"] == 50000
    assert failed["code"] == 50000
    assert counters["codes"]["bc/get"] == {"50000": 1}
    assert counters["tokens"] == {token: 1}
    assert cleared.status_code == reset.status_code == 204
    assert after["total_calls"] == 0
    assert (await raw_client.get("/_sandbox/faults")).json() == []


async def test_snapshot_endpoint_matches_the_state(
    raw_client: httpx.AsyncClient, state: SandboxState
) -> None:
    app, token = await _admin_token(raw_client)

    by_token = await raw_client.get(
        "/_sandbox/snapshot",
        params={"access_token": token, "include_products": "true"},
    )
    by_app = await raw_client.get(
        "/_sandbox/snapshot", params={"app_id": app["app_id"]}
    )

    assert by_token.json() == state.snapshot(access_token=token, include_products=True)
    assert by_app.json()["advertisers"] == by_token.json()["advertisers"]


async def test_admin_errors_have_a_stable_shape(raw_client: httpx.AsyncClient) -> None:
    missing = await raw_client.patch("/_sandbox/advertisers/123", json={"name": "x"})
    invalid = await raw_client.post(
        "/_sandbox/faults", json={"error_rate": 0.5, "error_code": None}
    )

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_object"
    assert invalid.status_code == 400
    assert invalid.json()["error"]["code"] == "invalid_change"


async def test_world_summary(
    raw_client: httpx.AsyncClient, state: SandboxState
) -> None:
    body = (await raw_client.get("/_sandbox/world")).json()

    assert body["stats"]["advertisers"] == len(state.world.advertisers)
    assert body["spec"]["seed"] == state.world.spec.seed
