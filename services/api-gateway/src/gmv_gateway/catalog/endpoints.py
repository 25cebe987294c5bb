"""``…/accounts/{auth_id}/business-centers|advertisers|stores|products``: cached lists."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from gmv_gateway.bindings.endpoints import ACCOUNTS, check_provider
from gmv_gateway.catalog import service
from gmv_gateway.catalog.schemas import (
    AdvertiserOut,
    BusinessCenterOut,
    ItemsOut,
    ProductOut,
    StoreOut,
)
from gmv_gateway.dependencies import MemberDep, SessionDep
from gmv_gateway.errors import error_responses
from gmv_gateway.pagination import Page, ProductsPage

router = APIRouter(
    prefix=ACCOUNTS + "/{auth_id}",
    tags=["catalog"],
    dependencies=[Depends(check_provider)],
)

TikTokIdQuery = Annotated[str | None, Query(min_length=1, max_length=64)]
IncludeRaw = Annotated[
    bool, Query(description="Add the upstream JSON of each row as `raw`.")
]
SortChoice = Literal[
    "title",
    "-title",
    "price",
    "-price",
    "sales",
    "-sales",
    "updated",
    "-updated",
    "item_group_id",
    "-item_group_id",
]


@router.get(
    "/business-centers",
    response_model=ItemsOut[BusinessCenterOut],
    responses=error_responses(401, 404),
    summary="Business centers of the account",
)
async def business_centers(
    auth_id: int,
    access: MemberDep,
    session: SessionDep,
    include_raw: IncludeRaw = False,
) -> ItemsOut[BusinessCenterOut]:
    items = await service.business_centers(
        session, access.workspace_id, auth_id, include_raw=include_raw
    )
    return ItemsOut(items=items)


@router.get(
    "/advertisers",
    response_model=ItemsOut[AdvertiserOut],
    responses=error_responses(401, 404, 422),
    summary="Advertisers, optionally of one owner center or linked to one center",
)
async def advertisers(
    auth_id: int,
    access: MemberDep,
    session: SessionDep,
    owner_bc_id: TikTokIdQuery = None,
    bc_id: TikTokIdQuery = None,
    include_raw: IncludeRaw = False,
) -> ItemsOut[AdvertiserOut]:
    items = await service.advertisers(
        session,
        access.workspace_id,
        auth_id,
        owner_bc_id=owner_bc_id,
        bc_id=bc_id,
        include_raw=include_raw,
    )
    return ItemsOut(items=items)


@router.get(
    "/stores",
    response_model=ItemsOut[StoreOut],
    responses=error_responses(401, 404, 422),
    summary="Stores, optionally those one advertiser can use",
)
async def stores(
    auth_id: int,
    access: MemberDep,
    session: SessionDep,
    advertiser_id: TikTokIdQuery = None,
    bc_id: TikTokIdQuery = None,
    include_raw: IncludeRaw = False,
) -> ItemsOut[StoreOut]:
    items = await service.stores(
        session,
        access.workspace_id,
        auth_id,
        advertiser_id=advertiser_id,
        bc_id=bc_id,
        include_raw=include_raw,
    )
    return ItemsOut(items=items)


@router.get(
    "/advertisers/{advertiser_id}/stores",
    response_model=ItemsOut[StoreOut],
    responses=error_responses(401, 404),
    summary="Stores one advertiser can use (older path)",
)
async def advertiser_stores(
    auth_id: int,
    advertiser_id: str,
    access: MemberDep,
    session: SessionDep,
    include_raw: IncludeRaw = False,
) -> ItemsOut[StoreOut]:
    items = await service.stores(
        session,
        access.workspace_id,
        auth_id,
        advertiser_id=advertiser_id,
        bc_id=None,
        include_raw=include_raw,
    )
    return ItemsOut(items=items)


@router.get(
    "/products",
    response_model=Page[ProductOut],
    responses=error_responses(400, 401, 404, 422),
    summary="Products, paged (page_size at most 200) and sortable",
)
async def products(
    auth_id: int,
    access: MemberDep,
    session: SessionDep,
    paging: ProductsPage,
    store_id: TikTokIdQuery = None,
    advertiser_id: TikTokIdQuery = None,
    eligibility: Annotated[
        Literal["gmv_max", "ads", "all"] | None,
        Query(description="Per-advertiser eligibility; needs advertiser_id."),
    ] = None,
    status: Annotated[str | None, Query(max_length=64)] = None,
    sort: SortChoice = "title",
    include_raw: IncludeRaw = False,
) -> Page[ProductOut]:
    items, total = await service.products(
        session,
        access.workspace_id,
        auth_id,
        store_id=store_id,
        advertiser_id=advertiser_id,
        eligibility=eligibility,
        status=status,
        sort=sort,
        paging=paging,
        include_raw=include_raw,
    )
    return Page(items=items, page=paging.page, page_size=paging.page_size, total=total)
