"""Typed shapes of the TikTok answers we read.

Every id is a string, whatever JSON type TikTok sends it as (19-digit ids do not survive a
float). Item models keep the upstream object untouched in ``raw`` so the sync can store it.
Fields TikTok leaves out are ``None``; unknown fields are ignored here and kept in ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PrivateAttr, SecretStr


class Priority(StrEnum):
    """Who waits for a TikTok call: a person (``interactive``) or a scheduled sync."""

    INTERACTIVE = "interactive"
    BULK = "bulk"


def _id_to_str(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("an id cannot be a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return value


def _number_to_str(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("a price cannot be a boolean")
    if isinstance(value, int | float):
        return str(value)
    return value


def as_tiktok_id(value: str | int) -> str:
    """A TikTok id in its string form; integers are converted, blanks refused."""
    converted = _id_to_str(value)
    if not isinstance(converted, str) or not converted:
        raise ValueError(f"not a TikTok id: {value!r}")
    return converted


TikTokIdStr = Annotated[str, BeforeValidator(_id_to_str)]
"""A TikTok id as a string; JSON integers are converted."""

PriceStr = Annotated[str, BeforeValidator(_number_to_str)]
"""A price as TikTok's decimal string; JSON numbers are converted."""


class TikTokModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> Self:
        model = cls.model_validate(raw)
        model._raw = dict(raw)
        return model

    @property
    def raw(self) -> dict[str, Any]:
        """The upstream JSON object this model was read from."""
        return self._raw


class AccessToken(BaseModel):
    """``oauth2/access_token``: a long-lived advertiser token (no expiry, no refresh)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    access_token: SecretStr
    advertiser_ids: list[TikTokIdStr] = []
    scope: list[int] = []


class RevokedToken(TikTokModel):
    """``oauth2/revoke_token``: the advertisers the revoked token covered."""

    app_id: TikTokIdStr | None = None
    advertiser_ids: list[TikTokIdStr] = []


class AuthorizedAdvertiser(TikTokModel):
    """``oauth2/advertiser/get``: an advertiser the token may act for."""

    advertiser_id: TikTokIdStr
    advertiser_name: str | None = None


class BusinessCenterInfo(TikTokModel):
    bc_id: TikTokIdStr
    name: str | None = None
    company: str | None = None
    currency: str | None = None
    registered_area: str | None = None
    status: str | None = None
    timezone: str | None = None
    type: str | None = None
    organization_type: str | None = None
    verification_status: str | None = None


class BusinessCenter(TikTokModel):
    """``bc/get`` list item; the BC's own fields are nested in ``bc_info``."""

    bc_info: BusinessCenterInfo
    user_role: str | None = None
    ext_user_role: dict[str, Any] | None = None
    binding_status: str | None = None

    @property
    def bc_id(self) -> str:
        return self.bc_info.bc_id


class AdvertiserInfo(TikTokModel):
    """``advertiser/info``: one ad account's details (``create_time`` in epoch seconds)."""

    advertiser_id: TikTokIdStr
    name: str | None = None
    company: str | None = None
    status: str | None = None
    role: str | None = None
    currency: str | None = None
    timezone: str | None = None
    display_timezone: str | None = None
    country: str | None = None
    industry: str | None = None
    owner_bc_id: TikTokIdStr | None = None
    create_time: int | None = None
    balance: float | None = None
    language: str | None = None
    email: str | None = None
    description: str | None = None


class Store(TikTokModel):
    """``store/list``: a TikTok Shop the advertiser can use."""

    store_id: TikTokIdStr
    store_name: str | None = None
    store_type: str | None = None
    store_code: str | None = None
    store_authorized_bc_id: TikTokIdStr | None = None
    catalog_id: TikTokIdStr | None = None
    targeting_region_codes: list[str] = []


class StoreProduct(TikTokModel):
    """``store/product/get``: one product (SPU, keyed by ``item_group_id``).

    ``gmv_max_ads_status`` is present only when ``filtering.ad_creation_eligible`` was sent,
    and ``is_running_custom_shop_ads`` only for ``GMV_MAX``.
    """

    item_group_id: TikTokIdStr
    store_id: TikTokIdStr | None = None
    catalog_id: TikTokIdStr | None = None
    title: str | None = None
    product_image_url: str | None = None
    min_price: PriceStr | None = None
    max_price: PriceStr | None = None
    currency: str | None = None
    historical_sales: int | None = None
    category: str | None = None
    quantity: int | None = None
    status: str | None = None
    gmv_max_ads_status: str | None = None
    is_running_custom_shop_ads: bool | None = None


class StoreAuthorizedBcInfo(TikTokModel):
    bc_id: TikTokIdStr
    bc_name: str | None = None
    bc_profile_image: str | None = None
    user_role: str | None = None


class ExclusiveAuthorizedAdvertiser(TikTokModel):
    advertiser_id: TikTokIdStr
    advertiser_name: str | None = None
    advertiser_status: str | None = None


class GmvMaxStore(TikTokModel):
    """``gmv_max/store/list``: a store and whether GMV Max campaigns can use it."""

    store_id: TikTokIdStr
    store_name: str | None = None
    store_code: str | None = None
    store_status: str | None = None
    store_role: str | None = None
    is_gmv_max_available: bool | None = None
    is_owner_bc: bool | None = None
    store_authorized_bc_id: TikTokIdStr | None = None
    store_authorized_bc_info: StoreAuthorizedBcInfo | None = None
    thumbnail_url: str | None = None
    targeting_region_codes: list[str] = []
    exclusive_authorized_advertiser_info: ExclusiveAuthorizedAdvertiser | None = None


class PageInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    page: int = 1
    page_size: int = 0
    total_number: int = 0
    total_page: int = 0


ItemT = TypeVar("ItemT", bound="TikTokModel")


@dataclass(frozen=True, slots=True)
class Page(Generic[ItemT]):
    """One page of a paginated endpoint."""

    items: list[ItemT]
    page_info: PageInfo


__all__ = [
    "AccessToken",
    "AdvertiserInfo",
    "AuthorizedAdvertiser",
    "BusinessCenter",
    "BusinessCenterInfo",
    "ExclusiveAuthorizedAdvertiser",
    "GmvMaxStore",
    "Page",
    "PageInfo",
    "Priority",
    "RevokedToken",
    "Store",
    "StoreAuthorizedBcInfo",
    "StoreProduct",
    "TikTokIdStr",
    "TikTokModel",
    "as_tiktok_id",
]
