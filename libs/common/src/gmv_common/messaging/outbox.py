"""Transactional outbox.

``enqueue`` writes a message in the caller's transaction. The ``OutboxRelay`` publishes it after
commit: the writing process claims its own rows and is woken at once by a commit hook (low
latency); any relay also sweeps rows whose claim expired (the writer died). Claims are conditional
updates, so several relays can run at once; a row is marked published only after the broker
acknowledged it, so delivery is at least once and consumers deduplicate by event id (inbox).
A relay publishes the rows of one key (one binding) in id order, different keys concurrently.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from gmv_common.bus.base import Bus
from gmv_common.bus.topics import topic_name
from gmv_common.db.base import utcnow
from gmv_common.db.models import OutboxMessage
from gmv_common.events.envelope import Envelope
from gmv_common.events.schemas import EventModel
from gmv_common.logging import get_context, get_logger

log = get_logger(__name__)

PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
WRITER_CLAIM = timedelta(seconds=15)
# A relay publishes its process's rows without claiming them again while their writer claim
# has this much left; closer to expiry it extends the claim first.
OWN_CLAIM_MARGIN = timedelta(seconds=5)
# The backlog gauges cost a query; a busy relay refreshes them at most this often (an idle
# sweep sets them to zero at once).
BACKLOG_REFRESH_SECONDS = 1.0

OUTBOX_PUBLISHED = Counter(
    "gmv_outbox_published_total", "Outbox messages published to the bus", ["topic"]
)
OUTBOX_BACKLOG = Gauge("gmv_outbox_backlog", "Outbox messages not yet published")
OUTBOX_LAG = Gauge(
    "gmv_outbox_lag_seconds", "Age of the oldest unpublished outbox message"
)

_relays: set[OutboxRelay] = set()


def build_envelope(
    event: EventModel, *, source: str | None = None, correlation_id: str | None = None
) -> Envelope:
    context = get_context()
    return Envelope(
        type=event.event_type,
        source=source or f"/gmv/{context.get('service', 'gmv')}",
        subject=event.subject,
        correlation_id=correlation_id or context.get("correlation_id"),
        traceparent=context.get("traceparent"),
        data=event.model_dump(mode="json"),
    )


def enqueue(
    session: AsyncSession,
    event: EventModel,
    *,
    topic_prefix: str,
    correlation_id: str | None = None,
    source: str | None = None,
) -> Envelope:
    """Add ``event`` to the outbox in the caller's transaction; return its envelope."""
    envelope = build_envelope(event, source=source, correlation_id=correlation_id)
    session.add(
        OutboxMessage(
            event_id=envelope.id,
            topic=topic_name(topic_prefix, event.topic),
            message_key=event.key,
            headers=envelope.headers(),
            payload=envelope.body().decode(),
            claimed_by=PROCESS_ID,
            claimed_until=utcnow() + WRITER_CLAIM,
        )
    )
    session.info["outbox_dirty"] = True
    return envelope


@sa_event.listens_for(Session, "after_commit")
def _wake_relays(session: Session) -> None:
    if session.info.pop("outbox_dirty", False):
        for relay in list(_relays):
            relay.kick()


@sa_event.listens_for(Session, "after_rollback")
def _forget_dirty(session: Session) -> None:
    session.info.pop("outbox_dirty", None)


