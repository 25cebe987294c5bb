"""Message handlers: parse the event, bind the log context, own the transaction, call the service.

The options cache reacts to two topics:

- ``events.sync``: a metadata run that ended (``SyncCompleted`` or ``SyncFailed`` of scope
  ``meta``) rebuilds the binding's document. A failed run is included because the phases it
  finished may have committed rows; when nothing changed the rebuild writes nothing.
  Product runs do not touch the document and are ignored.
- ``events.bindings``: ``BindingChanged`` rebuilds an existing document (alias and status are
  in it), or removes the document of a deleted binding. The first document of a binding
  comes from its first metadata sync.

Every handled message is recorded in the inbox in the same transaction as its effect, so a
replayed message is skipped.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.bus.base import Message
from gmv_common.events import (
    EVENT_TYPES,
    BindingChanged,
    Envelope,
    SyncCompleted,
    SyncFailed,
)
from gmv_common.logging import bound_context, get_logger
from gmv_common.messaging.inbox import already_processed
from gmv_options_cache import service

log = get_logger(__name__)

GROUP = "gmv.options-cache"


Relevant = SyncCompleted | SyncFailed | BindingChanged


def _relevant_event(envelope: Envelope) -> Relevant | None:
    model = EVENT_TYPES.get(envelope.type)
    if model not in (SyncCompleted, SyncFailed, BindingChanged):
        return None
    event = model.model_validate(envelope.data)
    if isinstance(event, BindingChanged):
        return event
    if isinstance(event, SyncCompleted | SyncFailed) and event.scope == "meta":
        return event
    return None


class OptionsEventHandler:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        topic_prefix: str,
        group: str = GROUP,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._topic_prefix = topic_prefix
        self._group = group

    async def __call__(self, envelope: Envelope, message: Message) -> None:
        event = _relevant_event(envelope)
        if event is None:
            return
        run_id = None if isinstance(event, BindingChanged) else event.run_id
        with bound_context(
            workspace_id=event.workspace_id, auth_id=event.auth_id, run_id=run_id
        ):
            async with self._sessionmaker.begin() as session:
                if await already_processed(
                    session,
                    group=self._group,
                    message_id=envelope.id,
                    topic=message.topic,
                ):
                    log.info("options.event_replayed", message_id=envelope.id)
                    return
                await self._apply(session, event)

    async def _apply(self, session: AsyncSession, event: Relevant) -> None:
        if isinstance(event, BindingChanged):
            await service.apply_binding_change(
                session, event, topic_prefix=self._topic_prefix
            )
        else:
            await service.apply_sync_event(
                session, event, topic_prefix=self._topic_prefix
            )
