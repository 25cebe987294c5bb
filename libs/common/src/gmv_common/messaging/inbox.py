"""Inbox: the message ids a consumer group has processed, recorded in the handler's transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import InboxMessage


async def already_processed(
    session: AsyncSession, *, group: str, message_id: str, topic: str
) -> bool:
    """Record ``message_id`` for ``group``; True when it was processed before.

    Call inside the handler's transaction: the record commits with the handler's writes, so a
    replayed message changes nothing. Two members racing on one id meet the unique key; the loser's
    transaction fails and its message is redelivered, then found here.
    """
    existing = await session.scalar(
        select(InboxMessage.id).where(
            InboxMessage.consumer_group == group, InboxMessage.message_id == message_id
        )
    )
    if existing is not None:
        return True
    session.add(InboxMessage(consumer_group=group, message_id=message_id, topic=topic))
    await session.flush()
    return False
