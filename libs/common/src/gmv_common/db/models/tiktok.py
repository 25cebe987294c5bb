"""TikTok entities: provider apps, OAuth states, bindings, and the synced graph.

Every synced row is scoped by ``workspace_id`` and ``auth_id`` (the binding), keyed on
TikTok's natural id, and keeps ``first_seen_at`` / ``last_seen_at`` / ``deleted_at``
(tombstone), the raw upstream JSON, a ``content_hash`` (so an unchanged row is not rewritten)
and typed columns for what the API and the SPA use. TikTok ids are strings.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gmv_common.db.base import (
    Base,
    BigId,
    JSONText,
    TikTokId,
    Timestamp,
    TimestampMixin,
    utcnow,
)

BINDING_STATUSES = ("active", "needs_reauth", "revoked")
BC_ADVERTISER_RELATIONS = ("owner", "store_authorized", "partner", "unknown")


class ProviderApp(TimestampMixin, Base):
    """A TikTok developer app: one request budget (``qps_limit``) shared by all its bindings."""

    __tablename__ = "provider_apps"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32), default="tiktok-business")
    app_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer)
    redirect_uri: Mapped[str] = mapped_column(String(1024))
    api_base_url: Mapped[str | None] = mapped_column(String(1024))
    authorize_url: Mapped[str | None] = mapped_column(String(1024))
    qps_limit: Mapped[float] = mapped_column(Float, default=10.0)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


class OAuthState(Base):
    """A signed, expiring, single-use OAuth ``state``; only its hash is stored."""

    __tablename__ = "oauth_states"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider_app_id: Mapped[int] = mapped_column(
        ForeignKey("provider_apps.id", ondelete="CASCADE")
    )
    alias: Mapped[str | None] = mapped_column(String(200))
    return_to: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp())
    used_at: Mapped[datetime | None] = mapped_column(Timestamp())


class Binding(TimestampMixin, Base):
    """A workspace's authorization of one TikTok app (``auth_id`` is this row's id)."""

    __tablename__ = "ttb_bindings"
    __table_args__ = (
        UniqueConstraint("workspace_id", "provider_app_id", "token_fingerprint"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    provider_app_id: Mapped[int] = mapped_column(
        ForeignKey("provider_apps.id", ondelete="RESTRICT")
    )
    alias: Mapped[str | None] = mapped_column(String(200))
    access_token_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer)
    token_fingerprint: Mapped[str] = mapped_column(String(64))
    scope: Mapped[Any | None] = mapped_column(JSONText())
    authorized_advertiser_ids: Mapped[Any | None] = mapped_column(JSONText())
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(String(512))
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp())
    last_meta_sync_at: Mapped[datetime | None] = mapped_column(Timestamp())


def _binding_fk() -> Any:
    return ForeignKey("ttb_bindings.id", ondelete="CASCADE")


def _workspace_fk() -> Any:
    return ForeignKey("workspaces.id", ondelete="CASCADE")


class SyncedRowMixin:
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(_workspace_fk())
    auth_id: Mapped[int] = mapped_column(_binding_fk())
    raw_json: Mapped[Any | None] = mapped_column(JSONText())
    content_hash: Mapped[str | None] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp())


class BusinessCenter(SyncedRowMixin, Base):
    __tablename__ = "ttb_business_centers"
    __table_args__ = (UniqueConstraint("workspace_id", "auth_id", "bc_id"),)

    bc_id: Mapped[str] = mapped_column(TikTokId)
    name: Mapped[str | None] = mapped_column(String(255))
    company: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str | None] = mapped_column(String(64))
    country_code: Mapped[str | None] = mapped_column(String(16))
    currency: Mapped[str | None] = mapped_column(String(16))
    user_role: Mapped[str | None] = mapped_column(String(64))


class Advertiser(SyncedRowMixin, Base):
    __tablename__ = "ttb_advertisers"
    __table_args__ = (
        UniqueConstraint("workspace_id", "auth_id", "advertiser_id"),
        Index("ix_ttb_advertisers_owner_bc", "workspace_id", "auth_id", "owner_bc_id"),
    )

    advertiser_id: Mapped[str] = mapped_column(TikTokId)
    # The center the SPA files this advertiser under: owner_bc_id, else the single
    # candidate learned from links (never simply the binding's first center).
    bc_id: Mapped[str | None] = mapped_column(TikTokId)
    owner_bc_id: Mapped[str | None] = mapped_column(TikTokId)
    name: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    company: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(64))
    industry: Mapped[str | None] = mapped_column(String(128))
    currency: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    display_timezone: Mapped[str | None] = mapped_column(String(64))
    country_code: Mapped[str | None] = mapped_column(String(16))
    ext_create_time: Mapped[datetime | None] = mapped_column(Timestamp())
    hydrated_at: Mapped[datetime | None] = mapped_column(Timestamp())


class Store(SyncedRowMixin, Base):
    __tablename__ = "ttb_stores"
    __table_args__ = (UniqueConstraint("workspace_id", "auth_id", "store_id"),)

    store_id: Mapped[str] = mapped_column(TikTokId)
    name: Mapped[str | None] = mapped_column(String(255))
    store_type: Mapped[str | None] = mapped_column(String(32))
    store_code: Mapped[str | None] = mapped_column(String(64))
    store_authorized_bc_id: Mapped[str | None] = mapped_column(TikTokId)
    bc_id: Mapped[str | None] = mapped_column(TikTokId)
    status: Mapped[str | None] = mapped_column(String(64))
    region_codes: Mapped[Any | None] = mapped_column(JSONText())
    gmv_max_available: Mapped[bool | None] = mapped_column(Boolean)


# The orders a store's products list offers (name: column). Each has an index behind the
# columns every page filters on, and status has one for counting by status, so a page is read
# in its order and stops at its end instead of sorting the whole store.
PRODUCT_LIST_ORDERS = {
    "title": "title",
    "price": "min_price",
    "sales": "historical_sales",
    "updated": "last_seen_at",
    "item_group_id": "item_group_id",
}
PRODUCT_LIVE_PREFIX = ("workspace_id", "auth_id", "store_id", "deleted_at")
# Named as the naming convention would; queries that steer MariaDB away from it name it.
PRODUCT_UNIQUE_KEY = "uq_ttb_products_workspace_id_auth_id_store_id_item_group_id"


class Product(SyncedRowMixin, Base):
    __tablename__ = "ttb_products"
    __table_args__ = (
        UniqueConstraint(
            "workspace_id",
            "auth_id",
            "store_id",
            "item_group_id",
            name=PRODUCT_UNIQUE_KEY,
        ),
        # The item_group_id index also answers the eligibility join from its side.
        *(
            Index(f"ix_ttb_products_live_{name}", *PRODUCT_LIVE_PREFIX, column)
            for name, column in {**PRODUCT_LIST_ORDERS, "status": "status"}.items()
        ),
    )

    store_id: Mapped[str] = mapped_column(TikTokId)
    item_group_id: Mapped[str] = mapped_column(TikTokId)
    title: Mapped[str | None] = mapped_column(String(512))
    image_url: Mapped[str | None] = mapped_column(String(2048))
    min_price: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    max_price: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    currency: Mapped[str | None] = mapped_column(String(16))
    historical_sales: Mapped[int | None] = mapped_column(BigInteger)
    category: Mapped[str | None] = mapped_column(String(255))
    quantity: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str | None] = mapped_column(String(64))
    gmv_max_ads_status: Mapped[str | None] = mapped_column(String(64))
    is_running_custom_shop_ads: Mapped[bool | None] = mapped_column(Boolean)


class ProductEligibility(Base):
    """Which products an advertiser may use in a store, per eligibility kind (gmv_max / ads).

    Eligibility differs by advertiser, so it cannot live on the product row.
    """

    __tablename__ = "ttb_product_eligibility"
    __table_args__ = (
        UniqueConstraint(
            "workspace_id",
            "auth_id",
            "store_id",
            "advertiser_id",
            "eligibility",
            "item_group_id",
        ),
        # An advertiser's live eligible products of a store, read without touching the rows.
        Index(
            "ix_ttb_product_eligibility_live",
            "workspace_id",
            "auth_id",
            "store_id",
            "advertiser_id",
            "eligibility",
            "deleted_at",
            "item_group_id",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(_workspace_fk())
    auth_id: Mapped[int] = mapped_column(_binding_fk())
    store_id: Mapped[str] = mapped_column(TikTokId)
    advertiser_id: Mapped[str] = mapped_column(TikTokId)
    eligibility: Mapped[str] = mapped_column(String(16))
    item_group_id: Mapped[str] = mapped_column(TikTokId)
    gmv_max_ads_status: Mapped[str | None] = mapped_column(String(64))
    is_running_custom_shop_ads: Mapped[bool | None] = mapped_column(Boolean)
    first_seen_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp())


class BcAdvertiserLink(Base):
    """Business center ↔ advertiser, with how they relate and where that was learned."""

    __tablename__ = "ttb_bc_advertiser_links"
    __table_args__ = (
        UniqueConstraint("workspace_id", "auth_id", "bc_id", "advertiser_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(_workspace_fk())
    auth_id: Mapped[int] = mapped_column(_binding_fk())
    bc_id: Mapped[str] = mapped_column(TikTokId)
    advertiser_id: Mapped[str] = mapped_column(TikTokId)
    relation: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp())


class AdvertiserStoreLink(Base):
    """Advertiser ↔ store, with the center that authorized the store for that advertiser."""

    __tablename__ = "ttb_advertiser_store_links"
    __table_args__ = (
        UniqueConstraint("workspace_id", "auth_id", "advertiser_id", "store_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(_workspace_fk())
    auth_id: Mapped[int] = mapped_column(_binding_fk())
    advertiser_id: Mapped[str] = mapped_column(TikTokId)
    store_id: Mapped[str] = mapped_column(TikTokId)
    store_authorized_bc_id: Mapped[str | None] = mapped_column(TikTokId)
    source: Mapped[str] = mapped_column(String(64), default="store.list")
    first_seen_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp())


class GmvMaxBindingConfig(TimestampMixin, Base):
    """The GMV Max selection of one binding, and its product auto-sync."""

    __tablename__ = "gmvmax_binding_configs"
    __table_args__ = (UniqueConstraint("workspace_id", "auth_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(_workspace_fk())
    auth_id: Mapped[int] = mapped_column(_binding_fk())
    bc_id: Mapped[str | None] = mapped_column(TikTokId)
    advertiser_id: Mapped[str | None] = mapped_column(TikTokId)
    store_id: Mapped[str | None] = mapped_column(TikTokId)
    eligibility: Mapped[str] = mapped_column(String(16), default="gmv_max")
    auto_sync_products: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_sync_interval_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    last_manual_sync_at: Mapped[datetime | None] = mapped_column(Timestamp())
    last_manual_run_id: Mapped[int | None] = mapped_column(BigInteger)
    last_manual_summary: Mapped[Any | None] = mapped_column(JSONText())
    last_auto_sync_at: Mapped[datetime | None] = mapped_column(Timestamp())
    last_auto_run_id: Mapped[int | None] = mapped_column(BigInteger)
    last_auto_summary: Mapped[Any | None] = mapped_column(JSONText())
    updated_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
