"""Sync run lifecycle: request (with joining, idempotency and guards), claim, lease, finish.

States: ``queued`` → ``running`` → ``succeeded`` | ``partial`` | ``failed``.

- One active run per target: ``active_key`` (unique) holds the target while a run is queued or
  running, so concurrent requests from any number of gateways and schedulers join one run.
- A worker claims a run with a lease and renews it by heartbeat. A run whose lease expired (its
  worker died) or a queued run whose command was not picked up is dispatched again by
  ``redispatch_stale_runs``; the next claim resumes it. A run is never left ``running``.
- ``finish_run`` writes the outcome and its event to the outbox in the caller's transaction, and
  only while the caller still holds the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.db.base import utcnow
from gmv_common.db.models import SyncRun
from gmv_common.errors import ConflictError, GMVError, RateLimitedError
from gmv_common.events.schemas import (
    EventModel,
    MetaSyncRequested,
    ProductSyncRequested,
)
from gmv_common.logging import get_logger
from gmv_common.messaging.outbox import enqueue
from gmv_common.sync.metrics import record_finished

log = get_logger(__name__)

OnActive = Literal["join", "conflict"]


class LeaseLostError(GMVError):
    """Another worker took the run over; this worker must stop without writing."""

    default_code = "LEASE_LOST"


def meta_target(workspace_id: int, auth_id: int) -> str:
    return f"meta:{workspace_id}:{auth_id}"


def product_target(
    workspace_id: int, auth_id: int, advertiser_id: str, store_id: str, eligibility: str
) -> str:
    return f"products:{workspace_id}:{auth_id}:{advertiser_id}:{store_id}:{eligibility}"


@dataclass(frozen=True)
class RunRequest:
    run: SyncRun
    created: bool
    # How an existing run was found: "idempotency_key", "active" (joined) or None (created).
    reason: str | None = None


async def _find_by_key(
    session: AsyncSession, workspace_id: int, auth_id: int, scope: str, key: str
) -> SyncRun | None:
    result: SyncRun | None = await session.scalar(
        select(SyncRun).where(
            SyncRun.workspace_id == workspace_id,
            SyncRun.auth_id == auth_id,
            SyncRun.scope == scope,
            SyncRun.idempotency_key == key,
        )
    )
    return result


async def _find_active(session: AsyncSession, target: str) -> SyncRun | None:
    result: SyncRun | None = await session.scalar(
        select(SyncRun).where(SyncRun.active_key == target)
    )
    return result


async def _insert_run(
    session: AsyncSession, run: SyncRun, command: EventModel, *, topic_prefix: str
) -> SyncRun | None:
    """Insert ``run`` and its command; None when another request won the race."""
    try:
        async with session.begin_nested():
            session.add(run)
            await session.flush()
    except IntegrityError:
        return None
    command = command.model_copy(update={"run_id": run.id})
    enqueue(
        session, command, topic_prefix=topic_prefix, correlation_id=run.correlation_id
    )
    return run


async def request_meta_sync(
    session: AsyncSession,
    *,
    workspace_id: int,
    auth_id: int,
    trigger: str,
    topic_prefix: str,
    mode: str = "full",
    idempotency_key: str | None = None,
    user_id: int | None = None,
    schedule_id: int | None = None,
    correlation_id: str | None = None,
    task_kind: str = "ttb.sync.meta",
) -> RunRequest:
    """Start a meta sync of one binding, or join the one already queued or running."""
    if idempotency_key:
        existing = await _find_by_key(
            session, workspace_id, auth_id, "meta", idempotency_key
        )
        if existing is not None:
            return RunRequest(existing, False, "idempotency_key")
    target = meta_target(workspace_id, auth_id)
    for _ in range(3):
        active = await _find_active(session, target)
        if active is not None:
            return RunRequest(active, False, "active")
        run = SyncRun(
            workspace_id=workspace_id,
            auth_id=auth_id,
            scope="meta",
            task_kind=task_kind,
            mode=mode,
            trigger=trigger,
            status="queued",
            params={},
            target_key=target,
            active_key=target,
            idempotency_key=idempotency_key or _new_key(),
            correlation_id=correlation_id,
            requested_by_user_id=user_id,
            schedule_id=schedule_id,
            heartbeat_at=utcnow(),
        )
        command = MetaSyncRequested(
            workspace_id=workspace_id,
            auth_id=auth_id,
            run_id=0,
            mode=mode,  # type: ignore[arg-type]
            trigger=trigger,  # type: ignore[arg-type]
        )
        inserted = await _insert_run(session, run, command, topic_prefix=topic_prefix)
        if inserted is not None:
            log.info(
                "sync.requested", run_id=inserted.id, scope="meta", trigger=trigger
            )
            return RunRequest(inserted, True)
        if idempotency_key:
            existing = await _find_by_key(
                session, workspace_id, auth_id, "meta", idempotency_key
            )
            if existing is not None:
                return RunRequest(existing, False, "idempotency_key")
    raise ConflictError("could not start or join a meta sync", code="SYNC_IN_PROGRESS")


async def request_product_sync(
    session: AsyncSession,
    *,
    workspace_id: int,
    auth_id: int,
    advertiser_id: str,
    store_id: str,
    bc_id: str | None,
    eligibility: str,
    trigger: str,
    topic_prefix: str,
    mode: str = "full",
    idempotency_key: str | None = None,
    user_id: int | None = None,
    schedule_id: int | None = None,
    correlation_id: str | None = None,
    on_active: OnActive = "join",
    cooldown_seconds: int = 0,
) -> RunRequest:
    """Start a product sync of one advertiser/store pair, with the gateway's guards.

    The same idempotency key always returns the same run. A run already queued or running for
    the pair is joined (``on_active="join"``) or refused with 409 ``SYNC_IN_PROGRESS``. A new run
    within ``cooldown_seconds`` of the pair's last one is refused with 429 ``SYNC_RATE_LIMITED``.
    """
    target = product_target(workspace_id, auth_id, advertiser_id, store_id, eligibility)
    params: dict[str, Any] = {
        "advertiser_id": advertiser_id,
        "store_id": store_id,
        "bc_id": bc_id,
        "eligibility": eligibility,
    }
    for _ in range(3):
        # The key is looked up on every pass: a concurrent request with the same key that
        # won the insert race must be returned as this request's run, never refused.
        if idempotency_key:
            existing = await _find_by_key(
                session, workspace_id, auth_id, "products", idempotency_key
            )
            if existing is not None:
                return RunRequest(existing, False, "idempotency_key")
        active = await _find_active(session, target)
        if active is not None:
            if idempotency_key and active.idempotency_key == idempotency_key:
                # Committed by a same-key request between the two lookups above.
                return RunRequest(active, False, "idempotency_key")
            if on_active == "conflict":
                raise ConflictError(
                    "a product sync for this advertiser and store is already in progress",
                    code="SYNC_IN_PROGRESS",
                    details={"run_id": active.id, "status": active.status},
                )
            return RunRequest(active, False, "active")
        if cooldown_seconds > 0:
            await _enforce_cooldown(session, target, cooldown_seconds)
        run = SyncRun(
            workspace_id=workspace_id,
            auth_id=auth_id,
            scope="products",
            task_kind="ttb.sync.products",
            mode=mode,
            trigger=trigger,
            status="queued",
            params=params,
            target_key=target,
            active_key=target,
            idempotency_key=idempotency_key or _new_key(),
            correlation_id=correlation_id,
            requested_by_user_id=user_id,
            schedule_id=schedule_id,
            heartbeat_at=utcnow(),
        )
        command = ProductSyncRequested(
            workspace_id=workspace_id,
            auth_id=auth_id,
            run_id=0,
            advertiser_id=advertiser_id,
            store_id=store_id,
            bc_id=bc_id,
            eligibility=eligibility,  # type: ignore[arg-type]
            mode=mode,  # type: ignore[arg-type]
            trigger=trigger,  # type: ignore[arg-type]
        )
        inserted = await _insert_run(session, run, command, topic_prefix=topic_prefix)
        if inserted is not None:
            log.info(
                "sync.requested", run_id=inserted.id, scope="products", trigger=trigger
            )
            return RunRequest(inserted, True)
    raise ConflictError(
        "could not start or join a product sync", code="SYNC_IN_PROGRESS"
    )


async def _enforce_cooldown(
    session: AsyncSession, target: str, cooldown_seconds: int
) -> None:
    last_created: datetime | None = await session.scalar(
        select(SyncRun.created_at)
        # Only runs that finished with work done count. A failed run must not keep the user
        # from trying again, and a run another request is starting right now is joined
        # (it is seen as active on the next pass), never answered with 429.
        .where(
            SyncRun.target_key == target,
            SyncRun.status.in_(("succeeded", "partial")),
        )
        .order_by(SyncRun.created_at.desc())
        .limit(1)
    )
    if last_created is None:
        return
    elapsed = (utcnow() - last_created).total_seconds()
    if elapsed < cooldown_seconds:
        retry_after = int(cooldown_seconds - elapsed) + 1
        raise RateLimitedError(
            f"this advertiser and store were synced less than {cooldown_seconds} s ago",
            code="SYNC_RATE_LIMITED",
            retry_after=retry_after,
        )


def _new_key() -> str:
    import uuid

    return uuid.uuid4().hex


async def claim_run(
    sessionmaker: async_sessionmaker[AsyncSession],
    run_id: int,
    *,
    owner: str,
    lease_seconds: float,
) -> SyncRun | None:
    """Take the run (queued, or running with an expired lease); None when someone else has it."""
    now = utcnow()
    async with sessionmaker.begin() as session:
        result: Any = await session.execute(
            update(SyncRun)
            .where(
                SyncRun.id == run_id,
                or_(
                    SyncRun.status == "queued",
                    and_(SyncRun.status == "running", SyncRun.lease_expires_at < now),
                ),
            )
            .values(
                status="running",
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                heartbeat_at=now,
                attempts=SyncRun.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return None
        run = await session.get(SyncRun, run_id)
        assert run is not None
        if run.started_at is None:
            run.started_at = now
    log.info("sync.claimed", run_id=run_id, attempt=run.attempts)
    return run


async def renew_lease(
    sessionmaker: async_sessionmaker[AsyncSession],
    run_id: int,
    *,
    owner: str,
    lease_seconds: float,
) -> bool:
    now = utcnow()
    async with sessionmaker.begin() as session:
        result: Any = await session.execute(
            update(SyncRun)
            .where(
                SyncRun.id == run_id,
                SyncRun.status == "running",
                SyncRun.lease_owner == owner,
            )
            .values(
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                heartbeat_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    return bool(result.rowcount == 1)


class Lease:
    """Keeps a claimed run's lease alive in the background; ``check()`` raises once it is lost."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        run_id: int,
        *,
        owner: str,
        lease_seconds: float,
        heartbeat_seconds: float,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.run_id = run_id
        self.owner = owner
        self._lease_seconds = lease_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self.lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Lease:
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLostError(f"lease of run {self.run_id} was lost")

    async def _beat(self) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            try:
                held = await renew_lease(
                    self._sessionmaker,
                    self.run_id,
                    owner=self.owner,
                    lease_seconds=self._lease_seconds,
                )
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning(
                    "sync.heartbeat_failed", run_id=self.run_id, error=repr(exc)
                )
                held = failures * self._heartbeat_seconds < self._lease_seconds
            if not held:
                log.warning("sync.lease_lost", run_id=self.run_id)
                self.lost.set()
                return


