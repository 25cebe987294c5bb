"""The TikTok envelope, token checks and parameter errors."""

from __future__ import annotations

import httpx
from sandbox_support import API, tiktok_get

from gmv_sandbox import AccessToken, DeveloperApp, SandboxState


async def test_success_has_the_envelope_and_a_logid_header(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("bc/get/")
    body = response.json()

    assert response.status_code == 200
    assert set(body) == {"code", "message", "request_id", "data"}
    assert (body["code"], body["message"]) == (0, "OK")
    assert response.headers["x-tt-logid"] == body["request_id"]


async def test_request_ids_are_unique(client: httpx.AsyncClient) -> None:
    ids = {(await tiktok_get(client, "bc/get/"))["request_id"] for _ in range(20)}

    assert len(ids) == 20


async def test_missing_token_is_40104_with_http_200(
    raw_client: httpx.AsyncClient,
) -> None:
    response = await raw_client.get(f"{API}bc/get/")
    body = response.json()

    assert response.status_code == 200
    assert body["code"] == 40104
    assert "Access-Token" in body["message"]
    assert body["data"] == {}


async def test_unknown_token_is_40105(raw_client: httpx.AsyncClient) -> None:
    response = await raw_client.get(f"{API}bc/get/", headers={"Access-Token": "0" * 40})

    assert response.json()["code"] == 40105


async def test_revoked_token_is_40105(
    client: httpx.AsyncClient, state: SandboxState, token: AccessToken
) -> None:
    assert (await tiktok_get(client, "bc/get/"))["code"] == 0

    state.revoke_token(token.access_token)

    assert (await tiktok_get(client, "bc/get/"))["code"] == 40105


async def test_bearer_authorization_is_not_a_token(
    raw_client: httpx.AsyncClient, token: AccessToken
) -> None:
    response = await raw_client.get(
        f"{API}bc/get/", headers={"Authorization": f"Bearer {token.access_token}"}
    )

    assert response.json()["code"] == 40104


async def test_path_without_trailing_slash_is_a_plain_404(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("bc/get")

    assert response.status_code == 404
    assert "code" not in response.json()


async def test_advertiser_info_takes_a_json_array(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    advertiser_id = next(iter(state.world.advertisers))

    good = await tiktok_get(client, "advertiser/info/", advertiser_ids=[advertiser_id])
    not_json = await tiktok_get(
        client, "advertiser/info/", advertiser_ids=advertiser_id
    )
    missing = await tiktok_get(client, "advertiser/info/")

    assert [a["advertiser_id"] for a in good["data"]["list"]] == [advertiser_id]
    assert not_json["code"] == 40002
    assert missing["code"] == 40002
    assert "advertiser_ids" in missing["message"]


async def test_more_than_100_advertiser_ids_is_40011(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    ids = [str(7_000_000_000_000_000_000 + n) for n in range(101)]

    body = await tiktok_get(client, "advertiser/info/", advertiser_ids=ids)

    assert body["code"] == 40011


async def test_advertiser_outside_the_grant_is_40001(
    raw_client: httpx.AsyncClient, state: SandboxState, developer_app: DeveloperApp
) -> None:
    granted, other = list(state.world.advertisers)[:2]
    narrow = state.issue_token(developer_app.app_id, [granted])
    headers = {"Access-Token": narrow.access_token}

    async def info(advertiser_id: str) -> int:
        response = await raw_client.get(
            f"{API}advertiser/info/",
            params={"advertiser_ids": f'["{advertiser_id}"]'},
            headers=headers,
        )
        code: int = response.json()["code"]
        return code

    assert await info(granted) == 0
    assert await info(other) == 40001


async def test_fields_restrict_advertiser_info(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    advertiser = next(iter(state.world.advertisers.values()))

    body = await tiktok_get(
        client,
        "advertiser/info/",
        advertiser_ids=[advertiser.advertiser_id],
        fields=["name", "currency", "create_time"],
    )
    bad = await tiktok_get(
        client,
        "advertiser/info/",
        advertiser_ids=[advertiser.advertiser_id],
        fields=["name", "favourite_colour"],
    )

    assert body["data"]["list"] == [
        {
            "advertiser_id": advertiser.advertiser_id,
            "name": advertiser.name,
            "currency": advertiser.currency,
            "create_time": advertiser.create_time,
        }
    ]
    assert bad["code"] == 40002


async def test_company_name_editable_comes_alone(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    advertiser = next(iter(state.world.advertisers.values()))

    body = await tiktok_get(
        client,
        "advertiser/info/",
        advertiser_ids=[advertiser.advertiser_id],
        fields=["name", "company_name_editable"],
    )

    assert body["data"]["list"] == [
        {
            "advertiser_id": advertiser.advertiser_id,
            "company_name_editable": advertiser.company_name_editable,
        }
    ]


async def test_owner_bc_id_is_absent_for_orphans_only(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    ids = list(state.world.advertisers)

    body = await tiktok_get(client, "advertiser/info/", advertiser_ids=ids)

    for item in body["data"]["list"]:
        owner = state.world.advertisers[item["advertiser_id"]].owner_bc_id
        assert item.get("owner_bc_id") == owner
    assert any("owner_bc_id" not in item for item in body["data"]["list"])
    assert all(isinstance(item["create_time"], int) for item in body["data"]["list"])


async def test_store_list_requires_a_granted_advertiser(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    advertiser = next(a for a in state.world.advertisers.values() if a.store_ids)

    body = await tiktok_get(
        client, "store/list/", advertiser_id=advertiser.advertiser_id
    )
    missing = await tiktok_get(client, "store/list/")
    unknown = await tiktok_get(client, "store/list/", advertiser_id="1" * 19)

    assert [s["store_id"] for s in body["data"]["stores"]] == advertiser.store_ids
    assert missing["code"] == 40002
    assert unknown["code"] == 40001


async def test_product_get_needs_the_store_authorized_bc(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    store = next(iter(state.world.stores.values()))
    other_bc = next(
        bc for bc in state.world.business_centers if bc != store.store_authorized_bc_id
    )

    right = await tiktok_get(
        client,
        "store/product/get/",
        bc_id=store.store_authorized_bc_id,
        store_id=store.store_id,
    )
    wrong = await tiktok_get(
        client, "store/product/get/", bc_id=other_bc, store_id=store.store_id
    )
    without = await tiktok_get(client, "store/product/get/", store_id=store.store_id)

    assert right["code"] == 0
    assert wrong["code"] == 40001
    assert without["code"] == 40002


async def test_product_filtering_is_validated(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    store = next(iter(state.world.stores.values()))
    base = {"bc_id": store.store_authorized_bc_id, "store_id": store.store_id}

    bad_kind = await tiktok_get(
        client, "store/product/get/", filtering={"ad_creation_eligible": "ALL"}, **base
    )
    unknown_key = await tiktok_get(
        client, "store/product/get/", filtering={"eligible": "GMV_MAX"}, **base
    )
    too_many = await tiktok_get(
        client,
        "store/product/get/",
        filtering={"item_group_ids": [str(n) for n in range(11)]},
        **base,
    )
    not_object = await tiktok_get(client, "store/product/get/", filtering=[1], **base)

    assert bad_kind["code"] == 40002
    assert unknown_key["code"] == 40002
    assert too_many["code"] == 40002
    assert not_object["code"] == 40002


async def test_conditional_product_fields_follow_ad_creation_eligible(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    store = next(s for s in state.world.stores.values() if s.generated_products)
    base = {"bc_id": store.store_authorized_bc_id, "store_id": store.store_id}

    plain = await tiktok_get(client, "store/product/get/", **base)
    gmv_max = await tiktok_get(
        client,
        "store/product/get/",
        filtering={"ad_creation_eligible": "GMV_MAX"},
        **base,
    )
    shop_ads = await tiktok_get(
        client,
        "store/product/get/",
        filtering={"ad_creation_eligible": "CUSTOM_SHOP_ADS"},
        **base,
    )

    first_plain = plain["data"]["store_products"][0]
    first_gmv = gmv_max["data"]["store_products"][0]
    first_shop = shop_ads["data"]["store_products"][0]
    assert "gmv_max_ads_status" not in first_plain
    assert "is_running_custom_shop_ads" not in first_plain
    assert {"gmv_max_ads_status", "is_running_custom_shop_ads"} <= set(first_gmv)
    assert "gmv_max_ads_status" in first_shop
    assert "is_running_custom_shop_ads" not in first_shop
    assert isinstance(first_plain["min_price"], str)
    assert first_plain["catalog_id"] is None


async def test_gmv_max_store_list_reports_availability_and_owner_bc(
    client: httpx.AsyncClient, state: SandboxState
) -> None:
    advertiser = next(
        a
        for a in state.world.advertisers.values()
        if a.partner_bc_ids and a.owner_bc_id
    )

    body = await tiktok_get(
        client, "gmv_max/store/list/", advertiser_id=advertiser.advertiser_id
    )

    for item in body["data"]["store_list"]:
        store = state.world.stores[item["store_id"]]
        assert item["is_gmv_max_available"] == store.is_gmv_max_available
        assert item["is_owner_bc"] == (
            store.store_authorized_bc_id == advertiser.owner_bc_id
        )
        assert item["store_authorized_bc_info"]["bc_id"] == store.store_authorized_bc_id
