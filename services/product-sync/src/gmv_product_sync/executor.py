"""Runs claimed product syncs in background tasks, at most N at a time per process.

The command handler stays short: it waits for a free slot, claims the run with a lease and
hands it to a task here. A run that cannot be claimed (finished, or held by a live worker)
is left alone. A task that is cancelled (shutdown) or whose lease was lost stops without
writing; its run is resumed elsewhere once the lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import uuid
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.db.models import SyncRun
from gmv_common.events.schemas import ProductSyncRequested
from gmv_common.logging import bound_context, get_logger
from gmv_common.settings import Settings
from gmv_common.sync.runs import Lease, LeaseLostError, claim_run, command_for
from gmv_product_sync.service import ProductSyncService, RunOutcome

log = get_logger(__name__)


def worker_name() -> str:
    return f"product-sync:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RunExecutor:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        service: ProductSyncService,
        settings: Settings,
        owner: str | None = None,
        max_concurrent_runs: int | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._service = service
        self._settings = settings
        self.owner = owner or worker_name()
        self._slots = asyncio.Semaphore(
            max_concurrent_runs or settings.product_sync_max_concurrent_runs
        )
        self._tasks: dict[int, asyncio.Task[RunOutcome | None]] = {}

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[RunSlot]:
        """Wait for a free run slot; it is freed on exit unless a run was started in it."""
        await self._slots.acquire()
        slot = RunSlot(self)
        try:
            yield slot
        finally:
            if not slot.used:
                self._slots.release()

    async def _start(self, run_id: int) -> bool:
        run = await claim_run(
            self._sessionmaker,
            run_id,
            owner=self.owner,
            lease_seconds=self._settings.sync_lease_seconds,
        )
        if run is None:
            log.info("product_sync.not_claimed", run_id=run_id)
            return False
        task = asyncio.create_task(self._execute(run), name=f"product-sync-{run.id}")
        self._tasks[run.id] = task
        task.add_done_callback(functools.partial(self._done, run.id))
        return True

    def _done(self, run_id: int, _task: asyncio.Task[RunOutcome | None]) -> None:
        self._tasks.pop(run_id, None)
        self._slots.release()

    async def _execute(self, run: SyncRun) -> RunOutcome | None:
        command = command_for(run)
        assert isinstance(command, ProductSyncRequested)
        with bound_context(
            run_id=run.id,
            workspace_id=run.workspace_id,
            auth_id=run.auth_id,
            correlation_id=run.correlation_id or f"run-{run.id}",
        ):
            log.info(
                "product_sync.started",
                advertiser_id=command.advertiser_id,
                store_id=command.store_id,
                eligibility=command.eligibility,
                mode=command.mode,
                attempt=run.attempts,
            )
            try:
                async with Lease(
                    self._sessionmaker,
                    run.id,
                    owner=self.owner,
                    lease_seconds=self._settings.sync_lease_seconds,
                    heartbeat_seconds=self._settings.sync_heartbeat_seconds,
                ) as lease:
                    return await self._service.execute(run, command, lease=lease)
            except LeaseLostError:
                log.warning("product_sync.abandoned", reason="lease_lost")
            except Exception as exc:
                log.exception("product_sync.unfinished", error=repr(exc)[:300])
            return None

    def running(self) -> dict[int, asyncio.Task[RunOutcome | None]]:
        return dict(self._tasks)

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self, *, grace_seconds: float = 5.0) -> None:
        """Cancel the runs in flight; their leases expire and another worker resumes them.

        A run cancelled in the middle of a database call can leave its connection unable to
        finish, so the wait is bounded: the lease, not this process, guarantees the run.
        """
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
            if pending:
                log.warning("product_sync.close_abandoned_runs", runs=len(pending))


class RunSlot:
    """One reserved place in the executor; ``start`` claims a run into it."""

    def __init__(self, executor: RunExecutor) -> None:
        self._executor = executor
        self.used = False

    async def start(self, run_id: int) -> bool:
        """Claim ``run_id`` and execute it in the background; False if not claimed."""
        if self.used:
            raise RuntimeError("this slot already holds a run")
        self.used = await self._executor._start(run_id)
        return self.used
