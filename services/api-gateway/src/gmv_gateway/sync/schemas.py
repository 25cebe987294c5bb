"""Request and response models of sync requests and runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TikTokIdField = Field(default=None, min_length=1, max_length=64)


class SyncOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    advertiser_id: str | None = TikTokIdField
    store_id: str | None = TikTokIdField
    bc_id: str | None = TikTokIdField
    eligibility: Literal["gmv_max", "ads", "all"] | None = None


class SyncRequestIn(BaseModel):
    scope: Literal["meta", "products"] = "meta"
    mode: Literal["full", "incremental"] = "full"
    options: SyncOptions = Field(default_factory=SyncOptions)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)
    if_active: Literal["join", "conflict"] = Field(
        default="join",
        description="A run already queued or running for the same target is joined "
        "(default), or refused with 409 SYNC_IN_PROGRESS.",
    )
    # The older API's top-level spellings; ``options`` wins when both are given.
    advertiser_id: str | None = TikTokIdField
    store_id: str | None = TikTokIdField
    bc_id: str | None = TikTokIdField
    product_eligibility: Literal["gmv_max", "ads", "all"] | None = None


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    workspace_id: int
    auth_id: int
    scope: str
    mode: str
    trigger: str
    status: str
    params: dict[str, Any] | None
    idempotency_key: str
    error_code: str | None
    error_message: str | None
    stats: dict[str, Any] | None
    attempts: int
    schedule_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class SyncAcceptedOut(BaseModel):
    run: RunOut
    created: bool = Field(description="False when an existing run was joined.")
    joined: Literal["active", "idempotency_key"] | None = Field(
        description="Why an existing run was returned."
    )
