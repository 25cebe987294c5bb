"""Request and response models of bindings, OAuth and provider apps."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, HttpUrl

PROVIDER = "tiktok-business"


class ProviderBindingOut(BaseModel):
    provider: str = PROVIDER
    auth_id: int
    label: str
    status: str


class AccountOut(BaseModel):
    auth_id: int
    provider: str = PROVIDER
    label: str
    alias: str | None
    status: Literal["active", "needs_reauth", "revoked"]
    status_reason: str | None
    provider_app_id: int
    created_at: datetime
    revoked_at: datetime | None
    last_meta_sync_at: datetime | None


class AuthorizeIn(BaseModel):
    alias: str | None = Field(default=None, max_length=200)
    return_to: str | None = Field(
        default=None,
        max_length=2048,
        description="Where the callback sends the browser: a path, or a URL on an "
        "allowed origin (CORS_ORIGINS or PUBLIC_BASE_URL).",
    )
    provider_app_id: int | None = None


class AuthorizeOut(BaseModel):
    authorize_url: str
    state: str
    expires_at: datetime


class CallbackOut(BaseModel):
    ok: bool
    auth_id: int
    run_id: int | None


class AliasIn(BaseModel):
    alias: str | None = Field(default=None, max_length=200)


class RevokeOut(BaseModel):
    account: AccountOut
    remote_revoked: bool


class ProviderAppIn(BaseModel):
    app_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    secret: str = Field(min_length=1, max_length=512)
    redirect_uri: HttpUrl
    qps_limit: float = Field(default=10.0, gt=0, le=1000)
    is_default: bool = False
    api_base_url: HttpUrl | None = None
    authorize_url: HttpUrl | None = None


class ProviderAppOut(BaseModel):
    id: int
    app_id: str
    name: str
    redirect_uri: str
    qps_limit: float
    is_default: bool
    api_base_url: str | None
    authorize_url: str | None
    created_at: datetime
    updated_at: datetime
