"""How world objects look on the wire: the item shapes of each TikTok endpoint.

The endpoints and the expected-data snapshots both render through these functions,
so what a test expects is exactly what a client receives.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from gmv_sandbox.world import GMV_MAX, Advertiser, BusinessCenter, Product, Store, World

ADVERTISER_INFO_FIELDS: Final = (
    "telephone_number",
    "contacter",
    "currency",
    "cellphone_number",
    "timezone",
    "advertiser_id",
    "role",
    "company",
    "status",
    "description",
    "rejection_reason",
    "address",
    "name",
    "language",
    "industry",
    "license_no",
    "email",
    "license_url",
    "country",
    "balance",
    "create_time",
    "display_timezone",
    "owner_bc_id",
    "company_name_editable",
)
_DEFAULT_INFO_FIELDS: Final = tuple(
    name for name in ADVERTISER_INFO_FIELDS if name != "company_name_editable"
)


def page_info(page: int, page_size: int, total_number: int) -> dict[str, int]:
    """TikTok's ``page_info`` block."""
    total_page = -(-total_number // page_size) if page_size else 0
    return {
        "page": page,
        "page_size": page_size,
        "total_number": total_number,
        "total_page": total_page,
    }


def bc_item(center: BusinessCenter) -> dict[str, Any]:
    """One ``bc/get`` list item."""
    return {
        "bc_info": {
            "bc_id": center.bc_id,
            "name": center.name,
            "company": center.company,
            "currency": center.currency,
            "registered_area": center.registered_area,
            "status": center.status,
            "timezone": center.timezone,
            "type": center.type,
            "organization_type": center.organization_type,
            "verification_status": center.verification_status,
        },
        "user_role": center.user_role,
        "ext_user_role": {"finance_role": center.finance_role},
    }


def oauth_advertiser_item(advertiser: Advertiser) -> dict[str, Any]:
    """One ``oauth2/advertiser/get`` list item."""
    return {
        "advertiser_id": advertiser.advertiser_id,
        "advertiser_name": advertiser.name,
    }


def advertiser_info_item(
    advertiser: Advertiser, fields: Iterable[str] | None = None
) -> dict[str, Any]:
    """One ``advertiser/info`` list item restricted to ``fields`` (TikTok's rules).

    Omitted ``fields`` means every field but ``company_name_editable``; asking for
    ``company_name_editable`` returns only it and ``advertiser_id``; ``owner_bc_id``
    is left out when the account has no owner business center.
    """
    wanted = _DEFAULT_INFO_FIELDS if fields is None else tuple(fields)
    if "company_name_editable" in wanted:
        return {
            "advertiser_id": advertiser.advertiser_id,
            "company_name_editable": advertiser.company_name_editable,
        }
    item: dict[str, Any] = {"advertiser_id": advertiser.advertiser_id}
    for name in wanted:
        if name == "owner_bc_id" and advertiser.owner_bc_id is None:
            continue
        item[name] = getattr(advertiser, name)
    return item


def store_item(store: Store) -> dict[str, Any]:
    """One ``store/list`` item."""
    return {
        "store_id": store.store_id,
        "store_name": store.store_name,
        "store_type": store.store_type,
        "store_code": store.store_code,
        "store_authorized_bc_id": store.store_authorized_bc_id,
        "catalog_id": store.catalog_id,
        "targeting_region_codes": list(store.targeting_region_codes),
    }


def gmv_max_store_item(
    world: World, store: Store, advertiser: Advertiser
) -> dict[str, Any]:
    """One ``gmv_max/store/list`` item, seen from ``advertiser``."""
    center = world.business_centers.get(store.store_authorized_bc_id)
    item: dict[str, Any] = {
        "store_id": store.store_id,
        "store_name": store.store_name,
        "store_code": store.store_code,
        "store_status": store.store_status,
        "store_role": store.store_role,
        "is_gmv_max_available": store.is_gmv_max_available,
        "is_owner_bc": store.store_authorized_bc_id == advertiser.owner_bc_id,
        "store_authorized_bc_id": store.store_authorized_bc_id,
        "thumbnail_url": store.thumbnail_url,
        "targeting_region_codes": list(store.targeting_region_codes),
    }
    if center is not None:
        item["store_authorized_bc_info"] = {
            "bc_id": center.bc_id,
            "bc_name": center.name,
            "bc_profile_image": center.profile_image,
            "user_role": center.user_role,
        }
    exclusive = world.advertisers.get(store.exclusive_advertiser_id or "")
    if exclusive is not None:
        item["exclusive_authorized_advertiser_info"] = {
            "advertiser_id": exclusive.advertiser_id,
            "advertiser_name": exclusive.name,
            "advertiser_status": exclusive.status,
        }
    return item


def product_item(product: Product, ad_creation_eligible: str | None) -> dict[str, Any]:
    """One ``store/product/get`` item; the conditional fields follow the filter."""
    item: dict[str, Any] = {
        "store_id": product.store_id,
        "item_group_id": product.item_group_id,
        "catalog_id": None,
        "title": product.title,
        "product_image_url": product.product_image_url,
        "min_price": product.min_price,
        "max_price": product.max_price,
        "currency": product.currency,
        "historical_sales": product.historical_sales,
        "category": product.category,
        "quantity": product.quantity,
        "status": product.status,
    }
    if ad_creation_eligible is not None:
        item["gmv_max_ads_status"] = product.gmv_max_ads_status
        if ad_creation_eligible == GMV_MAX:
            item["is_running_custom_shop_ads"] = product.is_running_custom_shop_ads
    return item