async def finish_run(
    session: AsyncSession,
    run_id: int,
    *,
    owner: str,
    status: str,
    stats: dict[str, Any],
    event: EventModel,
    topic_prefix: str,
    error_code: str | None = None,
    error_message: str | None = None,
) -> SyncRun:
    """Record the outcome and emit its event, in the caller's transaction, if the lease is held."""
    run = await session.scalar(
        select(SyncRun).where(SyncRun.id == run_id).with_for_update()
    )
    if run is None or run.status != "running" or run.lease_owner != owner:
        raise LeaseLostError(f"run {run_id} is no longer held by this worker")
    run.status = status
    run.stats = stats
    run.error_code = error_code
    run.error_message = (error_message or "")[:1024] or None
    run.finished_at = utcnow()
    run.active_key = None
    run.lease_owner = None
    run.lease_expires_at = None
    enqueue(
        session, event, topic_prefix=topic_prefix, correlation_id=run.correlation_id
    )
    started = run.started_at or run.created_at
    record_finished(
        session.sync_session,
        scope=run.scope,
        status=status,
        seconds=(run.finished_at - started).total_seconds(),
    )
    log.info("sync.finished", run_id=run_id, status=status, error_code=error_code)
    return run


async def redispatch_stale_runs(
    session: AsyncSession,
    *,
    topic_prefix: str,
    queued_grace_seconds: float = 60.0,
    limit: int = 100,
) -> list[int]:
    """Send the command again for runs whose worker died or whose command went missing."""
    now = utcnow()
    stale = list(
        await session.scalars(
            select(SyncRun)
            .where(
                or_(
                    and_(SyncRun.status == "running", SyncRun.lease_expires_at < now),
                    and_(
                        SyncRun.status == "queued",
                        SyncRun.heartbeat_at
                        < now - timedelta(seconds=queued_grace_seconds),
                    ),
                )
            )
            .order_by(SyncRun.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for run in stale:
        run.heartbeat_at = now
        enqueue(session, command_for(run), topic_prefix=topic_prefix)
        log.info("sync.redispatched", run_id=run.id, status=run.status)
    return [run.id for run in stale]


def command_for(run: SyncRun) -> EventModel:
    if run.scope == "meta":
        return MetaSyncRequested(
            workspace_id=run.workspace_id,
            auth_id=run.auth_id,
            run_id=run.id,
            mode=run.mode,  # type: ignore[arg-type]
            trigger=run.trigger,  # type: ignore[arg-type]
        )
    params = run.params or {}
    return ProductSyncRequested(
        workspace_id=run.workspace_id,
        auth_id=run.auth_id,
        run_id=run.id,
        advertiser_id=params["advertiser_id"],
        store_id=params["store_id"],
        bc_id=params.get("bc_id"),
        eligibility=params.get("eligibility", "gmv_max"),
        mode=run.mode,  # type: ignore[arg-type]
        trigger=run.trigger,  # type: ignore[arg-type]
    )
