"""Message handlers of the metadata sync: thin, they parse and hand over to the worker."""

from __future__ import annotations

from gmv_common.bus.base import Message
from gmv_common.events.envelope import Envelope
from gmv_common.events.schemas import EVENT_TYPES, MetaSyncRequested
from gmv_common.logging import bound_context, get_logger
from gmv_metadata_sync.worker import MetaSyncWorker

log = get_logger(__name__)


class MetaSyncCommandHandler:
    """Handles ``MetaSyncRequested``: claim the run and start it in the background.

    Replays are harmless: a finished run cannot be claimed again, and a run another
    worker holds is left to it. The run's own row, not the command, says which binding
    is synced.
    """

    def __init__(self, worker: MetaSyncWorker) -> None:
        self.worker = worker

    async def __call__(self, envelope: Envelope, message: Message) -> None:
        model = EVENT_TYPES.get(envelope.type)
        if model is not MetaSyncRequested:
            log.info("meta_sync.ignored_message", event_type=envelope.type)
            return
        command = MetaSyncRequested.model_validate(envelope.data)
        with bound_context(
            run_id=command.run_id,
            workspace_id=command.workspace_id,
            auth_id=command.auth_id,
        ):
            await self.worker.submit(command.run_id)
