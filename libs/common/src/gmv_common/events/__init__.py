"""Event envelope (CloudEvents binary mode) and the versioned event types."""

from gmv_common.events.envelope import Envelope, MalformedMessageError
from gmv_common.events.schemas import (
    EVENT_TYPES,
    BindingChanged,
    EntityChanges,
    EventModel,
    MetaSyncRequested,
    OptionsUpdated,
    ProductSyncRequested,
    SyncCompleted,
    SyncFailed,
)

__all__ = [
    "EVENT_TYPES",
    "BindingChanged",
    "EntityChanges",
    "Envelope",
    "EventModel",
    "MalformedMessageError",
    "MetaSyncRequested",
    "OptionsUpdated",
    "ProductSyncRequested",
    "SyncCompleted",
    "SyncFailed",
]
