"""The cached lists of a binding. Revoked and needs-reauth bindings stay readable."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import Product, Store
from gmv_common.errors import ValidationFailedError
from gmv_gateway.bindings.service import require_binding
from gmv_gateway.catalog import repository
from gmv_gateway.catalog.schemas import (
    AdvertiserOut,
    BusinessCenterOut,
    ProductOut,
    StoreOut,
)
from gmv_gateway.pagination import PageParams


def _raw(row: Any, include_raw: bool) -> dict[str, Any]:
    return {"raw": row.raw_json} if include_raw else {}


async def business_centers(
    session: AsyncSession, workspace_id: int, auth_id: int, *, include_raw: bool
) -> list[BusinessCenterOut]:
    await require_binding(session, workspace_id, auth_id)
    rows = await repository.business_centers(session, workspace_id, auth_id)
    return [
        BusinessCenterOut.model_validate(row).model_copy(update=_raw(row, include_raw))
        for row in rows
    ]


async def advertisers(
    session: AsyncSession,
    workspace_id: int,
    auth_id: int,
    *,
    owner_bc_id: str | None,
    bc_id: str | None,
    include_raw: bool,
) -> list[AdvertiserOut]:
    await require_binding(session, workspace_id, auth_id)
    rows = await repository.advertisers(
        session, workspace_id, auth_id, owner_bc_id=owner_bc_id, bc_id=bc_id
    )
    return [
        AdvertiserOut.model_validate(row).model_copy(update=_raw(row, include_raw))
        for row in rows
    ]


def _store_out(store: Store, advertiser_id: str | None, include_raw: bool) -> StoreOut:
    out = StoreOut.model_validate(store)
    return out.model_copy(
        update={"advertiser_id": advertiser_id, **_raw(store, include_raw)}
    )


async def stores(
    session: AsyncSession,
    workspace_id: int,
    auth_id: int,
    *,
    advertiser_id: str | None,
    bc_id: str | None,
    include_raw: bool,
) -> list[StoreOut]:
    await require_binding(session, workspace_id, auth_id)
    rows = await repository.stores(
        session, workspace_id, auth_id, advertiser_id=advertiser_id, bc_id=bc_id
    )
    items = []
    for store, link in rows:
        out = _store_out(store, advertiser_id, include_raw)
        if link is not None and link.store_authorized_bc_id:
            out = out.model_copy(
                update={"store_authorized_bc_id": link.store_authorized_bc_id}
            )
        items.append(out)
    return items


def price_range(product: Product) -> str | None:
    low, high = product.min_price, product.max_price
    if low is None and high is None:
        return None
    prefix = f"{product.currency} " if product.currency else ""
    if low is None or high is None or low == high:
        return prefix + _money(low if low is not None else high)
    return f"{prefix}{_money(low)} - {_money(high)}"


def _money(value: Decimal | None) -> str:
    return f"{value:.2f}" if value is not None else ""


def product_out(product: Product, include_raw: bool) -> ProductOut:
    return ProductOut(
        product_id=product.item_group_id,
        item_group_id=product.item_group_id,
        store_id=product.store_id,
        title=product.title,
        image_url=product.image_url,
        min_price=product.min_price,
        max_price=product.max_price,
        price_range=price_range(product),
        currency=product.currency,
        historical_sales=product.historical_sales,
        category=product.category,
        quantity=product.quantity,
        status=product.status,
        gmv_max_ads_status=product.gmv_max_ads_status,
        is_running_custom_shop_ads=product.is_running_custom_shop_ads,
        first_seen_at=product.first_seen_at,
        last_seen_at=product.last_seen_at,
        raw=product.raw_json if include_raw else None,
    )


async def products(
    session: AsyncSession,
    workspace_id: int,
    auth_id: int,
    *,
    store_id: str | None,
    advertiser_id: str | None,
    eligibility: str | None,
    status: str | None,
    sort: str,
    paging: PageParams,
    include_raw: bool,
) -> tuple[list[ProductOut], int]:
    await require_binding(session, workspace_id, auth_id)
    if eligibility in ("gmv_max", "ads") and advertiser_id is None:
        raise ValidationFailedError(
            "eligibility is decided per advertiser: pass advertiser_id",
            code="ADVERTISER_REQUIRED_FOR_GMV_MAX",
        )
    rows, total = await repository.products_page(
        session,
        workspace_id,
        auth_id,
        store_id=store_id,
        advertiser_id=advertiser_id,
        eligibility=None if eligibility == "all" else eligibility,
        status=status,
        sort=sort,
        offset=paging.offset,
        limit=paging.page_size,
    )
    return [product_out(row, include_raw) for row in rows], total