class OutboxRelay:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: Bus,
        *,
        batch_size: int = 200,
        poll_seconds: float = 0.5,
        claim_seconds: float = 30.0,
        retention: timedelta = timedelta(hours=24),
        owner: str = PROCESS_ID,
    ) -> None:
        # ``owner`` names the claimant; rows written by this process carry PROCESS_ID as a
        # short writer claim, so only a relay owned by PROCESS_ID takes them before it expires.
        self.owner = owner
        self._sessionmaker = sessionmaker
        self._bus = bus
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._claim = timedelta(seconds=claim_seconds)
        self._retention = retention
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._backlog_recorded_at = 0.0

    def kick(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        _relays.add(self)
        log.info("outbox.relay_started", owner=self.owner)
        sweeps = 0
        try:
            while not stop.is_set():
                # Cleared before the sweep, not after: a commit during the sweep leaves it
                # set, so the wait below returns at once instead of missing that commit.
                self._wake.clear()
                try:
                    published = await self.publish_pending()
                    sweeps += 1
                    if sweeps % 600 == 0:
                        await self.purge_published()
                except Exception as exc:  # the relay must outlive broker and DB outages
                    log.warning("outbox.relay_error", error=repr(exc)[:300])
                    published = 0
                    await _sleep_or_stop(stop, 1.0)
                if published >= self._batch_size:
                    continue
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {waiter, stopper},
                    timeout=self._poll_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
                stopper.cancel()
        finally:
            _relays.discard(self)
            log.info("outbox.relay_stopped", owner=self.owner)

    async def publish_pending(self) -> int:
        """Claim a batch (own rows, unclaimed or expired), publish it in id order, mark it."""
        rows = await self._claim_batch()
        if not rows:
            OUTBOX_BACKLOG.set(0)
            OUTBOX_LAG.set(0)
            return 0
        published_ids: list[int] = []
        by_key: dict[str, list[OutboxMessage]] = defaultdict(list)
        for row in rows:
            by_key[row.message_key].append(row)
        try:
            outcomes = await asyncio.gather(
                *(
                    self._publish_in_order(chain, published_ids)
                    for chain in by_key.values()
                ),
                return_exceptions=True,
            )
        finally:
            if published_ids:
                async with self._sessionmaker.begin() as session:
                    await session.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id.in_(published_ids))
                        .values(
                            published_at=utcnow(), attempts=OutboxMessage.attempts + 1
                        )
                        .execution_options(synchronize_session=False)
                    )
        if time.monotonic() - self._backlog_recorded_at >= BACKLOG_REFRESH_SECONDS:
            await self._record_backlog()
        failures = [
            outcome for outcome in outcomes if isinstance(outcome, BaseException)
        ]
        if failures:
            raise failures[0]
        return len(published_ids)

    async def _claim_batch(self) -> list[OutboxMessage]:
        """The next batch this relay may publish, in id order, read in one transaction.

        Rows this process wrote carry its writer claim: while that claim has
        ``OWN_CLAIM_MARGIN`` left, no other relay can take them, so they are published as
        read (the common case: one query). Other rows are claimed with a conditional update
        first and only those this relay won are kept.
        """
        now = utcnow()
        claimable = or_(
            OutboxMessage.claimed_by == self.owner,
            OutboxMessage.claimed_until.is_(None),
            OutboxMessage.claimed_until < now,
        )
        async with self._sessionmaker.begin() as session:
            rows = list(
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.published_at.is_(None), claimable)
                    .order_by(OutboxMessage.id)
                    .limit(self._batch_size)
                )
            )
            held_until = now + OWN_CLAIM_MARGIN
            to_claim = [
                row.id
                for row in rows
                if row.claimed_by != self.owner
                or row.claimed_until is None
                or row.claimed_until < held_until
            ]
            if not to_claim:
                return rows
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(to_claim), claimable)
                .values(claimed_by=self.owner, claimed_until=now + self._claim)
                .execution_options(synchronize_session=False)
            )
            won = set(
                await session.scalars(
                    select(OutboxMessage.id).where(
                        OutboxMessage.id.in_(to_claim),
                        OutboxMessage.claimed_by == self.owner,
                        OutboxMessage.published_at.is_(None),
                    )
                )
            )
        wanted = set(to_claim)
        return [row for row in rows if row.id not in wanted or row.id in won]

    async def _publish_in_order(
        self, rows: list[OutboxMessage], published_ids: list[int]
    ) -> None:
        """Publish one key's rows in id order; stop at the first failure so none overtakes it.

        Keys are independent (a key maps to one partition), so their chains run concurrently:
        the broker round trips of different bindings overlap instead of adding up.
        """
        for row in rows:
            await self._bus.publish(
                row.topic, row.message_key, row.payload.encode(), dict(row.headers)
            )
            published_ids.append(row.id)
            OUTBOX_PUBLISHED.labels(topic=row.topic).inc()

    async def _record_backlog(self) -> None:
        async with self._sessionmaker() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(OutboxMessage.created_at)).where(
                        OutboxMessage.published_at.is_(None)
                    )
                )
            ).one()
        OUTBOX_BACKLOG.set(count)
        OUTBOX_LAG.set((utcnow() - oldest).total_seconds() if oldest else 0)
        self._backlog_recorded_at = time.monotonic()

    async def purge_published(self) -> int:
        async with self._sessionmaker.begin() as session:
            result: Any = await session.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.published_at.is_not(None),
                    OutboxMessage.published_at < utcnow() - self._retention,
                )
            )
        return int(result.rowcount or 0)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return
