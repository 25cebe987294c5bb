"""Executing claimed meta-sync runs in the background, several at once per process.

``MetaSyncWorker.submit`` is what the command handler calls: it claims the run (a lease)
and starts its execution as a task, bounded by a semaphore, and returns at once so the
consumer keeps polling. When every slot is busy it does not claim: the run stays queued
and ``redispatch_stale_runs`` sends its command again later, to whichever worker has room.

Execution, per run: load the binding's credentials, read the chain from TikTok while the
lease heartbeats, then write every row, the run's outcome and its event in one
transaction, and only while the lease is still held. A worker that dies mid-run leaves
nothing half-written; the next claim after the lease expired starts the read again.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.bindings import (
    STATUS_REVOKED,
    build_tiktok_client,
    load_binding_credentials,
)
from gmv_common.crypto import DecryptionError, Keyring
from gmv_common.db.base import utcnow
from gmv_common.db.models import SyncRun
from gmv_common.errors import GMVError, NotFoundError
from gmv_common.logging import bound_context, get_logger
from gmv_common.messaging.consumer import is_infrastructure_error
from gmv_common.settings import Settings
from gmv_common.sync.runs import Lease, LeaseLostError, claim_run
from gmv_common.tiktok import (
    Priority,
    RateLimiter,
    TikTokAuthError,
    TikTokClient,
    TikTokError,
)
from gmv_metadata_sync import service
from gmv_metadata_sync.schemas import PhaseTimer
from gmv_metadata_sync.upstream import DEFAULT_CONCURRENCY, MetaChainReader

log = get_logger(__name__)

INTERACTIVE_TRIGGERS = frozenset({"refresh", "manual", "oauth"})
# A run claimed this many times never finished (its worker keeps dying): stop retrying.
MAX_RUN_ATTEMPTS = 5
ClientFactory = Callable[[str | None], TikTokClient]


def priority_for(trigger: str) -> Priority:
    """Someone waiting (a refresh, a button, an OAuth callback) goes ahead of schedules."""
    return Priority.INTERACTIVE if trigger in INTERACTIVE_TRIGGERS else Priority.BULK


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class WorkerConfig:
    topic_prefix: str
    lease_seconds: float
    heartbeat_seconds: float
    max_concurrent_runs: int = 4
    chain_concurrency: int = DEFAULT_CONCURRENCY
    schedule_interval_seconds: int = 1800

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerConfig:
        return cls(
            topic_prefix=settings.kafka_topic_prefix,
            lease_seconds=settings.sync_lease_seconds,
            heartbeat_seconds=settings.sync_heartbeat_seconds,
            chain_concurrency=settings.meta_sync_chain_concurrency,
            schedule_interval_seconds=settings.meta_sync_interval_seconds,
        )


@dataclass
class MetaSyncWorker:
    """Claims meta-sync runs and executes them as background tasks."""

    sessionmaker: async_sessionmaker[AsyncSession]
    keyring: Keyring
    settings: Settings
    limiter: RateLimiter
    config: WorkerConfig
    owner: str = field(default_factory=worker_id)
    client_factory: ClientFactory | None = None
    _slots: asyncio.Semaphore = field(init=False)
    _tasks: set[asyncio.Task[None]] = field(init=False, default_factory=set)
    _clients: dict[str | None, TikTokClient] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.config.max_concurrent_runs)

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def submit(self, run_id: int) -> asyncio.Task[None] | None:
        """Claim ``run_id`` and start it in the background; None if not started."""
        if self._slots.locked():
            log.info("meta_sync.busy", run_id=run_id, running=self.running)
            return None
        await self._slots.acquire()
        try:
            run = await claim_run(
                self.sessionmaker,
                run_id,
                owner=self.owner,
                lease_seconds=self.config.lease_seconds,
            )
        except BaseException:
            self._slots.release()
            raise
        if run is None:
            self._slots.release()
            log.info("meta_sync.not_claimed", run_id=run_id)
            return None
        if run.scope != "meta":
            self._slots.release()
            log.error("meta_sync.wrong_scope", run_id=run_id, scope=run.scope)
            return None
        task = asyncio.create_task(self._execute(run), name=f"meta-sync-{run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` for running runs, then cancel the rest.

        A cancelled run keeps its lease until it expires; another worker then resumes it.
        """
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                # A run cancelled inside a database call may never finish unwinding; its lease,
                # not this process, guarantees that another worker completes it.
                await asyncio.wait(pending, timeout=5)
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    def _client(self, base_url: str | None) -> TikTokClient:
        client = self._clients.get(base_url)
        if client is None:
            if self.client_factory is not None:
                client = self.client_factory(base_url)
            else:
                client = build_tiktok_client(
                    self.settings, limiter=self.limiter, base_url=base_url
                )
            self._clients[base_url] = client
        return client

    async def _execute(self, run: SyncRun) -> None:
        context = {
            "run_id": run.id,
            "workspace_id": run.workspace_id,
            "auth_id": run.auth_id,
            "correlation_id": run.correlation_id or f"run-{run.id}",
        }
        with bound_context(**context):
            try:
                async with Lease(
                    self.sessionmaker,
                    run.id,
                    owner=self.owner,
                    lease_seconds=self.config.lease_seconds,
                    heartbeat_seconds=self.config.heartbeat_seconds,
                ) as lease:
                    await self._run_chain(run, lease)
            except LeaseLostError:
                log.warning("meta_sync.lease_lost")
            except asyncio.CancelledError:
                log.warning("meta_sync.abandoned")
                raise
            except Exception as exc:
                if is_infrastructure_error(exc):
                    # The lease runs out and the run is dispatched again once the
                    # database or network is back; failing it would lose the request.
                    log.warning("meta_sync.infrastructure_error", error=repr(exc)[:300])
                    return
                log.exception("meta_sync.crashed", error=repr(exc)[:300])
                await self._fail(run, "INTERNAL_ERROR", f"{type(exc).__name__}")

    async def _run_chain(self, run: SyncRun, lease: Lease) -> None:
        log.info("meta_sync.started", trigger=run.trigger, attempt=run.attempts)
        if run.attempts > MAX_RUN_ATTEMPTS:
            await self._fail(
                run,
                "RUN_ATTEMPTS_EXHAUSTED",
                f"the run was started {run.attempts} times without finishing",
            )
            return
        try:
            async with self.sessionmaker() as session:
                credentials = await load_binding_credentials(
                    session,
                    self.keyring,
                    workspace_id=run.workspace_id,
                    auth_id=run.auth_id,
                )
        except NotFoundError:
            await self._fail(run, "BINDING_NOT_FOUND", "the binding no longer exists")
            return
        except DecryptionError as exc:
            await self._fail(run, "TOKEN_UNREADABLE", exc.message)
            return
        if credentials.binding.status == STATUS_REVOKED:
            await self._fail(run, "BINDING_REVOKED", "the binding was revoked")
            return

        await self.limiter.set_qps(credentials.app.app_id, credentials.app.qps_limit)
        reader = MetaChainReader(
            self._client(credentials.app.api_base_url),
            credentials.tiktok,
            priority=priority_for(run.trigger),
            concurrency=self.config.chain_concurrency,
            checkpoint=lease.check,
        )
        try:
            snapshot = await reader.read()
        except TikTokAuthError as exc:
            await self._fail(
                run,
                exc.code,
                exc.message,
                stats=_read_stats(reader),
                token_invalid=True,
            )
            return
        except TikTokError as exc:
            await self._fail(run, exc.code, exc.message, stats=_read_stats(reader))
            return

        lease.check()
        async with self.sessionmaker.begin() as session:
            with PhaseTimer(snapshot.phase_seconds, "write"):
                outcome = await service.apply_snapshot(
                    session,
                    snapshot,
                    workspace_id=run.workspace_id,
                    auth_id=run.auth_id,
                    now=utcnow(),
                )
            await service.complete_run(
                session,
                run,
                outcome,
                owner=self.owner,
                topic_prefix=self.config.topic_prefix,
                interval_seconds=self.config.schedule_interval_seconds,
            )
        log.info(
            "meta_sync.completed",
            status=outcome.status,
            api_calls=sum(outcome.api_calls.values()),
            **{kind: diff.stats() for kind, diff in outcome.diffs.items()},
        )

    async def _fail(
        self,
        run: SyncRun,
        error_code: str,
        message: str,
        *,
        stats: dict[str, object] | None = None,
        token_invalid: bool = False,
    ) -> None:
        try:
            async with self.sessionmaker.begin() as session:
                await service.fail_run(
                    session,
                    run,
                    owner=self.owner,
                    topic_prefix=self.config.topic_prefix,
                    error_code=error_code,
                    error_message=message,
                    stats=dict(stats or {}),
                    token_invalid=token_invalid,
                )
        except LeaseLostError:
            log.warning("meta_sync.lease_lost_on_failure", error_code=error_code)
            return
        except GMVError as exc:
            log.error("meta_sync.fail_not_recorded", error_code=exc.code)
            return
        log.warning("meta_sync.failed", error_code=error_code)


def _read_stats(reader: MetaChainReader) -> dict[str, object]:
    snapshot = reader.snapshot
    return {
        "api_calls": {
            "total": sum(snapshot.api_calls.values()),
            **snapshot.api_calls,
        },
        "phase_seconds": {k: round(v, 3) for k, v in snapshot.phase_seconds.items()},
        "errors": [error.as_dict() for error in snapshot.errors],
    }
