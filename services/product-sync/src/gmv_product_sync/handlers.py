"""The product-sync command handler: parse, deduplicate, claim, hand over. Nothing more."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.bus import topics
from gmv_common.bus.base import Message
from gmv_common.events.envelope import Envelope
from gmv_common.events.schemas import ProductSyncRequested
from gmv_common.logging import bound_context, get_logger
from gmv_common.messaging.inbox import already_processed
from gmv_product_sync.executor import RunExecutor

log = get_logger(__name__)

GROUP = "gmv.product-sync"


def consumer_group(topic_prefix: str) -> str:
    """``gmv.product-sync`` under the default prefix (see ``topics.consumer_group``)."""
    return topics.consumer_group(topic_prefix, "product-sync")


class ProductSyncCommandHandler:
    """``ConsumerRunner`` handler for ``ProductSyncRequested`` commands.

    A replayed message is found in the inbox and skipped; a redelivered command of a run
    that is finished or held by a live worker is not claimed. Either way nothing changes.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        executor: RunExecutor,
        group: str = GROUP,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._executor = executor
        self._group = group

    async def __call__(self, envelope: Envelope, message: Message) -> None:
        if envelope.type != ProductSyncRequested.event_type:
            log.warning("product_sync.unexpected_message", event_type=envelope.type)
            return
        command = ProductSyncRequested.model_validate(envelope.data)
        with bound_context(
            run_id=command.run_id,
            workspace_id=command.workspace_id,
            auth_id=command.auth_id,
        ):
            async with self._executor.slot() as slot:
                async with self._sessionmaker.begin() as session:
                    if await already_processed(
                        session,
                        group=self._group,
                        message_id=envelope.id,
                        topic=message.topic,
                    ):
                        log.info("product_sync.duplicate_command")
                        return
                await slot.start(command.run_id)
