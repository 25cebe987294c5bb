"""Put an event straight onto a runtime's bus, as the outbox relay would publish it."""

from __future__ import annotations

from gmv_common.events.schemas import EventModel
from gmv_common.messaging.outbox import build_envelope
from gmv_common.runtime import Runtime


async def publish_event(runtime: Runtime, event: EventModel) -> str:
    """Publish ``event`` on its topic under its key; the envelope's id."""
    envelope = build_envelope(event)
    await runtime.bus.publish(
        runtime.topic(event.topic), event.key, envelope.body(), envelope.headers()
    )
    return envelope.id
