"""Versioned event and command types, with the topic each one travels on.

The pydantic models are the contract: ``json_schemas()`` renders them as JSON Schema for
``docs/events/`` (a test fails when the committed files drift from the code).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from gmv_common.bus import topics

Scope = Literal["meta", "products"]
Mode = Literal["full", "incremental"]
Trigger = Literal["manual", "refresh", "schedule", "auto", "oauth", "repair"]
Eligibility = Literal["gmv_max", "ads", "all"]


class EventModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    topic: ClassVar[str]

    workspace_id: int
    auth_id: int

    @property
    def key(self) -> str:
        return topics.binding_key(self.workspace_id, self.auth_id)

    @property
    def subject(self) -> str:
        return f"workspaces/{self.workspace_id}/bindings/{self.auth_id}"


class MetaSyncRequested(EventModel):
    """Command: run the metadata chain for one binding."""

    event_type = "gmv.command.meta_sync.v1"
    topic = topics.META_SYNC_COMMANDS

    run_id: int
    mode: Mode = "full"
    trigger: Trigger = "manual"


class ProductSyncRequested(EventModel):
    """Command: sync the products of one advertiser/store pair."""

    event_type = "gmv.command.product_sync.v1"
    topic = topics.PRODUCT_SYNC_COMMANDS

    run_id: int
    advertiser_id: str
    store_id: str
    bc_id: str | None = None
    eligibility: Eligibility = "gmv_max"
    mode: Mode = "full"
    trigger: Trigger = "manual"


class EntityChanges(BaseModel):
    """Ids that a sync added, updated or removed (tombstoned), per entity kind."""

    model_config = ConfigDict(frozen=True)

    added: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)


class SyncCompleted(EventModel):
    """A run finished with status ``succeeded`` or ``partial``."""

    event_type = "gmv.sync.completed.v1"
    topic = topics.SYNC_EVENTS

    run_id: int
    scope: Scope
    mode: Mode
    trigger: Trigger
    status: Literal["succeeded", "partial"]
    started_at: datetime | None = None
    finished_at: datetime
    stats: dict[str, Any] = Field(default_factory=dict)
    changes: dict[str, EntityChanges] = Field(
        default_factory=dict,
        description="Per entity kind (business_centers, advertisers, stores, products, links).",
    )
    params: dict[str, Any] = Field(default_factory=dict)
    errors: list[dict[str, Any]] = Field(default_factory=list)


class SyncFailed(EventModel):
    """A run failed; ``error_code`` is stable (e.g. ``TOKEN_INVALID``)."""

    event_type = "gmv.sync.failed.v1"
    topic = topics.SYNC_EVENTS

    run_id: int
    scope: Scope
    mode: Mode
    trigger: Trigger
    error_code: str
    error_message: str
    finished_at: datetime
    stats: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)


class OptionsUpdated(EventModel):
    """A binding's options document changed (a new ETag)."""

    event_type = "gmv.options.updated.v1"
    topic = topics.OPTIONS_EVENTS

    etag: str
    version: int
    run_id: int | None = None
    synced_at: datetime | None = None


class BindingChanged(EventModel):
    """A binding was created, renamed, revoked, deleted, or changed status."""

    event_type = "gmv.binding.changed.v1"
    topic = topics.BINDING_EVENTS

    change: Literal["created", "alias_changed", "status_changed", "revoked", "deleted"]
    status: str | None = None
    alias: str | None = None


EVENT_TYPES: dict[str, type[EventModel]] = {
    model.event_type: model
    for model in (
        MetaSyncRequested,
        ProductSyncRequested,
        SyncCompleted,
        SyncFailed,
        OptionsUpdated,
        BindingChanged,
    )
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every event type, keyed by its CloudEvents ``type``."""
    schemas = {}
    for event_type, model in sorted(EVENT_TYPES.items()):
        schema = model.model_json_schema()
        schema["$id"] = f"urn:gmv:event:{event_type}"
        schema["x-topic"] = model.topic
        schema["x-key"] = "{workspace_id}:{auth_id}"
        schemas[event_type] = schema
    return schemas
