"""Response models of the cached lists. ``raw`` (the upstream JSON) only on request."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class _Row(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    first_seen_at: datetime
    last_seen_at: datetime
    raw: dict[str, Any] | None = Field(
        default=None, description="The upstream JSON; only with include_raw=1."
    )


class BusinessCenterOut(_Row):
    bc_id: str
    name: str | None
    company: str | None
    status: str | None
    timezone: str | None
    country_code: str | None
    currency: str | None
    user_role: str | None


class AdvertiserOut(_Row):
    advertiser_id: str
    bc_id: str | None
    owner_bc_id: str | None
    name: str | None
    display_name: str | None
    company: str | None
    status: str | None
    role: str | None
    industry: str | None
    currency: str | None
    timezone: str | None
    display_timezone: str | None
    country_code: str | None


class StoreOut(_Row):
    store_id: str
    name: str | None
    store_type: str | None
    store_code: str | None
    store_authorized_bc_id: str | None
    bc_id: str | None
    status: str | None
    region_codes: list[str] | None
    gmv_max_available: bool | None
    advertiser_id: str | None = Field(
        default=None, description="Set when the list was filtered by advertiser."
    )


class ProductOut(_Row):
    product_id: str = Field(description="The item_group_id (older clients' name).")
    item_group_id: str
    store_id: str
    title: str | None
    image_url: str | None
    min_price: Decimal | None
    max_price: Decimal | None
    price_range: str | None
    currency: str | None
    historical_sales: int | None
    category: str | None
    quantity: int | None
    status: str | None
    gmv_max_ads_status: str | None
    is_running_custom_shop_ads: bool | None


ItemT = TypeVar("ItemT")


class ItemsOut(BaseModel, Generic[ItemT]):
    items: list[ItemT]
