"""Turning ``store/product/get`` items into the rows of ``ttb_products`` and eligibility.

A product row holds what the store says about the product; the two fields TikTok sends
only under an eligibility filter (``gmv_max_ads_status``, ``is_running_custom_shop_ads``)
keep their last known value when a read did not carry them, so reads with different
filters agree on a row's content and do not rewrite it back and forth.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from gmv_common.tiktok import StoreProduct

# Eligibility as the API names it → TikTok's ``ad_creation_eligible`` values.
GMV_MAX = "gmv_max"
ADS = "ads"
ELIGIBILITY_FILTERS = {GMV_MAX: "GMV_MAX", ADS: "CUSTOM_SHOP_ADS"}
CONDITIONAL_FIELDS = ("gmv_max_ads_status", "is_running_custom_shop_ads")


def kinds_for(eligibility: str) -> tuple[str, ...]:
    """The eligibility kinds one request reads: ``all`` reads both."""
    if eligibility == "all":
        return (GMV_MAX, ADS)
    if eligibility not in ELIGIBILITY_FILTERS:
        raise ValueError(f"unknown eligibility {eligibility!r}")
    return (eligibility,)


@dataclass(frozen=True, slots=True)
class StoredProduct:
    """What the sync needs of an existing ``ttb_products`` row."""

    id: int
    content_hash: str | None
    gmv_max_ads_status: str | None
    is_running_custom_shop_ads: bool | None
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredEligibility:
    id: int
    gmv_max_ads_status: str | None
    is_running_custom_shop_ads: bool | None
    deleted_at: datetime | None

    def same_as(self, values: dict[str, Any]) -> bool:
        return (
            self.deleted_at is None
            and self.gmv_max_ads_status == values["gmv_max_ads_status"]
            and self.is_running_custom_shop_ads == values["is_running_custom_shop_ads"]
        )


def product_values(
    product: StoreProduct, stored: StoredProduct | None
) -> dict[str, Any]:
    """The typed columns, canonical raw JSON and content hash of one product row."""
    raw = dict(product.raw)
    status = product.gmv_max_ads_status
    running = product.is_running_custom_shop_ads
    if stored is not None:
        status = status if status is not None else stored.gmv_max_ads_status
        running = running if running is not None else stored.is_running_custom_shop_ads
    raw["gmv_max_ads_status"] = status
    raw["is_running_custom_shop_ads"] = running
    return {
        "item_group_id": product.item_group_id,
        "title": _clip(product.title, 512),
        "image_url": _clip(product.product_image_url, 2048),
        "min_price": to_decimal(product.min_price),
        "max_price": to_decimal(product.max_price),
        "currency": _clip(product.currency, 16),
        "historical_sales": product.historical_sales,
        "category": _clip(product.category, 255),
        "quantity": product.quantity,
        "status": _clip(product.status, 64),
        "gmv_max_ads_status": _clip(status, 64),
        "is_running_custom_shop_ads": running,
        "raw_json": raw,
        "content_hash": content_hash(raw),
    }


def eligibility_values(product: StoreProduct) -> dict[str, Any]:
    return {
        "item_group_id": product.item_group_id,
        "gmv_max_ads_status": _clip(product.gmv_max_ads_status, 64),
        "is_running_custom_shop_ads": product.is_running_custom_shop_ads,
    }


def content_hash(raw: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()


def to_decimal(value: str | None) -> Decimal | None:
    """TikTok's price string as a decimal; an unreadable price is stored as unknown."""
    if value is None or value == "":
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None
