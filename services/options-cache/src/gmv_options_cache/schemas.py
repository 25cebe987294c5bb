"""The options document's shape, and what rebuilding and loading it return.

The service builds the document as plain dicts for speed; the pydantic models below describe
the same shape for OpenAPI (the gateway can declare ``OptionsDocument`` as its response) and a
test validates built documents against them so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BusinessCenterOption(_Strict):
    bc_id: str
    name: str | None
    timezone: str | None
    country_code: str | None
    status: str | None


class AdvertiserOption(_Strict):
    advertiser_id: str
    name: str | None
    display_name: str | None
    status: str | None
    industry: str | None
    currency: str | None
    timezone: str | None
    display_timezone: str | None
    country_code: str | None
    bc_id: str | None = Field(
        description="The center the advertiser is filed under (owner BC when known)."
    )


class StoreOption(_Strict):
    store_id: str
    name: str | None
    store_type: str | None
    store_code: str | None
    status: str | None
    store_authorized_bc_id: str | None
    bc_id: str | None
    gmv_max_available: bool | None = Field(
        description="Whether TikTok reports the store as usable for GMV Max campaigns."
    )


class OptionLinks(_Strict):
    """Every live id of one kind maps to the sorted live ids of the other kind."""

    bc_to_advertisers: dict[str, list[str]]
    advertiser_to_stores: dict[str, list[str]]
    store_to_advertisers: dict[str, list[str]]


class OptionsDocument(_Strict):
    """``GET …/gmvmax/options``: one binding's dropdown sources and how they relate."""

    workspace_id: int
    auth_id: int
    alias: str | None
    status: str = Field(description="Binding status: active, needs_reauth or revoked.")
    bcs: list[BusinessCenterOption]
    advertisers: list[AdvertiserOption]
    stores: list[StoreOption]
    links: OptionLinks
    version: int = Field(description="Increments each time the content changes.")
    synced_at: datetime | None = Field(
        description="Time of the sync that produced this content (not of the last check)."
    )
    run_id: int | None = Field(description="The sync run that produced this content.")


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """Outcome of one rebuild: ``changed`` is true exactly when the ETag changed."""

    changed: bool
    etag: str
    version: int


@dataclass(frozen=True, slots=True)
class StoredOptions:
    """A stored document: ``body`` is the exact bytes to serve under ``etag``.

    ``gzip_body`` is ``body`` gzip-compressed, for ``Content-Encoding: gzip``; a strong ETag
    names one representation, so a gzip response should carry a tag of its own (for example
    the ETag with ``-gzip`` before the closing quote, as Apache httpd does).
    """

    workspace_id: int
    auth_id: int
    body: bytes
    gzip_body: bytes
    etag: str
    version: int
    run_id: int | None
    synced_at: datetime | None
    built_at: datetime

    def matches(self, if_none_match: str | None) -> bool:
        """Whether an ``If-None-Match`` header value names this document."""
        return etag_matches(if_none_match, self.etag)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (RFC 9110 §13.1.2).

    Weak comparison, as the RFC prescribes for ``If-None-Match``: ``W/`` prefixes are
    ignored, any entity-tag of a comma-separated list may match, ``*`` matches.
    """
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False
