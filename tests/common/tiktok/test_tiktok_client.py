"""Contract tests of the TikTok client against the sandbox, endpoint by endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from tiktok_support import Sandbox, fast_limiter

from gmv_common.tiktok import (
    IncompleteReadError,
    Page,
    Priority,
    StoreProduct,
    TikTokAppCredentialsError,
    TikTokAuthCodeError,
    TikTokAuthError,
    TikTokCredentials,
    read_all_pages,
)

BULK = Priority.BULK


def _calls(sandbox: Sandbox, endpoint: str) -> int:
    calls: dict[str, int] = sandbox.state.counters()["calls"]
    return calls.get(endpoint, 0)


def _expected(sandbox: Sandbox) -> dict[str, Any]:
    snapshot: dict[str, Any] = sandbox.state.snapshot(access_token=sandbox.access_token)
    return snapshot


def _store_with_products(sandbox: Sandbox, products: int) -> tuple[str, str, str]:
    advertiser_id = next(iter(sandbox.state.world.advertisers))
    bc_id = next(iter(sandbox.state.world.business_centers))
    store = sandbox.state.add_store(
        advertiser_id, store_authorized_bc_id=bc_id, products=products
    )
    return advertiser_id, store.store_authorized_bc_id or bc_id, store.store_id


async def test_auth_code_exchange_returns_a_working_token(sandbox: Sandbox) -> None:
    code = sandbox.state.mint_auth_code(sandbox.app_id)
    async with sandbox.client() as client:
        token = await client.exchange_auth_code(
            app_id=sandbox.app_id,
            app_secret=SecretStr(sandbox.app_secret),
            auth_code=SecretStr(code.auth_code),
        )
        fresh = TikTokCredentials(
            app_id=sandbox.app_id, access_token=token.access_token
        )
        centers = await client.get_business_centers_page(fresh, priority=BULK)

    assert token.advertiser_ids == [
        a["advertiser_id"] for a in _expected(sandbox)["advertisers"]
    ]
    assert all(isinstance(scope, int) for scope in token.scope)
    assert centers.page_info.total_number == 60


async def test_a_used_auth_code_asks_the_user_to_authorize_again(
    sandbox: Sandbox,
) -> None:
    code = sandbox.state.mint_auth_code(sandbox.app_id)
    async with sandbox.client() as client:
        exchange = {
            "app_id": sandbox.app_id,
            "app_secret": SecretStr(sandbox.app_secret),
            "auth_code": SecretStr(code.auth_code),
        }
        await client.exchange_auth_code(**exchange)
        with pytest.raises(TikTokAuthCodeError) as raised:
            await client.exchange_auth_code(**exchange)

    assert raised.value.code == "AUTH_CODE_INVALID"
    assert raised.value.tiktok_code == 40110
    assert not raised.value.retriable
    assert "authorization again" in raised.value.message
    assert _calls(sandbox, "oauth2/access_token") == 2


async def test_a_wrong_app_secret_is_an_operator_problem(sandbox: Sandbox) -> None:
    code = sandbox.state.mint_auth_code(sandbox.app_id)
    async with sandbox.client() as client:
        with pytest.raises(TikTokAppCredentialsError) as raised:
            await client.exchange_auth_code(
                app_id=sandbox.app_id,
                app_secret=SecretStr("not-the-secret"),
                auth_code=SecretStr(code.auth_code),
            )

    assert raised.value.code == "TIKTOK_APP_INVALID"
    assert raised.value.tiktok_code == 40101


async def test_revoked_token_raises_token_invalid_without_retrying(
    sandbox: Sandbox,
) -> None:
    async with sandbox.client() as client:
        revoked = await client.revoke_token(sandbox.credentials)
        with pytest.raises(TikTokAuthError) as raised:
            await client.get_business_centers_page(sandbox.credentials, priority=BULK)

    assert revoked.app_id == sandbox.app_id
    assert len(revoked.advertiser_ids) == 130
    assert raised.value.code == "TOKEN_INVALID"
    assert raised.value.tiktok_code == 40105
    assert "Reconnect the TikTok account" in raised.value.message
    assert _calls(sandbox, "bc/get") == 1


async def test_authorized_advertisers_are_the_sandbox_grant(sandbox: Sandbox) -> None:
    async with sandbox.client() as client:
        advertisers = await client.get_authorized_advertisers(
            sandbox.credentials, priority=BULK
        )

    assert [a.raw for a in advertisers] == _expected(sandbox)["advertisers"]
    assert all(isinstance(a.advertiser_id, str) for a in advertisers)


async def test_business_centers_are_read_past_the_first_page(sandbox: Sandbox) -> None:
    async with sandbox.client() as client:
        read = await client.get_all_business_centers(sandbox.credentials, priority=BULK)

    assert read.complete
    assert read.pages_read == 2
    assert [center.raw for center in read.items] == _expected(sandbox)[
        "business_centers"
    ]
    assert read.items[0].bc_id == read.items[0].bc_info.bc_id


async def test_advertiser_info_goes_out_in_batches_of_at_most_100(
    sandbox: Sandbox,
) -> None:
    ids = [a["advertiser_id"] for a in _expected(sandbox)["advertisers"]]

    async with sandbox.client() as client:
        infos = await client.get_advertiser_info(
            sandbox.credentials, [*ids, ids[0]], priority=BULK
        )

    assert _calls(sandbox, "advertiser/info") == 2
    assert [info.raw for info in infos] == _expected(sandbox)["advertiser_info"]
    assert all(isinstance(info.create_time, int) for info in infos)


async def test_integer_ids_are_sent_and_returned_as_strings(sandbox: Sandbox) -> None:
    advertiser_id = next(iter(sandbox.state.world.advertisers))

    async with sandbox.client() as client:
        infos = await client.get_advertiser_info(
            sandbox.credentials, [int(advertiser_id)], priority=BULK, fields=["name"]
        )
        stores = await client.get_stores(
            sandbox.credentials, advertiser_id=int(advertiser_id), priority=BULK
        )

    assert [info.advertiser_id for info in infos] == [advertiser_id]
    assert infos[0].raw == {"advertiser_id": advertiser_id, "name": infos[0].name}
    assert [store.raw for store in stores] == _expected(sandbox)["stores"][
        advertiser_id
    ]


async def test_stores_and_gmv_max_stores_match_the_sandbox(sandbox: Sandbox) -> None:
    expected = _expected(sandbox)
    advertiser_ids = list(expected["stores"])[:5]

    async with sandbox.client() as client:
        for advertiser_id in advertiser_ids:
            stores = await client.get_stores(
                sandbox.credentials, advertiser_id=advertiser_id, priority=BULK
            )
            gmv_max = await client.get_gmv_max_stores(
                sandbox.credentials, advertiser_id=advertiser_id, priority=BULK
            )

            assert [s.raw for s in stores] == expected["stores"][advertiser_id]
            assert [s.raw for s in gmv_max] == expected["gmv_max_stores"][advertiser_id]
            assert all(s.is_gmv_max_available is not None for s in gmv_max)


async def test_store_products_are_read_past_the_first_page(sandbox: Sandbox) -> None:
    advertiser_id, bc_id, store_id = _store_with_products(sandbox, 250)

    async with sandbox.client() as client:
        read = await client.get_all_store_products(
            sandbox.credentials,
            bc_id=bc_id,
            store_id=store_id,
            advertiser_id=advertiser_id,
            filtering={"ad_creation_eligible": "GMV_MAX"},
            priority=BULK,
        )

    expected = sandbox.state.expected_products(
        store_id, advertiser_id=advertiser_id, ad_creation_eligible="GMV_MAX"
    )
    assert len(expected) > 100
    assert read.complete
    assert read.pages_read == -(-len(expected) // 100)
    assert [product.raw for product in read.items] == expected
    assert all(p.is_running_custom_shop_ads is not None for p in read.items)
    assert all(isinstance(p.min_price, str) for p in read.items)


async def test_a_listing_that_grows_between_pages_is_an_incomplete_read(
    sandbox: Sandbox,
) -> None:
    _, bc_id, store_id = _store_with_products(sandbox, 150)

    async with sandbox.client() as client:

        async def fetch(page: int, size: int) -> Page[StoreProduct]:
            result: Page[StoreProduct] = await client.get_store_products_page(
                sandbox.credentials,
                bc_id=bc_id,
                store_id=store_id,
                priority=BULK,
                page=page,
                page_size=size,
            )
            if page == 1:
                sandbox.state.add_product(store_id)
            return result

        with pytest.raises(IncompleteReadError) as raised:
            await read_all_pages(fetch, endpoint="store/product/get/", page_size=100)
        lenient = await read_all_pages(
            fetch, endpoint="store/product/get/", page_size=100, strict=False
        )

    assert raised.value.code == "TIKTOK_INCOMPLETE_READ"
    assert raised.value.retriable
    assert not lenient.complete
    assert not lenient.totals_agreed


async def test_calls_are_counted_by_endpoint_and_code(sandbox: Sandbox) -> None:
    labels = {"endpoint": "bc/get/", "code": "0"}
    before = REGISTRY.get_sample_value("gmv_tiktok_calls_total", labels) or 0.0

    async with sandbox.client(limiter=fast_limiter()) as client:
        await client.get_business_centers_page(sandbox.credentials, priority=BULK)

    assert REGISTRY.get_sample_value("gmv_tiktok_calls_total", labels) == before + 1
