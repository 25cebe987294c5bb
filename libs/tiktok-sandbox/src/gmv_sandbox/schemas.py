"""Request bodies of the admin API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gmv_sandbox.faults import FaultRule

Grant = list[str] | Literal["all"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppCreate(_Body):
    """A developer app to register; missing credentials are generated."""

    app_id: str | None = None
    secret: str | None = None
    name: str | None = None
    qps: int = Field(default=10, ge=0)


class AppUpdate(_Body):
    """New limits for an app."""

    qps: int = Field(ge=0)


class AuthCodeCreate(_Body):
    """An auth code as the consent page would issue it."""

    app_id: str
    advertiser_ids: Grant = "all"
    ttl_seconds: float = Field(default=3600.0, ge=0)


class TokenCreate(_Body):
    """A token issued directly, without an auth code."""

    app_id: str
    advertiser_ids: Grant = "all"


class TokenRevoke(_Body):
    """Revoke a whole token, or only one advertiser of it."""

    access_token: str
    advertiser_id: str | None = None


class AdvertiserCreate(_Body):
    """A new advertiser; ``fields`` may set any ``advertiser/info`` field."""

    owner_bc_id: str | None
    partner_bc_ids: list[str] = Field(default_factory=list)
    stores: int = Field(default=0, ge=0)
    products_per_store: int | None = Field(default=None, ge=0)
    fields: dict[str, Any] = Field(default_factory=dict)


class AdvertiserMove(_Body):
    """The new owner business center (``null`` leaves the advertiser orphaned)."""

    to_bc_id: str | None
    keep_old_as_partner: bool = False


class PartnerCenters(_Body):
    """The full list of partner business centers."""

    bc_ids: list[str]


class StoreCreate(_Body):
    """A new store for an advertiser; ``fields`` may set store fields."""

    advertiser_id: str
    store_authorized_bc_id: str | None = None
    products: int | None = Field(default=None, ge=0)
    fields: dict[str, Any] = Field(default_factory=dict)


class EligibilityChange(_Body):
    """Force (``true``/``false``) or reset (``null``) one eligibility."""

    ad_creation_eligible: Literal["GMV_MAX", "CUSTOM_SHOP_ADS"]
    eligible: bool | None
    advertiser_id: str | None = None


class FaultRuleBody(_Body):
    """One fault rule; see ``gmv_sandbox.faults``."""

    endpoint: str = "*"
    error_code: int | None = None
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_message: str | None = None
    http_status: int = Field(default=504, ge=500, le=599)
    http_error_rate: float = Field(default=0.0, ge=0, le=1)
    drop_rate: float = Field(default=0.0, ge=0, le=1)
    latency_ms: float = Field(default=0.0, ge=0)
    latency_jitter_ms: float = Field(default=0.0, ge=0)
    remaining: int | None = Field(default=None, ge=1)

    def to_rule(self) -> FaultRule:
        """The domain rule."""
        return FaultRule(**self.model_dump())


class FaultSet(_Body):
    """Replace every rule; ``seed`` restarts the fault RNG."""

    rules: list[FaultRuleBody]
    seed: int | None = None


def grant(advertiser_ids: Grant) -> list[str] | None:
    """``"all"`` as ``None``, which the state reads as every advertiser."""
    return None if advertiser_ids == "all" else list(advertiser_ids)
