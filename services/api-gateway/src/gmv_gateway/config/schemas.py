"""Request and response models of the binding configuration."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

MIN_AUTO_SYNC_INTERVAL_SECONDS = 900


class ConfigIn(BaseModel):
    bc_id: str | None = Field(default=None, min_length=1, max_length=64)
    advertiser_id: str | None = Field(default=None, min_length=1, max_length=64)
    store_id: str | None = Field(default=None, min_length=1, max_length=64)
    eligibility: Literal["gmv_max", "ads", "all"] = "gmv_max"
    auto_sync_products: bool = False
    auto_sync_interval_seconds: int = Field(
        default=3600, ge=MIN_AUTO_SYNC_INTERVAL_SECONDS, le=7 * 86400
    )


class LastSyncOut(BaseModel):
    at: datetime
    run_id: int | None
    summary: dict[str, Any] | None


class ConfigOut(BaseModel):
    auth_id: int
    bc_id: str | None
    advertiser_id: str | None
    store_id: str | None
    eligibility: str
    auto_sync_products: bool
    auto_sync_interval_seconds: int
    last_manual_sync: LastSyncOut | None
    last_auto_sync: LastSyncOut | None
    # The older API's flat names, kept for its clients.
    last_manual_synced_at: datetime | None
    last_manual_sync_summary: dict[str, Any] | None
    last_auto_synced_at: datetime | None
    last_auto_sync_summary: dict[str, Any] | None
    updated_at: datetime | None
